package example

import (
	"context"
	"net/http"
	"slices"

	"github.com/sluice-im/sluice/module"
)

func init() {
	module.Register("example.ListSpamChecker", module.Factory{ParseConfig: parseListConfig, New: newListSpamChecker})
}

// ListSpamChecker is the example of Synapse's spam checker page: it rejects
// every event sent by a user listed in evil_users, and serves
// /_synapse/client/list_spam_checker/is_evil?user=X → {"evil": bool}.
//
// The seed's Python returns `event.sender not in self.evil_users`, which in
// the deprecated bool form (True = spam) would reject everyone except the
// evil users: the opposite of its own prose. This module does what the
// prose says: evil users' events are rejected, everyone else's pass.
type ListSpamChecker struct {
	evil []string
}

type listConfig struct {
	EvilUsers []string `yaml:"evil_users"`
}

func parseListConfig(raw module.RawConfig) (any, error) {
	var c listConfig
	if err := raw.Decode(&c); err != nil {
		return nil, err
	}
	return c, nil
}

func newListSpamChecker(config any, api *module.API) (any, error) {
	c := config.(listConfig)
	m := &ListSpamChecker{evil: c.EvilUsers}
	if err := api.RegisterSpamCheckerCallbacks(module.SpamCheckerCallbacks{CheckEventForSpam: m.checkEventForSpam}); err != nil {
		return nil, err
	}
	if err := api.RegisterWebResource("/_synapse/client/list_spam_checker/is_evil", http.HandlerFunc(m.isEvil)); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *ListSpamChecker) checkEventForSpam(_ context.Context, ev module.Event) (module.Decision, error) {
	if slices.Contains(m.evil, ev.Sender()) {
		return module.Deny(module.CodeForbidden), nil
	}
	return module.Allow, nil
}

func (m *ListSpamChecker) isEvil(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		module.RespondError(w, &module.Error{Status: http.StatusMethodNotAllowed, Code: "M_UNRECOGNIZED", Message: "Unrecognized request"})
		return
	}
	users, ok := r.URL.Query()["user"]
	if !ok || len(users) == 0 {
		module.RespondError(w, &module.Error{Status: http.StatusBadRequest, Code: "M_MISSING_PARAM", Message: "Missing string query parameter 'user'"})
		return
	}
	module.RespondJSON(w, http.StatusOK, map[string]bool{"evil": slices.Contains(m.evil, users[0])})
}
