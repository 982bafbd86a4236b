-- A notification queued by a request that is still running is held (not handed to a dispatcher)
-- until the request ends or `held_until` passes (its process died): a later change of the same
-- item in the request merges into it instead of following it.
ALTER TABLE notification_outbox ADD COLUMN held_until bigint NOT NULL DEFAULT 0;
