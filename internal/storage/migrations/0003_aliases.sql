-- Sluice schema version 3: room aliases and the public room directory.

CREATE TABLE room_aliases (
    room_alias  TEXT NOT NULL PRIMARY KEY,
    room_id     TEXT NOT NULL REFERENCES rooms (room_id),
    creator     TEXT NOT NULL,
    creation_ts BIGINT NOT NULL
);
CREATE INDEX room_aliases_room_id ON room_aliases (room_id);

-- A row per room published in the public room directory.
CREATE TABLE room_directory (
    room_id      TEXT NOT NULL PRIMARY KEY REFERENCES rooms (room_id),
    published_ts BIGINT NOT NULL
);
