package clientapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
)

// nonceLifetime is Synapse's: a nonce is good for 60 seconds, once.
const nonceLifetime = 60 * time.Second

type nonceStore struct {
	mu     sync.Mutex
	issued map[string]time.Time
}

func newNonceStore() *nonceStore { return &nonceStore{issued: map[string]time.Time{}} }

func (n *nonceStore) purge(now time.Time) {
	for k, t := range n.issued {
		if now.Sub(t) > nonceLifetime {
			delete(n.issued, k)
		}
	}
}

func (n *nonceStore) issue() string {
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		panic("clientapi: no randomness: " + err.Error())
	}
	nonce := hex.EncodeToString(b)
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	n.purge(now)
	n.issued[nonce] = now
	return nonce
}

// take consumes a nonce: it is gone even if the request then fails.
func (n *nonceStore) take(nonce string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.purge(time.Now())
	_, ok := n.issued[nonce]
	delete(n.issued, nonce)
	return ok
}

// sharedSecretNonce is GET /_synapse/admin/v1/register.
func (a *API) sharedSecretNonce(w http.ResponseWriter, r *http.Request) error {
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"nonce": a.nonces.issue()})
	return nil
}

// sharedSecretRegister is POST /_synapse/admin/v1/register, compatible byte
// for byte with Synapse's so that register_new_matrix_user and synadm work.
func (a *API) sharedSecretRegister(w http.ResponseWriter, r *http.Request) error {
	if a.opts.RegistrationSharedSecret == "" {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Shared secret registration is not enabled")
	}
	body, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	nv, ok := body["nonce"]
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "nonce must be specified")
	}
	nonce, ok := nv.(string)
	if !ok || !a.nonces.take(nonce) {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "unrecognised nonce")
	}
	uv, ok := body["username"]
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "username must be specified")
	}
	username, ok := uv.(string)
	if !ok || utf8.RuneCountInString(username) > maxParamLength || strings.ContainsRune(username, 0) {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid username")
	}
	pv, ok := body["password"]
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "password must be specified")
	}
	password, ok := pv.(string)
	if !ok || utf8.RuneCountInString(password) > maxParamLength || strings.ContainsRune(password, 0) {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid password")
	}
	var userType string
	if v, ok := body["user_type"]; ok && v != nil {
		s, isStr := v.(string)
		if !isStr || (s != "support" && s != "bot") {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Invalid user type")
		}
		userType = s
	}
	mv, ok := body["mac"]
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_BAD_JSON", "mac must be specified")
	}
	admin := truthy(body["admin"])
	// Synapse compares the lower-case hex digests as strings.
	want := hex.EncodeToString(SharedSecretMAC(a.opts.RegistrationSharedSecret, nonce, username, password, admin, userType))
	got, _ := mv.(string)
	if !hmac.Equal([]byte(got), []byte(want)) {
		return httpx.NewError(http.StatusForbidden, "M_UNKNOWN", "HMAC incorrect")
	}
	if v, ok := body["refresh_token"]; ok {
		if _, isBool := v.(bool); !isBool {
			return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "refresh_token must be a boolean")
		}
	}
	sp, err := sessionParams(r, body)
	if err != nil {
		return err
	}
	inhibit := truthy(body["inhibit_login"])
	p := accounts.RegisterParams{Localpart: accounts.LowerASCII(username), Password: password, Admin: admin, UserType: userType}
	// Synapse's optional displayname (the localpart when absent).
	p.DisplayName, _ = body["displayname"].(string)
	if !inhibit {
		p.Session = sp
	}
	sess, err := a.accounts.Register(r.Context(), p)
	if err != nil {
		return err
	}
	out := map[string]any{"user_id": sess.UserID, "home_server": a.opts.ServerName}
	if !inhibit {
		out["access_token"] = sess.AccessToken
		out["device_id"] = sess.DeviceID
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// SharedSecretMAC is Synapse's registration MAC: HMAC-SHA1 over nonce,
// username, password and "admin"/"notadmin" (and the user type when there
// is one), NUL-separated.
func SharedSecretMAC(secret, nonce, username, password string, admin bool, userType string) []byte {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(nonce))
	m.Write([]byte{0})
	m.Write([]byte(username))
	m.Write([]byte{0})
	m.Write([]byte(password))
	m.Write([]byte{0})
	if admin {
		m.Write([]byte("admin"))
	} else {
		m.Write([]byte("notadmin"))
	}
	if userType != "" {
		m.Write([]byte{0})
		m.Write([]byte(userType))
	}
	return m.Sum(nil)
}

// truthy follows Python's truthiness for JSON values, as Synapse tests them.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}
