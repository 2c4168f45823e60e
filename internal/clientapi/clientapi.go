// Package clientapi holds the Client-Server API handlers: thin functions
// that parse a request, authorise it and call a service.
package clientapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/directory"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/notifier"
	"github.com/sluice-im/sluice/internal/profiles"
	"github.com/sluice-im/sluice/internal/ratelimit"
	"github.com/sluice-im/sluice/internal/rooms"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/syncapi"
	"github.com/sluice-im/sluice/internal/typing"
	"github.com/sluice-im/sluice/internal/userdir"
)

// Options configure the client API.
type Options struct {
	ServerName               string
	PublicBaseURL            string // "" when not configured
	EnableRegistration       bool
	RegistrationSharedSecret string // "" disables shared-secret registration
	DefaultRoomVersion       string
	// RegistrationLimiter is rc_registration, per client IP (nil: none).
	RegistrationLimiter *ratelimit.Limiter
	// AccountData runs on_account_data_updated (nil: no modules to tell).
	AccountData AccountDataHooks
	// Notifier wakes a user's waiting /sync requests (nil: none).
	Notifier *notifier.Notifier
	// Sync serves /sync, /messages and /context (nil: not served).
	Sync *syncapi.Service
	// Typing tracks typing notifications (nil: no typing endpoint).
	Typing *typing.Tracker
	// WakeRoom wakes the syncing members of a room after a new receipt
	// (nil: none).
	WakeRoom func(ctx context.Context, roomID string) error
	// Directory serves aliases and the public room list (nil: not served).
	Directory *directory.Service
	// Profiles serves /profile (nil: not served); profile reads need a
	// token with RequireAuthForProfileRequests.
	Profiles                      *profiles.Service
	RequireAuthForProfileRequests bool
	// UserDirectory serves /user_directory/search (nil: not served).
	UserDirectory *userdir.Service
}

// API is the Client-Server API.
type API struct {
	opts     Options
	store    storage.Store
	accounts *accounts.Service
	rooms    *rooms.Service // nil: no room endpoints
	nonces   *nonceStore
}

// New makes the client API.
func New(o Options, store storage.Store, acc *accounts.Service, rs *rooms.Service) *API {
	return &API{opts: o, store: store, accounts: acc, rooms: rs, nonces: newNonceStore()}
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// handlerFunc is a handler that may fail; errors become Matrix errors.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (f handlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		var ch *uiaChallenge
		if errors.As(err, &ch) {
			httpx.WriteJSON(w, http.StatusUnauthorized, ch.body())
			return
		}
		httpx.WriteError(w, r, err)
	}
}

// authedFunc is a handler for an authenticated user.
type authedFunc func(w http.ResponseWriter, r *http.Request, req accounts.Requester) error

// authed authenticates the request first (is_user_expired included unless
// allowExpired).
func (a *API) authed(allowExpired bool, f authedFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := a.accounts.Authenticate(r, allowExpired)
		if err != nil {
			return err
		}
		return f(w, r, req)
	}
}

// Register adds the routes to a router. Client endpoints answer on both
// /_matrix/client/v3 and the legacy /_matrix/client/r0 that synadm and
// several clients still call.
func (a *API) Register(rt *httpx.Router) {
	client := func(method, path string, h http.Handler) {
		for _, prefix := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
			rt.Handle(method+" "+prefix+path, h)
		}
	}
	rt.Handle("GET /_matrix/client/versions", handlerFunc(a.versions))
	rt.Handle("GET /.well-known/matrix/client", handlerFunc(a.wellKnown))

	client("GET", "/capabilities", a.authed(false, a.capabilities))
	client("POST", "/register", handlerFunc(a.register))
	client("GET", "/register/available", handlerFunc(a.registerAvailable))
	client("GET", "/login", handlerFunc(a.loginFlows))
	client("POST", "/login", handlerFunc(a.login))
	client("POST", "/logout", a.authed(true, a.logout))
	client("POST", "/logout/all", a.authed(true, a.logoutAll))
	client("GET", "/account/whoami", a.authed(false, a.whoami))
	client("GET", "/devices", a.authed(false, a.devices))
	client("POST", "/account/password", handlerFunc(a.password))

	a.registerRooms(client)
	a.registerAccountData(client)
	a.registerReceipts(client)
	a.registerSync(client)
	a.registerPushRules(client)
	a.registerDirectory(client)
	a.registerProfile(client)

	rt.Handle("GET /_synapse/admin/v1/register", handlerFunc(a.sharedSecretNonce))
	rt.Handle("POST /_synapse/admin/v1/register", handlerFunc(a.sharedSecretRegister))
}

// supportedVersions are the spec versions advertised to clients (Synapse's
// list: clients pick features by them, unknown endpoints answer
// M_UNRECOGNIZED).
var supportedVersions = []string{"r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1",
	"v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12"}

func (a *API) versions(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Vary", "Authorization")
	if accounts.HasAccessToken(r) {
		// A token is validated (expired accounts are allowed), and the
		// answer is not cached.
		if _, err := a.accounts.Authenticate(r, true); err != nil {
			return err
		}
	} else {
		w.Header().Set("Cache-Control", "public, max-age=600, s-maxage=3600, stale-while-revalidate=600")
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"versions":          supportedVersions,
		"unstable_features": map[string]bool{},
	})
	return nil
}

func (a *API) wellKnownBody() map[string]any {
	return map[string]any{"m.homeserver": map[string]any{"base_url": a.opts.PublicBaseURL}}
}

func (a *API) wellKnown(w http.ResponseWriter, r *http.Request) error {
	if a.opts.PublicBaseURL == "" {
		return httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", ".well-known not available")
	}
	httpx.WriteJSON(w, http.StatusOK, a.wellKnownBody())
	return nil
}

// requestIP is the client's address (the listener resolves X-Forwarded-For
// when x_forwarded is on).
func requestIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// capabilities is GET /capabilities: the room versions the protocol core
// supports and what the account endpoints allow.
func (a *API) capabilities(w http.ResponseWriter, r *http.Request, _ accounts.Requester) error {
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"capabilities": map[string]any{
		"m.room_versions":   map[string]any{"default": a.opts.DefaultRoomVersion, "available": event.SupportedVersions()},
		"m.change_password": map[string]any{"enabled": true},
	}})
	return nil
}
