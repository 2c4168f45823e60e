package e2e_test

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/spectest"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/testserver"
)

// dirSchema checks a success body against the spec's response schema (a
// log line when the spec checkout is missing).
func dirSchema(t *testing.T, file, method, path string, r testserver.Response) {
	t.Helper()
	s, err := spectest.Load(file, method, path, 200)
	if err != nil {
		t.Logf("spec schema for %s %s not checked: %v", method, path, err)
		return
	}
	s.CheckJSON(t, r.Raw)
}

func expectMsg(t *testing.T, r testserver.Response, status int, errcode, msg string) {
	t.Helper()
	r.Expect(t, status, errcode)
	if got := r.Str("error"); got != msg {
		t.Errorf("error %q, want %q", got, msg)
	}
}

const v3 = "/_matrix/client/v3"

func TestDirectoryAliases(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: modRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		ctx := context.Background()
		alice, a := s.Register(t, "alice", "pw")
		bob, b := s.Register(t, "bob", "pw")
		carl, c := s.Register(t, "carl", "pw")
		admin, adm := s.Register(t, "admin", "pw")
		if err := s.Srv.Store().SetAdmin(ctx, admin, true); err != nil {
			t.Fatal(err)
		}
		room := s.Do(t, "POST", v3+"/createRoom", map[string]any{"preset": "public_chat"}, a).Expect(t, 200, "").Str("room_id")
		other := s.Do(t, "POST", v3+"/createRoom", map[string]any{}, c).Expect(t, 200, "").Str("room_id")
		s.Do(t, "POST", v3+"/rooms/"+room+"/join", map[string]any{}, b).Expect(t, 200, "")
		alias := func(a string) string { return v3 + "/directory/room/" + url.PathEscape(a) }

		// Create; read back without a token; r0 too.
		r := s.Do(t, "PUT", alias("#a1:test.local"), map[string]any{"room_id": room}, a).Expect(t, 200, "")
		dirSchema(t, "directory.yaml", "put", "/directory/room/{roomAlias}", r)
		r = s.Do(t, "GET", alias("#a1:test.local"), nil, "").Expect(t, 200, "")
		dirSchema(t, "directory.yaml", "get", "/directory/room/{roomAlias}", r)
		if r.Str("room_id") != room || !reflect.DeepEqual(r.Body["servers"], []any{"test.local"}) {
			t.Errorf("GET alias: %s", r.Raw)
		}
		s.Do(t, "GET", "/_matrix/client/r0/directory/room/%23a1:test.local", nil, "").Expect(t, 200, "")

		// PUT errors, in Synapse's order.
		expectMsg(t, s.Do(t, "PUT", alias("#a1:test.local"), map[string]any{"room_id": room}, a), 409, "M_UNKNOWN", "Room alias #a1:test.local already exists")
		for _, bad := range []string{"nocolon", "#nocolon", "a1:test.local", "#a:bad_host!", "#x:"} {
			expectMsg(t, s.Do(t, "PUT", alias(bad), map[string]any{"room_id": room}, a), 400, "M_INVALID_PARAM", "Room alias invalid")
		}
		s.Do(t, "PUT", alias("#a2:test.local"), map[string]any{}, a).Expect(t, 400, "M_MISSING_PARAM")
		s.Do(t, "PUT", alias("#a2:test.local"), map[string]any{"room_id": 5}, a).Expect(t, 400, "M_BAD_JSON")
		s.Do(t, "PUT", alias("#a2:test.local"), map[string]any{"room_id": room, "servers": "x"}, a).Expect(t, 400, "M_BAD_JSON")
		s.Do(t, "PUT", alias("#a2:test.local"), "{nope", a).Expect(t, 400, "M_NOT_JSON")
		// The room is checked before the token, as in Synapse.
		expectMsg(t, s.Do(t, "PUT", alias("#a2:test.local"), map[string]any{"room_id": "!nowhere:test.local"}, ""), 400, "M_UNKNOWN", "Room does not exist")
		s.Do(t, "PUT", alias("#a2:test.local"), map[string]any{"room_id": room}, "").Expect(t, 401, "M_MISSING_TOKEN")
		expectMsg(t, s.Do(t, "PUT", alias("#a2:test.local"), map[string]any{"room_id": room}, c), 403, "M_FORBIDDEN", "You must be in the room to create an alias for it")
		expectMsg(t, s.Do(t, "PUT", alias("#a2:elsewhere.org"), map[string]any{"room_id": room}, a), 400, "M_UNKNOWN", "Room alias must be local")
		expectMsg(t, s.Do(t, "PUT", alias("#a b:test.local"), map[string]any{"room_id": room}, a), 400, "M_UNKNOWN", "Invalid characters in room alias")
		long := "#" + strings.Repeat("x", 250) + ":test.local"
		expectMsg(t, s.Do(t, "PUT", alias(long), map[string]any{"room_id": room}, a), 400, "M_INVALID_PARAM", "Can't create aliases longer than 255 characters")
		// A server admin need not be in the room; a member without power may.
		s.Do(t, "PUT", alias("#byadmin:test.local"), map[string]any{"room_id": room}, adm).Expect(t, 200, "")
		s.Do(t, "PUT", alias("#bybob:test.local"), map[string]any{"room_id": room}, b).Expect(t, 200, "")
		s.Do(t, "PUT", alias("#oth:test.local"), map[string]any{"room_id": other}, c).Expect(t, 200, "")

		// GET errors.
		expectMsg(t, s.Do(t, "GET", alias("#zz:test.local"), nil, ""), 404, "M_NOT_FOUND", "Room alias #zz:test.local not found")
		s.Do(t, "GET", alias("#zz:elsewhere.org"), nil, "").Expect(t, 404, "M_NOT_FOUND")
		s.Do(t, "GET", alias("zz"), nil, "").Expect(t, 400, "M_INVALID_PARAM")

		// GET /rooms/{roomId}/aliases: members, admins, world_readable rooms.
		r = s.Do(t, "GET", v3+"/rooms/"+room+"/aliases", nil, b).Expect(t, 200, "")
		dirSchema(t, "directory.yaml", "get", "/rooms/{roomId}/aliases", r)
		if want := []any{"#a1:test.local", "#byadmin:test.local", "#bybob:test.local"}; !reflect.DeepEqual(r.Body["aliases"], want) {
			t.Errorf("aliases %v, want %v", r.Body["aliases"], want)
		}
		s.Do(t, "GET", v3+"/rooms/"+room+"/aliases", nil, adm).Expect(t, 200, "")
		expectMsg(t, s.Do(t, "GET", v3+"/rooms/"+room+"/aliases", nil, c), 403, "M_FORBIDDEN",
			"User "+carl+" not in room "+room+", and room previews are disabled")
		s.Do(t, "GET", v3+"/rooms/!unknown:test.local/aliases", nil, c).Expect(t, 403, "M_FORBIDDEN")
		s.Do(t, "GET", v3+"/rooms/"+room+"/aliases", nil, "").Expect(t, 401, "M_MISSING_TOKEN")
		s.Do(t, "PUT", v3+"/rooms/"+room+"/state/m.room.history_visibility/", map[string]any{"history_visibility": "world_readable"}, a).Expect(t, 200, "")
		s.Do(t, "GET", v3+"/rooms/"+room+"/aliases", nil, c).Expect(t, 200, "")

		// m.room.canonical_alias: new aliases must exist and point here.
		putCA := func(content map[string]any, tok string) testserver.Response {
			return s.Do(t, "PUT", v3+"/rooms/"+room+"/state/m.room.canonical_alias/", content, tok)
		}
		expectMsg(t, putCA(map[string]any{"alias": "#nope:test.local"}, a), 400, "M_BAD_ALIAS", "Room alias #nope:test.local does not point to the room")
		expectMsg(t, putCA(map[string]any{"alias": "#oth:test.local"}, a), 400, "M_BAD_ALIAS", "Room alias #oth:test.local does not point to the room")
		expectMsg(t, putCA(map[string]any{"alias": "#x:elsewhere.org"}, a), 400, "M_BAD_ALIAS", "Room alias #x:elsewhere.org does not point to the room")
		expectMsg(t, putCA(map[string]any{"alias": 5}, a), 400, "M_INVALID_PARAM", "The alias must be of type string.")
		expectMsg(t, putCA(map[string]any{"alt_aliases": "#a1:test.local"}, a), 400, "M_INVALID_PARAM", "The alt_aliases property must be a list.")
		expectMsg(t, putCA(map[string]any{"alt_aliases": []any{7}}, a), 400, "M_INVALID_PARAM", "Each alt_alias must be of type string.")
		expectMsg(t, putCA(map[string]any{"alt_aliases": []any{"#a1:test.local", "#oth:test.local"}}, a), 400, "M_BAD_ALIAS", "Room alias #oth:test.local does not point to the room")
		putCA(map[string]any{"alias": "#a1:test.local", "alt_aliases": []any{"#byadmin:test.local", "#bybob:test.local"}}, a).Expect(t, 200, "")
		// Unchanged entries are not checked again (Synapse checks what is new).
		putCA(map[string]any{"alias": "#a1:test.local", "alt_aliases": []any{"#byadmin:test.local", "#bybob:test.local"}, "x": 1}, a).Expect(t, 200, "")
		canonical := func() map[string]any {
			return s.Do(t, "GET", v3+"/rooms/"+room+"/state/m.room.canonical_alias/", nil, a).Expect(t, 200, "").Body
		}

		// DELETE: errors and who may.
		s.Do(t, "DELETE", alias("#a1:test.local"), nil, "").Expect(t, 401, "M_MISSING_TOKEN")
		s.Do(t, "DELETE", alias("bad"), nil, a).Expect(t, 400, "M_INVALID_PARAM")
		expectMsg(t, s.Do(t, "DELETE", alias("#zz:test.local"), nil, a), 404, "M_NOT_FOUND", "Unknown room alias")
		expectMsg(t, s.Do(t, "DELETE", alias("#a1:test.local"), nil, b), 403, "M_FORBIDDEN", "You don't have permission to delete the alias.")
		expectMsg(t, s.Do(t, "DELETE", alias("#a1:test.local"), nil, c), 403, "M_FORBIDDEN", "User "+carl+" not in room "+room)
		// The creator deletes #a1: the canonical alias event loses it.
		r = s.Do(t, "DELETE", alias("#a1:test.local"), nil, a).Expect(t, 200, "")
		dirSchema(t, "directory.yaml", "delete", "/directory/room/{roomAlias}", r)
		s.Do(t, "GET", alias("#a1:test.local"), nil, "").Expect(t, 404, "M_NOT_FOUND")
		if ca := canonical(); ca["alias"] != nil || !reflect.DeepEqual(ca["alt_aliases"], []any{"#byadmin:test.local", "#bybob:test.local"}) {
			t.Errorf("canonical alias after deleting #a1: %v", ca)
		}
		// bob created #bybob and may delete it, but has no power to send
		// the canonical alias event: it stays as it is (as in Synapse).
		s.Do(t, "DELETE", alias("#bybob:test.local"), nil, b).Expect(t, 200, "")
		s.Do(t, "GET", alias("#bybob:test.local"), nil, "").Expect(t, 404, "M_NOT_FOUND")
		if ca := canonical(); !reflect.DeepEqual(ca["alt_aliases"], []any{"#byadmin:test.local", "#bybob:test.local"}) || ca["x"] != float64(1) {
			t.Errorf("canonical alias after deleting #bybob: %v", ca)
		}
		// A moderator who did not create the alias may delete it, and the
		// event loses it.
		s.Do(t, "PUT", v3+"/rooms/"+room+"/state/m.room.power_levels/", map[string]any{"users": map[string]any{alice: 100, bob: 50}}, a).Expect(t, 200, "")
		s.Do(t, "DELETE", alias("#byadmin:test.local"), nil, b).Expect(t, 200, "")
		if ca := canonical(); !reflect.DeepEqual(ca["alt_aliases"], []any{"#bybob:test.local"}) || ca["x"] != float64(1) {
			t.Errorf("canonical alias after deleting #byadmin: %v", ca)
		}
		// The last alt alias goes, and alt_aliases with it.
		s.Do(t, "PUT", alias("#last:test.local"), map[string]any{"room_id": room}, a).Expect(t, 200, "")
		putCA(map[string]any{"alt_aliases": []any{"#last:test.local"}, "x": 2}, a).Expect(t, 200, "")
		s.Do(t, "DELETE", alias("#last:test.local"), nil, a).Expect(t, 200, "")
		if ca := canonical(); !reflect.DeepEqual(ca, map[string]any{"x": float64(2)}) {
			t.Errorf("canonical alias after deleting #last: %v", ca)
		}
		// A server admin outside the room may delete; the canonical alias
		// event cannot be sent by them and stays (as in Synapse).
		s.Do(t, "PUT", alias("#c1:test.local"), map[string]any{"room_id": room}, a).Expect(t, 200, "")
		putCA(map[string]any{"alias": "#c1:test.local"}, a).Expect(t, 200, "")
		s.Do(t, "DELETE", alias("#c1:test.local"), nil, adm).Expect(t, 200, "")
		s.Do(t, "GET", alias("#c1:test.local"), nil, "").Expect(t, 404, "M_NOT_FOUND")
		if ca := canonical(); ca["alias"] != "#c1:test.local" {
			t.Errorf("canonical alias after an outsider's deletion: %v", ca)
		}
		// A shadow-banned creator deletes: the alias goes, the event stays.
		s.Do(t, "PUT", alias("#c2:test.local"), map[string]any{"room_id": room}, a).Expect(t, 200, "")
		putCA(map[string]any{"alias": "#c2:test.local"}, a).Expect(t, 200, "")
		if err := s.Srv.Store().SetShadowBanned(ctx, alice, true); err != nil {
			t.Fatal(err)
		}
		s.Do(t, "DELETE", alias("#c2:test.local"), nil, a).Expect(t, 200, "")
		s.Do(t, "GET", alias("#c2:test.local"), nil, "").Expect(t, 404, "M_NOT_FOUND")
		if ca := canonical(); ca["alias"] != "#c2:test.local" {
			t.Errorf("canonical alias after a shadow-banned deletion: %v", ca)
		}
	})
}

func TestDirectoryAliasConfig(t *testing.T) {
	t.Parallel()
	// alias_creation_rules and require_membership_for_aliases: false.
	s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn + `require_membership_for_aliases: false
alias_creation_rules:
  - {user_id: "@boss:*", action: allow}
  - {alias: "#public-*", action: allow}
  - {action: deny}
`})
	_, a := s.Register(t, "amy", "pw")
	_, boss := s.Register(t, "boss", "pw")
	room := s.Do(t, "POST", v3+"/createRoom", map[string]any{}, a).Expect(t, 200, "").Str("room_id")
	put := func(alias, tok string) testserver.Response {
		return s.Do(t, "PUT", v3+"/directory/room/"+url.PathEscape(alias), map[string]any{"room_id": room}, tok)
	}
	expectMsg(t, put("#mine:test.local", a), 403, "M_UNKNOWN", "Not allowed to create alias")
	put("#PUBLIC-mine:test.local", a).Expect(t, 200, "") // globs ignore case
	put("#anything:test.local", boss).Expect(t, 200, "") // boss is not in the room
}

// createPublic makes a published room with a name and topic and n extra
// joined members.
func createPublic(t *testing.T, s *testserver.Server, tok string, body map[string]any, joiners []string) string {
	t.Helper()
	body["visibility"] = "public"
	room := s.Do(t, "POST", v3+"/createRoom", body, tok).Expect(t, 200, "").Str("room_id")
	for _, j := range joiners {
		s.Do(t, "POST", v3+"/rooms/"+room+"/join", map[string]any{}, j).Expect(t, 200, "")
	}
	return room
}

type listedRoom struct {
	id      string
	members int
}

// pageAll pages through the public room list forwards with next_batch,
// returning every page's room IDs.
func pageAll(t *testing.T, s *testserver.Server, tok string, post bool, limit int, filter map[string]any) ([][]listedRoom, []testserver.Response) {
	t.Helper()
	var pages [][]listedRoom
	var resps []testserver.Response
	since := ""
	for i := 0; i < 20; i++ {
		var r testserver.Response
		if post {
			body := map[string]any{"limit": limit}
			if since != "" {
				body["since"] = since
			}
			if filter != nil {
				body["filter"] = filter
			}
			r = s.Do(t, "POST", v3+"/publicRooms", body, tok).Expect(t, 200, "")
			dirSchema(t, "list_public_rooms.yaml", "post", "/publicRooms", r)
		} else {
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if since != "" {
				q.Set("since", since)
			}
			r = s.Do(t, "GET", v3+"/publicRooms?"+q.Encode(), nil, tok).Expect(t, 200, "")
			dirSchema(t, "list_public_rooms.yaml", "get", "/publicRooms", r)
		}
		resps = append(resps, r)
		var page []listedRoom
		for _, e := range r.Body["chunk"].([]any) {
			m := e.(map[string]any)
			page = append(page, listedRoom{m["room_id"].(string), int(m["num_joined_members"].(float64))})
		}
		pages = append(pages, page)
		if i > 0 && r.Str("prev_batch") == "" {
			t.Errorf("page %d has no prev_batch", i)
		}
		since = r.Str("next_batch")
		if since == "" {
			return pages, resps
		}
	}
	t.Fatal("the list does not end")
	return nil, nil
}

func TestPublicRooms(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: modRegistrationOn + publishAll}, func(t *testing.T, s *testserver.Server) {
		_, a := s.Register(t, "pat", "pw")
		_, j1 := s.Register(t, "j1", "pw")
		_, j2 := s.Register(t, "j2", "pw")
		_, j3 := s.Register(t, "j3", "pw")
		joiners := []string{j1, j2, j3}
		want := map[string]int{}
		for i := 0; i < 25; i++ {
			body := map[string]any{"name": fmt.Sprintf("Room %02d", i), "topic": "topic of room " + fmt.Sprint(i)}
			if i%7 == 3 {
				body["name"] = fmt.Sprintf("Special %02d", i)
			}
			if i == 5 {
				body["room_alias_name"] = "findme"
				delete(body, "topic")
			}
			room := createPublic(t, s, a, body, joiners[:i%4])
			want[room] = 1 + i%4
		}
		// Not listed: unpublished, published with an invite-only join rule,
		// published with nobody joined.
		s.Do(t, "POST", v3+"/createRoom", map[string]any{"preset": "public_chat", "name": "unpublished"}, a).Expect(t, 200, "")
		createPublic(t, s, a, map[string]any{"preset": "private_chat", "name": "invite only"}, nil)
		empty := createPublic(t, s, j1, map[string]any{"name": "empty"}, nil)
		s.Do(t, "POST", v3+"/rooms/"+empty+"/leave", map[string]any{}, j1).Expect(t, 200, "")
		// Listed: an invite-only room whose history is world_readable.
		wr := createPublic(t, s, a, map[string]any{"preset": "private_chat", "initial_state": []any{
			map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "world_readable"}}}}, nil)
		want[wr] = 1

		for _, post := range []bool{false, true} {
			pages, resps := pageAll(t, s, a, post, 10, nil)
			if len(pages) != 3 || len(pages[0]) != 10 || len(pages[1]) != 10 || len(pages[2]) != 6 {
				t.Fatalf("post=%v: page sizes %d", post, len(pages))
			}
			var all []listedRoom
			for _, p := range pages {
				all = append(all, p...)
			}
			got := map[string]int{}
			for _, r := range all {
				if _, dup := got[r.id]; dup {
					t.Errorf("room %s listed twice", r.id)
				}
				got[r.id] = r.members
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("post=%v: listed %v, want %v", post, got, want)
			}
			if !slices.IsSortedFunc(all, func(x, y listedRoom) int {
				if x.members != y.members {
					return y.members - x.members
				}
				return strings.Compare(y.id, x.id)
			}) {
				t.Errorf("not in Synapse's order (members, then room ID, descending): %v", all)
			}
			for _, r := range resps {
				if r.Body["total_room_count_estimate"] != float64(26) {
					t.Errorf("total_room_count_estimate %v", r.Body["total_room_count_estimate"])
				}
			}
			if resps[0].Str("prev_batch") != "" {
				t.Errorf("first page has a prev_batch")
			}
			// Back from the third page gives the second again.
			back := s.Do(t, "GET", v3+"/publicRooms?limit=10&since="+url.QueryEscape(resps[2].Str("prev_batch")), nil, a).Expect(t, 200, "")
			var ids []string
			for _, e := range back.Body["chunk"].([]any) {
				ids = append(ids, e.(map[string]any)["room_id"].(string))
			}
			var wantIDs []string
			for _, r := range pages[1] {
				wantIDs = append(wantIDs, r.id)
			}
			if !reflect.DeepEqual(ids, wantIDs) {
				t.Errorf("prev_batch of page 3 gives %v, want page 2 %v", ids, wantIDs)
			}
			if back.Str("next_batch") == "" || back.Str("prev_batch") == "" {
				t.Errorf("a middle page reached backwards lacks a token: %s", back.Raw)
			}
		}

		// Entries carry Synapse's fields.
		r := s.Do(t, "POST", v3+"/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": "FINDME"}}, a).Expect(t, 200, "")
		chunk := r.Body["chunk"].([]any)
		if len(chunk) != 1 {
			t.Fatalf("search by alias: %s", r.Raw)
		}
		e := chunk[0].(map[string]any)
		if e["canonical_alias"] != "#findme:test.local" || e["name"] != "Room 05" || e["join_rule"] != "public" ||
			e["world_readable"] != false || e["guest_can_join"] != false || e["num_joined_members"] != float64(2) {
			t.Errorf("entry %v", e)
		}
		if _, ok := e["topic"]; ok {
			t.Errorf("a room without a topic has one: %v", e)
		}
		if r.Body["total_room_count_estimate"] != float64(26) {
			t.Errorf("the estimate counts regardless of the search term (as Synapse): %v", r.Body["total_room_count_estimate"])
		}
		// Search over names and topics, ignoring case, paged.
		pages, _ := pageAll(t, s, a, true, 2, map[string]any{"generic_search_term": "special"})
		n := 0
		for _, p := range pages {
			n += len(p)
		}
		if n != 4 { // rooms 3, 10, 17, 24
			t.Errorf("search found %d rooms, want 4", n)
		}
		r = s.Do(t, "POST", v3+"/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": "TOPIC OF ROOM 1"}}, a).Expect(t, 200, "")
		if got := len(r.Body["chunk"].([]any)); got != 11 { // 1, 10..19
			t.Errorf("topic search found %d, want 11", got)
		}
		// Room types: a space is found by its type, the others by null.
		space := createPublic(t, s, a, map[string]any{"creation_content": map[string]any{"type": "m.space"}}, nil)
		r = s.Do(t, "POST", v3+"/publicRooms", map[string]any{"filter": map[string]any{"room_types": []any{"m.space"}}}, a).Expect(t, 200, "")
		if ch := r.Body["chunk"].([]any); len(ch) != 1 || ch[0].(map[string]any)["room_id"] != space || ch[0].(map[string]any)["room_type"] != "m.space" || r.Body["total_room_count_estimate"] != float64(1) {
			t.Errorf("room_types [m.space]: %s", r.Raw)
		}
		r = s.Do(t, "POST", v3+"/publicRooms", map[string]any{"filter": map[string]any{"room_types": []any{nil}}}, a).Expect(t, 200, "")
		if len(r.Body["chunk"].([]any)) != 26 {
			t.Errorf("room_types [null]: %d rooms", len(r.Body["chunk"].([]any)))
		}
		// limit 0 means no limit (up to 100); other servers; networks.
		if r := s.Do(t, "GET", v3+"/publicRooms?limit=0&server=test.local", nil, a).Expect(t, 200, ""); len(r.Body["chunk"].([]any)) != 27 || r.Str("next_batch") != "" {
			t.Errorf("limit=0: %d rooms", len(r.Body["chunk"].([]any)))
		}
		if r := s.Do(t, "GET", "/_matrix/client/r0/publicRooms", nil, a).Expect(t, 200, ""); len(r.Body["chunk"].([]any)) != 27 {
			t.Errorf("r0 without limit: %d rooms", len(r.Body["chunk"].([]any)))
		}
		s.Do(t, "POST", v3+"/publicRooms", map[string]any{"include_all_networks": true}, a).Expect(t, 200, "")
		r = s.Do(t, "POST", v3+"/publicRooms", map[string]any{"third_party_instance_id": "irc|freenode"}, a).Expect(t, 200, "")
		if len(r.Body["chunk"].([]any)) != 0 || r.Body["total_room_count_estimate"] != float64(0) {
			t.Errorf("a network's list: %s", r.Raw)
		}

		// Errors.
		s.Do(t, "GET", v3+"/publicRooms", nil, "").Expect(t, 401, "M_MISSING_TOKEN")
		s.Do(t, "GET", v3+"/publicRooms", nil, "nonsense").Expect(t, 401, "M_UNKNOWN_TOKEN")
		s.Do(t, "POST", v3+"/publicRooms", map[string]any{}, "").Expect(t, 401, "M_MISSING_TOKEN")
		expectMsg(t, s.Do(t, "GET", v3+"/publicRooms?limit=-1", nil, a), 400, "M_INVALID_PARAM", "Query parameter limit must be a positive integer.")
		s.Do(t, "GET", v3+"/publicRooms?limit=ten", nil, a).Expect(t, 400, "M_INVALID_PARAM")
		s.Do(t, "GET", v3+"/publicRooms?since=garbage", nil, a).Expect(t, 400, "M_INVALID_PARAM")
		s.Do(t, "POST", v3+"/publicRooms", map[string]any{"since": "garbage"}, a).Expect(t, 400, "M_INVALID_PARAM")
		s.Do(t, "POST", v3+"/publicRooms", map[string]any{"limit": "many"}, a).Expect(t, 400, "M_BAD_JSON")
		s.Do(t, "POST", v3+"/publicRooms", map[string]any{"limit": -3}, a).Expect(t, 400, "M_INVALID_PARAM")
		s.Do(t, "POST", v3+"/publicRooms", map[string]any{"filter": "x"}, a).Expect(t, 400, "M_BAD_JSON")
		s.Do(t, "POST", v3+"/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": 3}}, a).Expect(t, 400, "M_BAD_JSON")
		s.Do(t, "POST", v3+"/publicRooms", "[]", a).Expect(t, 400, "M_BAD_JSON")
		s.Do(t, "POST", v3+"/publicRooms", "{", a).Expect(t, 400, "M_NOT_JSON")
		expectMsg(t, s.Do(t, "POST", v3+"/publicRooms", map[string]any{"include_all_networks": true, "third_party_instance_id": "a|b"}, a),
			400, "M_UNKNOWN", "Can't use include_all_networks with an explicit network")
		expectMsg(t, s.Do(t, "POST", v3+"/publicRooms", map[string]any{"third_party_instance_id": "nobar"}, a), 400, "M_UNKNOWN", "Invalid ID 'nobar'")
		expectMsg(t, s.Do(t, "GET", v3+"/publicRooms?server=elsewhere.org", nil, a), 502, "M_UNKNOWN", "Failed to fetch room list")
		expectMsg(t, s.Do(t, "POST", v3+"/publicRooms?server=bad_name!", map[string]any{}, a), 400, "M_INVALID_PARAM", "Invalid server name: bad_name!")
	})
}

// TestPublicRoomsQueryCount: a page of the public room list costs the same
// number of SQL statements with 3 published rooms as with 15.
func TestPublicRoomsQueryCount(t *testing.T) {
	t.Parallel()
	qc := &storage.QueryCounter{}
	s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn + publishAll, Queries: qc})
	_, a := s.Register(t, "qc", "pw")
	count := func() int64 {
		before := qc.Load()
		s.Do(t, "GET", v3+"/publicRooms?limit=5", nil, a).Expect(t, 200, "")
		return qc.Load() - before
	}
	for i := 0; i < 3; i++ {
		createPublic(t, s, a, map[string]any{"name": fmt.Sprint(i)}, nil)
	}
	few := count()
	for i := 0; i < 12; i++ {
		createPublic(t, s, a, map[string]any{"name": fmt.Sprint(i)}, nil)
	}
	if many := count(); many != few {
		t.Errorf("statements per page: %d with 3 rooms, %d with 15", few, many)
	}
}

func TestPublicRoomsConfig(t *testing.T) {
	t.Parallel()
	t.Run("allow_public_rooms_without_auth", func(t *testing.T) {
		t.Parallel()
		s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn + publishAll + "allow_public_rooms_without_auth: true\n"})
		_, a := s.Register(t, "open", "pw")
		createPublic(t, s, a, map[string]any{"name": "visible"}, nil)
		r := s.Do(t, "GET", v3+"/publicRooms", nil, "").Expect(t, 200, "")
		if len(r.Body["chunk"].([]any)) != 1 {
			t.Errorf("chunk %s", r.Raw)
		}
		s.Do(t, "GET", v3+"/publicRooms", nil, "nonsense").Expect(t, 200, "")
		// Naming a server still needs a token; POST always does.
		s.Do(t, "GET", v3+"/publicRooms?server=test.local", nil, "").Expect(t, 401, "M_MISSING_TOKEN")
		s.Do(t, "POST", v3+"/publicRooms", map[string]any{}, "").Expect(t, 401, "M_MISSING_TOKEN")
	})
	t.Run("enable_room_list_search false", func(t *testing.T) {
		t.Parallel()
		s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn + publishAll + "enable_room_list_search: false\n"})
		_, a := s.Register(t, "closed", "pw")
		room := createPublic(t, s, a, map[string]any{"name": "hidden"}, nil)
		r := s.Do(t, "GET", v3+"/publicRooms", nil, a).Expect(t, 200, "")
		if len(r.Body["chunk"].([]any)) != 0 || r.Body["total_room_count_estimate"] != float64(0) {
			t.Errorf("disabled list: %s", r.Raw)
		}
		expectMsg(t, s.Do(t, "PUT", v3+"/directory/list/room/"+room, map[string]any{"visibility": "public"}, a), 403, "M_FORBIDDEN",
			"This user is not permitted to publish rooms to the room list")
		s.Do(t, "PUT", v3+"/directory/list/room/"+room, map[string]any{"visibility": "private"}, a).Expect(t, 200, "")
	})
	t.Run("room_list_publication_rules default", func(t *testing.T) {
		t.Parallel()
		// Synapse's default since 1.126: nobody publishes, createRoom
		// included (the room is made, not published).
		s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn})
		_, a := s.Register(t, "nopub", "pw")
		room := createPublic(t, s, a, map[string]any{}, nil)
		if v := s.Do(t, "GET", v3+"/directory/list/room/"+room, nil, "").Expect(t, 200, "").Str("visibility"); v != "private" {
			t.Errorf("visibility %s", v)
		}
		expectMsg(t, s.Do(t, "PUT", v3+"/directory/list/room/"+room, map[string]any{"visibility": "public"}, a), 403, "M_UNKNOWN", "Not allowed to publish room")
	})
	t.Run("room_list_publication_rules by alias", func(t *testing.T) {
		t.Parallel()
		s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn + "room_list_publication_rules: [{alias: \"#pub-*\", action: allow}, {action: deny}]\n"})
		_, a := s.Register(t, "rules", "pw")
		room := s.Do(t, "POST", v3+"/createRoom", map[string]any{"preset": "public_chat"}, a).Expect(t, 200, "").Str("room_id")
		s.Do(t, "PUT", v3+"/directory/list/room/"+room, map[string]any{"visibility": "public"}, a).Expect(t, 403, "M_UNKNOWN")
		s.Do(t, "PUT", v3+"/directory/room/%23pub-x:test.local", map[string]any{"room_id": room}, a).Expect(t, 200, "")
		s.Do(t, "PUT", v3+"/directory/list/room/"+room, map[string]any{"visibility": "public"}, a).Expect(t, 200, "")
		// createRoom with a matching alias publishes.
		pub := createPublic(t, s, a, map[string]any{"room_alias_name": "pub-y"}, nil)
		if v := s.Do(t, "GET", v3+"/directory/list/room/"+pub, nil, "").Expect(t, 200, "").Str("visibility"); v != "public" {
			t.Errorf("visibility %s", v)
		}
	})
}

func TestRoomDirectoryVisibility(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: modRegistrationOn + publishAll}, func(t *testing.T, s *testserver.Server) {
		ctx := context.Background()
		_, a := s.Register(t, "vera", "pw")
		_, b := s.Register(t, "vlad", "pw")
		carl, c := s.Register(t, "vcarl", "pw")
		admin, adm := s.Register(t, "vadmin", "pw")
		if err := s.Srv.Store().SetAdmin(ctx, admin, true); err != nil {
			t.Fatal(err)
		}
		room := s.Do(t, "POST", v3+"/createRoom", map[string]any{"preset": "public_chat"}, a).Expect(t, 200, "").Str("room_id")
		s.Do(t, "POST", v3+"/rooms/"+room+"/join", map[string]any{}, b).Expect(t, 200, "")
		path := v3 + "/directory/list/room/" + room
		vis := func() string {
			r := s.Do(t, "GET", path, nil, "").Expect(t, 200, "")
			dirSchema(t, "list_public_rooms.yaml", "get", "/directory/list/room/{roomId}", r)
			return r.Str("visibility")
		}
		if v := vis(); v != "private" {
			t.Errorf("new room: %s", v)
		}
		expectMsg(t, s.Do(t, "GET", v3+"/directory/list/room/!nowhere:test.local", nil, ""), 404, "M_NOT_FOUND", "Unknown room")
		r := s.Do(t, "PUT", path, map[string]any{"visibility": "public"}, a).Expect(t, 200, "")
		dirSchema(t, "list_public_rooms.yaml", "put", "/directory/list/room/{roomId}", r)
		if v := vis(); v != "public" {
			t.Errorf("after PUT public: %s", v)
		}
		s.Do(t, "PUT", path, map[string]any{"visibility": "private"}, a).Expect(t, 200, "")
		if v := vis(); v != "private" {
			t.Errorf("after PUT private: %s", v)
		}
		s.Do(t, "PUT", path, map[string]any{}, a).Expect(t, 200, "") // public by default
		if v := vis(); v != "public" {
			t.Errorf("after PUT {}: %s", v)
		}
		s.Do(t, "PUT", path, map[string]any{"visibility": "hidden"}, a).Expect(t, 400, "M_BAD_JSON")
		s.Do(t, "PUT", path, map[string]any{"visibility": 1}, a).Expect(t, 400, "M_BAD_JSON")
		s.Do(t, "PUT", path, "nope", a).Expect(t, 400, "M_NOT_JSON")
		s.Do(t, "PUT", path, map[string]any{"visibility": "private"}, "").Expect(t, 401, "M_MISSING_TOKEN")
		expectMsg(t, s.Do(t, "PUT", path, map[string]any{"visibility": "private"}, b), 403, "M_FORBIDDEN",
			"This server requires you to be a moderator in the room to edit its room list entry")
		expectMsg(t, s.Do(t, "PUT", path, map[string]any{"visibility": "private"}, c), 403, "M_FORBIDDEN", "User "+carl+" not in room "+room)
		expectMsg(t, s.Do(t, "PUT", v3+"/directory/list/room/!nowhere:test.local", map[string]any{"visibility": "public"}, a), 400, "M_UNKNOWN", "Unknown room")
		s.Do(t, "PUT", path, map[string]any{"visibility": "private"}, adm).Expect(t, 200, "")
		if v := vis(); v != "private" {
			t.Errorf("after the admin's PUT: %s", v)
		}
		s.Do(t, "GET", "/_matrix/client/r0/directory/list/room/"+room, nil, "").Expect(t, 200, "")
	})
}

// TestDirectoryModuleAPI drives the public room list helpers
// (public_room_list_manager) through a module's web resource: no checks,
// no callbacks, nothing for an unknown room.
func TestDirectoryModuleAPI(t *testing.T) {
	t.Parallel()
	id := modID(t, 0)
	s := testserver.Start(t, testserver.Options{YAML: modRegistrationOn + "modules:\n" +
		dirEntry(id, "", map[string]string{"web_resource": "/_synapse/client/dirtest", "user_may_publish_room": "deny",
			"check_visibility_can_be_modified": "deny"})})
	_, a := s.Register(t, "modu", "pw")
	room := s.Do(t, "POST", v3+"/createRoom", map[string]any{"preset": "public_chat"}, a).Expect(t, 200, "").Str("room_id")
	op := func(op, room string) any {
		t.Helper()
		return s.Do(t, "GET", "/_synapse/client/dirtest?op="+op+"&room="+url.QueryEscape(room), nil, "").Expect(t, 200, "").Body["result"]
	}
	vis := func() string {
		return s.Do(t, "GET", v3+"/directory/list/room/"+room, nil, "").Expect(t, 200, "").Str("visibility")
	}
	if got := op("is", room); got != false {
		t.Errorf("is = %v", got)
	}
	op("add", room) // room_list_publication_rules (default: deny) do not apply
	if got := op("is", room); got != true || vis() != "public" {
		t.Errorf("after add: is = %v, visibility %s", got, vis())
	}
	r := s.Do(t, "GET", v3+"/publicRooms", nil, a).Expect(t, 200, "")
	if len(r.Body["chunk"].([]any)) != 1 {
		t.Errorf("the module's room is not listed: %s", r.Raw)
	}
	op("add", room) // twice is fine
	op("remove", room)
	if got := op("is", room); got != false || vis() != "private" {
		t.Errorf("after remove: is = %v, visibility %s", got, vis())
	}
	op("remove", room)
	if got := op("is", "!unknown:test.local"); got != false {
		t.Errorf("is(unknown) = %v", got)
	}
	op("add", "!unknown:test.local")
	for _, c := range modCallsOf(id) {
		if c.Callback == "user_may_publish_room" || (c.Callback == "check_visibility_can_be_modified" && c.Args[1] == "public") {
			t.Errorf("a helper ran a callback: %+v", c)
		}
	}
}

// TestDirectoryAdminsAsked: server admins are asked user_may_publish_room
// and user_may_create_room_alias too (Synapse exempts them from neither).
func TestDirectoryAdminsAsked(t *testing.T) {
	t.Parallel()
	id := modID(t, 0)
	s := dirServer(t, dirEntry(id, "", map[string]string{"user_may_publish_room": "deny", "user_may_create_room_alias": "deny"}))
	admin, tok := s.Register(t, "boss", "pw")
	if err := s.Srv.Store().SetAdmin(context.Background(), admin, true); err != nil {
		t.Fatal(err)
	}
	room := s.Do(t, "POST", v3+"/createRoom", map[string]any{}, tok).Expect(t, 200, "").Str("room_id")
	s.Do(t, "PUT", v3+"/directory/list/room/"+room, map[string]any{"visibility": "public"}, tok).Expect(t, 403, "M_FORBIDDEN")
	s.Do(t, "PUT", v3+"/directory/room/%23boss:test.local", map[string]any{"room_id": room}, tok).Expect(t, 403, "M_FORBIDDEN")
	if n := len(modCallsOf(id)); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}
