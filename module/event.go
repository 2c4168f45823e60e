package module

// Event is a read-only view of a room event, as callbacks receive it
// (Synapse's EventBase). Sluice implements it; a module's tests may too.
type Event interface {
	// EventID is the event's ID ("$..."); "" for an event not built yet.
	EventID() string
	Type() string
	Sender() string
	RoomID() string
	// StateKey returns the state key and whether the event is a state event.
	StateKey() (string, bool)
	// Content returns a copy of the event's content (JSON types:
	// map[string]any, []any, string, int64, bool, nil); changing it changes
	// nothing.
	Content() map[string]any
	// ContentString returns a string field of the content, "" if absent.
	ContentString(key string) string
	// Membership is an m.room.member event's membership, "" otherwise.
	Membership() string
	// Redacts is the event an m.room.redaction redacts, "" otherwise.
	Redacts() string
	OriginServerTS() int64
	// JSON is the whole event in the federation format (canonical JSON).
	JSON() []byte
}

// StateKey identifies a piece of room state.
type StateKey struct {
	Type     string
	StateKey string
}

// StateMap is room state: the event holding each (type, state key).
type StateMap map[StateKey]Event
