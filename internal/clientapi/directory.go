package clientapi

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/directory"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/id"
)

// registerDirectory adds the alias and public room list endpoints
// (docs/directory.md).
func (a *API) registerDirectory(client func(method, path string, h http.Handler)) {
	if a.opts.Directory == nil {
		return
	}
	client("GET", "/directory/room/{roomAlias}", handlerFunc(a.getAlias))
	client("PUT", "/directory/room/{roomAlias}", handlerFunc(a.putAlias))
	client("DELETE", "/directory/room/{roomAlias}", a.authed(false, a.deleteAlias))
	client("GET", "/rooms/{roomId}/aliases", a.authed(false, a.roomAliases))
	client("GET", "/directory/list/room/{roomId}", handlerFunc(a.getVisibility))
	client("PUT", "/directory/list/room/{roomId}", a.authed(false, a.putVisibility))
	client("GET", "/publicRooms", handlerFunc(a.getPublicRooms))
	client("POST", "/publicRooms", a.authed(false, a.postPublicRooms))
}

// aliasParam is the {roomAlias} path value, checked as Synapse checks it.
func aliasParam(r *http.Request) (string, error) {
	alias := r.PathValue("roomAlias")
	if !directory.ValidAlias(alias) {
		return "", httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Room alias invalid")
	}
	return alias, nil
}

// getAlias is GET /directory/room/{roomAlias}; like Synapse, it needs no
// access token.
func (a *API) getAlias(w http.ResponseWriter, r *http.Request) error {
	alias, err := aliasParam(r)
	if err != nil {
		return err
	}
	roomID, servers, err := a.opts.Directory.Resolve(r.Context(), alias)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"room_id": roomID, "servers": servers})
	return nil
}

// putAlias is PUT /directory/room/{roomAlias} {room_id, servers?}. As in
// Synapse, the alias, the body and the room are checked before the access
// token.
func (a *API) putAlias(w http.ResponseWriter, r *http.Request) error {
	alias, err := aliasParam(r)
	if err != nil {
		return err
	}
	body, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	rawRoom, ok := body["room_id"]
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_MISSING_PARAM", "room_id: field required")
	}
	roomID, ok := rawRoom.(string)
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "room_id: input should be a valid string")
	}
	var servers []string
	if v, ok := body["servers"]; ok && v != nil {
		list, isList := v.([]any)
		if !isList {
			return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "servers: input should be a valid list")
		}
		for _, s := range list {
			str, isStr := s.(string)
			if !isStr {
				return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "servers: each entry should be a valid string")
			}
			servers = append(servers, str)
		}
	}
	if err := a.opts.Directory.CheckRoomForAlias(r.Context(), roomID); err != nil {
		return err
	}
	req, err := a.accounts.Authenticate(r, false)
	if err != nil {
		return err
	}
	if err := a.opts.Directory.CreateAlias(r.Context(), req, alias, roomID, servers); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	alias, err := aliasParam(r)
	if err != nil {
		return err
	}
	if err := a.opts.Directory.DeleteAlias(r.Context(), req, alias); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

func (a *API) roomAliases(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	aliases, err := a.opts.Directory.RoomAliases(r.Context(), req, r.PathValue("roomId"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"aliases": aliases})
	return nil
}

// getVisibility is GET /directory/list/room/{roomId}, without an access
// token as in Synapse.
func (a *API) getVisibility(w http.ResponseWriter, r *http.Request) error {
	vis, err := a.opts.Directory.Visibility(r.Context(), r.PathValue("roomId"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"visibility": vis})
	return nil
}

// putVisibility is PUT /directory/list/room/{roomId} {visibility}; the
// visibility defaults to public, as in Synapse.
func (a *API) putVisibility(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	body, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	vis := "public"
	if v, ok := body["visibility"]; ok {
		s, isStr := v.(string)
		if !isStr || (s != "public" && s != "private") {
			return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "visibility: input should be 'public' or 'private'")
		}
		vis = s
	}
	if err := a.opts.Directory.SetVisibility(r.Context(), req, r.PathValue("roomId"), vis); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// remoteRoomList answers a request for another server's room list: a
// malformed server name is 400; any other is 502, as Synapse answers when
// it cannot reach the server (Sluice does not federate yet).
func (a *API) remoteRoomList(server string) error {
	if _, err := id.ParseServerName(server); err != nil {
		return httpx.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid server name: %s", server)
	}
	return httpx.NewError(http.StatusBadGateway, "M_UNKNOWN", "Failed to fetch room list")
}

// getPublicRooms is GET /publicRooms?limit&since&server. It needs an
// access token unless allow_public_rooms_without_auth is on (and then
// only for this server's list).
func (a *API) getPublicRooms(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	server := q.Get("server")
	if _, err := a.accounts.Authenticate(r, false); err != nil {
		var he *httpx.Error
		tokenProblem := errors.As(err, &he) && he.Status == http.StatusUnauthorized
		if !tokenProblem || !a.opts.Directory.AllowPublicRoomsWithoutAuth() || server != "" {
			return err
		}
	}
	limit, err := queryInt(q, "limit", 0)
	if err != nil {
		return err
	}
	if server != "" && server != a.opts.ServerName {
		return a.remoteRoomList(server)
	}
	page, err := a.opts.Directory.PublicRooms(r.Context(), directory.PublicRoomsQuery{Limit: int(min(limit, math.MaxInt32)), Since: q.Get("since")})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, page)
	return nil
}

// postPublicRooms is POST /publicRooms {limit, since, filter,
// include_all_networks, third_party_instance_id}; it always needs an
// access token, as in Synapse.
func (a *API) postPublicRooms(w http.ResponseWriter, r *http.Request, _ accounts.Requester) error {
	server := r.URL.Query().Get("server")
	raw, err := httpx.ReadJSONObject(r)
	if err != nil {
		return err
	}
	var body struct {
		Limit                *json.Number     `json:"limit"`
		Since                *string          `json:"since"`
		Filter               *json.RawMessage `json:"filter"`
		IncludeAllNetworks   *bool            `json:"include_all_networks"`
		ThirdPartyInstanceID *string          `json:"third_party_instance_id"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return httpx.Errorf(http.StatusBadRequest, "M_BAD_JSON", "%s has the wrong type", te.Field)
		}
		return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	q := directory.PublicRoomsQuery{Limit: directory.MaxPublicRooms}
	if body.Limit != nil {
		n, err := body.Limit.Int64()
		if err != nil {
			return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "limit must be an integer")
		}
		if n < 0 {
			return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "limit must not be negative")
		}
		q.Limit = int(min(n, math.MaxInt32))
	}
	if body.Since != nil {
		q.Since = *body.Since
	}
	if body.Filter != nil && string(*body.Filter) != "null" {
		var f struct {
			GenericSearchTerm *string   `json:"generic_search_term"`
			RoomTypes         []*string `json:"room_types"`
		}
		if err := json.Unmarshal(*body.Filter, &f); err != nil {
			return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "filter must be an object with a string generic_search_term and a list room_types")
		}
		if f.GenericSearchTerm != nil {
			q.SearchTerm = *f.GenericSearchTerm
		}
		q.RoomTypes, q.FilterRoomTypes = f.RoomTypes, f.RoomTypes != nil
	}
	if body.IncludeAllNetworks != nil && *body.IncludeAllNetworks {
		if body.ThirdPartyInstanceID != nil {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Can't use include_all_networks with an explicit network")
		}
	} else if body.ThirdPartyInstanceID != nil {
		if strings.Count(*body.ThirdPartyInstanceID, "|") != 1 {
			return httpx.Errorf(http.StatusBadRequest, "M_UNKNOWN", "Invalid ID '%s'", *body.ThirdPartyInstanceID)
		}
		q.ThirdPartyNetwork = true
	}
	if server != "" && server != a.opts.ServerName {
		return a.remoteRoomList(server)
	}
	page, err := a.opts.Directory.PublicRooms(r.Context(), q)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, page)
	return nil
}
