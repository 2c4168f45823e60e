package clientapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/storage"
)

// uiaSessionLifetime is Synapse's: sessions older than 48 hours are gone.
const uiaSessionLifetime = 48 * time.Hour

// Server-side data kept in a UIA session next to the completed stages.
// Stage types never start with "_", so these keys cannot collide.
const (
	dataPasswordHash   = "_password_hash"
	dataRegisteredUser = "_registered_user_id"
	// dataClientDict is the latest non-empty client dict of a follow-up
	// request: Synapse replaces the session's client dict with it.
	dataClientDict = "_clientdict"
)

// uiaChallenge is the 401 that asks the client to authenticate (not an
// errcode-only Matrix error: its body has flows, params, session).
type uiaChallenge struct {
	Session   string
	Flows     [][]string
	Completed []string
	Err       *httpx.Error // set when a stage attempt failed
}

func (c *uiaChallenge) Error() string { return "user-interactive authentication required" }

func (c *uiaChallenge) body() map[string]any {
	flows := make([]map[string]any, len(c.Flows))
	for i, f := range c.Flows {
		flows[i] = map[string]any{"stages": f}
	}
	b := map[string]any{"session": c.Session, "flows": flows, "params": map[string]any{}}
	if c.Completed != nil {
		b["completed"] = c.Completed
	}
	if c.Err != nil {
		b["errcode"] = c.Err.Code
		b["error"] = c.Err.Message
	}
	return b
}

// stageChecker checks one stage's auth dict and returns its result.
// Returning an *httpx.Error with status 401/403 is a failed attempt (the
// client may retry in the same session); any other error ends the request.
type stageChecker func(r *http.Request, auth map[string]any) (json.RawMessage, error)

// uiaResult is a completed user-interactive authentication.
type uiaResult struct {
	session storage.UIASession
	params  map[string]any // the request body the session was started with
}

// loadUIASession returns the session named in the body's auth dict, or a
// zero session when there is none. Unknown sessions are 400, as in Synapse.
func (a *API) loadUIASession(r *http.Request, body map[string]any) (storage.UIASession, bool, error) {
	auth, _ := body["auth"].(map[string]any)
	sid, _ := auth["session"].(string)
	if err := noNUL("auth.session", sid); err != nil {
		return storage.UIASession{}, false, err
	}
	if sid == "" {
		return storage.UIASession{}, false, nil
	}
	s, err := a.store.GetUIASession(r.Context(), sid)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && time.UnixMilli(s.CreatedTS).Add(uiaSessionLifetime).Before(time.Now())) {
		return storage.UIASession{}, false, httpx.Errorf(http.StatusBadRequest, "M_UNKNOWN", "Unknown session ID: %s", sid)
	}
	if err != nil {
		return storage.UIASession{}, false, err
	}
	if s.URI != r.URL.Path || s.Method != r.Method {
		return storage.UIASession{}, false, httpx.NewError(http.StatusForbidden, "M_UNKNOWN",
			"Requested operation has changed during the UI authentication session.")
	}
	return s, true, nil
}

// checkUIA runs the user-interactive authentication dance of the spec:
// without a completed flow it answers with a *uiaChallenge (401).
// clientDict is the body without "auth" (and without secrets).
func (a *API) checkUIA(r *http.Request, body, clientDict map[string]any, flows [][]string, checkers map[string]stageChecker) (*uiaResult, error) {
	ctx := r.Context()
	sess, ok, err := a.loadUIASession(r, body)
	if err != nil {
		return nil, err
	}
	if !ok {
		raw, _ := json.Marshal(clientDict)
		sess = storage.UIASession{ID: accounts.RandomString(24), CreatedTS: time.Now().UnixMilli(),
			Method: r.Method, URI: r.URL.Path, Body: raw, Completed: map[string]json.RawMessage{}}
		if err := a.store.CreateUIASession(ctx, sess); err != nil {
			return nil, err
		}
	}
	params := clientDict
	if ok {
		if len(clientDict) == 0 {
			// A follow-up request may carry only "auth": use the
			// session's client dict.
			raw := sess.Body
			if latest, has := sess.Completed[dataClientDict]; has {
				raw = latest
			}
			params = map[string]any{}
			_ = json.Unmarshal(raw, &params)
		} else {
			raw, _ := json.Marshal(clientDict)
			if err := a.store.CompleteUIAStage(ctx, sess.ID, dataClientDict, raw); err != nil {
				return nil, err
			}
		}
	}
	challenge := &uiaChallenge{Session: sess.ID, Flows: flows}
	// Synapse lists the completed stages only when the request had an
	// auth dict; without one the answer is the bare challenge.
	if auth, _ := body["auth"].(map[string]any); len(auth) > 0 {
		if typ, _ := auth["type"].(string); typ != "" {
			check, known := checkers[typ]
			if !known {
				return nil, httpx.Errorf(http.StatusBadRequest, "M_UNRECOGNIZED", "Unrecognised login type %s", typ)
			}
			res, err := check(r, auth)
			var me *httpx.Error
			switch {
			case err == nil:
				if err := a.store.CompleteUIAStage(ctx, sess.ID, typ, res); err != nil {
					return nil, err
				}
				sess.Completed[typ] = res
			case errors.As(err, &me) && (me.Status == http.StatusUnauthorized || me.Status == http.StatusForbidden):
				challenge.Err = me
			default:
				return nil, err
			}
		}
		challenge.Completed = completedStages(sess)
	}
	for _, f := range flows {
		done := true
		for _, st := range f {
			if _, ok := sess.Completed[st]; !ok {
				done = false
				break
			}
		}
		if done {
			return &uiaResult{session: sess, params: params}, nil
		}
	}
	return nil, challenge
}

func completedStages(s storage.UIASession) []string {
	out := []string{}
	for k := range s.Completed {
		if !strings.HasPrefix(k, "_") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// dummyStage is m.login.dummy: always succeeds.
func dummyStage(*http.Request, map[string]any) (json.RawMessage, error) {
	return json.RawMessage(`true`), nil
}

// passwordStage is m.login.password (Synapse's validate_login with
// is_reauth): the password is checked for type before the identifier. The
// stage's result is the canonical user ID it authenticated; the caller
// compares it with the requester.
func (a *API) passwordStage(r *http.Request, auth map[string]any) (json.RawMessage, error) {
	password, ok := auth["password"].(string)
	if !ok {
		return nil, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Bad parameter: password")
	}
	user, err := loginUser(auth)
	if err != nil {
		return nil, err
	}
	got, err := a.accounts.CheckCredentials(r.Context(), user, password)
	if err != nil {
		return nil, err
	}
	return json.Marshal(got)
}

// loginUser reads the user of a login submission as Synapse's
// convert_client_dict_legacy_fields_to_identifier does: a legacy top-level
// "user" replaces "identifier", and top-level "medium" and "address"
// replace both.
func loginUser(d map[string]any) (string, error) {
	id, _ := d["identifier"].(map[string]any)
	if u, _ := d["user"].(string); u != "" {
		if err := noNUL("user", u); err != nil {
			return "", err
		}
		id = map[string]any{"type": "m.id.user", "user": u}
	}
	medium, _ := d["medium"].(string)
	address, _ := d["address"].(string)
	if medium != "" && address != "" {
		id = map[string]any{"type": "m.id.thirdparty", "medium": medium, "address": address}
	}
	if len(id) == 0 {
		return "", httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid login submission")
	}
	typ, ok := id["type"].(string)
	if !ok {
		return "", httpx.NewError(http.StatusBadRequest, "M_MISSING_PARAM", "'identifier' dict has no key 'type'")
	}
	switch typ {
	case "m.id.user":
	case "m.id.phone":
		_, hasCountry := id["country"]
		_, hasPhone := id["phone"]
		_, hasNumber := id["number"]
		if !hasCountry || !(hasPhone || hasNumber) {
			return "", httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid phone-type identifier")
		}
		// No phone numbers are bound on this server.
		return "", accounts.ErrBadLogin()
	case "m.id.thirdparty":
		if id["medium"] == nil || id["address"] == nil {
			return "", httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid thirdparty identifier")
		}
		// No third-party identifiers are bound on this server.
		return "", accounts.ErrBadLogin()
	default:
		return "", httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Unknown login identifier type")
	}
	u, _ := id["user"].(string)
	if err := noNUL("identifier.user", u); err != nil {
		return "", err
	}
	if u == "" {
		return "", httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "User identifier is missing 'user' key")
	}
	return u, nil
}
