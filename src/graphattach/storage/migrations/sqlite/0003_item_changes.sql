-- Change tracking for delta queries: every item insert, update or delete and every attachment
-- insert or delete takes the mailbox's next change number (change_marks), and item_versions keeps
-- the latest change of each item per folder it is or was in (removed = 1 once it was deleted or
-- moved out). Triggers keep them in the same transaction as the change itself.

CREATE TABLE change_marks (
    user_id TEXT PRIMARY KEY,
    value   INTEGER NOT NULL
);

CREATE TABLE item_versions (
    user_id   TEXT NOT NULL,
    folder_id TEXT NOT NULL,
    item_id   TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    removed   INTEGER NOT NULL,
    PRIMARY KEY (user_id, folder_id, item_id)
);
CREATE INDEX item_versions_by_seq ON item_versions (user_id, folder_id, seq);

-- What exists today is the first change of each mailbox.
INSERT INTO change_marks (user_id, value) SELECT user_id, count(*) FROM items GROUP BY user_id;
INSERT INTO item_versions (user_id, folder_id, item_id, seq, removed)
    SELECT user_id, folder_id, id, row_number() OVER (PARTITION BY user_id ORDER BY seq), 0 FROM items;

CREATE TRIGGER items_changed_insert AFTER INSERT ON items BEGIN
    INSERT INTO change_marks (user_id, value) VALUES (NEW.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET value = value + 1;
    INSERT OR REPLACE INTO item_versions (user_id, folder_id, item_id, seq, removed)
        VALUES (NEW.user_id, NEW.folder_id, NEW.id, (SELECT value FROM change_marks WHERE user_id = NEW.user_id), 0);
END;

CREATE TRIGGER items_changed_update AFTER UPDATE ON items BEGIN
    INSERT INTO change_marks (user_id, value) VALUES (NEW.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET value = value + 1;
    INSERT OR REPLACE INTO item_versions (user_id, folder_id, item_id, seq, removed)
        SELECT OLD.user_id, OLD.folder_id, OLD.id, (SELECT value FROM change_marks WHERE user_id = NEW.user_id), 1
        WHERE OLD.folder_id IS NOT NEW.folder_id;
    INSERT OR REPLACE INTO item_versions (user_id, folder_id, item_id, seq, removed)
        VALUES (NEW.user_id, NEW.folder_id, NEW.id, (SELECT value FROM change_marks WHERE user_id = NEW.user_id), 0);
END;

CREATE TRIGGER items_changed_delete AFTER DELETE ON items BEGIN
    INSERT INTO change_marks (user_id, value) VALUES (OLD.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET value = value + 1;
    INSERT OR REPLACE INTO item_versions (user_id, folder_id, item_id, seq, removed)
        VALUES (OLD.user_id, OLD.folder_id, OLD.id, (SELECT value FROM change_marks WHERE user_id = OLD.user_id), 1);
END;

CREATE TRIGGER attachments_changed_insert AFTER INSERT ON attachments BEGIN
    INSERT INTO change_marks (user_id, value) VALUES (NEW.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET value = value + 1;
    UPDATE item_versions SET seq = (SELECT value FROM change_marks WHERE user_id = NEW.user_id)
        WHERE user_id = NEW.user_id AND item_id = NEW.item_id AND removed = 0;
END;

CREATE TRIGGER attachments_changed_delete AFTER DELETE ON attachments BEGIN
    INSERT INTO change_marks (user_id, value) VALUES (OLD.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET value = value + 1;
    UPDATE item_versions SET seq = (SELECT value FROM change_marks WHERE user_id = OLD.user_id)
        WHERE user_id = OLD.user_id AND item_id = OLD.item_id AND removed = 0;
END;
