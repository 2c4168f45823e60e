// Package e2e_test holds end-to-end tests: each starts a real Sluice on a
// loopback port (over SQLite and over PostgreSQL) and talks HTTP to it.
//
// Helpers in this file and in conventions_test.go and accounts_test.go are
// prefixed conv (HTTP conventions) or acct (accounts), so that they cannot
// clash with the other tests of the package.
package e2e_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
)

// convRegistrationOn enables open registration (the default config has it
// off, like Synapse's).
const convRegistrationOn = "enable_registration: true\nenable_registration_without_verification: true\n"

// convDo is testserver.Server.Do with extra request headers. body is sent
// as is when it is a string or []byte, JSON-encoded otherwise; hdr may be
// nil.
func convDo(t testing.TB, s *testserver.Server, method, path string, hdr http.Header, body any) testserver.Response {
	t.Helper()
	return s.DoHeaders(t, method, path, hdr, body)
}

// convExpect checks a Matrix error: status, errcode and, when msg is not
// empty, the exact "error" text. It also checks the Content-Type.
func convExpect(t testing.TB, r testserver.Response, status int, errcode, msg string) testserver.Response {
	t.Helper()
	r.Expect(t, status, errcode)
	if errcode != "" {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
	}
	if msg != "" {
		if got := r.Str("error"); got != msg {
			t.Fatalf("error %q, want %q; body %s", got, msg, r.Raw)
		}
	}
	return r
}

// convKeys are the sorted keys of a JSON object.
func convKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// convExpectKeys fails unless the body has exactly these keys.
func convExpectKeys(t testing.TB, r testserver.Response, keys ...string) {
	t.Helper()
	sort.Strings(keys)
	if got := convKeys(r.Body); !reflect.DeepEqual(got, keys) {
		t.Fatalf("body keys %v, want %v; body %s", got, keys, r.Raw)
	}
}

// convJSONEqual fails unless v, marshalled, is the same JSON as want.
func convJSONEqual(t testing.TB, what string, v any, want string) {
	t.Helper()
	got, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad expected JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("%s = %s, want %s", what, got, want)
	}
}

// convBearer is an Authorization header with a bearer token.
func convBearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}
