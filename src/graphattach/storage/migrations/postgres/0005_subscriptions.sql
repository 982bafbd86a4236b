-- Change-notification subscriptions, the outbox of notifications waiting for delivery, and the
-- log of deliveries (as migrations/sqlite/0005_subscriptions.sql). Datetimes here are bigint
-- microseconds since the Unix epoch, UTC, so that both backends share the encoding code.

CREATE TABLE subscriptions (
    id            text PRIMARY KEY,
    user_id       text NOT NULL,
    state         text NOT NULL,
    created       bigint NOT NULL,
    doc           text NOT NULL,
    next_attempt  bigint NOT NULL,
    lease_until   bigint NOT NULL DEFAULT 0,
    attempts      integer NOT NULL DEFAULT 0,
    failing_since bigint
);
CREATE INDEX subscriptions_by_user ON subscriptions (user_id, created);
CREATE INDEX subscriptions_due ON subscriptions (next_attempt);

CREATE TABLE notification_outbox (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    url             text NOT NULL,
    kind            text NOT NULL,
    body            text NOT NULL,
    created         bigint NOT NULL
);
CREATE INDEX notification_outbox_by_subscription ON notification_outbox (subscription_id, seq);

CREATE TABLE delivery_log (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id text NOT NULL,
    url             text NOT NULL,
    at              bigint NOT NULL,
    kind            text NOT NULL,
    count           integer NOT NULL,
    attempt         integer NOT NULL,
    status          integer,
    latency_ms      double precision NOT NULL,
    error           text
);
CREATE INDEX delivery_log_by_subscription ON delivery_log (subscription_id, seq);
