// Package syncapi serves what clients read of rooms: /sync (initial,
// incremental and long-polling), /messages and /context, with filters and
// history visibility. Every read goes through one database snapshot
// (storage.StreamReader) and a bounded number of queries however many
// rooms the user is in; waiting requests are woken by the notifier, never
// by polling.
package syncapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/notifier"
	"github.com/sluice-im/sluice/internal/pushrules"
	"github.com/sluice-im/sluice/internal/storage"
)

// Typing is the typing tracker, as sync reads it.
type Typing interface {
	Pos() int64
	// Since returns, for each of the rooms whose typing changed after
	// since (0: every room with someone typing), the users typing now.
	Since(roomIDs []string, since int64) map[string][]string
}

// Receipts is the receipt store, as sync reads it.
type Receipts interface {
	ReceiptsSince(ctx context.Context, roomIDs []string, since, to int64) ([]storage.Receipt, error)
	MaxReceiptPos(ctx context.Context) (int64, error)
}

// Service serves /sync, /messages and /context.
type Service struct {
	store    storage.Store
	notifier *notifier.Notifier
	typing   Typing   // nil: no typing
	receipts Receipts // nil: no receipts
	log      *slog.Logger
	now      func() time.Time

	stopOnce sync.Once
	stopping chan struct{} // closed by Stop
}

// Stop ends every waiting long-poll at once (with what it has, usually
// nothing new), so that a shutdown does not wait out their timeouts. Later
// syncs do not wait.
func (s *Service) Stop() { s.stopOnce.Do(func() { close(s.stopping) }) }

// New makes the service. typing and receipts may be nil.
func New(store storage.Store, n *notifier.Notifier, typing Typing, receipts Receipts, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: store, notifier: n, typing: typing, receipts: receipts, log: log, now: time.Now,
		stopping: make(chan struct{})}
}

// Request is one /sync.
type Request struct {
	UserID   string
	DeviceID string
	Since    *Token // nil: initial sync
	Filter   *Filter
	// FullState sends every room's full state (and every joined room).
	FullState bool
	// Timeout is how long an incremental sync waits for something new.
	Timeout time.Duration
}

// Response is /sync's answer.
type Response struct {
	NextBatch   string     `json:"next_batch"`
	AccountData *EventList `json:"account_data,omitempty"`
	Rooms       *Rooms     `json:"rooms,omitempty"`
}

// EventList is {"events": [...]}.
type EventList struct {
	Events []any `json:"events"`
}

// Rooms is /sync's rooms section; empty maps are left out.
type Rooms struct {
	Join   map[string]*JoinedRoom  `json:"join,omitempty"`
	Invite map[string]*InvitedRoom `json:"invite,omitempty"`
	Leave  map[string]*LeftRoom    `json:"leave,omitempty"`
}

// JoinedRoom is a room the user is joined to.
type JoinedRoom struct {
	Timeline            Timeline     `json:"timeline"`
	State               EventList    `json:"state"`
	AccountData         EventList    `json:"account_data"`
	Ephemeral           EventList    `json:"ephemeral"`
	UnreadNotifications UnreadCounts `json:"unread_notifications"`
	Summary             struct{}     `json:"summary"`
}

// UnreadCounts are zero until push rules exist.
type UnreadCounts struct {
	NotificationCount int `json:"notification_count"`
	HighlightCount    int `json:"highlight_count"`
}

// Timeline is a room's timeline section.
type Timeline struct {
	Events    []ClientEvent `json:"events"`
	Limited   bool          `json:"limited"`
	PrevBatch string        `json:"prev_batch,omitempty"`
}

// InvitedRoom is a room the user is invited to.
type InvitedRoom struct {
	InviteState struct {
		Events []stripped `json:"events"`
	} `json:"invite_state"`
}

// LeftRoom is a room the user left (or was kicked or banned from).
type LeftRoom struct {
	Timeline    Timeline  `json:"timeline"`
	State       EventList `json:"state"`
	AccountData EventList `json:"account_data"`
}

// Sync answers one /sync: at once for an initial sync, a full-state sync
// or when there is something new; otherwise when something arrives for the
// user, or empty at the timeout.
func (s *Service) Sync(ctx context.Context, req Request) (*Response, error) {
	if req.Filter == nil {
		req.Filter = &Filter{}
	}
	deadline := s.now().Add(req.Timeout)
	for {
		// Listen before reading: a wake between the read and the wait is
		// not lost.
		ch, stop := s.notifier.Listen(req.UserID)
		resp, empty, err := s.syncOnce(ctx, req)
		if err != nil || !empty || req.Since == nil || req.FullState {
			stop()
			return resp, err
		}
		wait := deadline.Sub(s.now())
		if wait <= 0 {
			stop()
			return resp, nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-ch:
		case <-timer.C:
		case <-ctx.Done():
		case <-s.stopping:
		}
		timer.Stop()
		stop()
		select {
		case <-s.stopping:
			return resp, nil
		default:
		}
		if ctx.Err() != nil {
			return resp, nil
		}
		if !s.now().Before(deadline) {
			// One last look: what woke us may have come with the timeout.
			resp, _, err := s.syncOnce(ctx, req)
			return resp, err
		}
	}
}

// prejoinTypes are the state events an invite shows (Synapse's default
// room_prejoin_state), besides the inviter's membership.
var prejoinTypes = []string{"m.room.create", "m.room.join_rules", "m.room.canonical_alias", "m.room.avatar",
	"m.room.encryption", "m.room.name", "m.room.topic", "m.room.member"}

// syncOnce computes a sync from one snapshot; empty reports that it holds
// nothing new for an incremental sync.
func (s *Service) syncOnce(ctx context.Context, req Request) (*Response, bool, error) {
	var since Token
	if req.Since != nil {
		since = *req.Since
	}
	f := req.Filter
	var to Token
	if s.receipts != nil {
		p, err := s.receipts.MaxReceiptPos(ctx)
		if err != nil {
			return nil, false, err
		}
		to.Receipts = p
	}
	if s.typing != nil {
		to.Typing = s.typing.Pos()
	}
	resp := &Response{}
	empty := true
	err := s.store.ReadStream(ctx, func(r storage.StreamReader) error {
		pos, err := r.Positions(ctx)
		if err != nil {
			return err
		}
		to.Events, to.AccountData = pos.Events, pos.AccountData
		// A token from the future (a restored database) counts as now.
		since.Events = min(since.Events, to.Events)
		since.AccountData = min(since.AccountData, to.AccountData)
		since.Receipts = min(since.Receipts, to.Receipts)
		since.Typing = min(since.Typing, to.Typing)
		initial := req.Since == nil

		members, err := r.Memberships(ctx, req.UserID)
		if err != nil {
			return err
		}
		b := &builder{s: s, r: r, req: req, f: f, since: since, to: to, initial: initial, full: map[string]bool{},
			rend: &renderer{now: s.now().UnixMilli(), versions: map[string]*event.Version{}}}
		stayed, err := stayedJoined(ctx, r, req.UserID, members, since.Events, to.Events, initial)
		if err != nil {
			return err
		}
		for _, m := range members {
			if v, ok := event.LookupVersion(m.RoomVersion); ok {
				b.rend.versions[m.RoomID] = v
			}
			changed := initial || m.StreamPos > since.Events
			switch m.Membership {
			case "join":
				if !f.Room.allowsRoom(m.RoomID) {
					continue
				}
				switch {
				case changed && !stayed[m.RoomID]:
					b.full[m.RoomID] = true
					b.fullJoin = append(b.fullJoin, m)
				default:
					b.incJoin = append(b.incJoin, m)
				}
			case "invite":
				if changed {
					b.invites = append(b.invites, m)
				}
			case "leave", "ban":
				if !changed || m.Forgotten || !f.Room.allowsRoom(m.RoomID) {
					continue
				}
				if initial && !f.Room.IncludeLeave && m.Membership == "leave" && m.Sender == req.UserID {
					continue // left on their own: only shown when asked for
				}
				b.full[m.RoomID] = true
				b.leaves = append(b.leaves, m)
			}
		}
		if err := b.build(ctx); err != nil {
			return err
		}
		resp.NextBatch = to.String()
		resp.AccountData = b.globalAccountData
		if len(b.join)+len(b.invite)+len(b.leave) > 0 {
			resp.Rooms = &Rooms{}
			if len(b.join) > 0 {
				resp.Rooms.Join = b.join
			}
			if len(b.invite) > 0 {
				resp.Rooms.Invite = b.invite
			}
			if len(b.leave) > 0 {
				resp.Rooms.Leave = b.leave
			}
		}
		empty = resp.Rooms == nil && resp.AccountData == nil
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return resp, empty, nil
}

// stayedJoined finds, among the rooms the user is joined to whose
// membership event is newer than the token, those where they were joined
// at the token and only changed their member event since (a new display
// name, say): those are sent as what changed, not as newly joined. Two
// queries, only when there are such rooms.
func stayedJoined(ctx context.Context, r storage.StreamReader, userID string, members []storage.UserMembership, since, to int64, initial bool) (map[string]bool, error) {
	out := map[string]bool{}
	if initial {
		return out, nil
	}
	var candidates int
	for _, m := range members {
		if m.Membership == "join" && m.StreamPos > since {
			candidates++
		}
	}
	if candidates == 0 {
		return out, nil
	}
	changes, err := r.MembershipChanges(ctx, userID, since, to)
	if err != nil {
		return nil, err
	}
	before := map[string]int64{} // room -> state group before its first change
	onlyJoins := map[string]bool{}
	for _, c := range changes {
		if _, seen := before[c.RoomID]; !seen {
			before[c.RoomID] = c.StateGroupBefore
			onlyJoins[c.RoomID] = true
		}
		if c.Membership != "join" {
			onlyJoins[c.RoomID] = false
		}
	}
	var groups []int64
	for room, g := range before {
		if onlyJoins[room] && g != 0 {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return out, nil
	}
	st, err := r.StateAt(ctx, groups, storage.StateFilter{Types: []string{"m.room.member"}, Members: []string{userID}})
	if err != nil {
		return nil, err
	}
	for room, g := range before {
		if !onlyJoins[room] {
			continue
		}
		for _, e := range st[g] {
			if contentField(e, "membership") == "join" {
				out[room] = true
			}
		}
	}
	return out, nil
}

// builder assembles one sync response from a snapshot.
type builder struct {
	s       *Service
	r       storage.StreamReader
	req     Request
	f       *Filter
	since   Token
	to      Token
	initial bool
	rend    *renderer

	// full marks the rooms sent with their full state: every room on an
	// initial sync, rooms joined since the token, left rooms.
	full     map[string]bool
	fullJoin []storage.UserMembership // joined rooms sent with their full state
	incJoin  []storage.UserMembership // rooms sent as what changed
	invites  []storage.UserMembership
	leaves   []storage.UserMembership

	join              map[string]*JoinedRoom
	invite            map[string]*InvitedRoom
	leave             map[string]*LeftRoom
	globalAccountData *EventList
}

func roomIDs(ms []storage.UserMembership) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.RoomID
	}
	return out
}

// match is the timeline filter as a query condition.
func (f *EventFilter) match() storage.EventMatch {
	m := storage.EventMatch{NotTypes: f.NotTypes, NotSenders: f.NotSenders}
	if f.Types != nil {
		m.Types, m.TypesSet = *f.Types, true
	}
	if f.Senders != nil {
		m.Senders, m.SendersSet = *f.Senders, true
	}
	return m
}

// hasURL reports whether an event's content has a string url.
func hasURL(se storage.StoredEvent) bool {
	return contentField(se, "url") != ""
}

// timelineFilter applies what the query could not: rooms, contains_url and
// the glob rule (only a trailing "*" is a wildcard, as in Synapse).
func (f *EventFilter) keep(evs []storage.StoredEvent) []storage.StoredEvent {
	out := evs[:0:0]
	for _, e := range evs {
		if f.allows(e.Type, e.Sender, e.RoomID, hasURL(e)) {
			out = append(out, e)
		}
	}
	return out
}

// roomTimeline is one room's timeline as read.
type roomTimeline struct {
	events  []storage.StoredEvent
	limited bool
}

func (b *builder) build(ctx context.Context) error {
	b.join = map[string]*JoinedRoom{}
	b.invite = map[string]*InvitedRoom{}
	b.leave = map[string]*LeftRoom{}
	tf := &b.f.Room.Timeline
	limit := tf.limit(DefaultTimelineLimit)
	match := tf.match()

	// Timelines: one query for the rooms sent in full (their latest
	// events), one for the others (what is new since the token), and one
	// per left room (its events up to the leave).
	timelines := map[string]roomTimeline{}
	read := func(ms []storage.UserMembership, from int64) error {
		if len(ms) == 0 {
			return nil
		}
		evs, limited, err := b.r.LatestRoomEvents(ctx, roomIDs(ms), from, b.to.Events, limit, match)
		if err != nil {
			return err
		}
		for _, m := range ms {
			timelines[m.RoomID] = roomTimeline{tf.keep(evs[m.RoomID]), limited[m.RoomID]}
		}
		return nil
	}
	if err := read(b.fullJoin, 0); err != nil {
		return err
	}
	if err := read(b.incJoin, b.since.Events); err != nil {
		return err
	}
	for _, m := range b.leaves {
		from := b.since.Events
		if b.initial {
			from = 0
		}
		evs, limited, err := b.r.LatestRoomEvents(ctx, []string{m.RoomID}, from, m.StreamPos, limit, match)
		if err != nil {
			return err
		}
		timelines[m.RoomID] = roomTimeline{tf.keep(evs[m.RoomID]), limited[m.RoomID]}
	}

	// History visibility: only where the timeline may reach before the
	// user's join (a room joined in the window, a left room); a room the
	// user joined before its timeline shows them everything in it. One
	// query for all those rooms.
	var checkRooms []string
	var check []storage.StoredEvent
	for _, ms := range [][]storage.UserMembership{b.fullJoin, b.leaves} {
		for _, m := range ms {
			tl := timelines[m.RoomID]
			if len(tl.events) == 0 || (m.Membership == "join" && m.StreamPos < tl.events[0].StreamPos) {
				continue
			}
			checkRooms = append(checkRooms, m.RoomID)
			check = append(check, tl.events...)
		}
	}
	if len(check) > 0 {
		vis, err := filterVisible(ctx, b.r, b.req.UserID, check, false)
		if err != nil {
			return err
		}
		seen := make(map[string]bool, len(vis))
		for _, e := range vis {
			seen[e.EventID] = true
		}
		for _, room := range checkRooms {
			tl := timelines[room]
			tl.events = slices.DeleteFunc(tl.events, func(e storage.StoredEvent) bool { return !seen[e.EventID] })
			timelines[room] = tl
		}
	}

	// State, in at most three queries: full state at the timeline's start
	// for rooms sent in full, what changed since the token for limited
	// timelines, and the senders' memberships for lazy loading.
	lazy := b.f.Room.State.LazyLoadMembers
	full := map[string]int64{}  // room -> group, full state
	delta := map[string]int64{} // room -> group, changes since the token
	lazyOnly := map[string]int64{}
	startGroup := func(m storage.UserMembership, tl roomTimeline) int64 {
		if len(tl.events) > 0 {
			return tl.events[0].StateGroupBefore
		}
		if m.Membership == "join" {
			return m.CurrentGroup
		}
		return m.StateGroupAfter
	}
	senders := map[string][]string{} // room -> timeline senders, and the user
	for _, ms := range [][]storage.UserMembership{b.fullJoin, b.incJoin, b.leaves} {
		for _, m := range ms {
			tl := timelines[m.RoomID]
			g := startGroup(m, tl)
			if lazy {
				set := []string{b.req.UserID}
				for _, e := range tl.events {
					if !slices.Contains(set, e.Sender) {
						set = append(set, e.Sender)
					}
				}
				senders[m.RoomID] = set
			}
			isFull := b.full[m.RoomID] || b.req.FullState
			switch {
			case isFull:
				full[m.RoomID] = g
			case tl.limited:
				delta[m.RoomID] = g
			case lazy && len(tl.events) > 0:
				lazyOnly[m.RoomID] = g
			}
		}
	}
	stateOf := map[string][]storage.StoredEvent{}
	readState := func(rooms map[string]int64, sf storage.StateFilter) error {
		if len(rooms) == 0 {
			return nil
		}
		var groups []int64
		for _, g := range rooms {
			if g != 0 {
				groups = append(groups, g)
			}
		}
		if lazy {
			sf.Members = []string{}
			for room := range rooms {
				sf.Members = append(sf.Members, senders[room]...)
			}
		}
		st, err := b.r.StateAt(ctx, groups, sf)
		if err != nil {
			return err
		}
		for room, g := range rooms {
			if g != 0 {
				stateOf[room] = b.stateFilter(room, st[g], senders[room])
			}
		}
		return nil
	}
	if err := readState(full, storage.StateFilter{}); err != nil {
		return err
	}
	if err := readState(delta, storage.StateFilter{Since: b.since.Events}); err != nil {
		return err
	}
	if err := readState(lazyOnly, storage.StateFilter{Types: []string{"m.room.member"}}); err != nil {
		return err
	}

	// Redactions of what is served, and the device's transaction IDs.
	var redactionIDs, sentIDs []string
	for _, tl := range timelines {
		for _, e := range tl.events {
			if e.RedactedBy != "" {
				redactionIDs = append(redactionIDs, e.RedactedBy)
			}
			if e.Sender == b.req.UserID {
				sentIDs = append(sentIDs, e.EventID)
			}
		}
	}
	for _, st := range stateOf {
		for _, e := range st {
			if e.RedactedBy != "" {
				redactionIDs = append(redactionIDs, e.RedactedBy)
			}
		}
	}
	if len(redactionIDs) > 0 {
		red, err := b.r.GetEvents(ctx, redactionIDs)
		if err != nil {
			return err
		}
		b.rend.redactions = red
	}
	if len(sentIDs) > 0 && b.req.DeviceID != "" {
		txns, err := b.r.TxnIDs(ctx, b.req.UserID, b.req.DeviceID, sentIDs)
		if err != nil {
			return err
		}
		b.rend.txns = txns
	}

	// Account data: global, and per joined room.
	roomData, err := b.accountData(ctx)
	if err != nil {
		return err
	}
	ephemeral, err := b.ephemeral(ctx)
	if err != nil {
		return err
	}

	for _, ms := range [][]storage.UserMembership{b.fullJoin, b.incJoin} {
		for _, m := range ms {
			tl := timelines[m.RoomID]
			jr := &JoinedRoom{}
			var err error
			if jr.Timeline, err = b.timeline(m, tl); err != nil {
				return err
			}
			if jr.State.Events, err = b.renderAll(stateOf[m.RoomID]); err != nil {
				return err
			}
			jr.AccountData.Events = orEmpty(roomData[m.RoomID])
			jr.Ephemeral.Events = orEmpty(ephemeral[m.RoomID])
			isFull := b.full[m.RoomID] || b.req.FullState
			if !isFull && len(jr.Timeline.Events) == 0 && len(jr.State.Events) == 0 &&
				len(jr.AccountData.Events) == 0 && len(jr.Ephemeral.Events) == 0 {
				continue // nothing new in this room
			}
			b.join[m.RoomID] = jr
		}
	}
	for _, m := range b.leaves {
		tl := timelines[m.RoomID]
		lr := &LeftRoom{}
		var err error
		if lr.Timeline, err = b.timeline(m, tl); err != nil {
			return err
		}
		if lr.State.Events, err = b.renderAll(stateOf[m.RoomID]); err != nil {
			return err
		}
		lr.AccountData.Events = []any{}
		b.leave[m.RoomID] = lr
	}
	return b.inviteRooms(ctx)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with values that always encode
	}
	return b
}

func orEmpty(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

// stateFilter applies the state filter, and lazy loading's rule: member
// events only of the timeline's senders and the user.
func (b *builder) stateFilter(roomID string, evs []storage.StoredEvent, senders []string) []storage.StoredEvent {
	sf := &b.f.Room.State
	out := evs[:0:0]
	for _, e := range evs {
		if e.Type == "m.room.aliases" {
			continue
		}
		if sf.LazyLoadMembers && e.Type == "m.room.member" && !slices.Contains(senders, *e.StateKey) {
			continue
		}
		if sf.allows(e.Type, e.Sender, roomID, hasURL(e)) {
			out = append(out, e)
		}
	}
	return out
}

// timeline renders a room's timeline section.
func (b *builder) timeline(m storage.UserMembership, tl roomTimeline) (Timeline, error) {
	out := Timeline{Limited: tl.limited}
	if m.Membership == "join" && !b.initial && b.full[m.RoomID] {
		out.Limited = true // newly joined: the client has none of it (as Synapse)
	}
	evs := make([]ClientEvent, 0, len(tl.events))
	for _, e := range tl.events {
		ce, err := b.rend.render(e)
		if err != nil {
			return Timeline{}, err
		}
		evs = append(evs, ce)
	}
	out.Events = evs
	switch {
	case len(tl.events) > 0:
		out.PrevBatch = roomPos(tl.events[0].StreamPos - 1)
	case m.Membership == "join":
		out.PrevBatch = roomPos(b.to.Events)
	default:
		out.PrevBatch = roomPos(m.StreamPos)
	}
	return out, nil
}

func (b *builder) renderAll(evs []storage.StoredEvent) ([]any, error) {
	out := make([]any, 0, len(evs))
	for _, e := range evs {
		ce, err := b.rend.render(e)
		if err != nil {
			return nil, err
		}
		out = append(out, ce)
	}
	return out, nil
}

// accountDataEvent is an account data event.
type accountDataEvent struct {
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

// accountData reads the user's account data: global into the response,
// per room returned. Rooms sent in full get all of theirs.
func (b *builder) accountData(ctx context.Context) (map[string][]any, error) {
	from := b.since.AccountData
	fullRooms := map[string]bool{}
	for _, m := range b.fullJoin {
		fullRooms[m.RoomID] = true
	}
	if b.initial || b.req.FullState || len(fullRooms) > 0 {
		from = 0
	}
	entries, err := b.r.AccountData(ctx, b.req.UserID, from, b.to.AccountData)
	if err != nil {
		return nil, err
	}
	joined := map[string]bool{}
	for _, ms := range [][]storage.UserMembership{b.fullJoin, b.incJoin} {
		for _, m := range ms {
			joined[m.RoomID] = true
		}
	}
	var global []any
	perRoom := map[string][]any{}
	for _, e := range entries {
		fresh := e.StreamPos > b.since.AccountData || b.initial || b.req.FullState
		ev := accountDataEvent{Type: e.Type, Content: json.RawMessage(e.Content)}
		if e.RoomID == "" {
			if fresh && b.f.AccountData.allowsType(e.Type) {
				global = append(global, ev)
			}
			continue
		}
		if !joined[e.RoomID] || !(fresh || fullRooms[e.RoomID]) {
			continue
		}
		if b.f.Room.AccountData.allowsType(e.Type) && allowsRoom(b.f.Room.AccountData.Rooms, b.f.Room.AccountData.NotRooms, e.RoomID) {
			perRoom[e.RoomID] = append(perRoom[e.RoomID], ev)
		}
	}
	if (b.initial || b.req.FullState) && b.f.AccountData.allowsType("m.push_rules") {
		// Clients read their push rules from the first sync (as Synapse
		// sends them); only the predefined rules exist yet.
		global = append([]any{accountDataEvent{Type: "m.push_rules",
			Content: mustJSON(map[string]json.RawMessage{"global": pushrules.Defaults(b.req.UserID)})}}, global...)
	}
	if len(global) > 0 {
		b.globalAccountData = &EventList{Events: global}
	}
	return perRoom, nil
}

// inviteRooms fills the invite section: each invite with the room's
// stripped state after it (Synapse's prejoin state, the inviter's
// membership) and the invite itself.
func (b *builder) inviteRooms(ctx context.Context) error {
	if len(b.invites) == 0 {
		return nil
	}
	var groups []int64
	members := []string{b.req.UserID}
	for _, m := range b.invites {
		groups = append(groups, m.StateGroupAfter)
	}
	invites, err := b.r.GetEvents(ctx, func() []string {
		ids := make([]string, len(b.invites))
		for i, m := range b.invites {
			ids[i] = m.EventID
		}
		return ids
	}())
	if err != nil {
		return err
	}
	for _, e := range invites {
		members = append(members, e.Sender)
	}
	st, err := b.r.StateAt(ctx, groups, storage.StateFilter{Types: prejoinTypes, Members: members})
	if err != nil {
		return err
	}
	for _, m := range b.invites {
		inv, ok := invites[m.EventID]
		if !ok {
			continue
		}
		ir := &InvitedRoom{}
		ir.InviteState.Events = []stripped{}
		for _, se := range st[m.StateGroupAfter] {
			if se.Type == "m.room.member" && *se.StateKey != inv.Sender {
				continue // the invite itself comes last
			}
			sv, err := strip(se)
			if err != nil {
				return err
			}
			ir.InviteState.Events = append(ir.InviteState.Events, sv)
		}
		sv, err := strip(inv)
		if err != nil {
			return err
		}
		ir.InviteState.Events = append(ir.InviteState.Events, sv)
		b.invite[m.RoomID] = ir
	}
	return nil
}

// ephemeral reads typing and receipts for the joined rooms: what changed
// since the token, everything for rooms sent in full.
func (b *builder) ephemeral(ctx context.Context) (map[string][]any, error) {
	out := map[string][]any{}
	ef := &b.f.Room.Ephemeral
	var fullRooms, incRooms []string
	for _, m := range b.fullJoin {
		if allowsRoom(ef.Rooms, ef.NotRooms, m.RoomID) {
			fullRooms = append(fullRooms, m.RoomID)
		}
	}
	for _, m := range b.incJoin {
		if allowsRoom(ef.Rooms, ef.NotRooms, m.RoomID) {
			incRooms = append(incRooms, m.RoomID)
		}
	}
	if b.s.typing != nil && ef.allowsType("m.typing") {
		add := func(rooms []string, since int64) {
			if len(rooms) == 0 {
				return
			}
			for room, users := range b.s.typing.Since(rooms, since) {
				if users == nil {
					users = []string{}
				}
				out[room] = append(out[room], typingEvent{Type: "m.typing", Content: typingContent{UserIDs: users}})
			}
		}
		add(fullRooms, 0)
		add(incRooms, b.since.Typing)
	}
	if b.s.receipts != nil && ef.allowsType("m.receipt") {
		var all []storage.Receipt
		for _, part := range []struct {
			rooms []string
			since int64
		}{{fullRooms, 0}, {incRooms, b.since.Receipts}} {
			if len(part.rooms) == 0 {
				continue
			}
			rs, err := b.s.receipts.ReceiptsSince(ctx, part.rooms, part.since, b.to.Receipts)
			if err != nil {
				return nil, err
			}
			all = append(all, rs...)
		}
		byRoom := map[string]map[string]map[string]map[string]receiptInfo{} // room -> event -> type -> user
		for _, rc := range all {
			if rc.Type == "m.read.private" && rc.UserID != b.req.UserID {
				continue // private receipts are their owner's alone
			}
			evs := byRoom[rc.RoomID]
			if evs == nil {
				evs = map[string]map[string]map[string]receiptInfo{}
				byRoom[rc.RoomID] = evs
			}
			types := evs[rc.EventID]
			if types == nil {
				types = map[string]map[string]receiptInfo{}
				evs[rc.EventID] = types
			}
			users := types[rc.Type]
			if users == nil {
				users = map[string]receiptInfo{}
				types[rc.Type] = users
			}
			users[rc.UserID] = receiptInfo{TS: rc.TS, ThreadID: rc.ThreadID}
		}
		for room, content := range byRoom {
			out[room] = append(out[room], receiptEvent{Type: "m.receipt", Content: content})
		}
	}
	return out, nil
}

type typingEvent struct {
	Type    string        `json:"type"`
	Content typingContent `json:"content"`
}

type typingContent struct {
	UserIDs []string `json:"user_ids"`
}

type receiptEvent struct {
	Type    string                                       `json:"type"`
	Content map[string]map[string]map[string]receiptInfo `json:"content"`
}

type receiptInfo struct {
	TS       int64  `json:"ts"`
	ThreadID string `json:"thread_id,omitempty"`
}
