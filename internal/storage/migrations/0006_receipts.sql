-- Sluice schema version 6: read receipts.

-- A user's current receipt of one type (m.read, m.read.private) in a room
-- and thread (thread_id '' for an unthreaded receipt). event_stream_pos is
-- the stream position of the event read, NULL when the event is unknown:
-- a receipt never moves back to an earlier event, as in Synapse.
-- stream_pos is taken from receipts_stream on every write, so that a
-- reader can ask which receipts of its rooms changed after a position.
CREATE TABLE receipts (
    room_id          TEXT NOT NULL,
    type             TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    thread_id        TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_stream_pos BIGINT,
    ts               BIGINT NOT NULL,
    stream_pos       BIGINT NOT NULL,
    PRIMARY KEY (room_id, type, user_id, thread_id)
);
CREATE INDEX receipts_room_stream ON receipts (room_id, stream_pos);

-- The receipt stream's last position. Taking a position locks the row
-- until the write commits, so positions commit in order.
CREATE TABLE receipts_stream (
    singleton SMALLINT NOT NULL PRIMARY KEY CHECK (singleton = 0),
    pos       BIGINT NOT NULL
);
INSERT INTO receipts_stream (singleton, pos) VALUES (0, 0);
