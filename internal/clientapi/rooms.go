package clientapi

import (
	"net/http"
	"strings"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/id"
	"github.com/sluice-im/sluice/internal/rooms"
)

// registerRooms adds the room endpoints.
func (a *API) registerRooms(client func(method, path string, h http.Handler)) {
	if a.rooms == nil {
		return
	}
	client("POST", "/createRoom", a.authed(false, a.createRoom))
	client("POST", "/join/{roomIdOrAlias}", a.authed(false, a.joinRoomOrAlias))
	client("POST", "/rooms/{roomId}/join", a.authed(false, a.joinRoom))
	client("POST", "/rooms/{roomId}/invite", a.authed(false, a.membershipOf("invite")))
	client("POST", "/rooms/{roomId}/kick", a.authed(false, a.membershipOf("kick")))
	client("POST", "/rooms/{roomId}/ban", a.authed(false, a.membershipOf("ban")))
	client("POST", "/rooms/{roomId}/unban", a.authed(false, a.membershipOf("unban")))
	client("POST", "/rooms/{roomId}/leave", a.authed(false, a.leaveRoom))
	client("POST", "/rooms/{roomId}/forget", a.authed(false, a.forgetRoom))
	client("GET", "/joined_rooms", a.authed(false, a.joinedRooms))
	client("GET", "/rooms/{roomId}/members", a.authed(false, a.members))
	client("GET", "/rooms/{roomId}/joined_members", a.authed(false, a.joinedMembers))
	client("PUT", "/rooms/{roomId}/send/{eventType}/{txnId}", a.authed(false, a.sendEvent))
	client("PUT", "/rooms/{roomId}/state/{eventType}", a.authed(false, a.putState))
	client("PUT", "/rooms/{roomId}/state/{eventType}/{stateKey...}", a.authed(false, a.putState))
	client("GET", "/rooms/{roomId}/state/{eventType}", a.authed(false, a.getState))
	client("GET", "/rooms/{roomId}/state/{eventType}/{stateKey...}", a.authed(false, a.getState))
	client("GET", "/rooms/{roomId}/state", a.authed(false, a.getAllState))
	client("PUT", "/rooms/{roomId}/redact/{eventId}/{txnId}", a.authed(false, a.redact))
}

// roomIDParam validates the {roomId} path value.
func roomIDParam(r *http.Request) (string, error) {
	rid := r.PathValue("roomId")
	if _, err := id.ParseRoomID(rid); err != nil {
		return "", httpx.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid room ID %q", rid)
	}
	return rid, nil
}

// readObject reads an optional JSON object body (an empty body is {}).
func readObject(r *http.Request) (map[string]any, error) {
	if r.ContentLength == 0 {
		return map[string]any{}, nil
	}
	return httpx.ReadJSONMap(r)
}

func (a *API) createRoom(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	body, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	roomID, err := a.rooms.CreateRoom(r.Context(), req, body)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"room_id": roomID})
	return nil
}

func (a *API) joinRoomOrAlias(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	target := r.PathValue("roomIdOrAlias")
	if strings.HasPrefix(target, "#") {
		if _, err := id.ParseRoomAlias(target); err != nil {
			return httpx.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%s was not legal room ID or room alias", target)
		}
		roomID, err := a.rooms.ResolveAlias(r.Context(), target)
		if err != nil {
			return err
		}
		return a.join(w, r, req, roomID)
	}
	if _, err := id.ParseRoomID(target); err != nil {
		return httpx.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%s was not legal room ID or room alias", target)
	}
	return a.join(w, r, req, target)
}

func (a *API) joinRoom(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	return a.join(w, r, req, roomID)
}

func (a *API) join(w http.ResponseWriter, r *http.Request, req accounts.Requester, roomID string) error {
	body, err := readObject(r)
	if err != nil {
		return err
	}
	reason, _ := body["reason"].(string)
	if _, err := a.rooms.ChangeMembership(r.Context(), rooms.MembershipParams{Requester: req, RoomID: roomID,
		Target: req.UserID, Membership: "join", Reason: reason}); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"room_id": roomID})
	return nil
}

// membershipOf handles invite, kick, ban and unban: {user_id, reason}.
func (a *API) membershipOf(action string) authedFunc {
	return func(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
		roomID, err := roomIDParam(r)
		if err != nil {
			return err
		}
		body, err := readObject(r)
		if err != nil {
			return err
		}
		target, ok := body["user_id"].(string)
		if !ok {
			return httpx.NewError(http.StatusBadRequest, "M_MISSING_PARAM", "Missing params: ['user_id']")
		}
		if _, err := id.ParseUserID(target); err != nil {
			return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid user_id: "+target)
		}
		reason, _ := body["reason"].(string)
		membership := map[string]string{"invite": "invite", "kick": "leave", "ban": "ban", "unban": "leave"}[action]
		var act string
		if action == "kick" || action == "unban" {
			act = action
		}
		if _, err := a.rooms.ChangeMembership(r.Context(), rooms.MembershipParams{Requester: req, RoomID: roomID,
			Target: target, Membership: membership, Action: act, Reason: reason}); err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{})
		return nil
	}
}

func (a *API) leaveRoom(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	body, err := readObject(r)
	if err != nil {
		return err
	}
	reason, _ := body["reason"].(string)
	if _, err := a.rooms.ChangeMembership(r.Context(), rooms.MembershipParams{Requester: req, RoomID: roomID,
		Target: req.UserID, Membership: "leave", Reason: reason}); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

func (a *API) forgetRoom(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	if err := a.rooms.Forget(r.Context(), req.UserID, roomID); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

func (a *API) joinedRooms(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	ids, err := a.rooms.JoinedRooms(r.Context(), req.UserID)
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []string{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"joined_rooms": ids})
	return nil
}

func (a *API) members(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	evs, err := a.rooms.Members(r.Context(), req.UserID, roomID, false)
	if err != nil {
		return err
	}
	chunk := make([]map[string]any, 0, len(evs))
	for _, e := range evs {
		chunk = append(chunk, rooms.ClientFormat(e, "", nowMillis()))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"chunk": chunk})
	return nil
}

func (a *API) joinedMembers(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	evs, err := a.rooms.Members(r.Context(), req.UserID, roomID, true)
	if err != nil {
		return err
	}
	joined := make(map[string]any, len(evs))
	for _, e := range evs {
		k, _ := e.StateKey()
		joined[k] = map[string]any{"display_name": nullable(e.ContentString("displayname")), "avatar_url": nullable(e.ContentString("avatar_url"))}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"joined": joined})
	return nil
}

func (a *API) sendEvent(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	content, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	eventID, err := a.rooms.Send(r.Context(), rooms.SendParams{Requester: req, RoomID: roomID,
		Type: r.PathValue("eventType"), Content: content, TxnID: r.PathValue("txnId")})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"event_id": eventID})
	return nil
}

func (a *API) putState(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	content, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	eventID, err := a.rooms.SetState(r.Context(), req, roomID, r.PathValue("eventType"), r.PathValue("stateKey"), content)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"event_id": eventID})
	return nil
}

func (a *API) getState(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	content, err := a.rooms.StateEvent(r.Context(), req.UserID, roomID, r.PathValue("eventType"), r.PathValue("stateKey"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, content)
	return nil
}

func (a *API) getAllState(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	state, err := a.rooms.State(r.Context(), req.UserID, roomID)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, state)
	return nil
}

func (a *API) redact(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	roomID, err := roomIDParam(r)
	if err != nil {
		return err
	}
	body, err := readObject(r)
	if err != nil {
		return err
	}
	content := map[string]any{}
	if reason, ok := body["reason"].(string); ok {
		content["reason"] = reason
	}
	eventID, err := a.rooms.Send(r.Context(), rooms.SendParams{Requester: req, RoomID: roomID, Type: "m.room.redaction",
		Content: content, Redacts: r.PathValue("eventId"), TxnID: "redact:" + r.PathValue("txnId")})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"event_id": eventID})
	return nil
}
