package syncapi

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/storage"
)

// MaxMessagesLimit caps /messages' limit (Synapse's).
const MaxMessagesLimit = 1000

// MessagesRequest is one GET /rooms/{roomId}/messages.
type MessagesRequest struct {
	UserID, RoomID string
	From           string // "" : the room's start (dir f) or end (dir b)
	To             string // "" : no bound
	Backwards      bool
	Limit          int
	Filter         EventFilter
}

// MessagesResponse is /messages' answer.
type MessagesResponse struct {
	Chunk []ClientEvent `json:"chunk"`
	Start string        `json:"start"`
	End   string        `json:"end,omitempty"`
	State []ClientEvent `json:"state,omitempty"`
}

// ErrBadFrom and ErrBadTo are /messages' answers to tokens it cannot read.
var (
	ErrBadFrom = httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "'from' parameter is invalid")
	ErrBadTo   = httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "'to' parameter is invalid")
)

// access is what a user may read of a room.
type access struct {
	version *event.Version
	// upTo bounds what a former member reads: their departure.
	upTo      int64
	isPeeking bool
}

// roomAccess is Synapse's check_user_in_room_or_world_readable with
// departed users allowed: members read the room, former members (left or
// kicked, not forgotten) read it up to their departure, anyone reads a
// world-readable room.
func roomAccess(ctx context.Context, r storage.StreamReader, userID, roomID string, top int64) (access, error) {
	notIn := httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "User "+userID+" not in room "+roomID+", and room previews are disabled")
	m, err := r.RoomMembership(ctx, userID, roomID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return access{}, err
	}
	a := access{upTo: top}
	if err == nil {
		a.version, _ = event.LookupVersion(m.RoomVersion)
		switch {
		case m.Membership == "join":
			return a, nil
		case m.Membership == "leave" && !m.Forgotten:
			a.upTo = m.StreamPos
			return a, nil
		}
	}
	// Not a member: only a world-readable room, read as a peeker.
	group, version, err := roomNow(ctx, r, roomID)
	if errors.Is(err, storage.ErrNotFound) {
		return access{}, notIn
	}
	if err != nil {
		return access{}, err
	}
	st, err := r.StateAt(ctx, []int64{group}, storage.StateFilter{Types: []string{"m.room.history_visibility"}})
	if err != nil {
		return access{}, err
	}
	for _, e := range st[group] {
		if contentField(e, "history_visibility") == "world_readable" {
			a.version, _ = event.LookupVersion(version)
			a.isPeeking = true
			return a, nil
		}
	}
	return access{}, notIn
}

// roomNow returns a room's current state group and version.
func roomNow(ctx context.Context, r storage.StreamReader, roomID string) (int64, string, error) {
	info, err := r.Room(ctx, roomID)
	if err != nil {
		return 0, "", err
	}
	return info.CurrentGroup, info.RoomVersion, nil
}

// Messages pages through a room's history.
func (s *Service) Messages(ctx context.Context, req MessagesRequest) (*MessagesResponse, error) {
	var from, to int64
	var hasTo bool
	var err error
	if req.From != "" && req.From != "END" {
		if from, err = parseRoomPos(req.From); err != nil {
			return nil, ErrBadFrom
		}
	}
	if req.To != "" {
		if to, err = parseRoomPos(req.To); err != nil {
			return nil, ErrBadTo
		}
		hasTo = true
	}
	limit := min(max(req.Limit, 0), MaxMessagesLimit)
	var resp *MessagesResponse
	err = s.store.ReadStream(ctx, func(r storage.StreamReader) error {
		pos, err := r.Positions(ctx)
		if err != nil {
			return err
		}
		acc, err := roomAccess(ctx, r, req.UserID, req.RoomID, pos.Events)
		if err != nil {
			return err
		}
		if req.From == "" || req.From == "END" {
			if req.Backwards {
				from = pos.Events
			} else {
				from = 0
			}
		}
		resp = &MessagesResponse{Chunk: []ClientEvent{}, Start: roomPos(from)}
		if req.From != "" && req.From != "END" {
			resp.Start = req.From
		}
		var evs []storage.StoredEvent
		if req.Backwards {
			upTo := min(from, acc.upTo)
			after := int64(0)
			if hasTo {
				after = to
			}
			evs, err = r.RoomEvents(ctx, req.RoomID, after, upTo, limit, true, req.Filter.match())
		} else {
			upTo := acc.upTo
			if hasTo {
				upTo = min(upTo, to)
			}
			evs, err = r.RoomEvents(ctx, req.RoomID, from, upTo, limit, false, req.Filter.match())
		}
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil // the end: no end token
		}
		last := evs[len(evs)-1].StreamPos
		if req.Backwards {
			resp.End = roomPos(last - 1)
		} else {
			resp.End = roomPos(last)
		}
		// Fewer events than asked still get an end token (as Synapse):
		// the next page is empty and ends without one.
		evs = req.Filter.keep(evs)
		if evs, err = filterVisible(ctx, r, req.UserID, evs, acc.isPeeking); err != nil {
			return err
		}
		rend, err := s.renderer(ctx, r, acc.version, req.RoomID, evs)
		if err != nil {
			return err
		}
		for _, e := range evs {
			ce, err := rend.render(e)
			if err != nil {
				return err
			}
			resp.Chunk = append(resp.Chunk, ce)
		}
		if req.Filter.LazyLoadMembers && len(evs) > 0 {
			// The members of the chunk's senders, as of its first event.
			var senders []string
			for _, e := range evs {
				if !slices.Contains(senders, e.Sender) {
					senders = append(senders, e.Sender)
				}
			}
			g := evs[0].StateGroupAfter
			st, err := r.StateAt(ctx, []int64{g}, storage.StateFilter{Types: []string{"m.room.member"}, Members: senders})
			if err != nil {
				return err
			}
			for _, e := range st[g] {
				ce, err := rend.render(e)
				if err != nil {
					return err
				}
				resp.State = append(resp.State, ce)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// renderer makes a renderer for events of one room, with the redactions
// of the redacted ones read.
func (s *Service) renderer(ctx context.Context, r storage.StreamReader, v *event.Version, roomID string, evs ...[]storage.StoredEvent) (*renderer, error) {
	rend := &renderer{now: s.now().UnixMilli(), versions: map[string]*event.Version{roomID: v}, withRoomID: true}
	var ids []string
	for _, list := range evs {
		for _, e := range list {
			if e.RedactedBy != "" {
				ids = append(ids, e.RedactedBy)
			}
		}
	}
	if len(ids) > 0 {
		red, err := r.GetEvents(ctx, ids)
		if err != nil {
			return nil, err
		}
		rend.redactions = red
	}
	return rend, nil
}

// ContextRequest is one GET /rooms/{roomId}/context/{eventId}.
type ContextRequest struct {
	UserID, RoomID, EventID string
	Limit                   int
	Filter                  EventFilter
}

// ContextResponse is /context's answer.
type ContextResponse struct {
	Start        string        `json:"start"`
	End          string        `json:"end"`
	EventsBefore []ClientEvent `json:"events_before"`
	Event        ClientEvent   `json:"event"`
	EventsAfter  []ClientEvent `json:"events_after"`
	State        []ClientEvent `json:"state"`
}

// Context returns an event with the events around it and the room state.
func (s *Service) Context(ctx context.Context, req ContextRequest) (*ContextResponse, error) {
	notFound := httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", "Event not found.")
	forbidden := httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "You don't have permission to access that event.")
	var resp *ContextResponse
	err := s.store.ReadStream(ctx, func(r storage.StreamReader) error {
		got, err := r.GetEvents(ctx, []string{req.EventID})
		if err != nil {
			return err
		}
		ev, ok := got[req.EventID]
		if !ok || ev.RoomID != req.RoomID {
			return notFound
		}
		pos, err := r.Positions(ctx)
		if err != nil {
			return err
		}
		// As Synapse: whoever is not joined now reads as a peeker.
		peeking := true
		var version *event.Version
		m, err := r.RoomMembership(ctx, req.UserID, req.RoomID)
		switch {
		case err == nil:
			peeking = m.Membership != "join"
			version, _ = event.LookupVersion(m.RoomVersion)
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		if version == nil {
			_, v, err := roomNow(ctx, r, req.RoomID)
			if err != nil {
				return err
			}
			version, _ = event.LookupVersion(v)
		}
		if vis, err := filterVisible(ctx, r, req.UserID, []storage.StoredEvent{ev}, peeking); err != nil {
			return err
		} else if len(vis) == 0 {
			return forbidden
		}
		limit := max(req.Limit, 0)
		nBefore := limit / 2
		nAfter := limit - nBefore
		match := req.Filter.match()
		before, err := r.RoomEvents(ctx, req.RoomID, 0, ev.StreamPos-1, nBefore, true, match)
		if err != nil {
			return err
		}
		after, err := r.RoomEvents(ctx, req.RoomID, ev.StreamPos, pos.Events, nAfter, false, match)
		if err != nil {
			return err
		}
		resp = &ContextResponse{Start: roomPos(ev.StreamPos - 1), End: roomPos(ev.StreamPos)}
		if len(before) > 0 {
			resp.Start = roomPos(before[len(before)-1].StreamPos - 1)
		}
		if len(after) > 0 {
			resp.End = roomPos(after[len(after)-1].StreamPos)
		}
		stateGroup := ev.StateGroupAfter
		if len(after) > 0 {
			stateGroup = after[len(after)-1].StateGroupAfter
		}
		if before, err = filterVisible(ctx, r, req.UserID, req.Filter.keep(before), peeking); err != nil {
			return err
		}
		if after, err = filterVisible(ctx, r, req.UserID, req.Filter.keep(after), peeking); err != nil {
			return err
		}
		sf := storage.StateFilter{}
		if req.Filter.LazyLoadMembers {
			sf.Members = []string{ev.Sender}
			for _, e := range slices.Concat(before, after) {
				sf.Members = append(sf.Members, e.Sender)
			}
		}
		st, err := r.StateAt(ctx, []int64{stateGroup}, sf)
		if err != nil {
			return err
		}
		var state []storage.StoredEvent
		for _, e := range st[stateGroup] {
			if e.Type != "m.room.aliases" && req.Filter.allows(e.Type, e.Sender, req.RoomID, hasURL(e)) {
				state = append(state, e)
			}
		}
		rend, err := s.renderer(ctx, r, version, req.RoomID, before, after, state, []storage.StoredEvent{ev})
		if err != nil {
			return err
		}
		if resp.Event, err = rend.render(ev); err != nil {
			return err
		}
		renderList := func(list []storage.StoredEvent) ([]ClientEvent, error) {
			out := make([]ClientEvent, 0, len(list))
			for _, e := range list {
				ce, err := rend.render(e)
				if err != nil {
					return nil, err
				}
				out = append(out, ce)
			}
			return out, nil
		}
		if resp.EventsBefore, err = renderList(before); err != nil {
			return err
		}
		if resp.EventsAfter, err = renderList(after); err != nil {
			return err
		}
		resp.State, err = renderList(state)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// visibleEvent reads an event and judges whether the user may see it, as
// Synapse's EventHandler.get_event does: whoever is not joined now reads
// as a peeker, so only world-readable history and events from while they
// were joined are theirs. found is false for an unknown event or one of
// another room.
func visibleEvent(ctx context.Context, r storage.StreamReader, userID, roomID, eventID string) (ev storage.StoredEvent, found, visible bool, err error) {
	got, err := r.GetEvents(ctx, []string{eventID})
	if err != nil {
		return ev, false, false, err
	}
	ev, found = got[eventID]
	if !found || ev.RoomID != roomID {
		return ev, false, false, nil
	}
	peeking := true
	m, err := r.RoomMembership(ctx, userID, roomID)
	switch {
	case err == nil:
		peeking = m.Membership != "join"
	case !errors.Is(err, storage.ErrNotFound):
		return ev, true, false, err
	}
	vis, err := filterVisible(ctx, r, userID, []storage.StoredEvent{ev}, peeking)
	if err != nil {
		return ev, true, false, err
	}
	return ev, true, len(vis) == 1, nil
}

// CanSee reports whether an event exists in the room and whether the user
// may see it (receipts: an unknown event is ignored, an unseen one
// refused).
func (s *Service) CanSee(ctx context.Context, userID, roomID, eventID string) (found, visible bool, err error) {
	err = s.store.ReadStream(ctx, func(r storage.StreamReader) error {
		_, found, visible, err = visibleEvent(ctx, r, userID, roomID, eventID)
		return err
	})
	return found, visible, err
}

// Event is GET /rooms/{roomId}/event/{eventId}. An unknown event, one of
// another room and one the user may not see all answer 404 "Event not
// found.", as Synapse's endpoint does.
func (s *Service) Event(ctx context.Context, userID, roomID, eventID string) (ClientEvent, error) {
	var out ClientEvent
	err := s.store.ReadStream(ctx, func(r storage.StreamReader) error {
		ev, found, visible, err := visibleEvent(ctx, r, userID, roomID, eventID)
		if err != nil {
			return err
		}
		if !found || !visible {
			return httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", "Event not found.")
		}
		_, version, err := roomNow(ctx, r, roomID)
		if err != nil {
			return err
		}
		v, _ := event.LookupVersion(version)
		rend, err := s.renderer(ctx, r, v, roomID, []storage.StoredEvent{ev})
		if err != nil {
			return err
		}
		out, err = rend.render(ev)
		return err
	})
	return out, err
}
