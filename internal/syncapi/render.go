package syncapi

import (
	"encoding/json"
	"fmt"

	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/storage"
)

// ClientEvent is an event as the Client-Server API shows it. Content stays
// raw: it is copied, never re-encoded.
type ClientEvent struct {
	Content        json.RawMessage `json:"content"`
	EventID        string          `json:"event_id"`
	OriginServerTS int64           `json:"origin_server_ts"`
	RoomID         string          `json:"room_id,omitempty"`
	Sender         string          `json:"sender"`
	StateKey       *string         `json:"state_key,omitempty"`
	Type           string          `json:"type"`
	Redacts        string          `json:"redacts,omitempty"`
	Unsigned       *Unsigned       `json:"unsigned,omitempty"`
}

// Unsigned is the unsigned data the server adds.
type Unsigned struct {
	Age             int64        `json:"age"`
	TransactionID   string       `json:"transaction_id,omitempty"`
	RedactedBecause *ClientEvent `json:"redacted_because,omitempty"`
}

// pdu is what rendering reads of a stored event.
type pdu struct {
	Type           string          `json:"type"`
	StateKey       *string         `json:"state_key"`
	Sender         string          `json:"sender"`
	RoomID         string          `json:"room_id"`
	Content        json.RawMessage `json:"content"`
	OriginServerTS int64           `json:"origin_server_ts"`
	Redacts        string          `json:"redacts"`
}

// stripped is a stripped state event (invite_state).
type stripped struct {
	Content  json.RawMessage `json:"content"`
	Sender   string          `json:"sender"`
	StateKey string          `json:"state_key"`
	Type     string          `json:"type"`
}

// renderer renders stored events for one request.
type renderer struct {
	now int64
	// versions maps room IDs to room versions, for redacting.
	versions map[string]*event.Version
	// redactions holds the redaction events of redacted events.
	redactions map[string]storage.StoredEvent
	// txns maps event IDs to the requesting device's transaction IDs.
	txns map[string]string
	// withRoomID keeps room_id (everywhere but inside /sync's rooms).
	withRoomID bool
}

// render renders a stored event; a redacted event is served redacted, with
// its redaction in unsigned.redacted_because.
func (r *renderer) render(se storage.StoredEvent) (ClientEvent, error) {
	raw := se.JSON
	redacted := se.RedactedBy != ""
	if redacted {
		v := r.versions[se.RoomID]
		if v == nil {
			return ClientEvent{}, fmt.Errorf("syncapi: no room version for %s", se.RoomID)
		}
		e, err := event.Parse(se.JSON, v)
		if err != nil {
			return ClientEvent{}, fmt.Errorf("syncapi: stored event %s: %w", se.EventID, err)
		}
		if e, err = e.Redact(); err != nil {
			return ClientEvent{}, fmt.Errorf("syncapi: redact %s: %w", se.EventID, err)
		}
		raw = e.JSON()
	}
	var p pdu
	if err := json.Unmarshal(raw, &p); err != nil {
		return ClientEvent{}, fmt.Errorf("syncapi: stored event %s: %w", se.EventID, err)
	}
	ce := ClientEvent{
		Content: p.Content, EventID: se.EventID, OriginServerTS: p.OriginServerTS, Sender: p.Sender,
		StateKey: p.StateKey, Type: p.Type, Redacts: p.Redacts,
		Unsigned: &Unsigned{Age: r.now - p.OriginServerTS, TransactionID: r.txns[se.EventID]},
	}
	if len(ce.Content) == 0 {
		ce.Content = json.RawMessage(`{}`)
	}
	if ce.Redacts == "" && p.Type == "m.room.redaction" {
		// Room version 11 moved redacts into the content; both places
		// serve old and new clients (the spec's advice).
		var c struct {
			Redacts string `json:"redacts"`
		}
		_ = json.Unmarshal(p.Content, &c)
		ce.Redacts = c.Redacts
	}
	if r.withRoomID {
		ce.RoomID = p.RoomID
	}
	if redacted {
		if red, ok := r.redactions[se.RedactedBy]; ok {
			rc, err := r.render(red)
			if err != nil {
				return ClientEvent{}, err
			}
			rc.RoomID = p.RoomID
			ce.Unsigned.RedactedBecause = &rc
		}
	}
	return ce, nil
}

// strip renders a stripped state event.
func strip(se storage.StoredEvent) (stripped, error) {
	var p pdu
	if err := json.Unmarshal(se.JSON, &p); err != nil {
		return stripped{}, fmt.Errorf("syncapi: stored event %s: %w", se.EventID, err)
	}
	s := stripped{Content: p.Content, Sender: p.Sender, Type: p.Type}
	if p.StateKey != nil {
		s.StateKey = *p.StateKey
	}
	return s, nil
}
