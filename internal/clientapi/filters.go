package clientapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/storage"
)

// filterTimelineLimit caps a filter's room.timeline.limit when it is
// created: Synapse's filter_timeline_limit default.
const filterTimelineLimit = 100

// createFilter is POST /user/{userId}/filter.
func (a *API) createFilter(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	if r.PathValue("userId") != req.UserID {
		return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "Cannot create filters for other users")
	}
	raw, err := httpx.ReadJSONObject(r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers are kept as the client wrote them
	var filter map[string]any
	if err := dec.Decode(&filter); err != nil {
		return httpx.ErrNotJSON()
	}
	if err := validateFilter(filter); err != nil {
		return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	capTimelineLimit(filter)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(filter); err != nil {
		return err
	}
	fid, err := a.store.AddFilter(r.Context(), req.UserID, bytes.TrimRight(buf.Bytes(), "\n"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"filter_id": strconv.FormatInt(fid, 10)})
	return nil
}

// getFilter is GET /user/{userId}/filter/{filterId}.
func (a *API) getFilter(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	if r.PathValue("userId") != req.UserID {
		return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "Cannot get filters for other users")
	}
	fid, err := strconv.ParseInt(r.PathValue("filterId"), 10, 64)
	if err != nil {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid filter_id")
	}
	f, err := a.store.GetFilter(r.Context(), req.UserID, fid)
	if errors.Is(err, storage.ErrNotFound) {
		return httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", "No such filter")
	}
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, json.RawMessage(f))
	return nil
}

// capTimelineLimit lowers room.timeline.limit to filterTimelineLimit, as
// Synapse's set_timeline_upper_limit does.
func capTimelineLimit(f map[string]any) {
	room, _ := f["room"].(map[string]any)
	tl, _ := room["timeline"].(map[string]any)
	if n, ok := tl["limit"].(json.Number); ok {
		if v, err := n.Int64(); err == nil && v > filterTimelineLimit {
			tl["limit"] = filterTimelineLimit
		}
	}
}

// validateFilter checks the types of a filter's known fields (the spec's
// Filter, RoomFilter, EventFilter and RoomEventFilter); unknown fields are
// kept as they are.
func validateFilter(f map[string]any) error {
	if v, ok := f["event_fields"]; ok {
		if err := stringArray(v, "event_fields"); err != nil {
			return err
		}
	}
	if v, ok := f["event_format"]; ok {
		if s, _ := v.(string); s != "client" && s != "federation" {
			return errors.New(`event_format: must be "client" or "federation"`)
		}
	}
	for _, k := range []string{"account_data", "presence"} {
		if v, ok := f[k]; ok {
			if err := eventFilter(v, k, false); err != nil {
				return err
			}
		}
	}
	if v, ok := f["room"]; ok {
		room, ok := v.(map[string]any)
		if !ok {
			return errors.New("room: must be an object")
		}
		for _, k := range []string{"rooms", "not_rooms"} {
			if v, ok := room[k]; ok {
				if err := stringArray(v, "room."+k); err != nil {
					return err
				}
			}
		}
		if v, ok := room["include_leave"]; ok {
			if _, ok := v.(bool); !ok {
				return errors.New("room.include_leave: must be a boolean")
			}
		}
		for _, k := range []string{"ephemeral", "state", "timeline", "account_data"} {
			if v, ok := room[k]; ok {
				if err := eventFilter(v, "room."+k, true); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// eventFilter checks an EventFilter, or a RoomEventFilter when inRoom.
func eventFilter(v any, path string, inRoom bool) error {
	f, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: must be an object", path)
	}
	if v, ok := f["limit"]; ok {
		n, isNum := v.(json.Number)
		if !isNum {
			return fmt.Errorf("%s.limit: must be an integer", path)
		}
		if _, err := n.Int64(); err != nil {
			return fmt.Errorf("%s.limit: must be an integer", path)
		}
	}
	arrays := []string{"senders", "not_senders", "types", "not_types"}
	if inRoom {
		arrays = append(arrays, "rooms", "not_rooms")
		for _, k := range []string{"contains_url", "lazy_load_members", "include_redundant_members", "unread_thread_notifications"} {
			if v, ok := f[k]; ok {
				if _, ok := v.(bool); !ok {
					return fmt.Errorf("%s.%s: must be a boolean", path, k)
				}
			}
		}
	}
	for _, k := range arrays {
		if v, ok := f[k]; ok {
			if err := stringArray(v, path+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

func stringArray(v any, path string) error {
	arr, ok := v.([]any)
	if !ok {
		return fmt.Errorf("%s: must be an array of strings", path)
	}
	for _, e := range arr {
		if _, ok := e.(string); !ok {
			return fmt.Errorf("%s: must be an array of strings", path)
		}
	}
	return nil
}
