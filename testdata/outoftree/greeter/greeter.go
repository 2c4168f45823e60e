// Package greeter is an out-of-tree Sluice module: it lives in its own Go
// module and only imports Sluice's public module API.
//
//	modules:
//	  - module: acme.Greeter
//	    config: {greeting: Hello}
//
// GET /_synapse/client/greeter/hi?name=Bob answers {"greeting": "Hello Bob"};
// with &whoami=1 it also authenticates the request by its access token and
// adds "user_id".
package greeter

import (
	"net/http"

	"github.com/sluice-im/sluice/module"
)

func init() {
	module.Register("acme.Greeter", module.Factory{ParseConfig: parseConfig, New: newGreeter})
}

// Config is the module's `config:`.
type Config struct {
	Greeting string `yaml:"greeting"`
}

func parseConfig(raw module.RawConfig) (any, error) {
	var c Config
	if err := raw.Decode(&c); err != nil {
		return nil, err
	}
	if c.Greeting == "" {
		return nil, &module.ConfigError{Path: []string{"greeting"}, Msg: "is required"}
	}
	return c, nil
}

type greeter struct {
	api *module.API
	cfg Config
}

func newGreeter(cfg any, api *module.API) (any, error) {
	g := &greeter{api: api, cfg: cfg.(Config)}
	return g, api.RegisterWebResource("/_synapse/client/greeter/hi", http.HandlerFunc(g.hi))
}

func (g *greeter) hi(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		module.RespondError(w, &module.Error{Status: http.StatusMethodNotAllowed, Code: "M_UNRECOGNIZED", Message: "Unrecognized request"})
		return
	}
	q := r.URL.Query()
	name := q.Get("name")
	if name == "" {
		module.RespondError(w, &module.Error{Status: http.StatusBadRequest, Code: "M_MISSING_PARAM", Message: "Missing string query parameter 'name'"})
		return
	}
	body := map[string]string{"greeting": g.cfg.Greeting + " " + name}
	if q.Get("whoami") == "1" {
		req, err := g.api.GetUserByRequest(r)
		if err != nil {
			module.RespondError(w, err)
			return
		}
		body["user_id"] = req.UserID
	}
	module.RespondJSON(w, http.StatusOK, body)
}
