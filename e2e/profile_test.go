package e2e_test

// Profiles (GET/PUT /profile), their propagation into member events,
// on_profile_update and the module API's profile helpers, through the real
// server. test.ProfileScripted is this file's own scripted module.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/spectest"
	"github.com/sluice-im/sluice/internal/testserver"
	"github.com/sluice-im/sluice/module"
)

// profileScriptedConfig drives test.ProfileScripted:
//
//	on_profile_update:       ok | error | panic | hang
//	check_username_for_spam: allow | spam:<substring> (true for user IDs
//	                         containing it) | error | panic | hang
//	web_resource:            a path serving the module API's profile helpers
//	                         (?api=get&localpart=L, ?api=setname&user=U&value=V,
//	                         ?api=setavatar&user=U&value=V)
type profileScriptedConfig struct {
	ID                   string `yaml:"id"`
	OnProfileUpdate      string `yaml:"on_profile_update"`
	CheckUsernameForSpam string `yaml:"check_username_for_spam"`
	WebResource          string `yaml:"web_resource"`
}

func init() {
	module.Register("test.ProfileScripted", module.Factory{
		ParseConfig: func(raw module.RawConfig) (any, error) {
			var c profileScriptedConfig
			if err := raw.Decode(&c); err != nil {
				return nil, err
			}
			return c, nil
		},
		New: func(cfg any, api *module.API) (any, error) {
			c := cfg.(profileScriptedConfig)
			var tp module.ThirdPartyRulesCallbacks
			if b := c.OnProfileUpdate; b != "" {
				tp.OnProfileUpdate = func(ctx context.Context, userID string, p module.ProfileInfo, byAdmin, deactivation bool) error {
					modRecord(c.ID, "on_profile_update", userID, p, byAdmin, deactivation)
					return profFail(b)
				}
			}
			if err := api.RegisterThirdPartyRulesCallbacks(tp); err != nil {
				return nil, err
			}
			var sc module.SpamCheckerCallbacks
			if b := c.CheckUsernameForSpam; b != "" {
				sc.CheckUsernameForSpam = func(ctx context.Context, p module.UserProfile, requester string) (bool, error) {
					modRecord(c.ID, "check_username_for_spam", p, requester)
					if sub, ok := strings.CutPrefix(b, "spam:"); ok {
						return strings.Contains(p.UserID, sub), nil
					}
					if err := profFail(b); err != nil {
						return false, err
					}
					return false, nil
				}
			}
			if err := api.RegisterSpamCheckerCallbacks(sc); err != nil {
				return nil, err
			}
			if c.WebResource != "" {
				if err := api.RegisterWebResource(c.WebResource, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					q := r.URL.Query()
					var err error
					out := map[string]any{}
					switch q.Get("api") {
					case "get":
						var p module.ProfileInfo
						p, err = api.GetProfileForUser(r.Context(), q.Get("localpart"))
						out["displayname"], out["avatar_url"] = p.DisplayName, p.AvatarURL
					case "setname":
						err = api.SetDisplayname(r.Context(), q.Get("user"), q.Get("value"))
					case "setavatar":
						err = api.SetAvatarURL(r.Context(), q.Get("user"), q.Get("value"))
					}
					if err != nil {
						module.RespondError(w, err)
						return
					}
					module.RespondJSON(w, http.StatusOK, out)
				})); err != nil {
					return nil, err
				}
			}
			return nil, nil
		},
	})
}

// profFail performs the behaviours shared by the callbacks.
func profFail(b string) error {
	switch b {
	case "error":
		return errors.New("scripted failure")
	case "panic":
		panic("scripted panic")
	case "hang":
		<-modHangRelease // ignores its context on purpose
		return errors.New("released")
	}
	return nil
}

// profEntry renders a modules: entry of test.ProfileScripted.
func profEntry(id, extra string, kv ...string) string {
	var b strings.Builder
	b.WriteString("  - module: test.ProfileScripted\n" + extra + "    config:\n      id: \"" + id + "\"\n")
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString("      " + kv[i] + ": \"" + kv[i+1] + "\"\n")
	}
	return b.String()
}

func profPath(userID string, field ...string) string {
	return roomCS(append([]string{"profile", userID}, field...)...)
}

// profSchema validates a success response against the spec.
func profSchema(t testing.TB, file, method, path string, raw []byte) {
	t.Helper()
	s, err := spectest.Load(file, method, path, 200)
	if errors.Is(err, spectest.ErrNoSpec) {
		t.Logf("spec not available: %s %s not checked", method, path)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	s.CheckJSON(t, raw)
}

func profJSON(t testing.TB, r testserver.Response, want string) {
	t.Helper()
	if string(r.Raw) != want {
		t.Fatalf("body %s, want %s", r.Raw, want)
	}
}

func TestProfileEndpoints(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")

		// Registration gives the localpart as display name; reads need no token.
		r := s.Do(t, "GET", profPath(alice.ID), nil, "").Expect(t, 200, "")
		profJSON(t, r, `{"displayname":"alice"}`)
		profSchema(t, "profile.yaml", "get", "/profile/{userId}", r.Raw)
		r = s.Do(t, "GET", profPath(alice.ID, "displayname"), nil, "").Expect(t, 200, "")
		profJSON(t, r, `{"displayname":"alice"}`)
		profSchema(t, "profile.yaml", "get", "/profile/{userId}/{keyName}", r.Raw)
		// An unset field is null, as Synapse answers.
		profJSON(t, s.Do(t, "GET", profPath(alice.ID, "avatar_url"), nil, "").Expect(t, 200, ""), `{"avatar_url":null}`)
		// A bad token is not even looked at.
		profJSON(t, s.Do(t, "GET", profPath(alice.ID), nil, "nonsense").Expect(t, 200, ""), `{"displayname":"alice"}`)

		// Set both; read back on v3 and r0.
		r = s.Do(t, "PUT", profPath(alice.ID, "displayname"), map[string]any{"displayname": "Alice Liddell"}, alice.Token).Expect(t, 200, "")
		profJSON(t, r, `{}`)
		if sch, err := spectest.Load("profile.yaml", "put", "/profile/{userId}/{keyName}", 200); err == nil {
			sch.CheckJSON(t, r.Raw)
		}
		s.Do(t, "PUT", profPath(alice.ID, "avatar_url"), map[string]any{"avatar_url": "mxc://test.local/abc"}, alice.Token).Expect(t, 200, "")
		r = s.Do(t, "GET", "/_matrix/client/r0/profile/"+alice.ID, nil, "").Expect(t, 200, "")
		profJSON(t, r, `{"avatar_url":"mxc://test.local/abc","displayname":"Alice Liddell"}`)
		profSchema(t, "profile.yaml", "get", "/profile/{userId}", r.Raw)
		r = s.Do(t, "GET", "/_matrix/client/r0/profile/"+alice.ID+"/avatar_url", nil, "").Expect(t, 200, "")
		profJSON(t, r, `{"avatar_url":"mxc://test.local/abc"}`)
		profSchema(t, "profile.yaml", "get", "/profile/{userId}/{keyName}", r.Raw)
		s.Do(t, "PUT", "/_matrix/client/r0/profile/"+alice.ID+"/displayname", map[string]any{"displayname": "  Padded  "}, alice.Token).Expect(t, 200, "")
		profJSON(t, s.Do(t, "GET", profPath(alice.ID, "displayname"), nil, "").Expect(t, 200, ""), `{"displayname":"Padded"}`)
		// Extra keys are ignored; 256 characters (not bytes) is the limit.
		long := strings.Repeat("é", 256)
		s.Do(t, "PUT", profPath(alice.ID, "displayname"), map[string]any{"displayname": long, "other": 1}, alice.Token).Expect(t, 200, "")
		profJSON(t, s.Do(t, "GET", profPath(alice.ID, "displayname"), nil, "").Expect(t, 200, ""), `{"displayname":"`+long+`"}`)

		// "" clears a field; with neither set, the profile is not found.
		s.Do(t, "PUT", profPath(alice.ID, "displayname"), map[string]any{"displayname": ""}, alice.Token).Expect(t, 200, "")
		profJSON(t, s.Do(t, "GET", profPath(alice.ID), nil, "").Expect(t, 200, ""), `{"avatar_url":"mxc://test.local/abc"}`)
		profJSON(t, s.Do(t, "GET", profPath(alice.ID, "displayname"), nil, "").Expect(t, 200, ""), `{"displayname":null}`)
		s.Do(t, "PUT", profPath(alice.ID, "avatar_url"), map[string]any{"avatar_url": ""}, alice.Token).Expect(t, 200, "")
		roomExpectError(t, s.Do(t, "GET", profPath(alice.ID), nil, ""), 404, "M_NOT_FOUND", "Profile was not found")
		// A name of spaces is kept as "" (Synapse strips it and stores it).
		s.Do(t, "PUT", profPath(alice.ID, "displayname"), map[string]any{"displayname": "   "}, alice.Token).Expect(t, 200, "")
		profJSON(t, s.Do(t, "GET", profPath(alice.ID), nil, "").Expect(t, 200, ""), `{"displayname":""}`)

		// Errors of PUT, in Synapse's order and words.
		for _, c := range []struct {
			name, path, token string
			body              any
			status            int
			errcode, msg      string
		}{
			{"invalid user ID before the token", profPath("notauser", "displayname"), "", map[string]any{"displayname": "x"}, 400, "M_INVALID_PARAM", "Invalid user id"},
			{"no token", profPath(alice.ID, "displayname"), "", map[string]any{"displayname": "x"}, 401, "M_MISSING_TOKEN", ""},
			{"bad token", profPath(alice.ID, "displayname"), "nope", map[string]any{"displayname": "x"}, 401, "M_UNKNOWN_TOKEN", ""},
			{"not JSON", profPath(alice.ID, "displayname"), alice.Token, "{nope", 400, "M_NOT_JSON", ""},
			{"not an object", profPath(alice.ID, "displayname"), alice.Token, "[1]", 400, "M_BAD_JSON", ""},
			{"missing key", profPath(alice.ID, "displayname"), alice.Token, map[string]any{"avatar_url": "x"}, 400, "M_MISSING_PARAM", "Missing key 'displayname'"},
			{"missing avatar key", profPath(alice.ID, "avatar_url"), alice.Token, map[string]any{}, 400, "M_MISSING_PARAM", "Missing key 'avatar_url'"},
			{"remote user", profPath("@x:elsewhere.example", "displayname"), alice.Token, map[string]any{"displayname": "x"}, 400, "M_UNKNOWN", "User is not hosted on this homeserver"},
			{"another user", profPath(bob.ID, "displayname"), alice.Token, map[string]any{"displayname": "x"}, 400, "M_FORBIDDEN", "Cannot set another user's displayname"},
			{"another user's avatar", profPath(bob.ID, "avatar_url"), alice.Token, map[string]any{"avatar_url": "x"}, 400, "M_FORBIDDEN", "Cannot set another user's avatar_url"},
			{"null", profPath(alice.ID, "displayname"), alice.Token, `{"displayname":null}`, 400, "M_INVALID_PARAM", "'displayname' must be a string"},
			{"number", profPath(alice.ID, "displayname"), alice.Token, map[string]any{"displayname": 5}, 400, "M_INVALID_PARAM", "'displayname' must be a string"},
			{"avatar object", profPath(alice.ID, "avatar_url"), alice.Token, map[string]any{"avatar_url": map[string]any{}}, 400, "M_INVALID_PARAM", "'avatar_url' must be a string"},
			{"name too long", profPath(alice.ID, "displayname"), alice.Token, map[string]any{"displayname": strings.Repeat("x", 257)}, 400, "M_UNKNOWN", "Displayname is too long (max 256)"},
			{"avatar too long", profPath(alice.ID, "avatar_url"), alice.Token, map[string]any{"avatar_url": strings.Repeat("x", 1001)}, 400, "M_UNKNOWN", "Avatar URL is too long (max 1000)"},
		} {
			t.Run(c.name, func(t *testing.T) {
				roomExpectError(t, s.Do(t, "PUT", c.path, c.body, c.token), c.status, c.errcode, c.msg)
			})
		}
		profJSON(t, s.Do(t, "GET", profPath(bob.ID), nil, "").Expect(t, 200, ""), `{"displayname":"bob"}`)

		// Errors of GET.
		roomExpectError(t, s.Do(t, "GET", profPath("@nobody:test.local"), nil, ""), 404, "M_NOT_FOUND", "Profile was not found")
		roomExpectError(t, s.Do(t, "GET", profPath("@nobody:test.local", "displayname"), nil, ""), 404, "M_NOT_FOUND", "Profile was not found")
		roomExpectError(t, s.Do(t, "GET", profPath("@nobody:test.local", "avatar_url"), nil, ""), 404, "M_NOT_FOUND", "Profile was not found")
		roomExpectError(t, s.Do(t, "GET", profPath("bob"), nil, ""), 400, "M_INVALID_PARAM", "Invalid user id")
		roomExpectError(t, s.Do(t, "GET", profPath("@bob:bad_server!"), nil, ""), 400, "M_INVALID_PARAM", "Invalid user id")
		// A remote profile needs federation: Synapse's answer when the
		// remote server cannot be reached.
		roomExpectError(t, s.Do(t, "GET", profPath("@x:elsewhere.example"), nil, ""), 502, "M_UNKNOWN", "Failed to fetch profile")
		roomExpectError(t, s.Do(t, "GET", profPath("@x:elsewhere.example", "displayname"), nil, ""), 502, "M_UNKNOWN", "Failed to fetch profile")
		// Other fields are not served.
		s.Do(t, "GET", profPath(alice.ID, "m.tz"), nil, "").Expect(t, 404, "M_UNRECOGNIZED")
		s.Do(t, "DELETE", profPath(alice.ID, "displayname"), nil, alice.Token).Expect(t, 405, "M_UNRECOGNIZED")

		// A server admin may set another user's profile.
		if err := s.Srv.Store().SetAdmin(context.Background(), bob.ID, true); err != nil {
			t.Fatal(err)
		}
		s.Do(t, "PUT", profPath(alice.ID, "displayname"), map[string]any{"displayname": "Set by admin"}, bob.Token).Expect(t, 200, "")
		profJSON(t, s.Do(t, "GET", profPath(alice.ID), nil, "").Expect(t, 200, ""), `{"displayname":"Set by admin"}`)

		// Shared-secret registration takes a display name.
		nonce := s.Do(t, "GET", "/_synapse/admin/v1/register", nil, "").Expect(t, 200, "").Str("nonce")
		s.Do(t, "POST", "/_synapse/admin/v1/register", map[string]any{
			"nonce": nonce, "username": "carol", "password": "pw", "displayname": "Carol C",
			"mac": modMAC(testserver.SharedSecret, nonce, "carol", "pw", false),
		}, "").Expect(t, 200, "")
		profJSON(t, s.Do(t, "GET", profPath("@carol:test.local"), nil, "").Expect(t, 200, ""), `{"displayname":"Carol C"}`)
	})
}

func TestProfileRequireAuth(t *testing.T) {
	t.Parallel()
	s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn +
		"require_auth_for_profile_requests: true\nlimit_profile_requests_to_users_who_share_rooms: true\n"})
	alice := roomRegister(t, s, "alice")
	bob := roomRegister(t, s, "bob")
	s.Do(t, "GET", profPath(alice.ID), nil, "").Expect(t, 401, "M_MISSING_TOKEN")
	s.Do(t, "GET", profPath(alice.ID, "displayname"), nil, "bad").Expect(t, 401, "M_UNKNOWN_TOKEN")
	// The token comes before the user ID check.
	s.Do(t, "GET", profPath("nope"), nil, "").Expect(t, 401, "M_MISSING_TOKEN")
	profJSON(t, s.Do(t, "GET", profPath(alice.ID), nil, alice.Token).Expect(t, 200, ""), `{"displayname":"alice"}`)
	roomExpectError(t, s.Do(t, "GET", profPath(bob.ID), nil, alice.Token), 403, "M_FORBIDDEN", "Profile isn't available")
	roomExpectError(t, s.Do(t, "GET", profPath(bob.ID, "avatar_url"), nil, alice.Token), 403, "M_FORBIDDEN", "Profile isn't available")
	roomExpectError(t, s.Do(t, "GET", profPath("@nobody:test.local"), nil, alice.Token), 403, "M_FORBIDDEN", "Profile isn't available")
	room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
	s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
	profJSON(t, s.Do(t, "GET", profPath(bob.ID), nil, alice.Token).Expect(t, 200, ""), `{"displayname":"bob"}`)
	profJSON(t, s.Do(t, "GET", profPath(bob.ID, "displayname"), nil, alice.Token).Expect(t, 200, ""), `{"displayname":"bob"}`)
}

// profMember is the content of a user's current member event in a room, and
// its event ID, from GET /rooms/{roomId}/state.
func profMember(t testing.TB, s *testserver.Server, u roomUser, roomID, userID string) (map[string]any, string) {
	t.Helper()
	r := s.Do(t, "GET", roomCS("rooms", roomID, "state"), nil, u.Token).Expect(t, 200, "")
	var state []map[string]any
	if err := json.Unmarshal(r.Raw, &state); err != nil {
		t.Fatal(err)
	}
	for _, e := range state {
		if e["type"] == "m.room.member" && e["state_key"] == userID {
			return e["content"].(map[string]any), e["event_id"].(string)
		}
	}
	t.Fatalf("no member event of %s in %s", userID, roomID)
	return nil, ""
}

func TestProfilePropagation(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		carol := roomRegister(t, s, "carol")
		s.Do(t, "PUT", profPath(carol.ID, "avatar_url"), map[string]any{"avatar_url": "mxc://test.local/carol"}, carol.Token).Expect(t, 200, "")

		// Joins and invites carry the profile when the client gives none:
		// the creator's join, a /join, an invite (the invitee's profile).
		r1 := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		r2 := roomCreate(t, s, alice, map[string]any{"preset": "private_chat"})
		left := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		if c, _ := profMember(t, s, alice, r1, alice.ID); !reflect.DeepEqual(c, map[string]any{"membership": "join", "displayname": "alice"}) {
			t.Errorf("creator's join = %v", c)
		}
		s.Do(t, "POST", roomCS("rooms", r1, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		if c, _ := profMember(t, s, bob, r1, bob.ID); !reflect.DeepEqual(c, map[string]any{"membership": "join", "displayname": "bob"}) {
			t.Errorf("bob's join = %v", c)
		}
		s.Do(t, "POST", roomCS("rooms", r2, "invite"), map[string]any{"user_id": carol.ID}, alice.Token).Expect(t, 200, "")
		want := map[string]any{"membership": "invite", "displayname": "carol", "avatar_url": "mxc://test.local/carol"}
		if c, _ := profMember(t, s, alice, r2, carol.ID); !reflect.DeepEqual(c, want) {
			t.Errorf("carol's invite = %v, want %v", c, want)
		}
		// A per-room name the client sets is kept; an over-long one is refused.
		s.Do(t, "PUT", roomCS("rooms", r1, "state", "m.room.member", bob.ID), map[string]any{"membership": "join", "displayname": "Bob here"}, bob.Token).Expect(t, 200, "")
		if c, _ := profMember(t, s, bob, r1, bob.ID); !reflect.DeepEqual(c, map[string]any{"membership": "join", "displayname": "Bob here"}) {
			t.Errorf("bob's per-room name = %v", c)
		}
		roomExpectError(t, s.Do(t, "PUT", roomCS("rooms", r1, "state", "m.room.member", bob.ID),
			map[string]any{"membership": "join", "displayname": strings.Repeat("b", 257)}, bob.Token), 400, "M_BAD_JSON", "Displayname is too long (max 256)")
		roomExpectError(t, s.Do(t, "PUT", roomCS("rooms", r1, "state", "m.room.member", bob.ID),
			map[string]any{"membership": "join", "avatar_url": strings.Repeat("b", 1001)}, bob.Token), 400, "M_BAD_JSON", "Avatar URL is too long (max 1000)")
		s.Do(t, "POST", roomCS("rooms", left, "leave"), map[string]any{}, alice.Token).Expect(t, 200, "")
		_, leftEvent := profMember(t, s, alice, left, alice.ID)

		// A global change: a new join event in each joined room, seen by
		// the other members through /sync.
		since := syncDo(t, s, bob, url.Values{}).NextBatch
		s.Do(t, "PUT", profPath(alice.ID, "displayname"), map[string]any{"displayname": "Alice L"}, alice.Token).Expect(t, 200, "")
		for _, room := range []string{r1, r2} {
			if c, _ := profMember(t, s, alice, room, alice.ID); !reflect.DeepEqual(c, map[string]any{"membership": "join", "displayname": "Alice L"}) {
				t.Errorf("%s: alice's member event after the change = %v", room, c)
			}
		}
		if _, id := profMember(t, s, alice, left, alice.ID); id != leftEvent {
			t.Errorf("a left room got a new member event")
		}
		sr := syncDo(t, s, bob, url.Values{"since": {since}})
		ev := syncHas(sr.Rooms.Join[r1].Timeline.Events, "m.room.member", alice.ID)
		if ev == nil || ev["content"].(map[string]any)["displayname"] != "Alice L" || ev["sender"] != alice.ID {
			t.Errorf("bob's sync after alice's change: %s", sr.raw)
		}
		s.Do(t, "PUT", profPath(alice.ID, "avatar_url"), map[string]any{"avatar_url": "mxc://test.local/a"}, alice.Token).Expect(t, 200, "")
		c, before := profMember(t, s, alice, r1, alice.ID)
		if !reflect.DeepEqual(c, map[string]any{"membership": "join", "displayname": "Alice L", "avatar_url": "mxc://test.local/a"}) {
			t.Errorf("after the avatar change: %v", c)
		}
		// Setting the same value again sends nothing new.
		s.Do(t, "PUT", profPath(alice.ID, "avatar_url"), map[string]any{"avatar_url": "mxc://test.local/a"}, alice.Token).Expect(t, 200, "")
		if _, after := profMember(t, s, alice, r1, alice.ID); after != before {
			t.Errorf("an unchanged profile sent a new member event")
		}
		// Bob's global change stomps his per-room name, as in Synapse.
		s.Do(t, "PUT", profPath(bob.ID, "displayname"), map[string]any{"displayname": "Robert"}, bob.Token).Expect(t, 200, "")
		if c, _ := profMember(t, s, bob, r1, bob.ID); !reflect.DeepEqual(c, map[string]any{"membership": "join", "displayname": "Robert"}) {
			t.Errorf("bob after his global change = %v", c)
		}
		// Clearing the name leaves it out of the member event.
		s.Do(t, "PUT", profPath(bob.ID, "displayname"), map[string]any{"displayname": ""}, bob.Token).Expect(t, 200, "")
		if c, _ := profMember(t, s, bob, r1, bob.ID); !reflect.DeepEqual(c, map[string]any{"membership": "join"}) {
			t.Errorf("bob after clearing his name = %v", c)
		}
		// An admin's change of another user's profile is sent as that user.
		if err := s.Srv.Store().SetAdmin(context.Background(), carol.ID, true); err != nil {
			t.Fatal(err)
		}
		s.Do(t, "PUT", profPath(alice.ID, "displayname"), map[string]any{"displayname": "Renamed"}, carol.Token).Expect(t, 200, "")
		sr = syncDo(t, s, bob, url.Values{"since": {sr.NextBatch}})
		if ev := profLast(sr.Rooms.Join[r1].Timeline.Events, "m.room.member", alice.ID); ev == nil || ev["sender"] != alice.ID ||
			ev["content"].(map[string]any)["displayname"] != "Renamed" {
			t.Errorf("admin's change in bob's sync: %s", sr.raw)
		}
	})
}

// profLast is the last event of a type and state key.
func profLast(evs []map[string]any, typ, key string) map[string]any {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i]["type"] == typ && evs[i]["state_key"] == key {
			return evs[i]
		}
	}
	return nil
}

func TestProfileShadowBanned(t *testing.T) {
	t.Parallel()
	s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn})
	alice := roomRegister(t, s, "alice")
	room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
	if err := s.Srv.Store().SetShadowBanned(context.Background(), alice.ID, true); err != nil {
		t.Fatal(err)
	}
	_, before := profMember(t, s, alice, room, alice.ID)
	start := time.Now()
	s.Do(t, "PUT", profPath(alice.ID, "displayname"), map[string]any{"displayname": "Sneaky"}, alice.Token).Expect(t, 200, "")
	if d := time.Since(start); d < time.Second {
		t.Errorf("answered after %v, want Synapse's 1-10 s delay", d)
	}
	// The global profile changed; the room did not.
	profJSON(t, s.Do(t, "GET", profPath(alice.ID), nil, "").Expect(t, 200, ""), `{"displayname":"Sneaky"}`)
	c, after := profMember(t, s, alice, room, alice.ID)
	if after != before || c["displayname"] != "alice" {
		t.Errorf("a shadow-banned user's change reached the room: %v", c)
	}
	// Their per-room names are dropped: joins carry the global profile.
	s.Do(t, "PUT", roomCS("rooms", room, "state", "m.room.member", alice.ID), map[string]any{"membership": "join", "displayname": "Per room"}, alice.Token).Expect(t, 200, "")
	if c, _ := profMember(t, s, alice, room, alice.ID); c["displayname"] != "Sneaky" {
		t.Errorf("shadow-banned per-room name = %v", c)
	}
}

func profCalls(id string) []modCall { return roomCallsNamed(id, "on_profile_update") }

func TestOnProfileUpdate(t *testing.T) {
	t.Parallel()
	a, b, c, d, e := roomModID(t, 1), roomModID(t, 2), roomModID(t, 3), roomModID(t, 4), roomModID(t, 5)
	const extra = "    timeout: 100ms\n"
	s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn + "modules:\n" +
		profEntry(a, extra, "on_profile_update", "ok", "web_resource", "/_synapse/client/profiletest") +
		profEntry(b, extra, "on_profile_update", "error") +
		profEntry(c, extra, "on_profile_update", "panic") +
		profEntry(d, extra, "on_profile_update", "hang") +
		profEntry(e, extra+"    on_error: deny\n", "on_profile_update", "ok")})
	alice := roomRegister(t, s, "alice")
	bob := roomRegister(t, s, "bob")
	room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
	// Registration is not a profile update (as in Synapse).
	if n := len(profCalls(a)); n != 0 {
		t.Fatalf("%d calls after registration, want 0", n)
	}

	// Every module runs, in order; a failing, panicking or hanging one
	// never fails the request, and the change is made whatever they do.
	start := time.Now()
	s.Do(t, "PUT", profPath(alice.ID, "displayname"), map[string]any{"displayname": "Alice"}, alice.Token).Expect(t, 200, "")
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("PUT took %s with a hung callback (timeout 100ms)", el)
	}
	for _, id := range []string{a, b, c, d, e} {
		calls := profCalls(id)
		if len(calls) != 1 {
			t.Fatalf("module %s: %d calls, want 1", id, len(calls))
		}
		want := []any{alice.ID, module.ProfileInfo{DisplayName: "Alice"}, false, false}
		if !reflect.DeepEqual(calls[0].Args, want) {
			t.Errorf("module %s: args %#v, want %#v", id, calls[0].Args, want)
		}
	}
	if ct, _ := profMember(t, s, alice, room, alice.ID); ct["displayname"] != "Alice" {
		t.Errorf("member event after the PUT = %v", ct)
	}
	// The whole new profile is passed.
	s.Do(t, "PUT", profPath(alice.ID, "avatar_url"), map[string]any{"avatar_url": "mxc://test.local/x"}, alice.Token).Expect(t, 200, "")
	if calls := profCalls(a); len(calls) != 2 || !reflect.DeepEqual(calls[1].Args, []any{alice.ID, module.ProfileInfo{DisplayName: "Alice", AvatarURL: "mxc://test.local/x"}, false, false}) {
		t.Errorf("avatar change calls %+v", calls)
	}
	// Refused changes tell nobody.
	s.Do(t, "PUT", profPath(bob.ID, "displayname"), map[string]any{"displayname": "x"}, alice.Token).Expect(t, 400, "M_FORBIDDEN")
	s.Do(t, "PUT", profPath(alice.ID, "displayname"), map[string]any{"displayname": 1}, alice.Token).Expect(t, 400, "M_INVALID_PARAM")
	if n := len(profCalls(a)); n != 2 {
		t.Errorf("%d calls after refused changes, want 2", n)
	}
	// An admin's change: byAdmin is true.
	if err := s.Srv.Store().SetAdmin(context.Background(), bob.ID, true); err != nil {
		t.Fatal(err)
	}
	s.Do(t, "PUT", profPath(alice.ID, "displayname"), map[string]any{"displayname": "By admin"}, bob.Token).Expect(t, 200, "")
	if calls := profCalls(a); len(calls) != 3 || !reflect.DeepEqual(calls[2].Args, []any{alice.ID, module.ProfileInfo{DisplayName: "By admin", AvatarURL: "mxc://test.local/x"}, true, false}) {
		t.Errorf("admin change calls %+v", calls)
	}

	// The module API: get_profile_for_user and set_displayname (as an
	// admin: byAdmin true), set_avatar_url; both propagate.
	api := func(q string) testserver.Response { return s.Do(t, "GET", "/_synapse/client/profiletest?"+q, nil, "") }
	if r := api("api=get&localpart=alice").Expect(t, 200, ""); r.Str("displayname") != "By admin" || r.Str("avatar_url") != "mxc://test.local/x" {
		t.Errorf("get_profile_for_user = %s", r.Raw)
	}
	if r := api("api=get&localpart="+url.QueryEscape(alice.ID)).Expect(t, 200, ""); r.Str("displayname") != "By admin" {
		t.Errorf("get_profile_for_user by user ID = %s", r.Raw)
	}
	if r := api("api=get&localpart=nobody").Expect(t, 200, ""); r.Str("displayname") != "" || r.Str("avatar_url") != "" {
		t.Errorf("get_profile_for_user of nobody = %s", r.Raw)
	}
	api("api=setname&user="+url.QueryEscape(alice.ID)+"&value=From+module").Expect(t, 200, "")
	if calls := profCalls(a); len(calls) != 4 || !reflect.DeepEqual(calls[3].Args, []any{alice.ID, module.ProfileInfo{DisplayName: "From module", AvatarURL: "mxc://test.local/x"}, true, false}) {
		t.Errorf("set_displayname calls %+v", calls)
	}
	if ct, _ := profMember(t, s, alice, room, alice.ID); ct["displayname"] != "From module" {
		t.Errorf("member event after set_displayname = %v", ct)
	}
	api("api=setavatar&user="+url.QueryEscape(alice.ID)+"&value=").Expect(t, 200, "")
	profJSON(t, s.Do(t, "GET", profPath(alice.ID), nil, "").Expect(t, 200, ""), `{"displayname":"From module"}`)
	if ct, _ := profMember(t, s, alice, room, alice.ID); !reflect.DeepEqual(ct, map[string]any{"membership": "join", "displayname": "From module"}) {
		t.Errorf("member event after clearing the avatar = %v", ct)
	}
	// Errors: a client error keeps its code; a remote user is an error.
	roomExpectError(t, api("api=setname&user="+url.QueryEscape(alice.ID)+"&value="+strings.Repeat("x", 257)), 400, "M_UNKNOWN", "Displayname is too long (max 256)")
	api("api=setname&user=@x:elsewhere.example&value=x").Expect(t, 500, "M_UNKNOWN")
}
