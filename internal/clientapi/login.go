package clientapi

import (
	"encoding/json"
	"net/http"
	"unicode/utf8"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
)

const loginTypePassword = "m.login.password"

func (a *API) loginFlows(w http.ResponseWriter, r *http.Request) error {
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"flows": []map[string]any{{"type": loginTypePassword}}})
	return nil
}

// login is POST /login with m.login.password, in Synapse's order of checks.
func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	if v, ok := body["refresh_token"]; ok {
		if _, isBool := v.(bool); !isBool {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "`refresh_token` should be true or false.")
		}
	}
	tv, ok := body["type"]
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Missing JSON keys.")
	}
	typ, ok := tv.(string)
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Bad parameter: type")
	}
	// Synapse's validate_login: the password (for m.login.password), then
	// the identifier, and only then an unknown login type.
	password, ok := body["password"].(string)
	if typ == loginTypePassword && !ok {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Bad parameter: password")
	}
	user, err := loginUser(body)
	if err != nil {
		return err
	}
	if typ != loginTypePassword {
		return httpx.Errorf(http.StatusBadRequest, "M_UNKNOWN", "Unknown login type %s", typ)
	}
	sp, err := sessionParams(r, body)
	if err != nil {
		return err
	}
	sess, err := a.accounts.Login(r.Context(), accounts.LoginParams{
		User: user, Password: password, LoginType: typ,
		DeviceID: sp.DeviceID, InitialDisplayName: sp.DisplayName, IP: sp.IP, UserAgent: sp.UserAgent,
	})
	if err != nil {
		return err
	}
	httpx.InfoFrom(r.Context()).UserID = sess.UserID
	out := map[string]any{
		"user_id":      sess.UserID,
		"access_token": sess.AccessToken,
		"device_id":    sess.DeviceID,
		"home_server":  a.opts.ServerName,
	}
	if a.opts.PublicBaseURL != "" {
		out["well_known"] = a.wellKnownBody()
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) logout(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	if err := a.accounts.Logout(r.Context(), req); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

func (a *API) logoutAll(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	if err := a.accounts.LogoutAll(r.Context(), req.UserID); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	out := map[string]any{"user_id": req.UserID, "is_guest": req.IsGuest}
	if req.DeviceID != "" {
		out["device_id"] = req.DeviceID
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) devices(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	devs, err := a.accounts.Devices(r.Context(), req.UserID)
	if err != nil {
		return err
	}
	list := make([]map[string]any, 0, len(devs))
	for _, d := range devs {
		list = append(list, map[string]any{
			"user_id":      d.UserID,
			"device_id":    d.DeviceID,
			"display_name": nullable(d.DisplayName),
			"last_seen_ip": nullable(d.LastSeenIP),
			"last_seen_ts": nullableTS(d.LastSeenTS),
		})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"devices": list})
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullableTS(ts int64) any {
	if ts == 0 {
		return nil
	}
	return ts
}

// password is POST /account/password, in Synapse's order: the body is
// validated first; with an access token the user re-authenticates with
// m.login.password; without one the only flow is an email stage, which
// Sluice cannot complete (it sends no email). Other devices are logged out
// unless logout_devices is false.
func (a *API) password(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	// Synapse validates the body with a strict model; a value of the wrong
	// type is M_BAD_JSON (its message is pydantic's, not reproducible).
	var newPassword string
	if v, ok := body["new_password"]; ok && v != nil {
		s, isStr := v.(string)
		if !isStr || utf8.RuneCountInString(s) > maxParamLength {
			return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "new_password must be a string of at most 512 characters")
		}
		newPassword = s
	}
	clientDict := map[string]any{}
	if v, ok := body["logout_devices"]; ok {
		if _, isBool := v.(bool); !isBool {
			return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "logout_devices must be a boolean")
		}
		clientDict["logout_devices"] = v
	}
	if v, ok := body["auth"]; ok && v != nil {
		auth, isObj := v.(map[string]any)
		if !isObj {
			return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "auth must be an object")
		}
		for _, k := range []string{"type", "session"} {
			if f, has := auth[k]; has && f != nil {
				if _, isStr := f.(string); !isStr {
					return httpx.Errorf(http.StatusBadRequest, "M_BAD_JSON", "auth.%s must be a string", k)
				}
			}
		}
	}
	if !accounts.HasAccessToken(r) {
		_, err := a.checkUIA(r, body, clientDict, [][]string{{"m.login.email.identity"}}, map[string]stageChecker{})
		return err
	}
	req, err := a.accounts.Authenticate(r, false)
	if err != nil {
		return err
	}
	res, err := a.checkUIA(r, body, clientDict, [][]string{{loginTypePassword}},
		map[string]stageChecker{loginTypePassword: a.passwordStage})
	if ch, isChallenge := err.(*uiaChallenge); isChallenge && newPassword != "" {
		// Keep the new password's hash (never the password) for the
		// request that completes the dance.
		sess, _ := a.store.GetUIASession(r.Context(), ch.Session)
		if _, stored := sess.Completed[dataPasswordHash]; !stored {
			if err := a.storePasswordHash(r, ch.Session, newPassword); err != nil {
				return err
			}
		}
		return ch
	}
	if err != nil {
		return err
	}
	var authenticated string
	_ = json.Unmarshal(res.session.Completed[loginTypePassword], &authenticated)
	if authenticated != req.UserID {
		return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "Invalid auth")
	}
	var hash string
	if newPassword != "" {
		if hash, err = a.accounts.HashPassword(newPassword); err != nil {
			return err
		}
	} else if h, ok := res.session.Completed[dataPasswordHash]; ok {
		_ = json.Unmarshal(h, &hash)
	}
	if hash == "" {
		return httpx.NewError(http.StatusBadRequest, "M_MISSING_PARAM", "Missing params: password")
	}
	logoutDevices := true
	if b, ok := res.params["logout_devices"].(bool); ok {
		logoutDevices = b
	}
	if err := a.accounts.SetPasswordHash(r.Context(), req.UserID, hash, logoutDevices, req.DeviceID); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// storePasswordHash keeps a password's bcrypt hash in a UIA session.
func (a *API) storePasswordHash(r *http.Request, session, password string) error {
	hash, err := a.accounts.HashPassword(password)
	if err != nil {
		return err
	}
	hb, _ := json.Marshal(hash)
	return a.store.CompleteUIAStage(r.Context(), session, dataPasswordHash, hb)
}
