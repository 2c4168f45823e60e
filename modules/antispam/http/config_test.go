package antispamhttp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-im/sluice/module"
)

func TestParseConfig(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, yaml string
		check      func(t *testing.T, p *parsed)
		wantErr    string
	}{
		{name: "defaults", yaml: "base_url: http://policy:8080/api/",
			check: func(t *testing.T, p *parsed) {
				if p.baseURL != "http://policy:8080/api" || p.auth != "" || !slices.Equal(p.enabled, supported) {
					t.Errorf("%+v", p)
				}
				if !p.failOpen["check_event_for_spam"] || p.failOpen["user_may_invite"] {
					t.Errorf("fail_open defaults %v", p.failOpen)
				}
			}},
		{name: "secret and lists", yaml: "base_url: https://p\nauthorization: abc\nenabled_callbacks: [user_may_invite, federated_user_may_invite, user_may_invite]\nfail_open: {check_event_for_spam: false}\nasync: {user_may_invite: true}",
			check: func(t *testing.T, p *parsed) {
				if p.auth != "Bearer abc" || !slices.Equal(p.enabled, []string{"user_may_invite"}) || !slices.Equal(p.inert, []string{"federated_user_may_invite"}) {
					t.Errorf("%+v", p)
				}
				if p.failOpen["check_event_for_spam"] || !p.async["user_may_invite"] {
					t.Errorf("fail_open %v async %v", p.failOpen, p.async)
				}
			}},
		{name: "secret from a file", yaml: "base_url: http://p\nauthorization_path: " + secret,
			check: func(t *testing.T, p *parsed) {
				if p.auth != "Bearer from-file" {
					t.Errorf("auth %q", p.auth)
				}
			}},
		{name: "empty enabled list forwards nothing", yaml: "base_url: http://p\nenabled_callbacks: []",
			check: func(t *testing.T, p *parsed) {
				if len(p.enabled) != 0 {
					t.Errorf("enabled %v", p.enabled)
				}
			}},
		{name: "no base_url", yaml: "authorization: x", wantErr: "base_url: is required"},
		{name: "relative base_url", yaml: "base_url: /antispam", wantErr: "not an http(s) URL"},
		{name: "base_url with a query", yaml: "base_url: http://p/api?x=1", wantErr: "must not have a query"},
		{name: "secret is trimmed", yaml: "base_url: http://p\nauthorization: |\n  abc\n",
			check: func(t *testing.T, p *parsed) {
				if p.auth != "Bearer abc" {
					t.Errorf("auth %q", p.auth)
				}
			}},
		{name: "missing secret file", yaml: "base_url: http://p\nauthorization_path: /nonexistent/secret", wantErr: "authorization_path:"},
		{name: "ping is not a callback", yaml: "base_url: http://p\nasync: {ping: true}", wantErr: "async.ping: \"ping\" is not a callback"},
		{name: "unsupported callback", yaml: "base_url: http://p\nenabled_callbacks: [check_registration_for_spam]", wantErr: "enabled_callbacks.0: check_registration_for_spam is not carried"},
		{name: "wrong type", yaml: "base_url: http://p\nfail_open: yes-please", wantErr: "fail_open"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := module.ParseRawConfig(tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			v, err := parseConfig(raw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, v.(*parsed))
		})
	}
}
