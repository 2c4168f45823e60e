package clientapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/id"
	"github.com/sluice-im/sluice/internal/storage"
)

// AccountDataHooks are the module callbacks the account data endpoints run
// (implemented by the module host).
type AccountDataHooks interface {
	// OnAccountDataUpdated runs on_account_data_updated; failures are
	// logged by the host and never returned.
	OnAccountDataUpdated(ctx context.Context, userID, roomID, accountDataType string, content map[string]any)
}

// registerAccountData adds the account data and filter endpoints.
func (a *API) registerAccountData(client func(method, path string, h http.Handler)) {
	client("PUT", "/user/{userId}/account_data/{type}", a.authed(false, a.putAccountData(false)))
	client("GET", "/user/{userId}/account_data/{type}", a.authed(false, a.getAccountData(false)))
	client("PUT", "/user/{userId}/rooms/{roomId}/account_data/{type}", a.authed(false, a.putAccountData(true)))
	client("GET", "/user/{userId}/rooms/{roomId}/account_data/{type}", a.authed(false, a.getAccountData(true)))
	client("POST", "/user/{userId}/filter", a.authed(false, a.createFilter))
	client("GET", "/user/{userId}/filter/{filterId}", a.authed(false, a.getFilter))
}

// accountDataTarget checks the path of an account data request, in
// Synapse's order: the user, then the room ID (per-room endpoints only).
// It returns the room ID ("" for global data) and the type.
func accountDataTarget(r *http.Request, req accounts.Requester, perRoom bool, verb string) (roomID, typ string, err error) {
	if r.PathValue("userId") != req.UserID {
		return "", "", httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "Cannot "+verb+" account data for other users.")
	}
	if perRoom {
		roomID = r.PathValue("roomId")
		if _, err := id.ParseRoomID(roomID); err != nil {
			return "", "", httpx.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%s is not a valid room ID", roomID)
		}
	}
	typ = r.PathValue("type")
	if strings.IndexByte(typ, 0) >= 0 || !utf8.ValidString(typ) {
		return "", "", httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid account data type")
	}
	return roomID, typ, nil
}

// checkSettable refuses the account data types the server manages itself
// (Synapse's _check_can_set_account_data_type; the spec's 405).
func checkSettable(typ string) error {
	switch typ {
	case "m.fully_read":
		return httpx.NewError(http.StatusMethodNotAllowed, "M_BAD_JSON",
			"Cannot set m.fully_read through this API. Use /rooms/!roomId:server.name/read_markers")
	case "m.push_rules":
		return httpx.NewError(http.StatusMethodNotAllowed, "M_BAD_JSON",
			"Cannot set m.push_rules through this API. Use /pushrules")
	}
	return nil
}

// putAccountData is PUT /user/{userId}/account_data/{type} and
// PUT /user/{userId}/rooms/{roomId}/account_data/{type}.
func (a *API) putAccountData(perRoom bool) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
		return a.putAccountDataOf(w, r, req, perRoom)
	}
}

func (a *API) putAccountDataOf(w http.ResponseWriter, r *http.Request, req accounts.Requester, perRoom bool) error {
	roomID, typ, err := accountDataTarget(r, req, perRoom, "add")
	if err != nil {
		return err
	}
	if err := checkSettable(typ); err != nil {
		return err
	}
	raw, err := httpx.ReadJSONObject(r)
	if err != nil {
		return err
	}
	var content map[string]any
	if err := json.Unmarshal(raw, &content); err != nil {
		return httpx.ErrNotJSON()
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return httpx.ErrNotJSON()
	}
	if _, err := a.store.SetAccountData(r.Context(), req.UserID, roomID, typ, compact.Bytes()); err != nil {
		return err
	}
	if a.opts.Notifier != nil {
		a.opts.Notifier.Wake(req.UserID)
	}
	if a.opts.AccountData != nil {
		a.opts.AccountData.OnAccountDataUpdated(r.Context(), req.UserID, roomID, typ, content)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// getAccountData is GET /user/{userId}/account_data/{type} and
// GET /user/{userId}/rooms/{roomId}/account_data/{type}.
func (a *API) getAccountData(perRoom bool) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
		return a.getAccountDataOf(w, r, req, perRoom)
	}
}

func (a *API) getAccountDataOf(w http.ResponseWriter, r *http.Request, req accounts.Requester, perRoom bool) error {
	roomID, typ, err := accountDataTarget(r, req, perRoom, "get")
	if err != nil {
		return err
	}
	if perRoom && typ == "m.push_rules" {
		// Synapse: room-specific push rules are not supported; always {}.
		httpx.WriteJSON(w, http.StatusOK, map[string]any{})
		return nil
	}
	content, err := a.store.GetAccountData(r.Context(), req.UserID, roomID, typ)
	if errors.Is(err, storage.ErrNotFound) {
		if perRoom {
			return httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", "Room account data not found")
		}
		return httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", "Account data not found")
	}
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, json.RawMessage(content))
	return nil
}
