package clientapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/module"
)

const maxParamLength = 512

// register is POST /register, in Synapse's order of checks.
func (a *API) register(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	switch kind := r.URL.Query().Get("kind"); kind {
	case "", "user":
	case "guest":
		return httpx.NewError(http.StatusForbidden, "M_UNKNOWN", "Guest access is disabled")
	default:
		return httpx.Errorf(http.StatusBadRequest, "M_UNRECOGNIZED", "Do not understand membership kind: %s", kind)
	}
	if v, ok := body["refresh_token"]; ok {
		if _, isBool := v.(bool); !isBool {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "`refresh_token` should be true or false.")
		}
	}
	// A "username" key is validated whatever its value: null is not a
	// string and "" is an empty user ID, as in Synapse.
	v, hasUsername := body["username"]
	var username string
	if hasUsername {
		s, isStr := v.(string)
		if !isStr || utf8.RuneCountInString(s) > maxParamLength {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid username")
		}
		username = accounts.LowerASCII(s)
	}
	if accounts.HasAccessToken(r) {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN",
			"An access token should not be provided on requests to /register (except if type is m.login.application_service)")
	}
	// rc_registration: checked here, counted when an account is made.
	if ok, wait := a.opts.RegistrationLimiter.Check(requestIP(r)); !ok {
		return httpx.LimitExceeded(wait)
	}
	if !a.opts.EnableRegistration {
		return httpx.NewError(http.StatusForbidden, "M_FORBIDDEN", "Registration has been disabled")
	}
	var password string
	if v, ok := body["password"]; ok && v != nil {
		s, isStr := v.(string)
		if !isStr || utf8.RuneCountInString(s) > maxParamLength {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid password")
		}
		password = s
	}
	// The client dict kept in the UIA session: the body without auth and
	// the password (never stored), and without a display name sent with no
	// password (a client bug Synapse works around).
	clientDict := make(map[string]any, len(body))
	for k, v := range body {
		if k == "auth" || k == "password" || (k == "initial_device_display_name" && password == "") {
			continue
		}
		clientDict[k] = v
	}
	sess, _, err := a.loadUIASession(r, body)
	if err != nil {
		return err
	}
	var registered string
	_ = json.Unmarshal(sess.Completed[dataRegisteredUser], &registered)
	// The username is checked before the UIA dance, so that a taken or
	// invalid name fails on the first request.
	if hasUsername {
		if err := a.checkUsername(r, username, registered); err != nil {
			return err
		}
	}
	res, err := a.checkUIA(r, body, clientDict, [][]string{{"m.login.dummy"}}, map[string]stageChecker{"m.login.dummy": dummyStage})
	if ch, isChallenge := err.(*uiaChallenge); isChallenge {
		if _, stored := sess.Completed[dataPasswordHash]; !stored && password != "" && ch.Session != "" {
			if err := a.storePasswordHash(r, ch.Session, password); err != nil {
				return err
			}
		}
		return ch
	}
	if err != nil {
		return err
	}
	ctx := r.Context()
	// device_id, initial_device_display_name and inhibit_login come from
	// the session's client dict when this request carried only "auth".
	sessParams, err := sessionParams(r, res.params)
	if err != nil {
		return err
	}
	inhibit := truthy(res.params["inhibit_login"])
	var out accounts.Session
	if prev, ok := res.session.Completed[dataRegisteredUser]; ok {
		// This session already registered its user: only log in again.
		var userID string
		_ = json.Unmarshal(prev, &userID)
		out = accounts.Session{UserID: userID}
		if !inhibit {
			if out, err = a.accounts.NewSession(ctx, userID, *sessParams); err != nil {
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
		// No username (or null) means a generated one, as in Synapse.
		localpart, named := res.params["username"].(string)
		p := accounts.RegisterParams{
			Localpart:         accounts.LowerASCII(localpart),
			GenerateLocalpart: !named,
			Password:          password,
			PasswordHash:      hash,
			RequestInfo:       []module.RequestInfo{{UserAgent: r.UserAgent(), IP: requestIP(r)}},
		}
		if out, err = a.accounts.Register(ctx, p); err != nil {
			return err
		}
		a.opts.RegistrationLimiter.Allow(requestIP(r))
		// Record the user before creating the device, as Synapse does: if
		// anything fails after this, a retry in the session logs in again
		// instead of hitting M_USER_IN_USE.
		ub, _ := json.Marshal(out.UserID)
		if err := a.store.CompleteUIAStage(ctx, res.session.ID, dataRegisteredUser, ub); err != nil {
			return err
		}
		if !inhibit {
			if out, err = a.accounts.NewSession(ctx, out.UserID, *sessParams); err != nil {
				return err
			}
		}
	}
	resp := map[string]any{"user_id": out.UserID, "home_server": a.opts.ServerName}
	if !inhibit {
		resp["access_token"] = out.AccessToken
		resp["device_id"] = out.DeviceID
	}
	httpx.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// checkUsername is Synapse's check_username with the session's already
// registered user: the same user ID passes, another one is an error.
func (a *API) checkUsername(r *http.Request, localpart, registered string) error {
	if registered != "" {
		if err := accounts.CheckLocalpartSyntax(localpart); err != nil {
			return err
		}
		if a.accounts.UserID(localpart) == registered {
			return nil
		}
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "A different user ID has already been registered for this session")
	}
	return a.accounts.CheckUsername(r.Context(), localpart)
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
		if err := noNUL("device_id", s); err != nil {
			return nil, err
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
		if err := noNUL("initial_device_display_name", s); err != nil {
			return nil, err
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
	for _, c := range []byte(q.Get("username")) {
		if c >= 0x80 {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Query parameter 'username' must be ascii")
		}
	}
	if err := a.accounts.CheckUsername(r.Context(), q.Get("username")); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"available": true})
	return nil
}

// noNUL refuses strings with NUL characters: PostgreSQL cannot store them,
// and no identifier or name needs one.
func noNUL(field, s string) error {
	if strings.ContainsRune(s, 0) {
		return httpx.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%s must not contain NUL characters", field)
	}
	return nil
}
