// Package keyserver serves GET /_matrix/key/v2/server: the server's
// signing keys, self-signed, so that other servers (and anyone) can check
// the signatures on our events and requests.
package keyserver

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/canonicaljson"
	"github.com/sluice-im/sluice/internal/mx/signedjson"
	"github.com/sluice-im/sluice/internal/signingkey"
)

// ValidFor is how long other servers may cache our key response (Synapse's
// default key_refresh_interval).
const ValidFor = 24 * time.Hour

// Handler answers the key endpoints.
type Handler struct {
	ServerName string
	Key        signingkey.Key
	Now        func() time.Time // nil: time.Now
}

// Register mounts the endpoints (the key ID form is deprecated in the spec
// but still called by older servers; it answers with all keys).
func (h *Handler) Register(rt *httpx.Router) {
	rt.Handle("GET /_matrix/key/v2/server", h)
	rt.Handle("GET /_matrix/key/v2/server/{keyID}", h)
}

// Response builds the signed key response.
func (h *Handler) Response() (map[string]any, error) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	pub := h.Key.Private.Public().(ed25519.PublicKey)
	obj := map[string]any{
		"server_name":     h.ServerName,
		"valid_until_ts":  now().Add(ValidFor).UnixMilli(),
		"verify_keys":     map[string]any{h.Key.ID: map[string]any{"key": base64.RawStdEncoding.EncodeToString(pub)}},
		"old_verify_keys": map[string]any{},
	}
	if err := signedjson.Sign(obj, h.ServerName, h.Key.ID, h.Key.Private); err != nil {
		return nil, err
	}
	return obj, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	obj, err := h.Response()
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	// Canonical JSON, so that what we serve is byte for byte what we signed.
	b, err := canonicaljson.Encode(obj)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
