-- Sluice schema version 5: what /sync reads.

-- A user's own membership events in stream order: which rooms the user
-- joined, was invited to or left between two sync tokens.
CREATE INDEX events_member_user_stream ON events (state_key, stream_pos) WHERE type = 'm.room.member';

-- The client transaction of an event, to echo transaction_id to the device
-- that sent it.
CREATE INDEX event_txn_ids_event ON event_txn_ids (event_id);
