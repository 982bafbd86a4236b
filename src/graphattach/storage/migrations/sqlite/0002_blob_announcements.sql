-- Blob keys an insert in flight announced before writing the bytes: until the insert commits its
-- record (which deletes the row in the same transaction) the sweeper counts the key as referenced.
-- `announced` is real time (microseconds since the epoch), never the server's settable clock.
CREATE TABLE blob_announcements (
    blob_key  TEXT PRIMARY KEY,
    announced INTEGER NOT NULL
);
CREATE INDEX blob_announcements_by_age ON blob_announcements (announced);
