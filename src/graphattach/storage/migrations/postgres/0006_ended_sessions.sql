-- An upload session that ends (cancelled, or forgotten by the sweeper after its expiry) stays as
-- the record of how it ended: `ended` set (the server clock), its final state, its bytes received.
-- Such a row references no blob and is seen only by the web UI's list of recent sessions; the
-- newest 100 per mailbox are kept. The UI polls that list newest first: an index serves it.
ALTER TABLE upload_sessions ADD COLUMN ended timestamptz;
CREATE INDEX upload_sessions_ended_by_user ON upload_sessions (user_id, ended) WHERE ended IS NOT NULL;
CREATE INDEX upload_sessions_by_created ON upload_sessions (created DESC, id DESC);
