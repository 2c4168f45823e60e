// Package example holds the example modules of Synapse's module docs,
// ported to Go with the same behaviour.
package example

import (
	"context"
	"net/http"

	"github.com/sluice-im/sluice/module"
)

func init() {
	module.Register("example.DemoModule", module.Factory{New: newDemo})
}

// Demo is the "Example" of Synapse's modules page: a web resource that
// greets, and a user_may_create_room callback that refuses one user.
type Demo struct {
	api  *module.API
	evil string
}

func newDemo(config any, api *module.API) (any, error) {
	d := &Demo{api: api, evil: "@evilguy:" + api.ServerName()}
	if err := api.RegisterWebResource("/_synapse/client/demo/hello", http.HandlerFunc(d.hello)); err != nil {
		return nil, err
	}
	err := api.RegisterSpamCheckerCallbacks(module.SpamCheckerCallbacks{UserMayCreateRoom: d.userMayCreateRoom})
	return d, err
}

// hello answers GET ?name=X with {"hello": "X"}.
func (d *Demo) hello(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		module.RespondError(w, &module.Error{Status: http.StatusMethodNotAllowed, Code: "M_UNRECOGNIZED", Message: "Unrecognized request"})
		return
	}
	names, ok := r.URL.Query()["name"]
	if !ok || len(names) == 0 {
		module.RespondError(w, &module.Error{Status: http.StatusBadRequest, Code: "M_MISSING_PARAM", Message: "Missing string query parameter 'name'"})
		return
	}
	module.RespondJSON(w, http.StatusOK, map[string]string{"hello": names[0]})
}

func (d *Demo) userMayCreateRoom(_ context.Context, userID string, _ map[string]any) (module.Decision, error) {
	if userID == d.evil {
		return module.Deny(module.CodeForbidden), nil
	}
	return module.Allow, nil
}
