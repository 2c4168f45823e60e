-- Sluice schema version 4: account data and filters.

-- A user's account data: global (room_id '') and per room. stream_pos is
-- taken from account_data_stream on every write, so that a reader can ask
-- what changed after a position it has seen.
CREATE TABLE account_data (
    user_id    TEXT NOT NULL,
    room_id    TEXT NOT NULL,
    type       TEXT NOT NULL,
    content    TEXT NOT NULL,
    stream_pos BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
);
CREATE INDEX account_data_user_stream ON account_data (user_id, stream_pos);

-- The account data stream's last position. Taking a position locks the row
-- until the write commits, so positions commit in order.
CREATE TABLE account_data_stream (
    singleton SMALLINT NOT NULL PRIMARY KEY CHECK (singleton = 0),
    pos       BIGINT NOT NULL
);
INSERT INTO account_data_stream (singleton, pos) VALUES (0, 0);

-- Filters (POST /user/{userId}/filter). filter_id counts 0, 1, 2 ... per
-- user, as in Synapse.
CREATE TABLE filters (
    user_id     TEXT NOT NULL,
    filter_id   BIGINT NOT NULL,
    filter_json TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);
