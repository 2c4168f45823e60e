package e2e_test

// POST /user_directory/search and check_username_for_spam, through the
// real server (test.ProfileScripted of profile_test.go drives the callback).

import (
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/clientapi"
	"github.com/sluice-im/sluice/internal/testserver"
	"github.com/sluice-im/sluice/module"
)

const udPath = "/_matrix/client/v3/user_directory/search"

// udSearch searches as u and returns the user IDs found and limited,
// checking the answer against the spec.
func udSearch(t testing.TB, s *testserver.Server, u roomUser, body any) ([]string, bool) {
	t.Helper()
	r := s.Do(t, "POST", udPath, body, u.Token).Expect(t, 200, "")
	profSchema(t, "users.yaml", "post", "/user_directory/search", r.Raw)
	var ids []string
	for _, x := range r.Body["results"].([]any) {
		ids = append(ids, x.(map[string]any)["user_id"].(string))
	}
	limited, ok := r.Body["limited"].(bool)
	if !ok {
		t.Fatalf("no limited: %s", r.Raw)
	}
	return ids, limited
}

func udExpect(t testing.TB, s *testserver.Server, u roomUser, term string, want ...string) {
	t.Helper()
	got, _ := udSearch(t, s, u, map[string]any{"search_term": term})
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("search %q = %v, want %v", term, got, want)
	}
}

func udSetName(t testing.TB, s *testserver.Server, u roomUser, name string) {
	t.Helper()
	s.Do(t, "PUT", profPath(u.ID, "displayname"), map[string]any{"displayname": name}, u.Token).Expect(t, 200, "")
}

func TestUserDirectorySearch(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")     // shares a private room with alice
		carol := roomRegister(t, s, "carol") // alone in a public room
		dave := roomRegister(t, s, "dave")   // in no room
		erin := roomRegister(t, s, "erin")   // in a private room without alice
		frank := roomRegister(t, s, "frank") // in an invite-only, world_readable room
		udSetName(t, s, bob, "Bob Builder")
		s.Do(t, "PUT", profPath(bob.ID, "avatar_url"), map[string]any{"avatar_url": "mxc://test.local/bob"}, bob.Token).Expect(t, 200, "")

		private := roomCreate(t, s, alice, map[string]any{"preset": "private_chat", "invite": []string{bob.ID}})
		s.Do(t, "POST", roomCS("rooms", private, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		public := roomCreate(t, s, carol, map[string]any{"preset": "public_chat"})
		roomCreate(t, s, erin, map[string]any{"preset": "private_chat"})
		roomCreate(t, s, frank, map[string]any{"preset": "private_chat", "initial_state": []any{
			map[string]any{"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": "world_readable"}},
		}})

		// Who: shared rooms and public rooms (join rule or world_readable).
		r := s.Do(t, "POST", udPath, map[string]any{"search_term": "bob"}, alice.Token).Expect(t, 200, "")
		profJSON(t, r, `{"results":[{"user_id":"@bob:test.local","display_name":"Bob Builder","avatar_url":"mxc://test.local/bob"}],"limited":false}`)
		profSchema(t, "users.yaml", "post", "/user_directory/search", r.Raw)
		r = s.Do(t, "POST", udPath, map[string]any{"search_term": "carol"}, alice.Token).Expect(t, 200, "")
		profJSON(t, r, `{"results":[{"user_id":"@carol:test.local","display_name":"carol"}],"limited":false}`)
		udExpect(t, s, alice, "frank", frank.ID)
		udExpect(t, s, alice, "dave")
		udExpect(t, s, alice, "erin")
		// The searcher is not found through their own private room...
		udExpect(t, s, alice, "alice")
		// ...but is through a public one (as Synapse's users_in_public_rooms).
		s.Do(t, "POST", roomCS("rooms", public, "join"), map[string]any{}, alice.Token).Expect(t, 200, "")
		udExpect(t, s, alice, "alice", alice.ID)
		// Dave sees the public rooms' members only.
		udExpect(t, s, dave, "bob")
		udExpect(t, s, dave, "carol", carol.ID)

		// Matching: case-insensitive prefixes of any word of the display
		// name or of the localpart; every word of the search must match.
		for _, term := range []string{"Bo", "build", "BUILDER", "bob builder", "bui bo", "@bob:test.local", "bob:test", "  bob  "} {
			udExpect(t, s, alice, term, bob.ID)
		}
		for _, term := range []string{"uilder", "bob zzz", "xyz", "", "   ", "!!!"} {
			udExpect(t, s, alice, term)
		}

		// A room that stops being public stops showing its members.
		s.Do(t, "PUT", roomCS("rooms", public, "state", "m.room.join_rules", ""), map[string]any{"join_rule": "invite"}, carol.Token).Expect(t, 200, "")
		udExpect(t, s, dave, "carol")
		udExpect(t, s, alice, "carol", carol.ID) // still shares the room
		// A new name is found at once; the old one no longer.
		udSetName(t, s, carol, "Zelda Queen")
		udExpect(t, s, alice, "zel", carol.ID)
		udExpect(t, s, alice, "carol", carol.ID) // the localpart still matches
		udExpect(t, s, alice, "queen", carol.ID)
		udSetName(t, s, carol, "Other")
		udExpect(t, s, alice, "zelda")

		// Support users never appear.
		nonce := s.Do(t, "GET", "/_synapse/admin/v1/register", nil, "").Expect(t, 200, "").Str("nonce")
		s.Do(t, "POST", "/_synapse/admin/v1/register", map[string]any{
			"nonce": nonce, "username": "support", "password": "pw", "user_type": "support",
			"mac": modMACType(testserver.SharedSecret, nonce, "support", "pw", "support"),
		}, "").Expect(t, 200, "")
		udExpect(t, s, alice, "support")

		// Errors, in Synapse's words.
		s.Do(t, "POST", udPath, map[string]any{"search_term": "x"}, "").Expect(t, 401, "M_MISSING_TOKEN")
		roomExpectError(t, s.Do(t, "POST", udPath, map[string]any{}, alice.Token), 400, "M_UNKNOWN", "`search_term` is required field")
		roomExpectError(t, s.Do(t, "POST", udPath, map[string]any{"search_term": 5}, alice.Token), 400, "M_INVALID_PARAM", "`search_term` must be a string")
		roomExpectError(t, s.Do(t, "POST", udPath, map[string]any{"search_term": "x", "limit": "ten"}, alice.Token), 400, "M_INVALID_PARAM", "limit must be an integer")
		roomExpectError(t, s.Do(t, "POST", udPath, `{"search_term": "x", "limit": null}`, alice.Token), 400, "M_INVALID_PARAM", "limit must be an integer")
		s.Do(t, "POST", udPath, "{nope", alice.Token).Expect(t, 400, "M_NOT_JSON")
		s.Do(t, "POST", udPath, "[]", alice.Token).Expect(t, 400, "M_BAD_JSON")
		s.Do(t, "GET", udPath, nil, alice.Token).Expect(t, 405, "M_UNRECOGNIZED")
	})
}

// modMACType is the shared-secret registration MAC with a user type.
func modMACType(secret, nonce, user, password, userType string) string {
	return hex.EncodeToString(clientapi.SharedSecretMAC(secret, nonce, user, password, false, userType))
}

func TestUserDirectoryLimitAndOrder(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		var users []roomUser
		for _, lp := range []string{"ann", "annabel", "anna.smith", "user-71", "user-72"} {
			u := roomRegister(t, s, lp)
			s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, u.Token).Expect(t, 200, "")
			users = append(users, u)
		}
		// An exact word ranks above a prefix; then the user ID decides.
		ids, limited := udSearch(t, s, alice, map[string]any{"search_term": "ann"})
		if want := []string{users[0].ID, users[2].ID, users[1].ID}; !reflect.DeepEqual(ids, want) || limited {
			t.Errorf("ann: %v (limited %v), want %v", ids, limited, want)
		}
		// An avatar (and a display name) ranks a user higher.
		s.Do(t, "PUT", profPath(users[1].ID, "avatar_url"), map[string]any{"avatar_url": "mxc://test.local/x"}, users[1].Token).Expect(t, 200, "")
		ids, _ = udSearch(t, s, alice, map[string]any{"search_term": "an"})
		if want := []string{users[1].ID, users[0].ID, users[2].ID}; !reflect.DeepEqual(ids, want) {
			t.Errorf("an: %v, want %v", ids, want)
		}
		// Words joined by - . _ are one term, and their parts are words.
		udExpect(t, s, alice, "anna.sm", users[2].ID)
		udExpect(t, s, alice, "smith", users[2].ID)
		udExpect(t, s, alice, "user-7", users[3].ID, users[4].ID)
		udExpect(t, s, alice, "71", users[3].ID)

		// limit and limited.
		for _, c := range []struct {
			limit   any
			n       int
			limited bool
		}{
			{nil, 2, false}, {1, 1, true}, {2, 2, false}, {0, 0, true}, {-5, 0, true}, {"1", 1, true}, {1.9, 1, true}, {true, 1, true}, {1000, 2, false},
		} {
			body := map[string]any{"search_term": "user"}
			if c.limit != nil {
				body["limit"] = c.limit
			}
			ids, limited := udSearch(t, s, alice, body)
			if len(ids) != c.n || limited != c.limited {
				t.Errorf("limit %v: %d results (limited %v), want %d (limited %v)", c.limit, len(ids), limited, c.n, c.limited)
			}
		}
		// The default limit is 10, the largest 50.
		for i := range 12 {
			u := roomRegister(t, s, "many"+string(rune('a'+i)))
			s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, u.Token).Expect(t, 200, "")
		}
		if ids, limited := udSearch(t, s, alice, map[string]any{"search_term": "many"}); len(ids) != 10 || !limited {
			t.Errorf("default limit: %d results, limited %v", len(ids), limited)
		}
		if ids, limited := udSearch(t, s, alice, map[string]any{"search_term": "many", "limit": 51}); len(ids) != 12 || limited {
			t.Errorf("limit 51: %d results, limited %v", len(ids), limited)
		}
	})
}

func TestUserDirectoryConfig(t *testing.T) {
	t.Parallel()
	t.Run("search_all_users", func(t *testing.T) {
		t.Parallel()
		s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn + "user_directory: {search_all_users: true}\n"})
		alice := roomRegister(t, s, "alice")
		dave := roomRegister(t, s, "dave")
		roomRegister(t, s, "alicia")
		udExpect(t, s, alice, "dave", dave.ID)
		// Everyone but the searcher.
		udExpect(t, s, alice, "ali", "@alicia:test.local")
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn + "user_directory: {enabled: false, search_all_users: true}\n"})
		alice := roomRegister(t, s, "alice")
		roomRegister(t, s, "bob")
		// No results, and the body is not even read.
		profJSON(t, s.Do(t, "POST", udPath, map[string]any{"search_term": "bob"}, alice.Token).Expect(t, 200, ""), `{"limited":false,"results":[]}`)
		profJSON(t, s.Do(t, "POST", udPath, "{nope", alice.Token).Expect(t, 200, ""), `{"limited":false,"results":[]}`)
		s.Do(t, "POST", udPath, map[string]any{}, "").Expect(t, 401, "M_MISSING_TOKEN")
	})
	t.Run("rc_user_directory", func(t *testing.T) {
		t.Parallel()
		s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn + "rc_user_directory: {per_second: 0.001, burst_count: 2}\n"})
		alice := roomRegister(t, s, "alice")
		udSearch(t, s, alice, map[string]any{"search_term": "x"})
		udSearch(t, s, alice, map[string]any{"search_term": "x"})
		r := s.Do(t, "POST", udPath, map[string]any{"search_term": "x"}, alice.Token).Expect(t, 429, "M_LIMIT_EXCEEDED")
		if _, ok := r.Body["retry_after_ms"]; !ok {
			t.Errorf("429 without retry_after_ms: %s", r.Raw)
		}
	})
}

func udCalls(id string) []modCall { return roomCallsNamed(id, "check_username_for_spam") }

func TestCheckUsernameForSpam(t *testing.T) {
	t.Parallel()
	// Users: alice searches; evil1, evil2, good1, good2 share a public room.
	setup := func(t *testing.T, entries ...string) (*testserver.Server, roomUser) {
		s := testserver.Start(t, testserver.Options{YAML: roomRegistrationOn + "modules:\n" + strings.Join(entries, "")})
		alice := roomRegister(t, s, "alice")
		room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		for _, lp := range []string{"evil1", "evil2", "good1", "good2"} {
			u := roomRegister(t, s, lp)
			s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, u.Token).Expect(t, 200, "")
		}
		return s, alice
	}
	t.Run("false and true", func(t *testing.T) {
		t.Parallel()
		a, b := roomModID(t, 1), roomModID(t, 2)
		s, alice := setup(t, profEntry(a, "", "check_username_for_spam", "allow"), profEntry(b, "", "check_username_for_spam", "spam:evil"))
		ids, limited := udSearch(t, s, alice, map[string]any{"search_term": "evil"})
		if len(ids) != 0 || limited {
			t.Errorf("evil: %v (limited %v), want none", ids, limited)
		}
		// Every module sees each result (a copy of the profile, the
		// searcher); the first true wins.
		want := []modCall{
			{Module: a, Callback: "check_username_for_spam", Args: []any{module.UserProfile{UserID: "@evil1:test.local", DisplayName: "evil1"}, alice.ID}},
			{Module: a, Callback: "check_username_for_spam", Args: []any{module.UserProfile{UserID: "@evil2:test.local", DisplayName: "evil2"}, alice.ID}},
		}
		if got := udCalls(a); !reflect.DeepEqual(got, want) {
			t.Errorf("module a calls %+v, want %+v", got, want)
		}
		if got := udCalls(b); len(got) != 2 {
			t.Errorf("module b calls %+v", got)
		}
		// Applied after the limit, as in Synapse: limited stays the
		// database's answer and fewer than limit may come back (the server
		// name matches all five users; alice, evil1 and evil2 come first).
		ids, limited = udSearch(t, s, alice, map[string]any{"search_term": "", "limit": 2})
		if len(ids) != 0 || limited {
			t.Errorf("empty term: %v", ids)
		}
		r := s.Do(t, "POST", udPath, map[string]any{"search_term": "test.local", "limit": 3}, alice.Token).Expect(t, 200, "")
		profJSON(t, r, `{"results":[{"user_id":"@alice:test.local","display_name":"alice"}],"limited":true}`)
		ids, limited = udSearch(t, s, alice, map[string]any{"search_term": "good"})
		if want := []string{"@good1:test.local", "@good2:test.local"}; !reflect.DeepEqual(ids, want) || limited {
			t.Errorf("good: %v", ids)
		}
		// No results, no calls.
		n := len(udCalls(a))
		udSearch(t, s, alice, map[string]any{"search_term": "nobody"})
		if len(udCalls(a)) != n {
			t.Errorf("a search without results called the module")
		}
	})
	for _, c := range []struct{ name, behaviour, onError string }{
		{"error", "error", ""}, {"panic", "panic", ""}, {"timeout", "hang", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := roomModID(t, 1)
			s, alice := setup(t, profEntry(a, "    timeout: 100ms\n", "check_username_for_spam", c.behaviour))
			start := time.Now()
			roomExpectError(t, s.Do(t, "POST", udPath, map[string]any{"search_term": "good"}, alice.Token), 500, "M_UNKNOWN", "Internal server error")
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("search took %s", el)
			}
			// A search without results asks nothing, and the server still serves.
			udExpect(t, s, alice, "nobody")
			s.Do(t, "GET", profPath(alice.ID), nil, "").Expect(t, 200, "")
		})
	}
	t.Run("on_error allow and deny", func(t *testing.T) {
		t.Parallel()
		a, b := roomModID(t, 1), roomModID(t, 2)
		s, alice := setup(t, profEntry(a, "    on_error: allow\n", "check_username_for_spam", "error"))
		udExpect(t, s, alice, "good", "@good1:test.local", "@good2:test.local")
		s2, alice2 := setup(t, profEntry(b, "    on_error: deny\n", "check_username_for_spam", "panic"))
		udExpect(t, s2, alice2, "good")
	})
}
