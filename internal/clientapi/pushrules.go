package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/pushrules"
)

// registerPushRules adds the push rule reads clients make at start-up.
// Changing rules (PUT, DELETE, enabled, actions) is not served yet and
// answers M_UNRECOGNIZED.
func (a *API) registerPushRules(client func(method, path string, h http.Handler)) {
	client("GET", "/pushrules/{$}", a.authed(false, a.pushRules))
	client("GET", "/pushrules/global/{$}", a.authed(false, a.pushRulesGlobal))
}

// pushRules is GET /pushrules/: every scope's rules (only "global" exists).
func (a *API) pushRules(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	httpx.WriteJSON(w, http.StatusOK, map[string]json.RawMessage{"global": pushrules.Defaults(req.UserID)})
	return nil
}

// pushRulesGlobal is GET /pushrules/global/.
func (a *API) pushRulesGlobal(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	httpx.WriteJSON(w, http.StatusOK, pushrules.Defaults(req.UserID))
	return nil
}
