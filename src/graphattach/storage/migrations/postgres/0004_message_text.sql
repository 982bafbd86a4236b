-- A full-text index of messages for $search: the subject, the body and the sender and recipients
-- (names and addresses), split on anything that is not a letter or a digit, in the 'simple'
-- configuration (lower-cased, no stemming), as a GIN expression index. The server uses it to
-- narrow the candidates of a search; the exact KQL match is then checked on each candidate.

CREATE FUNCTION graphattach_addresses(value json) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(coalesce(r -> 'emailAddress' ->> 'name', '') || ' '
                               || coalesce(r -> 'emailAddress' ->> 'address', ''), ' '), '')
    FROM json_array_elements(CASE json_typeof(value)
                                 WHEN 'array' THEN value
                                 WHEN 'object' THEN json_build_array(value)
                                 ELSE '[]'::json END) AS r
$$;

CREATE FUNCTION graphattach_message_text(data json) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsvector('simple'::regconfig, regexp_replace(
        coalesce(data ->> 'subject', '') || ' ' || coalesce(data -> 'body' ->> 'content', '') || ' '
        || graphattach_addresses(data -> 'from') || ' ' || graphattach_addresses(data -> 'sender') || ' '
        || graphattach_addresses(data -> 'toRecipients') || ' ' || graphattach_addresses(data -> 'ccRecipients') || ' '
        || graphattach_addresses(data -> 'bccRecipients'),
        '[^[:alnum:]]+', ' ', 'g'))
$$;

CREATE INDEX items_message_text ON items USING gin (graphattach_message_text(data)) WHERE kind = 'message';
