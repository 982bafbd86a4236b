-- A full-text index of messages for $search (FTS5, unicode61: case and diacritics folded, split on
-- anything that is not a letter or a digit). It holds the subject, the body and the sender and
-- recipients (names and addresses) and is kept by triggers. The server uses it to narrow the
-- candidates of a search; the exact KQL match is then checked on each candidate.

CREATE VIRTUAL TABLE message_text USING fts5(
    item_id UNINDEXED,
    user_id UNINDEXED,
    folder_id UNINDEXED,
    body,
    tokenize = 'unicode61'
);

CREATE TRIGGER message_text_insert AFTER INSERT ON items WHEN NEW.kind = 'message' BEGIN
    INSERT INTO message_text (rowid, item_id, user_id, folder_id, body) VALUES (
        NEW.seq, NEW.id, NEW.user_id, NEW.folder_id,
        coalesce(json_extract(NEW.data, '$.subject'), '') || ' ' ||
        coalesce(json_extract(NEW.data, '$.body.content'), '') || ' ' ||
        coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                      coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
                  FROM json_each(json_array(json_extract(NEW.data, '$.from'), json_extract(NEW.data, '$.sender'))) AS r
                  WHERE r.type = 'object'), '') || ' ' ||
        coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                      coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
                  FROM json_each(NEW.data, '$.toRecipients') AS r), '') || ' ' ||
        coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                      coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
                  FROM json_each(NEW.data, '$.ccRecipients') AS r), '') || ' ' ||
        coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                      coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
                  FROM json_each(NEW.data, '$.bccRecipients') AS r), '')
    );
END;

CREATE TRIGGER message_text_delete AFTER DELETE ON items WHEN OLD.kind = 'message' BEGIN
    DELETE FROM message_text WHERE rowid = OLD.seq;
END;

CREATE TRIGGER message_text_update AFTER UPDATE ON items WHEN NEW.kind = 'message' BEGIN
    DELETE FROM message_text WHERE rowid = OLD.seq;
    INSERT INTO message_text (rowid, item_id, user_id, folder_id, body) VALUES (
        NEW.seq, NEW.id, NEW.user_id, NEW.folder_id,
        coalesce(json_extract(NEW.data, '$.subject'), '') || ' ' ||
        coalesce(json_extract(NEW.data, '$.body.content'), '') || ' ' ||
        coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                      coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
                  FROM json_each(json_array(json_extract(NEW.data, '$.from'), json_extract(NEW.data, '$.sender'))) AS r
                  WHERE r.type = 'object'), '') || ' ' ||
        coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                      coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
                  FROM json_each(NEW.data, '$.toRecipients') AS r), '') || ' ' ||
        coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                      coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
                  FROM json_each(NEW.data, '$.ccRecipients') AS r), '') || ' ' ||
        coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                      coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
                  FROM json_each(NEW.data, '$.bccRecipients') AS r), '')
    );
END;

-- Messages stored before this migration.
INSERT INTO message_text (rowid, item_id, user_id, folder_id, body)
SELECT seq, id, user_id, folder_id,
    coalesce(json_extract(data, '$.subject'), '') || ' ' ||
    coalesce(json_extract(data, '$.body.content'), '') || ' ' ||
    coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                  coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
              FROM json_each(json_array(json_extract(items.data, '$.from'), json_extract(items.data, '$.sender'))) AS r
              WHERE r.type = 'object'), '') || ' ' ||
    coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                  coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
              FROM json_each(items.data, '$.toRecipients') AS r), '') || ' ' ||
    coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                  coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
              FROM json_each(items.data, '$.ccRecipients') AS r), '') || ' ' ||
    coalesce((SELECT group_concat(coalesce(json_extract(r.value, '$.emailAddress.name'), '') || ' ' ||
                                  coalesce(json_extract(r.value, '$.emailAddress.address'), ''), ' ')
              FROM json_each(items.data, '$.bccRecipients') AS r), '')
FROM items WHERE kind = 'message';
