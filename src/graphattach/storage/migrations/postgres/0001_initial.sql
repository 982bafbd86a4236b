-- Initial schema (the same records as migrations/sqlite/0001_initial.sql).
-- Datetimes are timestamptz (microsecond precision, returned in UTC).
-- Graph properties the server does not interpret live in `data` (json, kept as sent).
-- User principal names and well-known folder names compare case-insensitively over ASCII only
-- (as SQLite's NOCASE): the folded spelling is a column, made by the application.
-- Items carry no has_attachments column: it is derived on read.

CREATE TABLE settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE users (
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    id               text PRIMARY KEY,
    upn              text NOT NULL,
    upn_folded       text NOT NULL UNIQUE,
    display_name     text NOT NULL,
    mail             text NOT NULL,
    max_message_size bigint NOT NULL,
    created          timestamptz NOT NULL,
    data             json NOT NULL DEFAULT '{}'
);
CREATE INDEX users_by_created ON users (created, seq);

CREATE TABLE folders (
    seq                bigint GENERATED ALWAYS AS IDENTITY,
    id                 text PRIMARY KEY,
    user_id            text NOT NULL REFERENCES users (id),
    kind               text NOT NULL CHECK (kind IN ('mail', 'calendar', 'calendarGroup')),
    display_name       text NOT NULL,
    parent_id          text,
    well_known_name    text,
    well_known_folded  text,
    created            timestamptz NOT NULL,
    data               json NOT NULL DEFAULT '{}',
    UNIQUE (user_id, id),
    UNIQUE (user_id, kind, well_known_folded),
    FOREIGN KEY (user_id, parent_id) REFERENCES folders (user_id, id)
);
CREATE INDEX folders_by_parent ON folders (user_id, parent_id);
CREATE INDEX folders_by_kind ON folders (user_id, kind, created, seq);

CREATE TABLE items (
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    id            text PRIMARY KEY,
    user_id       text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('message', 'event')),
    folder_id     text NOT NULL,
    created       timestamptz NOT NULL,
    last_modified timestamptz NOT NULL,
    change_key    text NOT NULL,
    data          json NOT NULL DEFAULT '{}',
    UNIQUE (user_id, id),
    FOREIGN KEY (user_id, folder_id) REFERENCES folders (user_id, id)
);
CREATE INDEX items_by_folder ON items (user_id, folder_id, kind, created DESC, id DESC);
CREATE INDEX items_by_kind ON items (user_id, kind, created DESC, id DESC);

CREATE TABLE attachments (
    seq            bigint GENERATED ALWAYS AS IDENTITY,
    id             text PRIMARY KEY,
    user_id        text NOT NULL,
    item_id        text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('file', 'item', 'reference')),
    name           text,
    content_type   text,
    size           bigint NOT NULL,
    is_inline      boolean NOT NULL,
    content_id     text,
    last_modified  timestamptz NOT NULL,
    content_length bigint NOT NULL,
    blob_key       text,
    data           json NOT NULL DEFAULT '{}',
    FOREIGN KEY (user_id, item_id) REFERENCES items (user_id, id)
);
CREATE INDEX attachments_by_item ON attachments (user_id, item_id, seq);
CREATE INDEX attachments_by_blob ON attachments (blob_key) WHERE blob_key IS NOT NULL;

-- Sessions outlive their item (they expire on their own), so no foreign keys here.
CREATE TABLE upload_sessions (
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    id            text PRIMARY KEY,
    user_id       text NOT NULL,
    item_id       text NOT NULL,
    item_kind     text NOT NULL,
    name          text NOT NULL,
    content_type  text,
    is_inline     boolean NOT NULL,
    content_id    text,
    size          bigint NOT NULL,
    received      bigint NOT NULL,
    blob_key      text NOT NULL,
    state         text NOT NULL CHECK (state IN ('active', 'completed', 'cancelled', 'expired')),
    expires       timestamptz NOT NULL,
    created       timestamptz NOT NULL,
    attachment_id text,
    last_start    bigint,
    last_end      bigint
);
CREATE INDEX upload_sessions_by_expiry ON upload_sessions (expires, id);
CREATE INDEX upload_sessions_by_blob ON upload_sessions (blob_key);
