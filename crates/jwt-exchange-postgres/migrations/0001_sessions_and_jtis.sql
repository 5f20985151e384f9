-- jwt-exchange session store, schema version 1.
-- Runs inside one transaction with search_path set to the store's schema.
--
-- Strings that come from a token (subject, issuer, jti) are stored as their UTF-8 bytes:
-- PostgreSQL TEXT cannot hold NUL characters, which a token's claims may contain.
-- Times are Unix seconds from the application's clock, not the database's.

CREATE TABLE sessions (
    id          TEXT COLLATE "C" PRIMARY KEY,  -- the session id (base64url, 43 characters)
    subject     BYTEA NOT NULL,                -- jwt:<issuer>:<identity>, UTF-8
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,               -- exclusive: live while now < expires_at
    record      TEXT NOT NULL                  -- the whole session as JSON
);

-- list_subject / delete_subject, in list order.
CREATE INDEX sessions_subject_idx ON sessions (subject, created_at, id);
-- sweep.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE jtis (
    issuer      BYTEA NOT NULL,
    jti         BYTEA NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);

CREATE INDEX jtis_expires_at_idx ON jtis (expires_at);
