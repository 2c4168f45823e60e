package e2e_test

// HTTP conventions every endpoint shares, as Synapse has them: errors and
// their codes, JSON parsing, access tokens, body limits, CORS, OPTIONS,
// /versions, .well-known and the legacy r0 prefix.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/spectest"
	"github.com/sluice-im/sluice/internal/testserver"
)

// convCORS are Synapse's CORS headers, sent on every response.
var convCORS = map[string]string{
	"Access-Control-Allow-Origin":   "*",
	"Access-Control-Allow-Methods":  "GET, HEAD, POST, PUT, DELETE, OPTIONS",
	"Access-Control-Allow-Headers":  "X-Requested-With, Content-Type, Authorization, Date",
	"Access-Control-Expose-Headers": "Synapse-Trace-Id, Server",
}

func convCheckCORS(t testing.TB, what string, h http.Header) {
	t.Helper()
	for k, want := range convCORS {
		if got := h.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want)
		}
	}
}

// convSynapseVersions is the versions list Synapse advertises.
var convSynapseVersions = []string{"r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1",
	"v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12"}

func TestConvVersions(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		_, token := s.Register(t, "vera", "pw-vera-1")

		t.Run("anonymous", func(t *testing.T) {
			r := s.Do(t, "GET", "/_matrix/client/versions", nil, "").Expect(t, 200, "")
			convExpectKeys(t, r, "versions", "unstable_features")
			var versions []string
			for _, v := range r.Body["versions"].([]any) {
				versions = append(versions, v.(string))
			}
			if !reflect.DeepEqual(versions, convSynapseVersions) {
				t.Errorf("versions %v, want Synapse's %v", versions, convSynapseVersions)
			}
			for k, v := range r.Body["unstable_features"].(map[string]any) {
				if _, ok := v.(bool); !ok {
					t.Errorf("unstable_features[%q] = %v, want a boolean", k, v)
				}
			}
			if got := r.Header.Get("Cache-Control"); got != "public, max-age=600, s-maxage=3600, stale-while-revalidate=600" {
				t.Errorf("Cache-Control %q, want Synapse's public caching", got)
			}
			if got := r.Header.Get("Vary"); got != "Authorization" {
				t.Errorf("Vary %q, want Authorization", got)
			}
			if got := r.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			convCheckSchema(t, r.Body)
		})
		t.Run("with a valid token", func(t *testing.T) {
			r := s.Do(t, "GET", "/_matrix/client/versions", nil, token).Expect(t, 200, "")
			if got := r.Header.Get("Cache-Control"); got != "no-cache, no-store, must-revalidate" {
				t.Errorf("authenticated Cache-Control %q, want no-cache", got)
			}
			convCheckSchema(t, r.Body)
		})
		t.Run("with an invalid token", func(t *testing.T) {
			convExpect(t, s.Do(t, "GET", "/_matrix/client/versions", nil, "nope"), 401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
			convExpect(t, s.Do(t, "GET", "/_matrix/client/versions?access_token=nope", nil, ""), 401, "M_UNKNOWN_TOKEN", "Invalid access token passed.")
		})
		t.Run("HEAD", func(t *testing.T) {
			r := convDo(t, s, "HEAD", "/_matrix/client/versions", nil, nil)
			if r.Status != 200 || len(r.Raw) != 0 {
				t.Fatalf("HEAD: status %d, body %q", r.Status, r.Raw)
			}
		})
	})
}

// convCheckSchema validates a /versions body against the spec's schema
// (internal/spectest); without a spec checkout only that check is skipped.
func convCheckSchema(t *testing.T, body map[string]any) {
	t.Helper()
	schema, err := spectest.Load("versions.yaml", "get", "/versions", 200)
	if errors.Is(err, spectest.ErrNoSpec) {
		t.Logf("%v: schema check skipped", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	// The validator must catch what the schema forbids.
	bad := map[string]any{"unstable_features": map[string]any{"x": 1}, "versions_": []any{}}
	if errs := schema.Validate(bad); len(errs) != 2 ||
		!strings.Contains(errs[0], `missing required property "versions"`) || !strings.HasPrefix(errs[1], "$.unstable_features.x:") {
		t.Fatalf("validator found %q in %v, want a missing versions and a non-boolean feature", errs, bad)
	}
	if errs := schema.Validate(map[string]any{"versions": []any{"v1.1", 2}}); len(errs) != 1 || !strings.HasPrefix(errs[0], "$.versions[1]:") {
		t.Fatalf("validator found %q, want one non-string version", errs)
	}
	schema.Check(t, body)
}

func TestConvWellKnown(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{}, func(t *testing.T, s *testserver.Server) {
		r := convExpect(t, s.Do(t, "GET", "/.well-known/matrix/client", nil, ""), 404, "M_NOT_FOUND", ".well-known not available")
		convCheckCORS(t, "well-known 404", r.Header)
	})
	for _, base := range []string{"https://m.example.org/", "https://m.example.org"} {
		t.Run(base, func(t *testing.T) {
			t.Parallel()
			testserver.ForEachDB(t, testserver.Options{YAML: "public_baseurl: " + base + "\n"}, func(t *testing.T, s *testserver.Server) {
				r := s.Do(t, "GET", "/.well-known/matrix/client", nil, "").Expect(t, 200, "")
				convJSONEqual(t, "well-known", r.Body, `{"m.homeserver":{"base_url":"https://m.example.org/"}}`)
				convCheckCORS(t, "well-known", r.Header)
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
			})
		})
	}
}

func TestConvRouting(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{}, func(t *testing.T, s *testserver.Server) {
		for _, c := range []struct {
			method, path string
			status       int
		}{
			{"GET", "/_matrix/client/v3/no/such/endpoint", 404},
			{"POST", "/_matrix/client/v3/no/such/endpoint", 404},
			{"GET", "/_matrix/client/r0/nothing", 404},
			{"GET", "/_matrix/client/v3/login/extra", 404},
			{"GET", "/_synapse/admin/v1/nothing", 404},
			{"GET", "/_matrix/", 404},
			{"GET", "/_matrix/client/v3/register", 405},
			{"PUT", "/_matrix/client/v3/login", 405},
			{"DELETE", "/_matrix/client/v3/login", 405},
			{"POST", "/_matrix/client/versions", 405},
			{"POST", "/_matrix/client/v3/account/whoami", 405},
			{"GET", "/_matrix/client/v3/logout", 405},
			{"POST", "/_matrix/client/r0/devices", 405},
			{"PUT", "/_synapse/admin/v1/register", 405},
			{"POST", "/.well-known/matrix/client", 405},
		} {
			t.Run(c.method+" "+c.path, func(t *testing.T) {
				r := convExpect(t, convDo(t, s, c.method, c.path, nil, nil), c.status, "M_UNRECOGNIZED", "Unrecognized request")
				convCheckCORS(t, "routing error", r.Header)
				if r.Status == 405 && r.Header.Get("Allow") != "" {
					t.Errorf("405 has an Allow header (%q); Synapse sends none", r.Header.Get("Allow"))
				}
			})
		}
	})
}

func TestConvJSONBodies(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		_, token := s.Register(t, "jason", "pw-jason-1")
		endpoints := []struct {
			path  string
			token string
		}{
			{"/_matrix/client/v3/login", ""},
			{"/_matrix/client/v3/register", ""},
			{"/_matrix/client/r0/register", ""},
			{"/_synapse/admin/v1/register", ""},
			{"/_matrix/client/v3/account/password", token},
			// The body is parsed before the access token is looked at.
			{"/_matrix/client/v3/account/password", ""},
		}
		notJSON := map[string]string{
			"invalid":           `{"type": `,
			"empty":             ``,
			"whitespace only":   " \n\t",
			"NaN":               `NaN`,
			"NaN in an object":  `{"type": NaN}`,
			"Infinity":          `{"a": Infinity}`,
			"trailing garbage":  `{} x`,
			"two objects":       `{}{}`,
			"single quotes":     `{'type': 'x'}`,
			"invalid UTF-8":     "{\"type\": \"\xff\xfe\"}",
			"vertical tab":      "\v{}",
			"byte order mark":   "\ufeff{}",
			"trailing comma":    `{"a": 1,}`,
			"unquoted key":      `{type: "x"}`,
			"comment":           `{} // hi`,
			"truncated unicode": `{"a": "\u12"}`,
		}
		notObject := map[string]string{
			"array":            `[]`,
			"array of objects": `[{"type": "m.login.password"}]`,
			"string":           `"hello"`,
			"number":           `5`,
			"true":             `true`,
			"null":             `null`,
		}
		for _, e := range endpoints {
			for name, body := range notJSON {
				t.Run(e.path+" token="+strconv.FormatBool(e.token != "")+" not JSON: "+name, func(t *testing.T) {
					r := convDo(t, s, "POST", e.path, convAuth(e.token), body)
					convExpect(t, r, 400, "M_NOT_JSON", "Content not JSON.")
					convCheckCORS(t, "M_NOT_JSON", r.Header)
				})
			}
			for name, body := range notObject {
				t.Run(e.path+" token="+strconv.FormatBool(e.token != "")+" not an object: "+name, func(t *testing.T) {
					convExpect(t, convDo(t, s, "POST", e.path, convAuth(e.token), body), 400, "M_BAD_JSON", "Content must be a JSON object.")
				})
			}
		}
		// Leading and trailing JSON whitespace is fine, and Content-Type
		// is not checked.
		r := convDo(t, s, "POST", "/_matrix/client/v3/login", http.Header{"Content-Type": {"text/plain"}}, " \r\n\t{\"type\": 5}\n ")
		convExpect(t, r, 400, "M_INVALID_PARAM", "Bad parameter: type")

		// Fields of the wrong type, each answered as Synapse does.
		for _, c := range []struct {
			name, path, token string
			body              any
			status            int
			errcode, msg      string
		}{
			{"login password", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password", "user": "jason", "password": 5}, 400, "M_INVALID_PARAM", "Bad parameter: password"},
			{"login type", "/_matrix/client/v3/login", "", map[string]any{"type": 5, "user": "jason", "password": "x"}, 400, "M_INVALID_PARAM", "Bad parameter: type"},
			{"login type null", "/_matrix/client/v3/login", "", map[string]any{"type": nil, "user": "jason", "password": "x"}, 400, "M_INVALID_PARAM", "Bad parameter: type"},
			{"login refresh_token", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password", "user": "jason", "password": "x", "refresh_token": "yes"}, 400, "M_UNKNOWN", "`refresh_token` should be true or false."},
			{"register password", "/_matrix/client/v3/register", "", map[string]any{"username": "newbie", "password": 5}, 400, "M_UNKNOWN", "Invalid password"},
			{"register username", "/_matrix/client/v3/register", "", map[string]any{"username": 5, "password": "x"}, 400, "M_UNKNOWN", "Invalid username"},
			{"register username null", "/_matrix/client/v3/register", "", map[string]any{"username": nil, "password": "x"}, 400, "M_UNKNOWN", "Invalid username"},
			{"register refresh_token", "/_matrix/client/v3/register", "", map[string]any{"username": "newbie", "password": "x", "refresh_token": 1}, 400, "M_UNKNOWN", "`refresh_token` should be true or false."},
			{"password new_password", "/_matrix/client/v3/account/password", token, map[string]any{"new_password": 5}, 400, "M_BAD_JSON", ""},
			{"password logout_devices", "/_matrix/client/v3/account/password", token, map[string]any{"new_password": "x", "logout_devices": "no"}, 400, "M_BAD_JSON", ""},
			{"password auth", "/_matrix/client/v3/account/password", token, map[string]any{"new_password": "x", "auth": "x"}, 400, "M_BAD_JSON", ""},
			{"password auth.session", "/_matrix/client/v3/account/password", token, map[string]any{"new_password": "x", "auth": map[string]any{"session": 5}}, 400, "M_BAD_JSON", ""},
			{"shared-secret username", "/_synapse/admin/v1/register", "", map[string]any{"nonce": convNonce(t, s), "username": 5, "password": "x", "mac": "00"}, 400, "M_UNKNOWN", "Invalid username"},
			{"shared-secret password", "/_synapse/admin/v1/register", "", map[string]any{"nonce": convNonce(t, s), "username": "x", "password": []any{}, "mac": "00"}, 400, "M_UNKNOWN", "Invalid password"},
			{"shared-secret user_type", "/_synapse/admin/v1/register", "", map[string]any{"nonce": convNonce(t, s), "username": "x", "password": "x", "user_type": 5, "mac": "00"}, 400, "M_UNKNOWN", "Invalid user type"},
		} {
			t.Run("wrong type: "+c.name, func(t *testing.T) {
				convExpect(t, s.Do(t, "POST", c.path, c.body, c.token), c.status, c.errcode, c.msg)
			})
		}
	})
}

// convAuth is a bearer header, or none for an empty token.
func convAuth(token string) http.Header {
	if token == "" {
		return nil
	}
	return convBearer(token)
}

// convNonce gets a shared-secret registration nonce.
func convNonce(t testing.TB, s *testserver.Server) string {
	t.Helper()
	return s.Do(t, "GET", "/_synapse/admin/v1/register", nil, "").Expect(t, 200, "").Str("nonce")
}

func TestConvAccessTokens(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		userID, token := s.Register(t, "tokyo", "pw-tokyo-1")
		q := url.QueryEscape(token)
		for _, c := range []struct {
			name    string
			query   string
			hdr     http.Header
			status  int
			errcode string
			msg     string
		}{
			{"no token", "", nil, 401, "M_MISSING_TOKEN", "Missing access token"},
			{"unknown bearer token", "", convBearer("syt_bm9ib2R5_AAAAAAAAAAAAAAAAAAAA_000000"), 401, "M_UNKNOWN_TOKEN", "Invalid access token passed."},
			// Header values are trimmed (by Twisted as by net/http): "Bearer" alone.
			{"empty bearer token", "", http.Header{"Authorization": {"Bearer "}}, 401, "M_MISSING_TOKEN", "Invalid Authorization header."},
			{"unknown query token", "?access_token=nope", nil, 401, "M_UNKNOWN_TOKEN", "Invalid access token passed."},
			{"empty query token", "?access_token=", nil, 401, "M_UNKNOWN_TOKEN", "Invalid access token passed."},
			{"query token", "?access_token=" + q, nil, 200, "", ""},
			{"bearer token", "", convBearer(token), 200, "", ""},
			{"header and query", "?access_token=" + q, convBearer(token), 401, "M_MISSING_TOKEN", "Mixing Authorization headers and access_token query parameters."},
			{"two headers", "", http.Header{"Authorization": {"Bearer " + token, "Bearer " + token}}, 401, "M_MISSING_TOKEN", "Too many Authorization headers."},
			{"basic scheme", "", http.Header{"Authorization": {"Basic " + token}}, 401, "M_MISSING_TOKEN", "Invalid Authorization header."},
			{"lower-case scheme", "", http.Header{"Authorization": {"bearer " + token}}, 401, "M_MISSING_TOKEN", "Invalid Authorization header."},
			{"no scheme", "", http.Header{"Authorization": {token}}, 401, "M_MISSING_TOKEN", "Invalid Authorization header."},
			{"extra part", "", http.Header{"Authorization": {"Bearer " + token + " x"}}, 401, "M_MISSING_TOKEN", "Invalid Authorization header."},
			{"double space", "", http.Header{"Authorization": {"Bearer  " + token}}, 401, "M_MISSING_TOKEN", "Invalid Authorization header."},
		} {
			for _, ep := range []struct{ method, path string }{
				{"GET", "/_matrix/client/v3/account/whoami"},
				{"GET", "/_matrix/client/r0/devices"},
				{"POST", "/_matrix/client/v3/logout/all"},
				{"POST", "/_matrix/client/v3/logout"},
			} {
				if c.status == 200 && ep.method == "POST" {
					continue // would log the user out
				}
				t.Run(c.name+" "+ep.path, func(t *testing.T) {
					r := convDo(t, s, ep.method, ep.path+c.query, c.hdr, nil)
					convExpect(t, r, c.status, c.errcode, c.msg)
					convCheckCORS(t, c.name, r.Header)
					switch c.errcode {
					case "M_UNKNOWN_TOKEN":
						if sl, ok := r.Body["soft_logout"].(bool); !ok || sl {
							t.Errorf("soft_logout = %v, want false; body %s", r.Body["soft_logout"], r.Raw)
						}
					case "M_MISSING_TOKEN":
						if _, ok := r.Body["soft_logout"]; ok {
							t.Errorf("M_MISSING_TOKEN has soft_logout; body %s", r.Raw)
						}
					case "":
						if ep.path == "/_matrix/client/v3/account/whoami" && r.Str("user_id") != userID {
							t.Errorf("whoami %s, want %s", r.Raw, userID)
						}
					}
				})
			}
		}
	})
}

// convRawRequest sends a request head (and optionally some body) on a raw
// TCP connection, writes the rest of the body from writeBody concurrently
// (it may fail once the server gives up), and returns the response.
func convRawRequest(t *testing.T, s *testserver.Server, head string, writeBody func(w io.Writer) error) (*http.Response, []byte) {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if writeBody != nil {
		go func() { done <- writeBody(conn) }()
	} else {
		done <- nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	// The server closes the connection after a 413, so a writer still
	// sending is unblocked with an error.
	if resp.Close || resp.StatusCode == http.StatusRequestEntityTooLarge {
		conn.Close()
	}
	<-done
	return resp, body
}

func TestConvBodyTooLarge(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{}, func(t *testing.T, s *testserver.Server) {
		wantMsg := fmt.Sprintf("Request content is too large (>%d)", httpx.MaxBodySize)
		check := func(t *testing.T, resp *http.Response, body []byte) {
			t.Helper()
			r := testserver.Response{Status: resp.StatusCode, Header: resp.Header, Raw: body}
			if err := convDecodeObject(body, &r.Body); err != nil {
				t.Fatalf("status %d, body not JSON: %q", resp.StatusCode, body)
			}
			convExpect(t, r, 413, "M_TOO_LARGE", wantMsg)
			convCheckCORS(t, "413", resp.Header)
			if !resp.Close {
				t.Errorf("the connection is kept open after a 413")
			}
		}
		t.Run("Content-Length over the limit, body never sent", func(t *testing.T) {
			head := fmt.Sprintf("POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", httpx.MaxBodySize+1)
			resp, body := convRawRequest(t, s, head, nil)
			check(t, resp, body)
		})
		t.Run("Content-Length over the limit on an unknown path", func(t *testing.T) {
			head := fmt.Sprintf("POST /_matrix/client/v3/nothing HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", int64(1)<<40)
			resp, body := convRawRequest(t, s, head, nil)
			check(t, resp, body)
		})
		t.Run("chunked body over the limit", func(t *testing.T) {
			head := "POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
			resp, body := convRawRequest(t, s, head, func(w io.Writer) error {
				chunk := bytes.Repeat([]byte(" "), 1<<20)
				frame := append([]byte(fmt.Sprintf("%x\r\n", len(chunk))), chunk...)
				frame = append(frame, "\r\n"...)
				// Ten chunks more than the limit, then the end: the
				// server stops reading long before.
				for i := 0; i < httpx.MaxBodySize>>20+10; i++ {
					if _, err := w.Write(frame); err != nil {
						return err
					}
				}
				_, err := io.WriteString(w, "0\r\n\r\n")
				return err
			})
			check(t, resp, body)
		})
		t.Run("a body of exactly the limit is read", func(t *testing.T) {
			// {"type":"x"} padded with JSON whitespace to MaxBodySize
			// bytes: parsed, then refused for its content.
			obj := `{"identifier":{"type":"m.id.user","user":"nobody"}}`
			pad := httpx.MaxBodySize - len(obj)
			head := fmt.Sprintf("POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", httpx.MaxBodySize)
			resp, body := convRawRequest(t, s, head, func(w io.Writer) error {
				if _, err := io.WriteString(w, obj); err != nil {
					return err
				}
				_, err := w.Write(bytes.Repeat([]byte("\n"), pad))
				return err
			})
			r := testserver.Response{Status: resp.StatusCode, Header: resp.Header, Raw: body}
			if err := convDecodeObject(body, &r.Body); err != nil {
				t.Fatalf("status %d, body not JSON: %q", resp.StatusCode, body)
			}
			convExpect(t, r, 400, "M_UNKNOWN", "Missing JSON keys.")
		})
		// The server still serves after all that.
		s.Do(t, "GET", "/_matrix/client/versions", nil, "").Expect(t, 200, "")
	})
}

func TestConvCORSAndOptions(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		_, token := s.Register(t, "cora", "pw-cora-1")
		t.Run("normal responses and errors", func(t *testing.T) {
			for _, c := range []struct {
				method, path, token string
				body                any
				status              int
			}{
				{"GET", "/_matrix/client/versions", "", nil, 200},
				{"GET", "/_matrix/client/v3/login", "", nil, 200},
				{"GET", "/_matrix/client/v3/account/whoami", token, nil, 200},
				{"GET", "/_synapse/admin/v1/register", "", nil, 200},
				{"GET", "/_matrix/client/v3/account/whoami", "", nil, 401},
				{"GET", "/_matrix/client/v3/account/whoami", "bad", nil, 401},
				{"POST", "/_matrix/client/v3/register", "", map[string]any{}, 401},
				{"POST", "/_matrix/client/v3/login", "", `[`, 400},
				{"POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password", "user": "cora", "password": "wrong"}, 403},
				{"GET", "/_matrix/client/v3/nothing", "", nil, 404},
				{"GET", "/.well-known/matrix/client", "", nil, 404},
				{"DELETE", "/_matrix/client/v3/login", "", nil, 405},
			} {
				t.Run(fmt.Sprintf("%s %s %d", c.method, c.path, c.status), func(t *testing.T) {
					r := s.Do(t, c.method, c.path, c.body, c.token)
					if r.Status != c.status {
						t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Raw)
					}
					convCheckCORS(t, c.path, r.Header)
					if got := r.Header.Get("Content-Type"); got != "application/json" {
						t.Errorf("Content-Type %q, want application/json", got)
					}
					if c.path != "/_matrix/client/versions" {
						if got := r.Header.Get("Cache-Control"); got != "no-cache, no-store, must-revalidate" {
							t.Errorf("Cache-Control %q", got)
						}
					}
				})
			}
		})
		t.Run("OPTIONS", func(t *testing.T) {
			for _, p := range []string{
				"/_matrix/client/v3/login",
				"/_matrix/client/r0/register",
				"/_matrix/client/versions",
				"/_matrix/client/v3/account/whoami",
				"/_matrix/client/v3/no/such/thing",
				"/_synapse/admin/v1/register",
				"/.well-known/matrix/client",
				"/anything/at/all",
				"/",
			} {
				for _, hdr := range []http.Header{nil, convBearer("invalid"), {"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}}} {
					t.Run(p, func(t *testing.T) {
						r := convDo(t, s, "OPTIONS", p, hdr, nil)
						if r.Status != 204 {
							t.Fatalf("OPTIONS %s: status %d, want 204: %s", p, r.Status, r.Raw)
						}
						if len(r.Raw) != 0 {
							t.Errorf("OPTIONS %s: body %q, want none", p, r.Raw)
						}
						convCheckCORS(t, "OPTIONS "+p, r.Header)
					})
				}
			}
		})
	})
}

// TestConvR0 checks that every client endpoint also answers under the
// legacy /_matrix/client/r0 prefix (synadm and older clients use it).
func TestConvR0(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		const r0 = "/_matrix/client/r0"
		s.Do(t, "GET", r0+"/register/available?username=rzero", nil, "").Expect(t, 200, "")
		first := s.Do(t, "POST", r0+"/register", map[string]any{"username": "rzero", "password": "pw-rzero-1"}, "").Expect(t, 401, "")
		reg := s.Do(t, "POST", r0+"/register", map[string]any{"auth": map[string]any{"type": "m.login.dummy", "session": first.Str("session")}}, "").Expect(t, 200, "")
		if reg.Str("user_id") != "@rzero:test.local" {
			t.Fatalf("register: %s", reg.Raw)
		}
		convExpect(t, s.Do(t, "GET", r0+"/register/available?username=rzero", nil, ""), 400, "M_USER_IN_USE", "User ID already taken.")
		flows := s.Do(t, "GET", r0+"/login", nil, "").Expect(t, 200, "")
		if _, ok := flows.Body["flows"].([]any); !ok {
			t.Fatalf("GET r0/login: %s", flows.Raw)
		}
		login := s.Do(t, "POST", r0+"/login", map[string]any{"type": "m.login.password", "user": "rzero", "password": "pw-rzero-1"}, "").Expect(t, 200, "")
		tok := login.Str("access_token")
		if w := s.Do(t, "GET", r0+"/account/whoami", nil, tok).Expect(t, 200, ""); w.Str("user_id") != "@rzero:test.local" {
			t.Fatalf("whoami: %s", w.Raw)
		}
		if d := s.Do(t, "GET", r0+"/devices", nil, tok).Expect(t, 200, ""); len(d.Body["devices"].([]any)) != 2 {
			t.Fatalf("devices: %s", d.Raw)
		}
		ch := s.Do(t, "POST", r0+"/account/password", map[string]any{"new_password": "pw-rzero-2"}, tok).Expect(t, 401, "")
		s.Do(t, "POST", r0+"/account/password", map[string]any{"new_password": "pw-rzero-2", "logout_devices": false, "auth": map[string]any{
			"type": "m.login.password", "session": ch.Str("session"), "password": "pw-rzero-1",
			"identifier": map[string]any{"type": "m.id.user", "user": "rzero"},
		}}, tok).Expect(t, 200, "")
		s.Do(t, "POST", r0+"/logout", nil, tok).Expect(t, 200, "")
		convExpect(t, s.Do(t, "GET", r0+"/account/whoami", nil, tok), 401, "M_UNKNOWN_TOKEN", "")
		s.Do(t, "POST", r0+"/logout/all", nil, reg.Str("access_token")).Expect(t, 200, "")
		convExpect(t, s.Do(t, "GET", r0+"/account/whoami", nil, reg.Str("access_token")), 401, "M_UNKNOWN_TOKEN", "")
		s.Login(t, "rzero", "pw-rzero-2")
	})
}

// convDecodeObject decodes a JSON object body.
func convDecodeObject(b []byte, v *map[string]any) error {
	if !strings.HasPrefix(string(b), "{") {
		return fmt.Errorf("not a JSON object: %q", b)
	}
	return json.Unmarshal(b, v)
}
