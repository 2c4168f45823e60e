-- Sluice schema version 1. The same text runs on SQLite and PostgreSQL, so it
-- uses only types both understand; booleans are SMALLINT 0/1.

-- user_id_lower is user_id with only ASCII A-Z folded to a-z (computed by
-- Sluice, not by lower(), whose folding on PostgreSQL depends on the
-- database's locale). Its unique index makes "one account per ID, ignoring
-- case" race-free and serves the case-insensitive login lookup.
CREATE TABLE users (
    user_id       TEXT NOT NULL PRIMARY KEY,
    user_id_lower TEXT NOT NULL,
    password_hash TEXT,
    admin         SMALLINT NOT NULL DEFAULT 0,
    shadow_banned SMALLINT NOT NULL DEFAULT 0,
    deactivated   SMALLINT NOT NULL DEFAULT 0,
    is_guest      SMALLINT NOT NULL DEFAULT 0,
    user_type     TEXT,
    creation_ts   BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_user_id_lower ON users (user_id_lower);

-- The last_seen_* columns are NULL until the device is first used.
CREATE TABLE devices (
    user_id              TEXT NOT NULL REFERENCES users (user_id),
    device_id            TEXT NOT NULL,
    display_name         TEXT,
    last_seen_ts         BIGINT,
    last_seen_ip         TEXT,
    last_seen_user_agent TEXT,
    PRIMARY KEY (user_id, device_id)
);

-- token_hash is the lower-case hex SHA-256 of the token. The store deletes a
-- device's tokens explicitly; the cascade covers a token added concurrently.
CREATE TABLE access_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);

CREATE TABLE ui_auth_sessions (
    session_id  TEXT NOT NULL PRIMARY KEY,
    creation_ts BIGINT NOT NULL,
    method      TEXT NOT NULL,
    uri         TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX ui_auth_sessions_creation_ts ON ui_auth_sessions (creation_ts);

CREATE TABLE ui_auth_stage_results (
    session_id TEXT NOT NULL REFERENCES ui_auth_sessions (session_id) ON DELETE CASCADE,
    stage_type TEXT NOT NULL,
    result     TEXT NOT NULL,
    PRIMARY KEY (session_id, stage_type)
);
