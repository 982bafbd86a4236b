-- Initial schema. Datetimes are integer microseconds since the Unix epoch, UTC.
-- Graph properties the server does not interpret live in `data` (JSON text).
-- Items carry no has_attachments column: it is derived on read.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    upn              TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name     TEXT NOT NULL,
    mail             TEXT NOT NULL,
    max_message_size INTEGER NOT NULL,
    created          INTEGER NOT NULL,
    data             TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE folders (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    user_id         TEXT NOT NULL REFERENCES users (id),
    kind            TEXT NOT NULL CHECK (kind IN ('mail', 'calendar', 'calendarGroup')),
    display_name    TEXT NOT NULL,
    parent_id       TEXT,
    well_known_name TEXT COLLATE NOCASE,
    created         INTEGER NOT NULL,
    data            TEXT NOT NULL DEFAULT '{}',
    UNIQUE (user_id, id),
    UNIQUE (user_id, kind, well_known_name),
    FOREIGN KEY (user_id, parent_id) REFERENCES folders (user_id, id)
);
CREATE INDEX folders_by_parent ON folders (user_id, parent_id);
CREATE INDEX folders_by_kind ON folders (user_id, kind, created);

CREATE TABLE items (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('message', 'event')),
    folder_id     TEXT NOT NULL,
    created       INTEGER NOT NULL,
    last_modified INTEGER NOT NULL,
    change_key    TEXT NOT NULL,
    data          TEXT NOT NULL DEFAULT '{}',
    UNIQUE (user_id, id),
    FOREIGN KEY (user_id, folder_id) REFERENCES folders (user_id, id)
);
CREATE INDEX items_by_folder ON items (user_id, folder_id, kind, created DESC, id DESC);
CREATE INDEX items_by_kind ON items (user_id, kind, created DESC, id DESC);

CREATE TABLE attachments (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    user_id        TEXT NOT NULL,
    item_id        TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('file', 'item', 'reference')),
    name           TEXT,
    content_type   TEXT,
    size           INTEGER NOT NULL,
    is_inline      INTEGER NOT NULL,
    content_id     TEXT,
    last_modified  INTEGER NOT NULL,
    content_length INTEGER NOT NULL,
    blob_key       TEXT,
    data           TEXT NOT NULL DEFAULT '{}',
    FOREIGN KEY (user_id, item_id) REFERENCES items (user_id, id)
);
CREATE INDEX attachments_by_item ON attachments (user_id, item_id, is_inline);
CREATE INDEX attachments_by_blob ON attachments (blob_key) WHERE blob_key IS NOT NULL;

-- Sessions outlive their item (they expire on their own), so no foreign keys here.
CREATE TABLE upload_sessions (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL,
    item_id       TEXT NOT NULL,
    item_kind     TEXT NOT NULL,
    name          TEXT NOT NULL,
    content_type  TEXT,
    is_inline     INTEGER NOT NULL,
    content_id    TEXT,
    size          INTEGER NOT NULL,
    received      INTEGER NOT NULL,
    blob_key      TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('active', 'completed', 'cancelled', 'expired')),
    expires       INTEGER NOT NULL,
    created       INTEGER NOT NULL,
    attachment_id TEXT,
    last_start    INTEGER,
    last_end      INTEGER
);
CREATE INDEX upload_sessions_by_expiry ON upload_sessions (expires, id);
CREATE INDEX upload_sessions_by_blob ON upload_sessions (blob_key);
