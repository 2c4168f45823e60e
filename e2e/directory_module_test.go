package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/testserver"
	"github.com/sluice-im/sluice/module"
)

// test.DirectoryScripted is the directory tests' own scripted module (the
// shared test.Scripted stays untouched): each callback does what its config
// says (allow | deny[:CODE] | denywith | error | panic | hang, and for
// check_visibility_can_be_modified allow | deny | error | panic | hang), and
// its web resource drives the public room list helpers of the module API.
type directoryScriptedConfig struct {
	ID                           string `yaml:"id"`
	UserMayPublishRoom           string `yaml:"user_may_publish_room"`
	UserMayCreateRoomAlias       string `yaml:"user_may_create_room_alias"`
	CheckVisibilityCanBeModified string `yaml:"check_visibility_can_be_modified"`
	WebResource                  string `yaml:"web_resource"`
}

type directoryScripted struct {
	cfg directoryScriptedConfig
	api *module.API
	s   *scripted // for fail()
}

func init() {
	module.Register("test.DirectoryScripted", module.Factory{
		ParseConfig: func(raw module.RawConfig) (any, error) {
			var c directoryScriptedConfig
			if err := raw.Decode(&c); err != nil {
				return nil, err
			}
			if c.ID == "" {
				return nil, &module.ConfigError{Path: []string{"id"}, Msg: "is required"}
			}
			return c, nil
		},
		New: func(config any, api *module.API) (any, error) {
			c := config.(directoryScriptedConfig)
			m := &directoryScripted{cfg: c, api: api, s: &scripted{}}
			var spam module.SpamCheckerCallbacks
			if c.UserMayPublishRoom != "" {
				spam.UserMayPublishRoom = m.userMayPublishRoom
			}
			if c.UserMayCreateRoomAlias != "" {
				spam.UserMayCreateRoomAlias = m.userMayCreateRoomAlias
			}
			if err := api.RegisterSpamCheckerCallbacks(spam); err != nil {
				return nil, err
			}
			if c.CheckVisibilityCanBeModified != "" {
				if err := api.RegisterThirdPartyRulesCallbacks(module.ThirdPartyRulesCallbacks{CheckVisibilityCanBeModified: m.checkVisibility}); err != nil {
					return nil, err
				}
			}
			if c.WebResource != "" {
				if err := api.RegisterWebResource(c.WebResource, http.HandlerFunc(m.serve)); err != nil {
					return nil, err
				}
			}
			return m, nil
		},
	})
}

func (m *directoryScripted) userMayPublishRoom(ctx context.Context, userID, roomID string) (module.Decision, error) {
	modRecord(m.cfg.ID, "user_may_publish_room", userID, roomID)
	if h, err := m.s.fail(ctx, m.cfg.UserMayPublishRoom); h {
		return module.Decision{}, err
	}
	d, _ := decision(m.cfg.UserMayPublishRoom)
	return d, nil
}

func (m *directoryScripted) userMayCreateRoomAlias(ctx context.Context, userID, alias string) (module.Decision, error) {
	modRecord(m.cfg.ID, "user_may_create_room_alias", userID, alias)
	if h, err := m.s.fail(ctx, m.cfg.UserMayCreateRoomAlias); h {
		return module.Decision{}, err
	}
	d, _ := decision(m.cfg.UserMayCreateRoomAlias)
	return d, nil
}

func (m *directoryScripted) checkVisibility(ctx context.Context, roomID string, state module.StateMap, visibility string) (bool, error) {
	_, hasCreate := state[module.StateKey{Type: "m.room.create"}]
	modRecord(m.cfg.ID, "check_visibility_can_be_modified", roomID, visibility, hasCreate)
	if visibility != "public" {
		// Only publishing is scripted, so that createRoom (private) works.
		return true, nil
	}
	if h, err := m.s.fail(ctx, m.cfg.CheckVisibilityCanBeModified); h {
		return false, err
	}
	return m.cfg.CheckVisibilityCanBeModified == "allow", nil
}

// serve: ?op=is|add|remove&room=ROOM drives the public room list helpers.
func (m *directoryScripted) serve(w http.ResponseWriter, r *http.Request) {
	ctx, room := r.Context(), r.URL.Query().Get("room")
	var out any
	var err error
	switch r.URL.Query().Get("op") {
	case "is":
		out, err = m.api.RoomIsInPublicRoomList(ctx, room)
	case "add":
		err = m.api.AddRoomToPublicRoomList(ctx, room)
		out = "ok"
	case "remove":
		err = m.api.RemoveRoomFromPublicRoomList(ctx, room)
		out = "ok"
	}
	if err != nil {
		module.RespondError(w, err)
		return
	}
	module.RespondJSON(w, http.StatusOK, map[string]any{"result": out})
}

// dirEntry renders a modules: entry of test.DirectoryScripted.
func dirEntry(id, extra string, callbacks map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - module: test.DirectoryScripted\n%s    config:\n      id: %q\n", extra, id)
	for k, v := range callbacks {
		fmt.Fprintf(&b, "      %s: %q\n", k, v)
	}
	return b.String()
}

// publishAll lets anyone publish rooms (Synapse's default refuses since
// 1.126).
const publishAll = "room_list_publication_rules: [{action: allow}]\n"

func dirServer(t *testing.T, entries ...string) *testserver.Server {
	t.Helper()
	return testserver.Start(t, testserver.Options{YAML: modRegistrationOn + publishAll + "modules:\n" + strings.Join(entries, "")})
}

// TestDirectoryCallbacks drives user_may_publish_room (both visibilities),
// check_visibility_can_be_modified (making public only) and
// user_may_create_room_alias (PUT /directory/room) through every return
// form and failure, as the client sees them.
func TestDirectoryCallbacks(t *testing.T) {
	t.Parallel()
	type outcome struct {
		status  int
		errcode string
		message string
	}
	publishMsg := "This user is not permitted to publish rooms to the room list"
	aliasMsg := "This user is not permitted to create this alias"
	internal := outcome{500, "M_UNKNOWN", "Internal server error"}
	cases := []struct {
		behaviour string
		extra     string
		want      func(msg string) outcome
	}{
		{"allow", "", func(string) outcome { return outcome{200, "", ""} }},
		{"deny", "", func(m string) outcome { return outcome{403, "M_FORBIDDEN", m} }},
		{"deny:M_LIMIT_EXCEEDED", "", func(m string) outcome { return outcome{403, "M_LIMIT_EXCEEDED", m} }},
		{"denywith", "", func(m string) outcome { return outcome{403, "M_LIMIT_EXCEEDED", "module says slow down"} }},
		{"error", "", func(string) outcome { return internal }},
		{"panic", "", func(string) outcome { return internal }},
		{"hang", "    timeout: 100ms\n", func(string) outcome { return internal }},
	}
	check := func(t *testing.T, r testserver.Response, o outcome) {
		t.Helper()
		r.Expect(t, o.status, o.errcode)
		if o.message != "" && r.Str("error") != o.message {
			t.Errorf("error %q, want %q", r.Str("error"), o.message)
		}
	}
	for _, c := range cases {
		t.Run("user_may_publish_room/"+c.behaviour, func(t *testing.T) {
			t.Parallel()
			id := modID(t, 0)
			s := dirServer(t, dirEntry(id, c.extra, map[string]string{"user_may_publish_room": c.behaviour}))
			uid, tok := s.Register(t, "pia", "pw")
			room := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}, tok).Expect(t, 200, "").Str("room_id")
			for _, vis := range []string{"public", "private"} {
				r := s.Do(t, "PUT", "/_matrix/client/v3/directory/list/room/"+room, map[string]any{"visibility": vis}, tok)
				want := c.want(publishMsg)
				check(t, r, want)
				if c.behaviour == "denywith" && r.Body["retry_after_ms"] != float64(1234) {
					t.Errorf("extra fields lost: %s", r.Raw)
				}
				got := s.Do(t, "GET", "/_matrix/client/v3/directory/list/room/"+room, nil, "").Expect(t, 200, "").Str("visibility")
				if want.status == 200 && got != vis || want.status != 200 && got != "private" {
					t.Errorf("after PUT %s (%s): visibility %s", vis, c.behaviour, got)
				}
			}
			calls := modCallsOf(id)
			if len(calls) != 2 || calls[0].Callback != "user_may_publish_room" || calls[0].Args[0] != uid || calls[0].Args[1] != room {
				t.Errorf("calls %+v", calls)
			}
			// The server keeps serving.
			s.Do(t, "GET", "/_matrix/client/v3/directory/list/room/"+room, nil, "").Expect(t, 200, "")
		})
		t.Run("user_may_create_room_alias/"+c.behaviour, func(t *testing.T) {
			t.Parallel()
			id := modID(t, 0)
			s := dirServer(t, dirEntry(id, c.extra, map[string]string{"user_may_create_room_alias": c.behaviour}))
			uid, tok := s.Register(t, "ali", "pw")
			room := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{}, tok).Expect(t, 200, "").Str("room_id")
			r := s.Do(t, "PUT", "/_matrix/client/v3/directory/room/%23cb:test.local", map[string]any{"room_id": room}, tok)
			want := c.want(aliasMsg)
			check(t, r, want)
			if want.status == 200 {
				s.Do(t, "GET", "/_matrix/client/v3/directory/room/%23cb:test.local", nil, "").Expect(t, 200, "")
			} else {
				s.Do(t, "GET", "/_matrix/client/v3/directory/room/%23cb:test.local", nil, "").Expect(t, 404, "M_NOT_FOUND")
			}
			calls := modCallsOf(id)
			if len(calls) != 1 || calls[0].Args[0] != uid || calls[0].Args[1] != "#cb:test.local" {
				t.Errorf("calls %+v", calls)
			}
		})
	}
	// check_visibility_can_be_modified: asked when making a room public
	// only; false or a failure with on_error: deny refuses with Synapse's
	// M_UNKNOWN; other failures fail open.
	for _, c := range []struct {
		behaviour, extra string
		status           int
	}{
		{"allow", "", 200}, {"deny", "", 403}, {"error", "", 200}, {"panic", "", 200},
		{"hang", "    timeout: 100ms\n", 200}, {"error", "    on_error: deny\n", 403},
	} {
		t.Run("check_visibility_can_be_modified/"+c.behaviour+strings.TrimSpace(c.extra), func(t *testing.T) {
			t.Parallel()
			id := modID(t, 0)
			s := dirServer(t, dirEntry(id, c.extra, map[string]string{"check_visibility_can_be_modified": c.behaviour}))
			_, tok := s.Register(t, "vic", "pw")
			// createRoom asks too, with private (the module allows that).
			room := s.Do(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}, tok).Expect(t, 200, "").Str("room_id")
			before := len(modCallsOf(id))
			r := s.Do(t, "PUT", "/_matrix/client/v3/directory/list/room/"+room, map[string]any{"visibility": "public"}, tok).Expect(t, c.status, "")
			wantVis := "public"
			if c.status == 403 {
				wantVis = "private"
				if r.Str("errcode") != "M_UNKNOWN" || r.Str("error") != "Not allowed to publish room" {
					t.Errorf("refusal %s", r.Raw)
				}
			}
			if v := s.Do(t, "GET", "/_matrix/client/v3/directory/list/room/"+room, nil, "").Expect(t, 200, "").Str("visibility"); v != wantVis {
				t.Errorf("visibility %s, want %s", v, wantVis)
			}
			s.Do(t, "PUT", "/_matrix/client/v3/directory/list/room/"+room, map[string]any{"visibility": "private"}, tok).Expect(t, 200, "")
			calls := modCallsOf(id)[before:]
			if len(calls) != 1 || calls[0].Args[0] != room || calls[0].Args[1] != "public" || calls[0].Args[2] != true {
				t.Errorf("calls %+v (asked once, for public, with the room's state)", calls)
			}
		})
	}
}
