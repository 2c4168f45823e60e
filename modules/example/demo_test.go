package example

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-im/sluice/module"
)

// fakeHost captures what a module registers, to test it without a server.
type fakeHost struct {
	spam      module.SpamCheckerCallbacks
	resources map[string]http.Handler
}

func (f *fakeHost) ServerName() string         { return "example.com" }
func (f *fakeHost) PublicBaseURL() string      { return "https://example.com/" }
func (f *fakeHost) Logger(string) *slog.Logger { return slog.Default() }
func (f *fakeHost) RegisterSpamCheckerCallbacks(_ string, cb module.SpamCheckerCallbacks) error {
	f.spam = cb
	return nil
}
func (f *fakeHost) RegisterAccountValidityCallbacks(string, module.AccountValidityCallbacks) error {
	return nil
}
func (f *fakeHost) GetRoomState(context.Context, string) (module.StateMap, error) { return nil, nil }
func (f *fakeHost) CreateAndSendEventIntoRoom(context.Context, map[string]any) (module.Event, error) {
	return nil, nil
}
func (f *fakeHost) UpdateRoomMembership(context.Context, string, string, string, string, map[string]any) (module.Event, error) {
	return nil, nil
}
func (f *fakeHost) CreateRoom(context.Context, string, map[string]any) (string, error) {
	return "", nil
}
func (f *fakeHost) RegisterThirdPartyRulesCallbacks(string, module.ThirdPartyRulesCallbacks) error {
	return nil
}
func (f *fakeHost) RegisterWebResource(_, path string, h http.Handler) error {
	f.resources[path] = h
	return nil
}
func (f *fakeHost) GetUserByRequest(*http.Request, bool) (module.Requester, error) {
	return module.Requester{}, nil
}
func (f *fakeHost) GetUserInfo(context.Context, string) (module.UserInfo, error) {
	return module.UserInfo{}, module.ErrNotFound
}
func (f *fakeHost) CheckUserExists(context.Context, string) (string, error) { return "", nil }
func (f *fakeHost) RegisterUser(context.Context, string, module.RegisterUserOptions) (string, error) {
	return "", nil
}

func TestDemoModule(t *testing.T) {
	h := &fakeHost{resources: map[string]http.Handler{}}
	f, ok := module.Lookup("example.DemoModule")
	if !ok {
		t.Fatal("example.DemoModule is not registered")
	}
	if _, err := f.New(map[string]any{}, module.NewAPI("example.DemoModule", h)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user string
		code string
	}{{"@evilguy:example.com", "M_FORBIDDEN"}, {"@alice:example.com", ""}, {"@evilguy:elsewhere.org", ""}} {
		d, err := h.spam.UserMayCreateRoom(context.Background(), tc.user, map[string]any{})
		if err != nil || d.Code() != tc.code {
			t.Errorf("user_may_create_room(%s) = %v, %v; want code %q", tc.user, d, err, tc.code)
		}
	}
	res := h.resources["/_synapse/client/demo/hello"]
	for _, tc := range []struct {
		target string
		status int
		body   string
	}{
		{"/_synapse/client/demo/hello?name=bob", 200, "{\"hello\":\"bob\"}\n"},
		{"/_synapse/client/demo/hello", 400, ""},
	} {
		rec := httptest.NewRecorder()
		res.ServeHTTP(rec, httptest.NewRequest("GET", tc.target, nil))
		if rec.Code != tc.status || (tc.body != "" && rec.Body.String() != tc.body) {
			t.Errorf("GET %s = %d %q", tc.target, rec.Code, rec.Body.String())
		}
	}
}
