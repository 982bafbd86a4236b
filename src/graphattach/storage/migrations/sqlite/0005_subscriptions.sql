-- Change-notification subscriptions, the outbox of notifications waiting for delivery, and the
-- log of deliveries. A subscription is a JSON document (`doc`) beside the columns queried by;
-- its delivery state (next attempt, lease, failures in a row) is columns, not in `doc`.

CREATE TABLE subscriptions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    state         TEXT NOT NULL,
    created       INTEGER NOT NULL,
    doc           TEXT NOT NULL,
    next_attempt  INTEGER NOT NULL,
    lease_until   INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    failing_since INTEGER
);
CREATE INDEX subscriptions_by_user ON subscriptions (user_id, created);

CREATE TABLE notification_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    created         INTEGER NOT NULL
);
CREATE INDEX notification_outbox_by_subscription ON notification_outbox (subscription_id, seq);

CREATE TABLE delivery_log (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id TEXT NOT NULL,
    url             TEXT NOT NULL,
    at              INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    count           INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    status          INTEGER,
    latency_ms      REAL NOT NULL,
    error           TEXT
);
CREATE INDEX delivery_log_by_subscription ON delivery_log (subscription_id, seq);
