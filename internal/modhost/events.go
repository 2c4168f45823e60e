package modhost

import (
	"context"
	"errors"
	"sync"

	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/module"
)

// eventView is the module.Event of a parsed event.
type eventView struct{ e *event.Event }

// EventView wraps a protocol-core event for modules.
func EventView(e *event.Event) module.Event { return eventView{e} }

func (v eventView) EventID() string               { return v.e.ID() }
func (v eventView) Type() string                  { return v.e.Type() }
func (v eventView) Sender() string                { return v.e.Sender() }
func (v eventView) RoomID() string                { return v.e.RoomID() }
func (v eventView) StateKey() (string, bool)      { return v.e.StateKey() }
func (v eventView) ContentString(k string) string { return v.e.ContentString(k) }
func (v eventView) Membership() string            { return v.e.Membership() }
func (v eventView) Redacts() string               { return v.e.Redacts() }
func (v eventView) OriginServerTS() int64         { return v.e.OriginServerTS() }
func (v eventView) JSON() []byte                  { return append([]byte(nil), v.e.JSON()...) }
func (v eventView) Content() map[string]any       { return cloneMap(v.e.Content()) }

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[k] = cloneAny(x)
	}
	return out
}

func cloneAny(x any) any {
	switch y := x.(type) {
	case map[string]any:
		return cloneMap(y)
	case []any:
		out := make([]any, len(y))
		for i, e := range y {
			out[i] = cloneAny(e)
		}
		return out
	}
	return x
}

// StateView turns room state into a module.StateMap.
func StateView(state map[event.StateTuple]*event.Event) module.StateMap {
	out := make(module.StateMap, len(state))
	for k, e := range state {
		out[module.StateKey{Type: k.Type, StateKey: k.StateKey}] = EventView(e)
	}
	return out
}

type thirdPartyChains struct {
	checkEventAllowed []hook[func(context.Context, module.Event, module.StateMap) (bool, map[string]any, error)]
	onCreateRoom      []hook[func(context.Context, module.Requester, map[string]any, bool) error]
	onNewEvent        []hook[func(context.Context, module.Event, module.StateMap) error]
	checkVisibility   []hook[func(context.Context, string, module.StateMap, string) (bool, error)]
	onProfileUpdate   []hook[func(context.Context, string, module.ProfileInfo, bool, bool) error]
}

func (h *Host) registerThirdParty(m *loaded, cb module.ThirdPartyRulesCallbacks) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return errAfterStartup
	}
	if cb.CheckEventAllowed != nil {
		add(&h.thirdParty.checkEventAllowed, m, cb.CheckEventAllowed)
	}
	if cb.OnCreateRoom != nil {
		add(&h.thirdParty.onCreateRoom, m, cb.OnCreateRoom)
	}
	if cb.OnNewEvent != nil {
		add(&h.thirdParty.onNewEvent, m, cb.OnNewEvent)
	}
	if cb.CheckVisibilityCanBeModified != nil {
		add(&h.thirdParty.checkVisibility, m, cb.CheckVisibilityCanBeModified)
	}
	if cb.OnProfileUpdate != nil {
		add(&h.thirdParty.onProfileUpdate, m, cb.OnProfileUpdate)
	}
	return nil
}

// warnDeprecated logs, once per module and callback, that a deprecated
// Synapse return form was used.
func (h *Host) warnDeprecated(m *loaded, callback string, d module.Decision) {
	form := d.Deprecated()
	if form == "" {
		return
	}
	key := m.name + "\x00" + callback
	if _, loaded := h.deprecationWarned.LoadOrStore(key, true); !loaded {
		m.log.Warn("module callback returned a deprecated form; return module.Allow or module.Deny(code) instead",
			"callback", callback, "form", form)
	}
}

// CheckEventForSpam runs check_event_for_spam.
func (h *Host) CheckEventForSpam(ctx context.Context, e *event.Event) (module.Decision, error) {
	if len(h.spam.checkEventForSpam) == 0 {
		return module.Allow, nil
	}
	v := EventView(e)
	return decisionChain(ctx, h, "check_event_for_spam", h.spam.checkEventForSpam,
		func(c context.Context, f func(context.Context, module.Event) (module.Decision, error)) (module.Decision, error) {
			return f(c, v)
		})
}

// UserMayJoinRoom runs user_may_join_room.
func (h *Host) UserMayJoinRoom(ctx context.Context, userID, roomID string, isInvited bool) (module.Decision, error) {
	return decisionChain(ctx, h, "user_may_join_room", h.spam.userMayJoinRoom,
		func(c context.Context, f func(context.Context, string, string, bool) (module.Decision, error)) (module.Decision, error) {
			return f(c, userID, roomID, isInvited)
		})
}

// UserMayInvite runs user_may_invite.
func (h *Host) UserMayInvite(ctx context.Context, inviter, invitee, roomID string) (module.Decision, error) {
	return decisionChain(ctx, h, "user_may_invite", h.spam.userMayInvite,
		func(c context.Context, f func(context.Context, string, string, string) (module.Decision, error)) (module.Decision, error) {
			return f(c, inviter, invitee, roomID)
		})
}

// UserMaySendStateEvent runs user_may_send_state_event. As in Synapse, only
// Allow and Deny(code) are valid: extra fields and the deprecated bool form
// count as an invalid answer and reject with M_FORBIDDEN.
func (h *Host) UserMaySendStateEvent(ctx context.Context, userID, roomID, typ, stateKey string, content map[string]any) (module.Decision, error) {
	d, err := decisionChain(ctx, h, "user_may_send_state_event", h.spam.userMaySendStateEvent,
		func(c context.Context, f func(context.Context, string, string, string, string, map[string]any) (module.Decision, error)) (module.Decision, error) {
			d, err := f(c, userID, roomID, typ, stateKey, deepCopy(content))
			if err == nil && (d.Deprecated() != "" || len(d.Extra()) > 0) {
				// Synapse: "Module returned invalid value, rejecting".
				h.log.Warn("user_may_send_state_event returned an invalid value (a bool, str or extra fields); rejecting with M_FORBIDDEN",
					"value", d.String(), "form", d.Deprecated())
				return module.Deny(module.CodeForbidden), nil
			}
			return d, err
		})
	return d, err
}

// ErrEventNotAllowed is check_event_allowed's rejection.
var ErrEventNotAllowed = errors.New("modhost: event not allowed by a module")

// CheckEventAllowed runs check_event_allowed. It returns a replacement
// event dict (non-nil) when a module replaced the event, ErrEventNotAllowed
// when one rejected it, a *module.Error a module raised (for the client as
// is), or a *CallbackError (500).
func (h *Host) CheckEventAllowed(ctx context.Context, e *event.Event, state map[event.StateTuple]*event.Event) (map[string]any, error) {
	const name = "check_event_allowed"
	if len(h.thirdParty.checkEventAllowed) == 0 {
		return nil, nil
	}
	v := EventView(e)
	type answer struct {
		allowed bool
		repl    map[string]any
	}
	for _, hk := range h.thirdParty.checkEventAllowed {
		// Each module gets its own map: one cannot change what the next sees.
		sv := StateView(state)
		a, err := invoke(ctx, h, hk.mod, name, func(c context.Context) (answer, error) {
			ok, repl, err := hk.fn(c, v, sv)
			return answer{ok, repl}, err
		})
		if err != nil {
			var me *module.Error
			if errors.As(err, &me) {
				return nil, me
			}
			switch hk.mod.policy(policyFailRequest) {
			case policyAllow:
				continue
			case policyDeny:
				return nil, ErrEventNotAllowed
			}
			return nil, err
		}
		switch {
		case !a.allowed:
			h.metrics.decision(hk.mod.name, name, "deny")
			return nil, ErrEventNotAllowed
		case a.repl != nil:
			h.metrics.decision(hk.mod.name, name, "replace")
			return deepCopy(a.repl), nil
		}
		h.metrics.decision(hk.mod.name, name, "allow")
	}
	return nil, nil
}

// ErrRoomCreationForbidden is on_create_room's failure as the client sees
// it when the module did not raise a Matrix error of its own.
func ErrRoomCreationForbidden() *module.Error {
	return &module.Error{Status: 403, Code: module.CodeUnknown, Message: "Room creation forbidden with these parameters"}
}

// OnCreateRoom runs on_create_room. Modules may change content in place.
func (h *Host) OnCreateRoom(ctx context.Context, req module.Requester, content map[string]any, isAdmin bool) error {
	const name = "on_create_room"
	for _, hk := range h.thirdParty.onCreateRoom {
		_, err := invoke(ctx, h, hk.mod, name, func(c context.Context) (struct{}, error) { return struct{}{}, hk.fn(c, req, content, isAdmin) })
		if err == nil {
			h.metrics.decision(hk.mod.name, name, "ok")
			continue
		}
		var me *module.Error
		if errors.As(err, &me) {
			return me
		}
		if hk.mod.policy(policyDeny) == policyAllow {
			continue
		}
		return ErrRoomCreationForbidden()
	}
	return nil
}

// HasOnNewEvent reports whether any module wants on_new_event.
func (h *Host) HasOnNewEvent() bool { return len(h.thirdParty.onNewEvent) > 0 }

// OnNewEvent queues on_new_event: it never delays or fails the request.
// One worker delivers the queued events in the order they were persisted,
// as Synapse's inline call does. Errors are logged (and counted).
func (h *Host) OnNewEvent(e *event.Event, state map[event.StateTuple]*event.Event) {
	if len(h.thirdParty.onNewEvent) == 0 {
		return
	}
	h.newEvents.push(newEventItem{ev: EventView(e), state: state}, h.deliverNewEvent)
}

func (h *Host) deliverNewEvent(it newEventItem) {
	for _, hk := range h.thirdParty.onNewEvent {
		sv := StateView(it.state)
		_, err := invoke(context.Background(), h, hk.mod, "on_new_event", func(c context.Context) (struct{}, error) {
			return struct{}{}, hk.fn(c, it.ev, sv)
		})
		if err == nil {
			h.metrics.decision(hk.mod.name, "on_new_event", "ok")
		}
	}
}

type newEventItem struct {
	ev    module.Event
	state map[event.StateTuple]*event.Event
}

// orderedQueue runs items one at a time, in order, on one goroutine that
// lives while there is work.
type orderedQueue struct {
	mu      sync.Mutex
	items   []newEventItem
	running bool
	idle    chan struct{} // closed when the worker stops with nothing left
}

func (q *orderedQueue) push(it newEventItem, run func(newEventItem)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append(q.items, it)
	if q.running {
		return
	}
	q.running = true
	q.idle = make(chan struct{})
	go func() {
		for {
			q.mu.Lock()
			if len(q.items) == 0 {
				q.running = false
				close(q.idle)
				q.mu.Unlock()
				return
			}
			next := q.items[0]
			q.items[0] = newEventItem{}
			q.items = q.items[1:]
			q.mu.Unlock()
			run(next)
		}
	}()
}

// drain waits until the queue is empty or ctx ends.
func (q *orderedQueue) drain(ctx context.Context) {
	q.mu.Lock()
	idle, running := q.idle, q.running
	q.mu.Unlock()
	if !running {
		return
	}
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

// UserMayCreateRoomAlias runs user_may_create_room_alias.
func (h *Host) UserMayCreateRoomAlias(ctx context.Context, userID, alias string) (module.Decision, error) {
	return decisionChain(ctx, h, "user_may_create_room_alias", h.spam.userMayCreateRoomAlias,
		func(c context.Context, f func(context.Context, string, string) (module.Decision, error)) (module.Decision, error) {
			return f(c, userID, alias)
		})
}

// CheckVisibilityCanBeModified runs check_visibility_can_be_modified: the
// first false wins. Failures are logged and count as true (Synapse fails
// open here) unless the module's on_error is deny.
func (h *Host) CheckVisibilityCanBeModified(ctx context.Context, roomID string, state map[event.StateTuple]*event.Event, visibility string) bool {
	const name = "check_visibility_can_be_modified"
	for _, hk := range h.thirdParty.checkVisibility {
		sv := StateView(state)
		ok, err := invoke(ctx, h, hk.mod, name, func(c context.Context) (bool, error) { return hk.fn(c, roomID, sv, visibility) })
		if err != nil {
			if hk.mod.policy(policyAllow) == policyDeny {
				return false
			}
			continue
		}
		if !ok {
			h.metrics.decision(hk.mod.name, name, "deny")
			return false
		}
		h.metrics.decision(hk.mod.name, name, "allow")
	}
	return true
}
