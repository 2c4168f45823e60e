package clientapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/module"
)

const maxParamLength = 512

// register is POST /register, in Synapse's order of checks.
func (a *API) register(w http.ResponseWriter, r *http.Request) error {
	raw, err := httpx.ReadJSONObject(r)
	if err != nil {
		return err
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return httpx.ErrNotJSON()
	}
	switch kind := r.URL.Query().Get("kind"); kind {
	case "", "user":
	case "guest":
		return httpx.NewError(http.StatusForbidden, "M_UNKNOWN", "Guest access is disabled")
	default:
		return httpx.Errorf(http.StatusBadRequest, "M_UNRECOGNIZED", "Do not understand membership kind: %s", kind)
	}
	var username string
	if v, ok := body["username"]; ok && v != nil {
		s, isStr := v.(string)
		if !isStr || len(s) > maxParamLength {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid username")
		}
		username = strings.ToLower(s)
	}
	if _, err := accounts.AccessToken(r); err == nil {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN",
			"An access token should not be provided on requests to /register (except if type is m.login.application_service)")
	}
	if !a.opts.EnableRegistration {
		return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "Registration has been disabled")
	}
	var password string
	if v, ok := body["password"]; ok && v != nil {
		s, isStr := v.(string)
		if !isStr || len(s) > maxParamLength {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid password")
		}
		password = s
	}
	sessParams, err := sessionParams(r, body)
	if err != nil {
		return err
	}
	// The username is checked before the UIA dance, so that a taken or
	// invalid name fails on the first request.
	if username != "" {
		sess, _, err := a.loadUIASession(r, body)
		if err != nil {
			return err
		}
		// A retry of a session that already registered this user is fine.
		var registered string
		_ = json.Unmarshal(sess.Completed[dataRegisteredUser], &registered)
		if registered != a.accounts.UserID(username) {
			if err := a.accounts.CheckUsername(r.Context(), username); err != nil {
				return err
			}
		}
	}
	clientDict := make(map[string]any, len(body))
	for k, v := range body {
		if k != "auth" && k != "password" {
			clientDict[k] = v
		}
	}
	res, err := a.checkUIA(r, body, clientDict, [][]string{{"m.login.dummy"}}, map[string]stageChecker{"m.login.dummy": dummyStage})
	if ch, isChallenge := err.(*uiaChallenge); isChallenge && password != "" {
		// Keep the password's hash, never the password, for the next round.
		hash, herr := a.accounts.HashPassword(password)
		if herr != nil {
			return herr
		}
		hb, _ := json.Marshal(hash)
		if serr := a.store.CompleteUIAStage(r.Context(), ch.Session, dataPasswordHash, hb); serr != nil {
			return serr
		}
		return ch
	}
	if err != nil {
		return err
	}
	ctx := r.Context()
	inhibit, _ := res.params["inhibit_login"].(bool)
	var sess accounts.Session
	if prev, ok := res.session.Completed[dataRegisteredUser]; ok {
		// This session already registered its user: only log in again.
		var userID string
		_ = json.Unmarshal(prev, &userID)
		sess = accounts.Session{UserID: userID}
		if !inhibit {
			if sess, err = a.accounts.NewSession(ctx, userID, *sessParams); err != nil {
				return err
			}
		}
	} else {
		var hash string
		if password == "" {
			if h, ok := res.session.Completed[dataPasswordHash]; ok {
				_ = json.Unmarshal(h, &hash)
			}
			if hash == "" {
				return httpx.NewError(http.StatusBadRequest, "M_MISSING_PARAM", "Missing params: password")
			}
		}
		if username == "" {
			if u, ok := res.params["username"].(string); ok {
				username = strings.ToLower(u)
			}
		}
		p := accounts.RegisterParams{
			Localpart:    username,
			Password:     password,
			PasswordHash: hash,
			RequestInfo:  []module.RequestInfo{{UserAgent: r.UserAgent(), IP: requestIP(r)}},
		}
		if !inhibit {
			p.Session = sessParams
		}
		if sess, err = a.accounts.Register(ctx, p); err != nil {
			return err
		}
		ub, _ := json.Marshal(sess.UserID)
		if err := a.store.CompleteUIAStage(ctx, res.session.ID, dataRegisteredUser, ub); err != nil {
			return err
		}
	}
	out := map[string]any{"user_id": sess.UserID, "home_server": a.opts.ServerName}
	if !inhibit {
		out["access_token"] = sess.AccessToken
		out["device_id"] = sess.DeviceID
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// sessionParams reads device_id and initial_device_display_name.
func sessionParams(r *http.Request, body map[string]any) (*accounts.SessionParams, error) {
	p := &accounts.SessionParams{IP: requestIP(r), UserAgent: r.UserAgent()}
	if v, ok := body["device_id"]; ok && v != nil {
		s, isStr := v.(string)
		if !isStr {
			return nil, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "device_id must be a string")
		}
		if len(s) > maxParamLength {
			return nil, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "device_id cannot be longer than 512 characters.")
		}
		p.DeviceID = s
	}
	if v, ok := body["initial_device_display_name"]; ok && v != nil {
		s, isStr := v.(string)
		if !isStr {
			return nil, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "initial_device_display_name must be a string")
		}
		if len(s) > 100 {
			return nil, httpx.NewError(http.StatusBadRequest, "M_TOO_LARGE", "Device display name is too long (max 100)")
		}
		p.DisplayName = s
	}
	return p, nil
}

// registerAvailable is GET /register/available.
func (a *API) registerAvailable(w http.ResponseWriter, r *http.Request) error {
	if !a.opts.EnableRegistration {
		return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "Registration has been disabled")
	}
	q := r.URL.Query()
	if _, ok := q["username"]; !ok {
		return httpx.NewError(http.StatusBadRequest, "M_MISSING_PARAM", "Missing string query parameter 'username'")
	}
	// Synapse does not lower-case here: "Alice" is an invalid username.
	if err := a.accounts.CheckUsername(r.Context(), q.Get("username")); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"available": true})
	return nil
}
