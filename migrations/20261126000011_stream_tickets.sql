-- Single-use, short-lived tickets that open one session's replay stream (server-sent events).
-- Browsers' EventSource cannot send an Authorization header; before tickets the stream took the
-- API key itself in the query string, where it lands in proxy logs and browser history. A ticket
-- is bound to the key that asked for it (revoking the key kills the ticket), to one session, to
-- 60 seconds and to one use. Stored as SHA-256, like every other secret.
CREATE TABLE stream_tickets
(
    ticket_hash bytea PRIMARY KEY,
    api_key_id  uuid        NOT NULL REFERENCES api_keys (id),
    session_id  uuid        NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX stream_tickets_expiry ON stream_tickets (expires_at);
