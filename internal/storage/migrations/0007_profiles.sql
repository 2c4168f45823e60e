-- Sluice schema: user profiles and the user directory's search index.

-- A local user's global profile. NULL is "not set" (Synapse's None); a user
-- without a row has no profile ("Profile was not found").
CREATE TABLE profiles (
    user_id     TEXT NOT NULL PRIMARY KEY,
    displayname TEXT,
    avatar_url  TEXT
);

-- Existing users get the profile registration gives: the localpart as their
-- display name, as Synapse. The localpart is what lies between the "@" and
-- the first ":", found by a recursive scan that runs the same on SQLite and
-- PostgreSQL (they share no string-position function).
INSERT INTO profiles (user_id, displayname)
WITH RECURSIVE scan (user_id, i) AS (
    SELECT user_id, 2 FROM users
    UNION ALL
    SELECT user_id, i + 1 FROM scan WHERE i <= length(user_id) AND substr(user_id, i, 1) <> ':'
)
SELECT user_id, substr(user_id, 2, i - 2) FROM scan WHERE substr(user_id, i, 1) = ':';

-- The words a user is found by in the user directory: lower-cased,
-- NFKC-normalised words of the display name, the localpart and the server
-- name (computed by Sluice, so both databases match alike), with the
-- weight of the best part each came from. A profile without any row is
-- indexed on the next search (so is every profile the migration above made).
CREATE TABLE user_directory_tokens (
    user_id TEXT NOT NULL,
    token   TEXT NOT NULL,
    weight  INTEGER NOT NULL,
    PRIMARY KEY (user_id, token)
);
CREATE INDEX user_directory_tokens_token ON user_directory_tokens (token);

-- Whether a room is public for the user directory (join rule public or
-- history visibility world_readable, as Synapse), with the state events it
-- was computed from; a row that no longer names the room's current events
-- is recomputed on the next search.
CREATE TABLE user_directory_rooms (
    room_id          TEXT NOT NULL PRIMARY KEY,
    join_rules_event TEXT NOT NULL,
    history_event    TEXT NOT NULL,
    public           SMALLINT NOT NULL
);
