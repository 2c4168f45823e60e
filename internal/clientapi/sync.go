package clientapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/syncapi"
)

// registerSync adds /sync, /messages and /context.
func (a *API) registerSync(client func(method, path string, h http.Handler)) {
	if a.opts.Sync == nil {
		return
	}
	client("GET", "/sync", a.authed(false, a.sync))
	client("GET", "/rooms/{roomId}/messages", a.authed(false, a.messages))
	client("GET", "/rooms/{roomId}/context/{eventId}", a.authed(false, a.eventContext))
	client("GET", "/rooms/{roomId}/event/{eventId}", a.authed(false, a.getEvent))
}

// queryInt is Synapse's parse_integer: absent gives def; not an integer or
// negative is 400 M_INVALID_PARAM.
func queryInt(q url.Values, name string, def int64) (int64, error) {
	v, ok := q[name]
	if !ok || len(v) == 0 {
		return def, nil
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil {
		return 0, httpx.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "Query parameter %s must be an integer", name)
	}
	if n < 0 {
		return 0, httpx.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "Query parameter %s must be a positive integer.", name)
	}
	return n, nil
}

// queryEnum is Synapse's parse_string with allowed values.
func queryEnum(q url.Values, name, def string, allowed ...string) (string, error) {
	v := q.Get(name)
	if _, ok := q[name]; !ok {
		return def, nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = "'" + a + "'"
	}
	return "", httpx.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "Query parameter '%s' must be one of [%s]", name, strings.Join(quoted, ", "))
}

// sync is GET /sync.
func (a *API) sync(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	q := r.URL.Query()
	if _, ok := q["from"]; ok {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "'from' is not a valid query parameter. Did you mean 'since'?")
	}
	timeout, err := queryInt(q, "timeout", 0)
	if err != nil {
		return err
	}
	// set_presence is accepted and checked; presence is not tracked yet.
	if _, err := queryEnum(q, "set_presence", "online", "offline", "online", "unavailable"); err != nil {
		return err
	}
	fullState, err := queryEnum(q, "full_state", "false", "true", "false")
	if err != nil {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Boolean query parameter 'full_state' must be one of ['true', 'false']")
	}
	filter, err := a.syncFilter(r, req, q.Get("filter"))
	if err != nil {
		return err
	}
	sreq := syncapi.Request{UserID: req.UserID, DeviceID: req.DeviceID, Filter: filter, FullState: fullState == "true",
		Timeout: time.Duration(min(timeout, int64(24*time.Hour/time.Millisecond))) * time.Millisecond}
	if s := q.Get("since"); s != "" {
		tok, err := syncapi.ParseToken(s)
		if err != nil {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid stream token")
		}
		sreq.Since = &tok
	}
	resp, err := a.opts.Sync.Sync(r.Context(), sreq)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// syncFilter reads /sync's filter parameter: inline JSON (checked as a new
// filter is) or the ID of a stored filter.
func (a *API) syncFilter(r *http.Request, req accounts.Requester, param string) (*syncapi.Filter, error) {
	if param == "" {
		return &syncapi.Filter{}, nil
	}
	var raw []byte
	if strings.HasPrefix(param, "{") {
		dec := json.NewDecoder(strings.NewReader(param))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil || dec.More() {
			return nil, httpx.NewError(http.StatusBadRequest, "M_NOT_JSON", "Invalid filter JSON")
		}
		if err := validateFilter(m); err != nil {
			return nil, httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", err.Error())
		}
		capTimelineLimit(m)
		var err error
		if raw, err = json.Marshal(m); err != nil {
			return nil, err
		}
	} else {
		fid, err := strconv.ParseInt(param, 10, 64)
		if err != nil {
			return nil, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid filter ID")
		}
		raw, err = a.store.GetFilter(r.Context(), req.UserID, fid)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "No such filter")
		}
		if err != nil {
			return nil, err
		}
	}
	f, err := syncapi.ParseFilter(raw)
	if err != nil {
		return nil, httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid filter: "+err.Error())
	}
	return f, nil
}

// roomEventFilter reads the filter parameter of /messages and /context: a
// RoomEventFilter as JSON. Synapse does not check its fields; a filter
// whose fields have the wrong types is refused here rather than half
// applied.
func roomEventFilter(q url.Values) (syncapi.EventFilter, error) {
	var f syncapi.EventFilter
	param := q.Get("filter")
	if param == "" {
		return f, nil
	}
	var v any
	if err := json.Unmarshal([]byte(param), &v); err != nil {
		return f, httpx.NewError(http.StatusBadRequest, "M_NOT_JSON", "Query parameter filter must be a valid JSON object")
	}
	if _, ok := v.(map[string]any); !ok {
		return f, httpx.NewError(http.StatusBadRequest, "M_NOT_JSON", "Query parameter filter must be a valid JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(param)))
	if err := dec.Decode(&f); err != nil {
		return f, httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", fmt.Sprintf("Invalid filter: %v", err))
	}
	return f, nil
}

// messages is GET /rooms/{roomId}/messages.
func (a *API) messages(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	dir, err := queryEnum(q, "dir", "f", "b", "f")
	if err != nil {
		return err
	}
	limit, err := queryInt(q, "limit", 10)
	if err != nil {
		return err
	}
	filter, err := roomEventFilter(q)
	if err != nil {
		return err
	}
	resp, err := a.opts.Sync.Messages(r.Context(), syncapi.MessagesRequest{
		UserID: req.UserID, RoomID: roomID, From: q.Get("from"), To: q.Get("to"),
		Backwards: dir == "b", Limit: int(min(limit, syncapi.MaxMessagesLimit)), Filter: filter,
	})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// eventContext is GET /rooms/{roomId}/context/{eventId}.
func (a *API) eventContext(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := queryInt(q, "limit", 10)
	if err != nil {
		return err
	}
	filter, err := roomEventFilter(q)
	if err != nil {
		return err
	}
	resp, err := a.opts.Sync.Context(r.Context(), syncapi.ContextRequest{
		UserID: req.UserID, RoomID: roomID, EventID: r.PathValue("eventId"),
		Limit: int(min(limit, syncapi.MaxMessagesLimit)), Filter: filter,
	})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// getEvent is GET /rooms/{roomId}/event/{eventId}.
func (a *API) getEvent(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	// History visibility as every read applies it.
	ev, err := a.opts.Sync.Event(r.Context(), req.UserID, roomID, r.PathValue("eventId"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, ev)
	return nil
}
