package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/id"
	"github.com/sluice-im/sluice/internal/storage"
)

// Receipt types (Synapse's ReceiptTypes) and the thread of the main
// timeline.
const (
	receiptRead        = "m.read"
	receiptReadPrivate = "m.read.private"
	receiptFullyRead   = "m.fully_read"
	mainTimeline       = "main"
)

// Typing timeouts in ms: Synapse's default, and its cap against silly ones.
const (
	typingDefaultTimeout = 30000
	typingMaxTimeout     = 120000
)

// registerReceipts adds the typing, receipt and read marker endpoints.
func (a *API) registerReceipts(client func(method, path string, h http.Handler)) {
	if a.rooms == nil || a.opts.Sync == nil {
		return
	}
	if a.opts.Typing != nil {
		client("PUT", "/rooms/{roomId}/typing/{userId}", a.authed(false, a.putTyping))
	}
	client("POST", "/rooms/{roomId}/receipt/{receiptType}/{eventId}", a.authed(false, a.postReceipt))
	client("POST", "/rooms/{roomId}/read_markers", a.authed(false, a.postReadMarkers))
}

// errBadField answers a body field Synapse's handler does not check and
// fails on with a 500 (a KeyError or TypeError): bad input is the
// client's error, so Sluice says which field, with a 400.
func errBadField(msg string) *httpx.Error {
	return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", msg)
}

// putTyping is PUT /rooms/{roomId}/typing/{userId}, checked in Synapse's
// order: the user ID's form, the body, the timeout and typing fields, the
// user, then membership. The room ID is not checked apart from that.
func (a *API) putTyping(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, target := r.PathValue("roomId"), r.PathValue("userId")
	if !strings.HasPrefix(target, "@") {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Expected UserID string to start with '@'")
	}
	_, domain, ok := strings.Cut(target[1:], ":")
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Expected UserID of the form '@localname:domain'")
	}
	body, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	timeout, err := typingTimeout(body)
	if err != nil {
		return err
	}
	typing, ok := body["typing"]
	if !ok {
		return errBadField("Missing required field: typing")
	}
	if domain != a.opts.ServerName {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "User is not hosted on this homeserver")
	}
	if target != req.UserID {
		return httpx.NewError(http.StatusBadRequest, "M_FORBIDDEN", "Cannot set another user's typing state")
	}
	if req.ShadowBanned {
		// Synapse pretends it worked, after a random 1 to 10 s.
		if err := sleepCtx(r.Context(), time.Duration(1+rand.IntN(10))*time.Second); err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{})
		return nil
	}
	if err := a.checkJoined(r.Context(), req.UserID, roomID); err != nil {
		return err
	}
	// The tracker wakes the room's syncing members itself when the set
	// changes (and not when a typing user only renews the timeout).
	a.opts.Typing.Set(roomID, target, truthy(typing), timeout)
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// typingTimeout is Synapse's min(content.get("timeout", 30000), 120000):
// any number (a boolean counts as 0 or 1), capped; another type makes
// Python's min raise. A timeout of 0 or less expires at once.
func typingTimeout(body map[string]any) (time.Duration, error) {
	ms := float64(typingDefaultTimeout)
	if v, ok := body["timeout"]; ok {
		switch v := v.(type) {
		case float64:
			ms = v
		case bool:
			ms = 0
			if v {
				ms = 1
			}
		default:
			return 0, errBadField("timeout must be a number")
		}
	}
	ms = max(min(ms, typingMaxTimeout), 0)
	return time.Duration(ms * float64(time.Millisecond)), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkJoined is Synapse's check_user_in_room: the user's current
// membership must be join; an unknown room gets the same answer.
func (a *API) checkJoined(ctx context.Context, userID, roomID string) error {
	// The user's joined rooms are one indexed query, where loading the
	// room would read its whole state.
	joined, err := a.store.RoomsForUser(ctx, userID, "join")
	if err != nil {
		return err
	}
	if _, ok := slices.BinarySearch(joined, roomID); !ok {
		return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "User "+userID+" not in room "+roomID)
	}
	return nil
}

// postReceipt is POST /rooms/{roomId}/receipt/{receiptType}/{eventId}.
func (a *API) postReceipt(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, typ, eventID := r.PathValue("roomId"), r.PathValue("receiptType"), r.PathValue("eventId")
	if !validRoomID(roomID) || !strings.HasPrefix(eventID, "$") {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "A valid room ID and event ID must be specified")
	}
	if typ != receiptRead && typ != receiptReadPrivate && typ != receiptFullyRead {
		// Synapse joins a set here, in no fixed order; this is one of them.
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Receipt type must be m.read, m.read.private, m.fully_read")
	}
	body, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	threadID := ""
	if v, ok := body["thread_id"]; ok {
		s, _ := v.(string)
		if s == "" {
			return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "thread_id field must be a non-empty string")
		}
		if typ == receiptFullyRead {
			return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "thread_id is not compatible with m.fully_read receipts.")
		}
		in, err := a.eventInThread(r.Context(), eventID, s)
		if err != nil {
			return err
		}
		if !in {
			return httpx.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "event_id %s is not related to thread %s", eventID, s)
		}
		threadID = s
	}
	if typ == receiptFullyRead {
		err = a.setReadMarker(r.Context(), req.UserID, roomID, eventID)
	} else {
		err = a.setReceipt(r.Context(), req.UserID, roomID, typ, eventID, threadID)
	}
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// validRoomID is Synapse's RoomID.is_valid: a valid server name after the
// first colon, or the 43 characters of a domainless (version 12) ID. Unlike
// id.ParseRoomID it sets no length limit.
func validRoomID(s string) bool {
	if !strings.HasPrefix(s, "!") {
		return false
	}
	if _, domain, ok := strings.Cut(s[1:], ":"); ok {
		_, err := id.ParseServerName(domain)
		return err == nil
	}
	_, err := id.ParseRoomID(s)
	return err == nil
}

// postReadMarkers is POST /rooms/{roomId}/read_markers: each known receipt
// type present with an event ID, unthreaded; unknown keys and empty values
// are skipped, as in Synapse. Nothing of the room ID is checked up front.
func (a *API) postReadMarkers(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID := r.PathValue("roomId")
	body, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	// Synapse walks a set of the three (in an order that varies between
	// processes); this is one of its orders.
	for _, typ := range []string{receiptFullyRead, receiptRead, receiptReadPrivate} {
		v := body[typ]
		if !truthy(v) {
			continue
		}
		eventID, ok := v.(string)
		if !ok {
			return errBadField(typ + " must be an event ID")
		}
		if typ == receiptFullyRead {
			err = a.setReadMarker(r.Context(), req.UserID, roomID, eventID)
		} else {
			err = a.setReceipt(r.Context(), req.UserID, roomID, typ, eventID, "")
		}
		if err != nil {
			return err
		}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// storable reports whether s can be in the database at all (no NUL, valid
// UTF-8): other IDs match nothing, and are not sent to PostgreSQL.
func storable(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// setReceipt is Synapse's received_client_receipt: the event must be one
// the user may see; an unknown event, or one of another room, is ignored
// without an error. A receipt that would not move forward changes nothing.
func (a *API) setReceipt(ctx context.Context, userID, roomID, typ, eventID, threadID string) error {
	if !storable(roomID) || !storable(eventID) {
		return nil
	}
	found, visible, err := a.opts.Sync.CanSee(ctx, userID, roomID, eventID)
	switch {
	case err != nil:
		return err
	case !found:
		return nil
	case !visible:
		return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "You don't have permission to access that event.")
	}
	pos, err := a.store.SetReceipt(ctx, storage.Receipt{
		RoomID: roomID, Type: typ, UserID: userID, ThreadID: threadID, EventID: eventID, TS: nowMillis(),
	})
	if err != nil {
		return err
	}
	if pos != 0 && a.opts.WakeRoom != nil {
		// The receipt is stored: a sync that misses this wake sees it on
		// its next request, so a failure here does not fail the request.
		_ = a.opts.WakeRoom(ctx, roomID)
	}
	return nil
}

// readMarkerLocks serialises read marker updates per user and room (as
// Synapse's linearizer does), across every listener's API.
var readMarkerLocks keyedMutex

// setReadMarker is Synapse's received_client_read_marker: m.fully_read is
// per-room account data {"event_id": ...}, moved only forward. The event
// must be in the room; membership is not checked, as in Synapse.
func (a *API) setReadMarker(ctx context.Context, userID, roomID, eventID string) error {
	unlock := readMarkerLocks.lock([2]string{userID, roomID})
	defer unlock()
	newOrd, ok, err := a.eventOrdering(ctx, eventID, roomID)
	if err != nil {
		return err
	}
	if !ok {
		return httpx.Errorf(http.StatusNotFound, "M_UNKNOWN", "Could not find event %s in room %s", eventID, roomID)
	}
	old, err := a.store.GetAccountData(ctx, userID, roomID, receiptFullyRead)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return err
	default:
		var cur struct {
			EventID any `json:"event_id"`
		}
		_ = json.Unmarshal(old, &cur)
		if curID, isStr := cur.EventID.(string); isStr {
			oldOrd, found, err := a.eventOrdering(ctx, curID, roomID)
			if err != nil {
				return err
			}
			// An old marker whose event is gone counts as behind.
			if found && !orderingAfter(newOrd, oldOrd) {
				return nil
			}
		}
	}
	content := map[string]any{"event_id": eventID}
	raw, err := json.Marshal(content)
	if err != nil {
		return err
	}
	if _, err := a.store.SetAccountData(ctx, userID, roomID, receiptFullyRead, raw); err != nil {
		return err
	}
	if a.opts.Notifier != nil {
		a.opts.Notifier.Wake(userID)
	}
	if a.opts.AccountData != nil {
		a.opts.AccountData.OnAccountDataUpdated(ctx, userID, roomID, receiptFullyRead, content)
	}
	return nil
}

// ordering is Synapse's (topological_ordering, stream_ordering) of an
// event: its depth, then its stream position.
type ordering [2]int64

func orderingAfter(a, b ordering) bool {
	return a[0] > b[0] || (a[0] == b[0] && a[1] > b[1])
}

// eventOrdering returns the ordering of an event of the room; ok is false
// when the room has no such event.
func (a *API) eventOrdering(ctx context.Context, eventID, roomID string) (ordering, bool, error) {
	if !storable(eventID) {
		return ordering{}, false, nil
	}
	se, err := a.store.GetEvent(ctx, eventID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && se.RoomID != roomID) {
		return ordering{}, false, nil
	}
	if err != nil {
		return ordering{}, false, err
	}
	var ev struct {
		Depth int64 `json:"depth"`
	}
	if err := json.Unmarshal(se.JSON, &ev); err != nil {
		return ordering{}, false, err
	}
	return ordering{ev.Depth, se.StreamPos}, true, nil
}

// maxRelationLinks is how far Synapse's relation queries climb: the
// event's own relation and four more.
const maxRelationLinks = 5

type relation struct{ parent, relType string }

// relationChain follows an event's m.relates_to upwards through the
// events the server has, as Synapse's event_relations table does: only a
// relation with a string rel_type and event_id counts, and a redacted
// event has none.
func (a *API) relationChain(ctx context.Context, eventID string) ([]relation, error) {
	var links []relation
	cur := eventID
	for len(links) < maxRelationLinks && storable(cur) {
		se, err := a.store.GetEvent(ctx, cur)
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		rel, ok := relationOf(se)
		if !ok {
			break
		}
		links = append(links, rel)
		cur = rel.parent
	}
	return links, nil
}

func relationOf(se storage.StoredEvent) (relation, bool) {
	if se.RedactedBy != "" {
		return relation{}, false
	}
	var ev struct {
		Content struct {
			RelatesTo any `json:"m.relates_to"`
		} `json:"content"`
	}
	if json.Unmarshal(se.JSON, &ev) != nil {
		return relation{}, false
	}
	m, _ := ev.Content.RelatesTo.(map[string]any)
	relType, ok1 := m["rel_type"].(string)
	parent, ok2 := m["event_id"].(string)
	if !ok1 || !ok2 {
		return relation{}, false
	}
	return relation{parent: parent, relType: relType}, true
}

// eventInThread is Synapse's _is_event_in_thread. For the main timeline:
// no thread relation on the way up from the event. For a thread: the top
// of the event's relations (the event itself if it has none) is the
// thread's root. Synapse also wants that root to have a thread reply;
// without an index of relations by target this does not check that part.
func (a *API) eventInThread(ctx context.Context, eventID, threadID string) (bool, error) {
	links, err := a.relationChain(ctx, eventID)
	if err != nil {
		return false, err
	}
	if threadID == mainTimeline {
		for _, l := range links {
			if l.relType == "m.thread" {
				return false, nil
			}
		}
		return true, nil
	}
	top := eventID
	if len(links) > 0 {
		top = links[len(links)-1].parent
	}
	return top == threadID, nil
}

// keyedMutex is a mutex per key, kept only while in use.
type keyedMutex struct {
	mu sync.Mutex
	m  map[[2]string]*keyedEntry
}

type keyedEntry struct {
	mu      sync.Mutex
	waiters int
}

func (k *keyedMutex) lock(key [2]string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[[2]string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.waiters++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.waiters--; e.waiters == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
