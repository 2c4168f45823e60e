package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRouterUncleanPaths(t *testing.T) {
	rt := NewRouter()
	rt.HandleFunc("GET /_matrix/client/v3/login", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/_matrix/client/v3/login", 200},
		{"/_matrix/client/v3//login", 404},
		{"/_matrix/client/v3/./login", 404},
		{"/_matrix/client/v3/x/../login", 404},
		{"/_matrix/client/v3/login/", 404},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "http://x"+tc.path, nil)
		req.URL.Path = tc.path // keep it as sent, as the server does
		rt.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("GET %s = %d, want %d (%s)", tc.path, rec.Code, tc.status, rec.Body)
		}
		if tc.status == 404 && rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: not a Matrix error: %s", tc.path, rec.Header())
		}
	}
}
