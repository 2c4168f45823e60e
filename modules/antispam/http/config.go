package antispamhttp

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/sluice-im/sluice/module"
)

// Config is the module's `config:`, with synapse-http-antispam's keys.
type Config struct {
	// BaseURL is the prefix of every request: <base_url>/<callback>.
	BaseURL string `yaml:"base_url"`
	// Authorization is the secret sent as "Authorization: Bearer <secret>".
	Authorization string `yaml:"authorization"`
	// AuthorizationPath is a file holding the secret (trimmed), read at
	// start-up; used when Authorization is empty.
	AuthorizationPath string `yaml:"authorization_path"`
	// EnabledCallbacks are the callbacks forwarded; nil means every one
	// this server calls (see supported).
	EnabledCallbacks []string `yaml:"enabled_callbacks"`
	// FailOpen says, per callback, whether a server that cannot be reached
	// or answers garbage lets the operation through. Default false (fail
	// closed) except check_event_for_spam, which defaults to true.
	FailOpen map[string]bool `yaml:"fail_open"`
	// Async says, per callback, to send the request in the background and
	// allow at once, ignoring the answer.
	Async map[string]bool `yaml:"async"`
	// DoPing posts <base_url>/ping {"id": ...} at start-up, every 5 s
	// until the server answers {"id": same, "status": "ok"}.
	DoPing bool `yaml:"do_ping"`
}

// supported are the callbacks this server calls, in the order of the
// protocol's source. Their request bodies are in module.go.
var supported = []string{
	"user_may_join_room",
	"user_may_invite",
	"user_may_create_room",
	"user_may_create_room_alias",
	"user_may_publish_room",
	"check_username_for_spam",
	"check_login_for_spam",
	"check_event_for_spam",
}

// inert are callbacks of the protocol that this server never calls (no
// federation, no third-party identifier invites yet). They are accepted in
// enabled_callbacks so that a configuration written for Synapse (Meowlnir's
// and Draupnir's documentation list some) loads, with a warning.
var inert = []string{"federated_user_may_invite", "user_may_send_3pid_invite", "accept_make_join"}

// unsupported are spam checker callbacks the protocol does not carry (their
// return types differ); naming one is a configuration error.
var unsupported = []string{"check_media_file_for_spam", "check_registration_for_spam", "should_drop_federated_event", "user_may_send_state_event"}

// parsed is the checked configuration.
type parsed struct {
	baseURL  string
	auth     string // "" for no Authorization header
	enabled  []string
	inert    []string
	failOpen map[string]bool
	async    map[string]bool
	doPing   bool
}

func parseConfig(raw module.RawConfig) (any, error) {
	var c Config
	if err := raw.Decode(&c); err != nil {
		return nil, err
	}
	p := &parsed{doPing: c.DoPing, failOpen: map[string]bool{"check_event_for_spam": true}, async: map[string]bool{}}

	if c.BaseURL == "" {
		return nil, &module.ConfigError{Path: []string{"base_url"}, Msg: "is required (the policy server's URL prefix)"}
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &module.ConfigError{Path: []string{"base_url"}, Msg: fmt.Sprintf("%q is not an http(s) URL", c.BaseURL)}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		// The callback's name is appended to the URL as text.
		return nil, &module.ConfigError{Path: []string{"base_url"}, Msg: fmt.Sprintf("%q must not have a query or fragment: /<callback> is appended to it", c.BaseURL)}
	}
	// A plain string join, as the Python module does: base_url must not
	// end in "/" there either, but a trailing one is forgiven here.
	p.baseURL = strings.TrimRight(c.BaseURL, "/")

	switch {
	case strings.TrimSpace(c.Authorization) != "":
		// Trimmed like the file's: a YAML block scalar ends in a newline,
		// which would make every request's header invalid.
		p.auth = "Bearer " + strings.TrimSpace(c.Authorization)
	case c.AuthorizationPath != "":
		b, err := os.ReadFile(c.AuthorizationPath)
		if err != nil {
			return nil, &module.ConfigError{Path: []string{"authorization_path"}, Msg: err.Error()}
		}
		p.auth = "Bearer " + strings.TrimSpace(string(b))
	}

	if c.EnabledCallbacks == nil {
		p.enabled = slices.Clone(supported)
	}
	seen := map[string]bool{}
	for i, name := range c.EnabledCallbacks {
		if err := checkName(name, []string{"enabled_callbacks", fmt.Sprint(i)}); err != nil {
			return nil, err
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		if slices.Contains(inert, name) {
			p.inert = append(p.inert, name)
			continue
		}
		p.enabled = append(p.enabled, name)
	}
	for _, kv := range []struct {
		key string
		in  map[string]bool
		out map[string]bool
	}{{"fail_open", c.FailOpen, p.failOpen}, {"async", c.Async, p.async}} {
		names := make([]string, 0, len(kv.in))
		for name := range kv.in {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if err := checkName(name, []string{kv.key, name}); err != nil {
				return nil, err
			}
			kv.out[name] = kv.in[name]
		}
	}
	return p, nil
}

// checkName refuses a callback name the protocol does not have, or one
// whose answer it cannot carry.
func checkName(name string, path []string) error {
	if slices.Contains(supported, name) || slices.Contains(inert, name) || name == "ping" {
		if name == "ping" {
			return &module.ConfigError{Path: path, Msg: `"ping" is not a callback (see do_ping)`}
		}
		return nil
	}
	if slices.Contains(unsupported, name) {
		return &module.ConfigError{Path: path, Msg: fmt.Sprintf("%s is not carried by the synapse-http-antispam protocol (its answer is not an allow/reject)", name)}
	}
	return &module.ConfigError{Path: path, Msg: fmt.Sprintf("unknown callback %q; known: %s", name, strings.Join(append(slices.Clone(supported), inert...), ", "))}
}
