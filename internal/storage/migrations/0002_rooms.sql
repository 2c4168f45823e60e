-- Sluice schema version 2: rooms, events and room state. Same text on SQLite
-- and PostgreSQL. Ordering that must be identical on both databases (by
-- user or room ID) is done by Sluice in byte order, not by ORDER BY, whose
-- text collation on PostgreSQL depends on the database's locale.

-- current_state_group is NULL until the room's create event is persisted.
CREATE TABLE rooms (
    room_id             TEXT NOT NULL PRIMARY KEY,
    room_version        TEXT NOT NULL,
    creator             TEXT NOT NULL,
    creation_ts         BIGINT NOT NULL,
    current_state_group BIGINT
);

-- stream_pos is the event's position in the server-wide event stream,
-- assigned from stream_counter in commit order. state_group_before is NULL
-- for the create event (no state before it); for a non-state event
-- state_group_after equals state_group_before. membership is
-- content.membership of an m.room.member event, NULL for any other event.
CREATE TABLE events (
    event_id           TEXT NOT NULL PRIMARY KEY,
    room_id            TEXT NOT NULL REFERENCES rooms (room_id),
    stream_pos         BIGINT NOT NULL UNIQUE,
    depth              BIGINT NOT NULL,
    type               TEXT NOT NULL,
    state_key          TEXT,
    sender             TEXT NOT NULL,
    origin_server_ts   BIGINT NOT NULL,
    membership         TEXT,
    json               TEXT NOT NULL,
    state_group_before BIGINT,
    state_group_after  BIGINT NOT NULL
);
CREATE INDEX events_room_stream ON events (room_id, stream_pos);

-- One-row counters, advanced with UPDATE ... SET x = x + 1 RETURNING x
-- inside the persisting transaction: the row lock (PostgreSQL) or the
-- database write lock (SQLite) is held until commit, so values are handed
-- out in commit order, and a rolled-back call gives its value back.
CREATE TABLE stream_counter (
    singleton SMALLINT NOT NULL PRIMARY KEY CHECK (singleton = 0),
    pos       BIGINT NOT NULL
);
INSERT INTO stream_counter (singleton, pos) VALUES (0, 0);

CREATE TABLE state_group_counter (
    singleton SMALLINT NOT NULL PRIMARY KEY CHECK (singleton = 0),
    id        BIGINT NOT NULL
);
INSERT INTO state_group_counter (singleton, id) VALUES (0, 0);

-- State groups are stored as deltas, as Synapse does. A group whose
-- prev_group is NULL is a full snapshot: its entries are the whole state.
-- Otherwise its entries are what changed against prev_group, and
-- delta_count is how many deltas lie between it and the snapshot its chain
-- starts from (1 for a delta right on a snapshot). Every 100th group of a
-- chain is written as a snapshot again, so reading a group's state never
-- walks more than 100 groups. event_id is the state event that made the
-- group.
CREATE TABLE state_groups (
    id          BIGINT NOT NULL PRIMARY KEY,
    room_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    prev_group  BIGINT,
    delta_count INTEGER NOT NULL
);

CREATE TABLE state_group_entries (
    group_id  BIGINT NOT NULL,
    type      TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, type, state_key)
);

-- The room's current state: always equal to the entries of
-- rooms.current_state_group, kept flat for direct lookups. The index on
-- (type, state_key) finds a user's memberships across rooms.
CREATE TABLE room_current_state (
    room_id    TEXT NOT NULL,
    type       TEXT NOT NULL,
    state_key  TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    membership TEXT,
    PRIMARY KEY (room_id, type, state_key)
);
CREATE INDEX room_current_state_type_key ON room_current_state (type, state_key);

CREATE TABLE room_forward_extremities (
    room_id  TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
);

-- Client transaction IDs, scoped to the device as Synapse does.
CREATE TABLE event_txn_ids (
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    txn_id     TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);

-- redacts need not be a stored event: a redaction can arrive before the
-- event it redacts.
CREATE TABLE redactions (
    redaction_event_id TEXT NOT NULL PRIMARY KEY,
    redacts            TEXT NOT NULL
);
CREATE INDEX redactions_redacts ON redactions (redacts);

CREATE TABLE room_forgotten (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
