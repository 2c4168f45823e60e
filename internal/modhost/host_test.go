package modhost

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-im/sluice/internal/config"
	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/module"
)

// newTestHost builds a host with hooks registered directly, one loaded
// module per entry, to test chaining without a server.
func newTestHost(t *testing.T) *Host {
	t.Helper()
	return New(Options{ServerName: "hs.test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
}

func (h *Host) testModule(name string, timeout time.Duration, onError string) *loaded {
	m := &loaded{name: name, timeout: timeout, onError: onError, log: h.log}
	h.mods = append(h.mods, m)
	return m
}

type createRoomFn = func(context.Context, string, map[string]any) (module.Decision, error)

func TestDecisionChain(t *testing.T) {
	allow := func(context.Context, string, map[string]any) (module.Decision, error) { return module.Allow, nil }
	deny := func(code string) createRoomFn {
		return func(context.Context, string, map[string]any) (module.Decision, error) { return module.Deny(code), nil }
	}
	fail := func(context.Context, string, map[string]any) (module.Decision, error) {
		return module.Decision{}, errors.New("x")
	}
	boom := func(context.Context, string, map[string]any) (module.Decision, error) { panic("boom") }
	hang := func(ctx context.Context, _ string, _ map[string]any) (module.Decision, error) {
		<-ctx.Done()
		return module.Allow, nil
	}
	type step struct {
		fn      createRoomFn
		onError string
	}
	cases := []struct {
		name     string
		steps    []step
		wantCode string // "" allow
		wantErr  FailureKind
		called   int
	}{
		{"no modules", nil, "", "", 0},
		{"all allow", []step{{fn: allow}, {fn: allow}}, "", "", 2},
		{"first deny wins", []step{{fn: allow}, {fn: deny("M_A")}, {fn: deny("M_B")}}, "M_A", "", 2},
		{"empty code is M_FORBIDDEN", []step{{fn: deny("")}}, "M_FORBIDDEN", "", 1},
		{"error fails the request", []step{{fn: fail}, {fn: allow}}, "", FailError, 1},
		{"panic fails the request", []step{{fn: boom}}, "", FailPanic, 1},
		{"timeout fails the request", []step{{fn: hang}}, "", FailTimeout, 1},
		{"on_error allow goes on", []step{{fn: fail, onError: "allow"}, {fn: deny("M_C")}}, "M_C", "", 2},
		{"on_error deny rejects", []step{{fn: boom, onError: "deny"}, {fn: allow}}, "M_FORBIDDEN", "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHost(t)
			var called atomic.Int64
			for i, s := range tc.steps {
				m := h.testModule("m"+string(rune('0'+i)), 50*time.Millisecond, s.onError)
				fn := s.fn
				add(&h.spam.userMayCreateRoom, m, func(ctx context.Context, u string, c map[string]any) (module.Decision, error) {
					called.Add(1)
					return fn(ctx, u, c)
				})
			}
			d, err := h.UserMayCreateRoom(context.Background(), "@u:hs.test", map[string]any{"name": "r"})
			var ce *CallbackError
			switch {
			case tc.wantErr != "":
				if !errors.As(err, &ce) || ce.Kind != tc.wantErr {
					t.Fatalf("err = %v, want a %s CallbackError", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case d.Code() != tc.wantCode:
				t.Fatalf("decision %v, want code %q", d, tc.wantCode)
			}
			if int(called.Load()) != tc.called {
				t.Errorf("called %d callbacks, want %d", called.Load(), tc.called)
			}
		})
	}
}

func TestRoomConfigIsCopiedPerModule(t *testing.T) {
	h := newTestHost(t)
	var seen []any
	for range 2 {
		add(&h.spam.userMayCreateRoom, h.testModule("m", time.Second, ""), func(_ context.Context, _ string, c map[string]any) (module.Decision, error) {
			seen = append(seen, c["name"])
			c["name"] = "changed"
			return module.Allow, nil
		})
	}
	orig := map[string]any{"name": "room"}
	if _, err := h.UserMayCreateRoom(context.Background(), "@u:hs.test", orig); err != nil {
		t.Fatal(err)
	}
	if orig["name"] != "room" || seen[0] != "room" || seen[1] != "room" {
		t.Fatalf("a module's change leaked: orig %v, seen %v", orig, seen)
	}
}

func TestCallbackContextOutlivesClient(t *testing.T) {
	// A client that goes away must not cancel the callback (Synapse runs
	// callbacks to completion); only the deadline does.
	h := newTestHost(t)
	add(&h.validity.onUserLogin, h.testModule("m", time.Second, ""), func(ctx context.Context, _, _, _ string) error {
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.OnUserLogin(ctx, "@u:hs.test", "m.login.password", ""); err != nil {
		t.Fatalf("callback saw a cancelled context: %v", err)
	}
}

type fakeServices struct{}

func (fakeServices) GetUserByRequest(*http.Request, bool) (module.Requester, error) {
	return module.Requester{}, nil
}
func (fakeServices) GetUserInfo(context.Context, string) (module.UserInfo, error) {
	return module.UserInfo{}, module.ErrNotFound
}
func (fakeServices) CheckUserExists(context.Context, string) (string, error) { return "", nil }
func (fakeServices) RegisterUser(context.Context, string, module.RegisterUserOptions) (string, error) {
	return "", nil
}

func (fakeServices) ModuleRoomState(context.Context, string) (module.StateMap, error) {
	return nil, nil
}
func (fakeServices) ModuleSendEvent(context.Context, map[string]any) (module.Event, error) {
	return nil, nil
}
func (fakeServices) ModuleUpdateMembership(context.Context, string, string, string, string, map[string]any) (module.Event, error) {
	return nil, nil
}
func (fakeServices) ModuleCreateRoom(context.Context, string, map[string]any) (string, error) {
	return "", nil
}
func (fakeServices) ModuleGetAccountData(context.Context, string, string) ([]byte, error) {
	return nil, module.ErrNotFound
}
func (fakeServices) ModulePutAccountData(context.Context, string, string, []byte) error { return nil }

func TestWebResourcePaths(t *testing.T) {
	name := "modhosttest.Paths"
	var errs []error
	module.Register(name, module.Factory{New: func(_ any, api *module.API) (any, error) {
		for _, p := range []string{
			"/_synapse/client/ok", "/_synapse/client/ok", "/_matrix/client/v3/x", "/_matrix/federation",
			"/_matrix/key/v2/x", "/_matrix/media/v3/upload", "/_synapse/admin/v1/x", "relative", "/", "/_synapse/client/{x}", "/_matrix", "/_synapse", "/_synapse/client/a b", "/_matrix/%63lient", "/_synapse/client/x/../y",
		} {
			errs = append(errs, api.RegisterWebResource(p, http.NotFoundHandler()))
		}
		return nil, nil
	}})
	h := newTestHost(t)
	if err := h.Load(context.Background(), []config.Module{{Module: name}}, fakeServices{}); err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] != nil {
		t.Errorf("valid path / duplicate refused: %v, %v (a duplicate is a warning, not an error)", errs[0], errs[1])
	}
	for i, err := range errs[2:] {
		if err == nil {
			t.Errorf("path #%d accepted, want refused", i+2)
		}
	}
	if err := errs[2]; err == nil || !strings.Contains(err.Error(), "/_matrix/client") {
		t.Errorf("reserved-path error should name the prefix: %v", err)
	}
	if n := len(h.WebResources()); n != 1 {
		t.Errorf("%d resources registered, want 1", n)
	}
}

func TestHungModuleIsBounded(t *testing.T) {
	h := newTestHost(t)
	release := make(chan struct{})
	defer close(release)
	m := h.testModule("hung", time.Millisecond, "")
	add(&h.validity.isUserExpired, m, func(context.Context, string) (module.Expiry, error) {
		<-release // ignores its context
		return module.ExpiryUnknown, nil
	})
	var overload int
	for range MaxInflight + 10 {
		_, err := h.IsUserExpired(context.Background(), "@u:hs.test")
		var ce *CallbackError
		if !errors.As(err, &ce) {
			t.Fatalf("err = %v", err)
		}
		if ce.Kind == FailOverload {
			overload++
		}
	}
	if got := m.inflight.Load(); got > MaxInflight {
		t.Fatalf("%d calls in flight, want at most %d", got, MaxInflight)
	}
	if overload != 10 {
		t.Fatalf("%d calls failed fast, want 10", overload)
	}
}

func TestOnNewEventInOrder(t *testing.T) {
	h := newTestHost(t)
	var mu sync.Mutex
	var got []string
	add(&h.thirdParty.onNewEvent, h.testModule("m", time.Second, ""), func(_ context.Context, ev module.Event, _ module.StateMap) error {
		time.Sleep(time.Millisecond) // a slow module must not reorder events
		mu.Lock()
		got = append(got, ev.ContentString("body"))
		mu.Unlock()
		return nil
	})
	v, _ := event.LookupVersion("10")
	signer := event.Signer{ServerName: "hs.test", KeyID: "ed25519:k", Key: ed25519.NewKeyFromSeed(make([]byte, 32))}
	var want []string
	for i := range 20 {
		body := strconv.Itoa(i)
		want = append(want, body)
		e, err := event.Build(event.Template{Type: "m.room.message", Sender: "@a:hs.test", RoomID: "!r:hs.test", Depth: int64(i + 1),
			Content: map[string]any{"body": body}, PrevEvents: []string{}, AuthEvents: []string{}}, v, signer)
		if err != nil {
			t.Fatal(err)
		}
		h.OnNewEvent(e, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.Close(ctx) // drains the queue
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}
