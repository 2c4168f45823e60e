// Package rooms is the room service: it creates rooms, changes
// memberships and sends events for local users, calling the protocol core
// to build, sign and authorise every event, the module host at Synapse's
// call sites, and the store to persist each event durably before answering.
// Events of one room are made one at a time (a per-room lock), so each
// builds on the room's latest state.
package rooms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/modhost"
	"github.com/sluice-im/sluice/internal/mx/authrules"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/notifier"
	"github.com/sluice-im/sluice/internal/ratelimit"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// Hooks are the module callbacks the room service invokes (the module host).
type Hooks interface {
	CheckEventForSpam(ctx context.Context, e *event.Event) (module.Decision, error)
	UserMayJoinRoom(ctx context.Context, userID, roomID string, isInvited bool) (module.Decision, error)
	UserMayInvite(ctx context.Context, inviter, invitee, roomID string) (module.Decision, error)
	UserMayCreateRoom(ctx context.Context, userID string, roomConfig map[string]any) (module.Decision, error)
	UserMaySendStateEvent(ctx context.Context, userID, roomID, typ, stateKey string, content map[string]any) (module.Decision, error)
	UserMayCreateRoomAlias(ctx context.Context, userID, alias string) (module.Decision, error)
	CheckVisibilityCanBeModified(ctx context.Context, roomID string, state map[event.StateTuple]*event.Event, visibility string) bool
	CheckEventAllowed(ctx context.Context, e *event.Event, state map[event.StateTuple]*event.Event) (map[string]any, error)
	OnCreateRoom(ctx context.Context, req module.Requester, content map[string]any, isAdmin bool) error
	OnNewEvent(e *event.Event, state map[event.StateTuple]*event.Event)
	HasOnNewEvent() bool
}

// Users tells the room service about local accounts.
type Users interface {
	GetUserInfo(ctx context.Context, userID string) (module.UserInfo, error)
}

// Options configure the service.
type Options struct {
	ServerName     string
	Signer         event.Signer
	DefaultVersion string
	Logger         *slog.Logger
	// MessageLimiter (rc_message) and JoinLimiter (rc_joins.local) limit
	// local users' events and joins; server admins are exempt.
	MessageLimiter *ratelimit.Limiter
	JoinLimiter    *ratelimit.Limiter
	// ShadowBanDelay replaces the random 1-10 s wait before a shadow-banned
	// user's fake success (nil: Synapse's random delay).
	ShadowBanDelay func() time.Duration
	// Notifier is woken for every user an event concerns (nil: none).
	Notifier *notifier.Notifier
	// StopTyping is called when a user's membership of a room changes to
	// anything but join: they stop typing there (nil: none).
	StopTyping func(roomID, userID string)
	// PublicationAllowed applies room_list_publication_rules to a room
	// created with visibility public (nil: allowed).
	PublicationAllowed func(userID, roomID string, aliases []string) bool
}

// Service is the room service.
type Service struct {
	opts  Options
	store storage.Store
	hooks Hooks
	users Users
	log   *slog.Logger
	now   func() time.Time

	locks sync.Map // room ID -> *sync.Mutex
	cache *eventCache
	// current holds, per room, the state writers build on (room ID ->
	// *roomState). Only this process writes rooms, under the room's lock,
	// so the copy stays exact; it spares re-reading the state, the room
	// and the extremities for every event.
	current  sync.Map
	nCurrent atomic.Int64 // entries in current, to bound it
}

// maxCurrentRooms bounds how many rooms' state writers keep in memory; past
// it, arbitrary rooms are dropped and re-read from the store when next
// written to. A writer still holding a dropped copy is safe: it persists
// before it unlocks, and the next writer reads what it persisted.
const maxCurrentRooms = 10000

// keepCurrent remembers a room's state for its next writer.
func (s *Service) keepCurrent(roomID string, rs *roomState) {
	if _, loaded := s.current.Swap(roomID, rs); !loaded && s.nCurrent.Add(1) > maxCurrentRooms {
		s.current.Range(func(k, _ any) bool {
			if k.(string) != roomID {
				s.forgetCurrent(k.(string))
			}
			return s.nCurrent.Load() > maxCurrentRooms*9/10
		})
	}
}

func (s *Service) forgetCurrent(roomID string) {
	if _, loaded := s.current.LoadAndDelete(roomID); loaded {
		s.nCurrent.Add(-1)
	}
}

// New makes the room service.
func New(o Options, store storage.Store, hooks Hooks, users Users) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{opts: o, store: store, hooks: hooks, users: users, log: o.Logger, now: time.Now, cache: newEventCache(20000)}
}

func (s *Service) lock(roomID string) func() {
	m, _ := s.locks.LoadOrStore(roomID, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// Errors for the client.
func errForbidden(msg string) *httpx.Error {
	return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", msg)
}

func errNotFound(msg string) *httpx.Error {
	return httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", msg)
}

// roomState is a room's version and current state, loaded under the lock.
type roomState struct {
	room    storage.Room
	version *event.Version
	group   int64
	state   map[event.StateTuple]*event.Event
	// prev and maxDepth are the forward extremities and their greatest
	// depth (the prev_events and depth-1 of the next event).
	prev     []string
	maxDepth int64
}

func (rs *roomState) get(typ, key string) *event.Event {
	return rs.state[event.StateTuple{Type: typ, StateKey: key}]
}

func (rs *roomState) membership(userID string) string {
	if e := rs.get("m.room.member", userID); e != nil {
		return e.Membership()
	}
	return ""
}

// loadRoom reads a room's current state; errNotFound when unknown.
func (s *Service) loadRoom(ctx context.Context, roomID string) (*roomState, error) {
	room, err := s.store.GetRoom(ctx, roomID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNotFound("Unknown room " + roomID)
	}
	if err != nil {
		return nil, err
	}
	v, ok := event.LookupVersion(room.Version)
	if !ok {
		return nil, fmt.Errorf("rooms: room %s has unsupported version %s", roomID, room.Version)
	}
	rs := &roomState{room: room, version: v, state: map[event.StateTuple]*event.Event{}}
	group, entries, err := s.store.CurrentState(ctx, roomID)
	if errors.Is(err, storage.ErrNotFound) {
		return rs, nil // created, no events yet
	}
	if err != nil {
		return nil, err
	}
	rs.group = group
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.EventID
	}
	evs, err := s.events(ctx, v, ids)
	if err != nil {
		return nil, err
	}
	for _, en := range entries {
		if e := evs[en.EventID]; e != nil {
			rs.state[event.StateTuple{Type: en.Type, StateKey: en.StateKey}] = e
		}
	}
	return rs, nil
}

// writerRoom returns the room's state for an event about to be made; the
// caller holds the room's lock and may change it (through send).
func (s *Service) writerRoom(ctx context.Context, roomID string) (*roomState, error) {
	if v, ok := s.current.Load(roomID); ok {
		return v.(*roomState), nil
	}
	rs, err := s.loadRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	if rs.prev, rs.maxDepth, err = s.store.ForwardExtremities(ctx, roomID); err != nil {
		return nil, err
	}
	s.keepCurrent(roomID, rs)
	return rs, nil
}

// events fetches and parses events, through the cache.
func (s *Service) events(ctx context.Context, v *event.Version, ids []string) (map[string]*event.Event, error) {
	out := make(map[string]*event.Event, len(ids))
	var missing []string
	for _, id := range ids {
		if e := s.cache.get(id); e != nil {
			out[id] = e
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	stored, err := s.store.GetEvents(ctx, missing)
	if err != nil {
		return nil, err
	}
	for id, se := range stored {
		e, err := event.Parse(se.JSON, v)
		if err != nil {
			return nil, fmt.Errorf("rooms: stored event %s: %w", id, err)
		}
		s.cache.put(id, e)
		out[id] = e
	}
	return out, nil
}

// draft is an event to make.
type draft struct {
	typ      string
	stateKey *string
	sender   string
	content  map[string]any
	redacts  string
	txn      *storage.TxnKey
	// spamCheck asks check_event_for_spam (non-membership client events).
	spamCheck bool
}

// send builds, checks and persists one event into a loaded room. The caller
// holds the room's lock; rs is updated to the state after the event.
func (s *Service) send(ctx context.Context, rs *roomState, d draft) (*event.Event, error) {
	e, err := s.build(ctx, rs, d)
	if err != nil {
		return nil, err
	}
	// check_event_allowed sees every event this server builds, with the
	// state before it, and may replace a local event.
	repl, err := s.hooks.CheckEventAllowed(ctx, e, rs.state)
	if errors.Is(err, modhost.ErrEventNotAllowed) {
		return nil, errForbidden("This event is not allowed in this context")
	}
	if err != nil {
		return nil, err
	}
	if repl != nil {
		if e, err = s.replace(ctx, rs, d, e, repl); err != nil {
			return nil, err
		}
	}
	if d.spamCheck {
		dec, err := s.hooks.CheckEventForSpam(ctx, e)
		if err != nil {
			return nil, err
		}
		if !dec.Allowed() {
			return nil, rejection(http.StatusForbidden, "This message has been rejected as probable spam", dec)
		}
	}
	if err := authrules.Check(e, authrules.StateMap(rs.state)); err != nil {
		var rej *authrules.Rejection
		if errors.As(err, &rej) {
			return nil, errForbidden(rej.Reason)
		}
		return nil, err
	}
	if e.Type() == "m.room.redaction" {
		if err := s.checkRedaction(ctx, rs, e); err != nil {
			return nil, err
		}
	}
	if e.Type() == "m.room.canonical_alias" {
		if err := s.checkCanonicalAlias(ctx, rs, e); err != nil {
			return nil, err
		}
	}
	if err := s.persist(ctx, rs, e, d); err != nil {
		return nil, err
	}
	return e, nil
}

// checkRedaction is Synapse's check of a redaction a local user sends
// (EventCreationHandler.handle_new_client_event): the auth rules accept any
// redaction from a user of the original's server, which for a local user is
// every local event, so a sender below the redact level may only redact
// their own events. Create events may not be redacted, nor events of
// another room.
func (s *Service) checkRedaction(ctx context.Context, rs *roomState, e *event.Event) error {
	var orig *event.Event
	se, err := s.store.GetEvent(ctx, e.Redacts())
	switch {
	case err == nil:
		if se.RoomID != e.RoomID() {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Cannot redact event from a different room")
		}
		if orig, err = event.Parse(se.JSON, rs.version); err != nil {
			return err
		}
		switch orig.Type() {
		case "m.room.create":
			return errForbidden("Redacting create events is not permitted")
		case "m.room.server_acl":
			return errForbidden("Redacting server ACL events is not permitted")
		}
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}
	pl := authrules.PowerLevelsFromState(authrules.StateMap(rs.state))
	if pl.UserLevel(e.Sender()) >= pl.Redact() {
		return nil
	}
	if orig == nil {
		return errNotFound("Could not find event " + e.Redacts())
	}
	if orig.Sender() != e.Sender() {
		return errForbidden("You don't have permission to redact events")
	}
	return nil
}

// build makes a signed event from a draft on the room's current state.
func (s *Service) build(ctx context.Context, rs *roomState, d draft) (*event.Event, error) {
	prev, maxDepth := rs.prev, rs.maxDepth
	tuples := authrules.AuthEventTypes(d.typ, d.stateKey, d.sender, d.content)
	auth := make([]string, 0, len(tuples))
	for _, t := range tuples {
		if e := rs.state[t]; e != nil {
			auth = append(auth, e.ID())
		}
	}
	if prev == nil {
		prev = []string{}
	}
	e, err := event.Build(event.Template{
		Type: d.typ, StateKey: d.stateKey, Sender: d.sender, RoomID: rs.room.RoomID, Content: d.content,
		PrevEvents: prev, AuthEvents: auth, Depth: maxDepth + 1, OriginServerTS: s.now().UnixMilli(), Redacts: d.redacts,
	}, rs.version, s.opts.Signer)
	if errors.Is(err, event.ErrTooLarge) {
		return nil, httpx.NewError(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "event too large")
	}
	if err != nil {
		if errors.Is(err, event.ErrFormat) {
			return nil, httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", strings.TrimPrefix(err.Error(), "event: "))
		}
		return nil, err
	}
	return e, nil
}

// replace rebuilds an event from check_event_allowed's replacement dict:
// room_id, type and state_key must not change, the sender must stay local.
func (s *Service) replace(ctx context.Context, rs *roomState, d draft, orig *event.Event, repl map[string]any) (*event.Event, error) {
	typ, _ := repl["type"].(string)
	roomID, _ := repl["room_id"].(string)
	sender, _ := repl["sender"].(string)
	sk, hasSK := repl["state_key"].(string)
	origSK, origHasSK := orig.StateKey()
	if typ != orig.Type() || roomID != orig.RoomID() || hasSK != origHasSK || sk != origSK || !strings.HasSuffix(sender, ":"+s.opts.ServerName) {
		return nil, fmt.Errorf("rooms: module replacement of %s changed its room, type or state key, or its sender is not local", orig.Type())
	}
	content, _ := repl["content"].(map[string]any)
	nd := d
	nd.sender = sender
	nd.content = content
	return s.build(ctx, rs, nd)
}

// persist stores the event and moves the room's state forward.
func (s *Service) persist(ctx context.Context, rs *roomState, e *event.Event, d draft) error {
	var sk *string
	if k, ok := e.StateKey(); ok {
		sk = &k
	}
	res, err := s.store.PersistEvent(ctx, storage.NewEvent{
		EventID: e.ID(), RoomID: e.RoomID(), Type: e.Type(), StateKey: sk, Sender: e.Sender(),
		Membership: e.Membership(), JSON: e.JSON(), Depth: e.Depth(), OriginServerTS: e.OriginServerTS(),
		PrevEvents: e.PrevEvents(), StateGroupBefore: rs.group, Redacts: e.Redacts(), Txn: d.txn,
	})
	if err != nil {
		// The store may or may not hold the event (a failed commit): forget
		// the in-memory state so the next writer reads the truth.
		s.forgetCurrent(rs.room.RoomID)
		return err
	}
	s.cache.put(e.ID(), e)
	rs.group = res.StateGroupAfter
	rs.prev = []string{e.ID()}
	rs.maxDepth = e.Depth()
	if st, ok := e.StateTuple(); ok {
		rs.state[st] = e
	}
	s.wake(rs, e)
	if k, ok := e.StateKey(); ok && e.Type() == "m.room.member" && e.Membership() != "join" && s.opts.StopTyping != nil {
		// Not under the room's lock: the typing tracker wakes the room,
		// which takes it.
		go s.opts.StopTyping(e.RoomID(), k)
	}
	if s.hooks.HasOnNewEvent() {
		snapshot := make(map[event.StateTuple]*event.Event, len(rs.state))
		for k, v := range rs.state {
			snapshot[k] = v
		}
		s.hooks.OnNewEvent(e, snapshot)
	}
	return nil
}

// rejection turns a module's rejecting decision into the client's error.
// The module's own message (DenyMessage, Synapse's deprecated str form)
// replaces msg: only check_event_for_spam shows it.
func rejection(status int, msg string, d module.Decision) *httpx.Error {
	if m := d.Message(); m != "" {
		msg = m
	}
	return &httpx.Error{Status: status, Code: d.Code(), Message: msg, Extra: d.Extra()}
}

// callSiteRejection is rejection for the user_may_* callbacks: Synapse
// takes a str answer there for an invalid value and rejects with
// M_FORBIDDEN and the call site's message, so a DenyMessage's text is not
// shown.
func callSiteRejection(status int, msg string, d module.Decision) *httpx.Error {
	return &httpx.Error{Status: status, Code: d.Code(), Message: msg, Extra: d.Extra()}
}

// errNotInRoom is Synapse's answer to a user acting in a room they are not
// joined to.
func errNotInRoom(userID, roomID string) *httpx.Error {
	return errForbidden("User " + userID + " not in room " + roomID)
}

// unknownAsNotInRoom turns loadRoom's unknown-room error into
// errNotInRoom: Synapse answers the same for a room it does not know (the
// spec lists 403, not 404, for these endpoints), so that a client cannot
// probe for rooms. Other errors are returned as they are.
func unknownAsNotInRoom(err error, userID, roomID string) error {
	var he *httpx.Error
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return errNotInRoom(userID, roomID)
	}
	return err
}

// isAdmin reports whether a local user is a server admin.
func (s *Service) isAdmin(ctx context.Context, userID string) (bool, error) {
	info, err := s.users.GetUserInfo(ctx, userID)
	if errors.Is(err, module.ErrNotFound) {
		return false, nil
	}
	return info.IsAdmin, err
}

// eventCache keeps parsed events (immutable) to spare re-parsing auth
// events; a bounded map with arbitrary eviction is enough for that.
type eventCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]*event.Event
}

func newEventCache(max int) *eventCache {
	return &eventCache{max: max, m: make(map[string]*event.Event)}
}

func (c *eventCache) get(id string) *event.Event {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[id]
}

func (c *eventCache) put(id string, e *event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			if len(c.m) < c.max*9/10 {
				break
			}
		}
	}
	c.m[id] = e
}

// rateLimit applies a limiter to a local user's action; server admins are
// exempt (looked up only when the limit is hit).
func (s *Service) rateLimit(ctx context.Context, l *ratelimit.Limiter, userID string) error {
	ok, wait := l.Allow(userID)
	if ok {
		return nil
	}
	admin, err := s.isAdmin(ctx, userID)
	if err != nil {
		return err
	}
	if admin {
		return nil
	}
	return httpx.LimitExceeded(wait)
}

// wake wakes the syncing users an event concerns: the room's joined and
// invited members after it, and the target of a membership change (a user
// kicked, banned or leaving sees their leave).
func (s *Service) wake(rs *roomState, e *event.Event) {
	if s.opts.Notifier == nil {
		return
	}
	users := rs.wakeable()
	if k, ok := e.StateKey(); ok && e.Type() == "m.room.member" {
		users = append(users, k)
	}
	s.opts.Notifier.Wake(users...)
}

// wakeable lists the users with a join or invite membership.
func (rs *roomState) wakeable() []string {
	var users []string
	for k, ev := range rs.state {
		if k.Type == "m.room.member" {
			if m := ev.Membership(); m == "join" || m == "invite" {
				users = append(users, k.StateKey)
			}
		}
	}
	return users
}

// WakeRoom wakes the syncing users of a room (its joined and invited
// members), for what is not an event: typing, receipts.
func (s *Service) WakeRoom(ctx context.Context, roomID string) error {
	if s.opts.Notifier == nil {
		return nil
	}
	if v, ok := s.current.Load(roomID); ok {
		unlock := s.lock(roomID)
		users := v.(*roomState).wakeable()
		unlock()
		s.opts.Notifier.Wake(users...)
		return nil
	}
	members, err := s.store.Members(ctx, roomID)
	if err != nil {
		return err
	}
	var users []string
	for _, m := range members {
		if m.Membership == "join" || m.Membership == "invite" {
			users = append(users, m.UserID)
		}
	}
	s.opts.Notifier.Wake(users...)
	return nil
}
