-- Change tracking for delta queries: every item insert, update or delete and every attachment
-- insert or delete takes the mailbox's next change number (change_marks), and item_versions keeps
-- the latest change of each item per folder it is or was in (removed once it was deleted or moved
-- out). Triggers keep them in the same transaction as the change. The per-mailbox counter row is
-- locked until commit, so change numbers of one mailbox become visible in order: a delta round
-- that has read number N never misses a change numbered N or below.

CREATE TABLE change_marks (
    user_id TEXT PRIMARY KEY,
    value   BIGINT NOT NULL
);

CREATE TABLE item_versions (
    user_id   TEXT NOT NULL,
    folder_id TEXT NOT NULL,
    item_id   TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    removed   BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, folder_id, item_id)
);
CREATE INDEX item_versions_by_seq ON item_versions (user_id, folder_id, seq);

-- What exists today is the first change of each mailbox.
INSERT INTO change_marks (user_id, value) SELECT user_id, count(*) FROM items GROUP BY user_id;
INSERT INTO item_versions (user_id, folder_id, item_id, seq, removed)
    SELECT user_id, folder_id, id, row_number() OVER (PARTITION BY user_id ORDER BY seq), false FROM items;

CREATE FUNCTION graphattach_next_change(owner TEXT) RETURNS BIGINT LANGUAGE sql AS $$
    INSERT INTO change_marks (user_id, value) VALUES (owner, 1)
        ON CONFLICT (user_id) DO UPDATE SET value = change_marks.value + 1
        RETURNING value;
$$;

CREATE FUNCTION graphattach_item_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        n := graphattach_next_change(OLD.user_id);
        INSERT INTO item_versions VALUES (OLD.user_id, OLD.folder_id, OLD.id, n, true)
            ON CONFLICT (user_id, folder_id, item_id) DO UPDATE SET seq = n, removed = true;
        RETURN OLD;
    END IF;
    n := graphattach_next_change(NEW.user_id);
    IF TG_OP = 'UPDATE' AND OLD.folder_id IS DISTINCT FROM NEW.folder_id THEN
        INSERT INTO item_versions VALUES (OLD.user_id, OLD.folder_id, OLD.id, n, true)
            ON CONFLICT (user_id, folder_id, item_id) DO UPDATE SET seq = n, removed = true;
    END IF;
    INSERT INTO item_versions VALUES (NEW.user_id, NEW.folder_id, NEW.id, n, false)
        ON CONFLICT (user_id, folder_id, item_id) DO UPDATE SET seq = n, removed = false;
    RETURN NEW;
END;
$$;

CREATE FUNCTION graphattach_attachment_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner TEXT;
    item TEXT;
    n BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        owner := OLD.user_id;
        item := OLD.item_id;
    ELSE
        owner := NEW.user_id;
        item := NEW.item_id;
    END IF;
    n := graphattach_next_change(owner);
    UPDATE item_versions SET seq = n WHERE user_id = owner AND item_id = item AND removed = false;
    RETURN NULL;
END;
$$;

CREATE TRIGGER items_changed AFTER INSERT OR UPDATE OR DELETE ON items
    FOR EACH ROW EXECUTE FUNCTION graphattach_item_changed();
CREATE TRIGGER attachments_changed AFTER INSERT OR DELETE ON attachments
    FOR EACH ROW EXECUTE FUNCTION graphattach_attachment_changed();
