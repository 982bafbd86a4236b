-- Blob keys an insert in flight announced before writing the bytes: until the insert commits its
-- record (which deletes the row in the same transaction) the sweeper counts the key as referenced.
-- `announced` is the database's own clock, never the server's settable clock.
CREATE TABLE blob_announcements (
    blob_key  text PRIMARY KEY,
    announced timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX blob_announcements_by_age ON blob_announcements (announced);
