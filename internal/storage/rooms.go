package storage

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors of the room store.
var (
	// ErrRoomExists: CreateRoom with a room ID that is taken.
	ErrRoomExists = errors.New("storage: room already exists")
	// ErrEventExists: PersistEvent with an event ID that is stored already.
	ErrEventExists = errors.New("storage: event already exists")
	// ErrTxnExists: PersistEvent with a transaction key that was used
	// already; look the event up with GetTxnEvent.
	ErrTxnExists = errors.New("storage: transaction ID already used")
	// ErrClosed: PersistEvent after Close.
	ErrClosed = errors.New("storage: store is closed")
)

// Room is a room's record.
type Room struct {
	RoomID    string
	Version   string // room version, e.g. "10"
	Creator   string
	CreatedTS int64
}

// StateEntry is one entry of a room's state.
type StateEntry struct {
	Type     string
	StateKey string
	EventID  string
}

// StoredEvent is a persisted event.
type StoredEvent struct {
	EventID   string
	RoomID    string
	Type      string
	StateKey  *string
	Sender    string
	JSON      []byte // federation format, canonical JSON, as built or received
	StreamPos int64  // position in the server-wide event stream
	// StateGroupBefore is the state group of the room just before the
	// event (0 for the create event, which has no state before it).
	StateGroupBefore int64
	// StateGroupAfter is the state group just after the event: a new group
	// for a state event, StateGroupBefore for any other event.
	StateGroupAfter int64
	// RedactedBy is the ID of a redaction of this event, "" if none (the
	// earliest persisted one if there are several). The link is recorded
	// whatever the redaction's validity, which is the caller's to judge.
	RedactedBy string
}

// TxnKey identifies a client transaction (PUT .../{txnId}): Synapse scopes
// transaction IDs to the access token's device.
type TxnKey struct {
	UserID   string
	DeviceID string
	TxnID    string
}

// ScopeTxnID scopes a client's transaction ID to a room: the same ID in
// another room is another event. The room ID's length keeps the key
// unambiguous.
func ScopeTxnID(roomID, txnID string) string {
	return strconv.Itoa(len(roomID)) + ":" + roomID + ":" + txnID
}

// UnscopeTxnID returns the client's transaction ID of a ScopeTxnID key
// (the key itself if it is not one).
func UnscopeTxnID(key string) string {
	n, rest, ok := strings.Cut(key, ":")
	l, err := strconv.Atoi(n)
	if !ok || err != nil || l < 0 || len(rest) < l+1 || rest[l] != ':' {
		return key
	}
	return rest[l+1:]
}

// NewEvent is an event to persist, with what changes with it.
type NewEvent struct {
	EventID        string
	RoomID         string
	Type           string
	StateKey       *string
	Sender         string
	Membership     string // content.membership of an m.room.member event; ignored for other events
	JSON           []byte
	Depth          int64
	OriginServerTS int64
	// PrevEvents stop being forward extremities; this event becomes one.
	PrevEvents []string
	// StateGroupBefore is the room's state group the event was built on
	// (0 for the create event, and only for it). A state event makes a new
	// group: this one plus the event's (type, state_key) entry, and that
	// group becomes the room's current state. (Normally StateGroupBefore is
	// the current group and the current state changes by one entry; if it
	// is an older group, the current state becomes the new group's state.)
	StateGroupBefore int64
	// Redacts is the ID of the event an m.room.redaction redacts.
	Redacts string
	// Txn, when set, records the client transaction that sent the event.
	Txn *TxnKey
}

// PersistResult is what PersistEvent assigned.
type PersistResult struct {
	StreamPos       int64
	StateGroupAfter int64 // == StateGroupBefore for non-state events
}

// Member is a user's current membership of a room.
type Member struct {
	UserID     string
	Membership string // join, invite, leave, ban, knock
	EventID    string
}

// RoomStore persists rooms, their events and their state. It is part of
// Store.
type RoomStore interface {
	// CreateRoom records a new room (before its create event is persisted).
	// ErrRoomExists if the room ID is taken.
	CreateRoom(ctx context.Context, r Room) error
	// GetRoom returns a room, or ErrNotFound.
	GetRoom(ctx context.Context, roomID string) (Room, error)

	// PersistEvent durably stores an event and everything that changes
	// with it, atomically: the event, its state group, the room's current
	// state, the forward extremities, the redaction link and the client
	// transaction. Concurrent calls are committed together (group commit):
	// one fsync covers a batch, and a failing call does not affect the
	// others of its batch. When it returns nil the event survives a crash.
	//
	// Stream positions are assigned in commit order: once an event at
	// position N is visible to readers, so is every event below N.
	//
	// Errors: ErrEventExists (the event ID is stored already), ErrTxnExists
	// (Txn was used already), an error wrapping ErrNotFound when the room
	// (CreateRoom) or StateGroupBefore does not exist, ctx.Err() when ctx
	// ends before the event's turn came (it is then not written; once its
	// turn has come, the outcome stands whatever ctx does), ErrClosed after
	// Close. In every error case nothing of the event was written.
	PersistEvent(ctx context.Context, e NewEvent) (PersistResult, error)

	// GetEvent returns a persisted event, or ErrNotFound.
	GetEvent(ctx context.Context, eventID string) (StoredEvent, error)
	// GetEvents returns the persisted events among ids (missing ones are
	// left out), keyed by event ID; never nil.
	GetEvents(ctx context.Context, ids []string) (map[string]StoredEvent, error)
	// GetTxnEvent returns the event ID a client transaction produced, or
	// ErrNotFound.
	GetTxnEvent(ctx context.Context, key TxnKey) (string, error)

	// CurrentState returns the room's current state group and its entries,
	// sorted by type then state key (ErrNotFound if the room is unknown or
	// has no events yet). The entries are exactly StateAt(group).
	CurrentState(ctx context.Context, roomID string) (group int64, state []StateEntry, err error)
	// StateAt returns the entries of a state group, sorted by type then
	// state key; ErrNotFound if there is no such group.
	StateAt(ctx context.Context, group int64) ([]StateEntry, error)
	// ForwardExtremities returns the room's forward extremities, sorted,
	// and the greatest depth among them (empty, not nil, and 0 for a room
	// without events).
	ForwardExtremities(ctx context.Context, roomID string) (ids []string, maxDepth int64, err error)

	// Members lists the room's current memberships (every membership, from
	// the current state), ordered by user ID; empty, not nil, when none.
	Members(ctx context.Context, roomID string) ([]Member, error)
	// RoomsForUser lists the rooms where the user's current membership is
	// one of memberships (any membership when none is given), ordered by
	// room ID; empty, not nil, when none.
	RoomsForUser(ctx context.Context, userID string, memberships ...string) ([]string, error)
	// ForgetRoom records that the user forgot the room; a later membership
	// event clears it. Forgetting again is not an error.
	ForgetRoom(ctx context.Context, userID, roomID string) error
	// IsForgotten reports whether the user forgot the room.
	IsForgotten(ctx context.Context, userID, roomID string) (bool, error)

	// MaxStreamPos is the position of the latest persisted event (0 when
	// none).
	MaxStreamPos(ctx context.Context) (int64, error)
}
