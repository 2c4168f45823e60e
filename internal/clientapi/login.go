package clientapi

import (
	"encoding/json"
	"net/http"

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
	raw, err := httpx.ReadJSONObject(r)
	if err != nil {
		return err
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return httpx.ErrNotJSON()
	}
	tv, ok := body["type"]
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Missing JSON keys.")
	}
	typ, ok := tv.(string)
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Bad parameter: type")
	}
	if typ != loginTypePassword {
		return httpx.Errorf(http.StatusBadRequest, "M_UNKNOWN", "Unknown login type %s", typ)
	}
	password, ok := body["password"].(string)
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Bad parameter: password")
	}
	user, err := loginUser(body)
	if err != nil {
		return err
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

// password is POST /account/password: UIA with m.login.password for the
// token's user, then the new password; other devices are logged out unless
// logout_devices is false.
func (a *API) password(w http.ResponseWriter, r *http.Request) error {
	// The spec lets a client without a session reset its password through
	// an email stage; Sluice has no email, so a token is required.
	req, err := a.accounts.Authenticate(r, false)
	if err != nil {
		return err
	}
	raw, err := httpx.ReadJSONObject(r)
	if err != nil {
		return err
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return httpx.ErrNotJSON()
	}
	var newPassword string
	if v, ok := body["new_password"]; ok && v != nil {
		s, isStr := v.(string)
		if !isStr || len(s) > maxParamLength {
			return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "new_password must be a string of at most 512 characters")
		}
		newPassword = s
	}
	logoutDevices := true
	if v, ok := body["logout_devices"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "logout_devices must be a boolean")
		}
		logoutDevices = b
	}
	clientDict := map[string]any{"logout_devices": logoutDevices}
	_, err = a.checkUIA(r, body, clientDict, [][]string{{loginTypePassword}},
		map[string]stageChecker{loginTypePassword: a.passwordStage(req.UserID)})
	if err != nil {
		return err
	}
	if newPassword == "" {
		return httpx.NewError(http.StatusBadRequest, "M_MISSING_PARAM", "Missing params: password")
	}
	if err := a.accounts.SetPassword(r.Context(), req.UserID, newPassword, logoutDevices, req.DeviceID); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}
