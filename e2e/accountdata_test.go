package e2e_test

// Account data (global and per room), filters, and the account data
// callback category (on_account_data_updated, the module API's
// Get/PutGlobalAccountData), through the real server.

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/testserver"
)

const adRoom = "!someroom:test.local"

func TestAccountDataEndpoints(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		global := func(u roomUser, typ string) string { return roomCS("user", u.ID, "account_data", typ) }
		room := func(u roomUser, roomID, typ string) string {
			return roomCS("user", u.ID, "rooms", roomID, "account_data", typ)
		}

		// Global: missing, set, read back (v3 and r0), replace.
		roomExpectError(t, s.Do(t, "GET", global(alice, "org.example.cfg"), nil, alice.Token), 404, "M_NOT_FOUND", "Account data not found")
		if r := s.Do(t, "PUT", global(alice, "org.example.cfg"), map[string]any{"theme": "dark", "n": 3}, alice.Token).Expect(t, 200, ""); string(r.Raw) != "{}" {
			t.Errorf("PUT answered %s, want {}", r.Raw)
		}
		r := s.Do(t, "GET", global(alice, "org.example.cfg"), nil, alice.Token).Expect(t, 200, "")
		if !reflect.DeepEqual(r.Body, map[string]any{"theme": "dark", "n": float64(3)}) {
			t.Errorf("GET = %s", r.Raw)
		}
		r0 := "/_matrix/client/r0/user/" + alice.ID + "/account_data/org.example.cfg"
		s.Do(t, "PUT", r0, map[string]any{"theme": "light"}, alice.Token).Expect(t, 200, "")
		if r := s.Do(t, "GET", r0, nil, alice.Token).Expect(t, 200, ""); string(r.Raw) != `{"theme":"light"}` {
			t.Errorf("GET after replace (r0) = %s", r.Raw)
		}
		// Bob's data is his own.
		roomExpectError(t, s.Do(t, "GET", global(bob, "org.example.cfg"), nil, bob.Token), 404, "M_NOT_FOUND", "Account data not found")

		// Only for oneself.
		roomExpectError(t, s.Do(t, "PUT", global(bob, "org.example.cfg"), map[string]any{}, alice.Token), 403, "M_FORBIDDEN", "Cannot add account data for other users.")
		roomExpectError(t, s.Do(t, "GET", global(bob, "org.example.cfg"), nil, alice.Token), 403, "M_FORBIDDEN", "Cannot get account data for other users.")
		roomExpectError(t, s.Do(t, "PUT", room(bob, adRoom, "t"), map[string]any{}, alice.Token), 403, "M_FORBIDDEN", "Cannot add account data for other users.")
		roomExpectError(t, s.Do(t, "GET", room(bob, adRoom, "t"), nil, alice.Token), 403, "M_FORBIDDEN", "Cannot get account data for other users.")
		s.Do(t, "GET", global(alice, "org.example.cfg"), nil, "").Expect(t, 401, "M_MISSING_TOKEN")

		// The body must be a JSON object.
		s.Do(t, "PUT", global(alice, "x"), "[1]", alice.Token).Expect(t, 400, "M_BAD_JSON")
		s.Do(t, "PUT", global(alice, "x"), `"str"`, alice.Token).Expect(t, 400, "M_BAD_JSON")
		s.Do(t, "PUT", global(alice, "x"), "{nope", alice.Token).Expect(t, 400, "M_NOT_JSON")
		s.Do(t, "PUT", room(alice, adRoom, "x"), "[]", alice.Token).Expect(t, 400, "M_BAD_JSON")

		// Server-managed types (Synapse's and the spec's 405 M_BAD_JSON).
		const fullyRead = "Cannot set m.fully_read through this API. Use /rooms/!roomId:server.name/read_markers"
		const pushRules = "Cannot set m.push_rules through this API. Use /pushrules"
		roomExpectError(t, s.Do(t, "PUT", global(alice, "m.fully_read"), map[string]any{}, alice.Token), 405, "M_BAD_JSON", fullyRead)
		roomExpectError(t, s.Do(t, "PUT", global(alice, "m.push_rules"), map[string]any{}, alice.Token), 405, "M_BAD_JSON", pushRules)
		roomExpectError(t, s.Do(t, "PUT", room(alice, adRoom, "m.fully_read"), map[string]any{"event_id": "$x"}, alice.Token), 405, "M_BAD_JSON", fullyRead)
		roomExpectError(t, s.Do(t, "PUT", room(alice, adRoom, "m.push_rules"), map[string]any{}, alice.Token), 405, "M_BAD_JSON", pushRules)

		// Per room: separate from global data and from other rooms.
		roomExpectError(t, s.Do(t, "GET", room(alice, adRoom, "org.example.cfg"), nil, alice.Token), 404, "M_NOT_FOUND", "Room account data not found")
		s.Do(t, "PUT", room(alice, adRoom, "m.tag"), map[string]any{"tags": map[string]any{"u.work": map[string]any{}}}, alice.Token).Expect(t, 200, "")
		if r := s.Do(t, "GET", room(alice, adRoom, "m.tag"), nil, alice.Token).Expect(t, 200, ""); string(r.Raw) != `{"tags":{"u.work":{}}}` {
			t.Errorf("room GET = %s", r.Raw)
		}
		roomExpectError(t, s.Do(t, "GET", global(alice, "m.tag"), nil, alice.Token), 404, "M_NOT_FOUND", "Account data not found")
		roomExpectError(t, s.Do(t, "GET", room(alice, "!other:test.local", "m.tag"), nil, alice.Token), 404, "M_NOT_FOUND", "Room account data not found")
		if r := s.Do(t, "GET", "/_matrix/client/r0/user/"+alice.ID+"/rooms/"+adRoom+"/account_data/m.tag", nil, alice.Token).Expect(t, 200, ""); r.Body["tags"] == nil {
			t.Errorf("room GET (r0) = %s", r.Raw)
		}
		// Room push rules are not supported: always {} (as Synapse).
		if r := s.Do(t, "GET", room(alice, adRoom, "m.push_rules"), nil, alice.Token).Expect(t, 200, ""); string(r.Raw) != "{}" {
			t.Errorf("room m.push_rules = %s", r.Raw)
		}
		// An invalid room ID.
		roomExpectError(t, s.Do(t, "PUT", room(alice, "notaroom", "m.tag"), map[string]any{}, alice.Token), 400, "M_INVALID_PARAM", "notaroom is not a valid room ID")
		roomExpectError(t, s.Do(t, "GET", room(alice, "#alias:test.local", "m.tag"), nil, alice.Token), 400, "M_INVALID_PARAM", "#alias:test.local is not a valid room ID")

		// Every write has a stream position, in order.
		entries, err := s.Srv.Store().AccountDataSince(context.Background(), alice.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 || entries[0].Type != "org.example.cfg" || entries[0].RoomID != "" ||
			entries[1].Type != "m.tag" || entries[1].RoomID != adRoom || entries[1].StreamPos <= entries[0].StreamPos {
			t.Errorf("AccountDataSince = %+v", entries)
		}
	})
}

func TestFilterEndpoints(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: roomRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		post := func(u roomUser, body any) testserver.Response {
			return s.Do(t, "POST", roomCS("user", u.ID, "filter"), body, u.Token)
		}
		get := func(u roomUser, fid string) testserver.Response {
			return s.Do(t, "GET", roomCS("user", u.ID, "filter", fid), nil, u.Token)
		}

		f0 := map[string]any{
			"event_fields": []any{"type", "content.body"}, "event_format": "client",
			"presence":     map[string]any{"not_types": []any{"*"}},
			"account_data": map[string]any{"limit": 5, "types": []any{"m.direct"}},
			"room": map[string]any{
				"rooms": []any{adRoom}, "include_leave": false,
				"timeline":                       map[string]any{"limit": 20, "lazy_load_members": true, "not_senders": []any{"@spam:test.local"}},
				"state":                          map[string]any{"lazy_load_members": true, "contains_url": false},
				"org.example.unknown_room_field": "kept",
			},
			"org.example.unknown": map[string]any{"kept": true},
		}
		if r := post(alice, f0).Expect(t, 200, ""); r.Str("filter_id") != "0" {
			t.Fatalf("first filter_id = %s", r.Raw)
		}
		if r := post(alice, map[string]any{}).Expect(t, 200, ""); r.Str("filter_id") != "1" {
			t.Fatalf("second filter_id = %s", r.Raw)
		}
		// The same filter again is the same filter.
		if r := post(alice, f0).Expect(t, 200, ""); r.Str("filter_id") != "0" {
			t.Errorf("same filter again: %s", r.Raw)
		}
		// Per-user IDs.
		if r := post(bob, map[string]any{"event_format": "federation"}).Expect(t, 200, ""); r.Str("filter_id") != "0" {
			t.Errorf("bob's first filter_id = %s", r.Raw)
		}
		got := get(alice, "0").Expect(t, 200, "")
		want := map[string]any{
			"event_fields": []any{"type", "content.body"}, "event_format": "client",
			"presence":     map[string]any{"not_types": []any{"*"}},
			"account_data": map[string]any{"limit": float64(5), "types": []any{"m.direct"}},
			"room": map[string]any{
				"rooms": []any{adRoom}, "include_leave": false,
				"timeline":                       map[string]any{"limit": float64(20), "lazy_load_members": true, "not_senders": []any{"@spam:test.local"}},
				"state":                          map[string]any{"lazy_load_members": true, "contains_url": false},
				"org.example.unknown_room_field": "kept",
			},
			"org.example.unknown": map[string]any{"kept": true},
		}
		if !reflect.DeepEqual(got.Body, want) {
			t.Errorf("GET filter 0 = %s", got.Raw)
		}
		if r := s.Do(t, "GET", "/_matrix/client/r0/user/"+alice.ID+"/filter/1", nil, alice.Token).Expect(t, 200, ""); string(r.Raw) != "{}" {
			t.Errorf("GET filter 1 (r0) = %s", r.Raw)
		}
		// Synapse caps room.timeline.limit at filter_timeline_limit (100).
		fid := post(alice, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 5000}}}).Expect(t, 200, "").Str("filter_id")
		if r := get(alice, fid).Expect(t, 200, ""); string(r.Raw) != `{"room":{"timeline":{"limit":100}}}` {
			t.Errorf("capped filter = %s", r.Raw)
		}

		// Errors.
		roomExpectError(t, get(alice, "42"), 404, "M_NOT_FOUND", "No such filter")
		roomExpectError(t, get(alice, "nope"), 400, "M_INVALID_PARAM", "Invalid filter_id")
		roomExpectError(t, s.Do(t, "GET", roomCS("user", bob.ID, "filter", "0"), nil, alice.Token), 403, "M_FORBIDDEN", "Cannot get filters for other users")
		roomExpectError(t, s.Do(t, "POST", roomCS("user", bob.ID, "filter"), map[string]any{}, alice.Token), 403, "M_FORBIDDEN", "Cannot create filters for other users")
		s.Do(t, "POST", roomCS("user", alice.ID, "filter"), map[string]any{}, "").Expect(t, 401, "M_MISSING_TOKEN")
		post(alice, "[]").Expect(t, 400, "M_BAD_JSON")
		post(alice, "{").Expect(t, 400, "M_NOT_JSON")
		for _, bad := range []map[string]any{
			{"event_fields": "type"},
			{"event_fields": []any{1}},
			{"event_format": "xml"},
			{"event_format": nil},
			{"presence": []any{}},
			{"account_data": "x"},
			{"account_data": map[string]any{"types": "m.direct"}},
			{"presence": map[string]any{"senders": []any{true}}},
			{"presence": map[string]any{"limit": "10"}},
			{"room": "x"},
			{"room": map[string]any{"rooms": "!a:b"}},
			{"room": map[string]any{"include_leave": "yes"}},
			{"room": map[string]any{"timeline": []any{}}},
			{"room": map[string]any{"timeline": map[string]any{"limit": "10"}}},
			{"room": map[string]any{"timeline": map[string]any{"limit": 1.5}}},
			{"room": map[string]any{"state": map[string]any{"lazy_load_members": 1}}},
			{"room": map[string]any{"ephemeral": map[string]any{"not_rooms": []any{3}}}},
			{"room": map[string]any{"account_data": map[string]any{"contains_url": "no"}}},
		} {
			if r := post(alice, bad); r.Status != 400 || r.Str("errcode") != "M_BAD_JSON" {
				t.Errorf("filter %v: %d %s, want 400 M_BAD_JSON", bad, r.Status, r.Raw)
			}
		}
	})
}

// adCallbacks returns the on_account_data_updated calls one module got.
func adCallbacks(id string) []modCall { return roomCallsNamed(id, "on_account_data_updated") }

func TestAccountDataCallback(t *testing.T) {
	t.Parallel()
	a, b, c, d := roomModID(t, 1), roomModID(t, 2), roomModID(t, 3), roomModID(t, 4)
	const extra = "    timeout: 100ms\n"
	s := modServer(t,
		modEntry(a, extra, map[string]string{"on_account_data_updated": "ok", "web_resource": "/_synapse/client/ad"}),
		modEntry(b, extra, map[string]string{"on_account_data_updated": "error"}),
		modEntry(c, extra, map[string]string{"on_account_data_updated": "panic"}),
		modEntry(d, extra+"    on_error: deny\n", map[string]string{"on_account_data_updated": "ok"}),
	)
	alice := roomRegister(t, s, "alice")

	// A global PUT: every module runs, in order, with its own copy; the
	// failing and panicking ones do not fail the request.
	s.Do(t, "PUT", roomCS("user", alice.ID, "account_data", "org.example.cfg"), map[string]any{"k": "v"}, alice.Token).Expect(t, 200, "")
	for _, id := range []string{a, b, c, d} {
		calls := adCallbacks(id)
		if len(calls) != 1 {
			t.Fatalf("module %s: %d calls, want 1", id, len(calls))
		}
		wantArgs := []any{alice.ID, "", "org.example.cfg", map[string]any{"k": "v"}}
		if !reflect.DeepEqual(calls[0].Args, wantArgs) {
			t.Errorf("module %s: args %#v, want %#v", id, calls[0].Args, wantArgs)
		}
	}
	// It was stored before the callbacks ran, and is stored whatever they did.
	if r := s.Do(t, "GET", roomCS("user", alice.ID, "account_data", "org.example.cfg"), nil, alice.Token).Expect(t, 200, ""); string(r.Raw) != `{"k":"v"}` {
		t.Errorf("stored %s", r.Raw)
	}

	// A room PUT passes the room ID.
	s.Do(t, "PUT", roomCS("user", alice.ID, "rooms", adRoom, "account_data", "m.tag"), map[string]any{"tags": map[string]any{}}, alice.Token).Expect(t, 200, "")
	if calls := adCallbacks(a); len(calls) != 2 || !reflect.DeepEqual(calls[1].Args, []any{alice.ID, adRoom, "m.tag", map[string]any{"tags": map[string]any{}}}) {
		t.Errorf("room PUT calls %+v", calls)
	}

	// Refused requests tell nobody.
	s.Do(t, "PUT", roomCS("user", alice.ID, "account_data", "m.push_rules"), map[string]any{}, alice.Token).Expect(t, 405, "M_BAD_JSON")
	s.Do(t, "PUT", roomCS("user", "@bob:test.local", "account_data", "x"), map[string]any{}, alice.Token).Expect(t, 403, "M_FORBIDDEN")
	s.Do(t, "PUT", roomCS("user", alice.ID, "account_data", "x"), "[]", alice.Token).Expect(t, 400, "M_BAD_JSON")
	if n := len(adCallbacks(a)); n != 2 {
		t.Errorf("%d calls after refused requests, want 2", n)
	}

	// The module API: PutGlobalAccountData stores and tells the callbacks;
	// GetGlobalAccountData reads; nil when there is none; remote users are refused.
	api := func(q string) testserver.Response { return s.Do(t, "GET", "/_synapse/client/ad?"+q, nil, "") }
	api("api=putaccountdata&user="+alice.ID+"&type=m.direct").Expect(t, 200, "")
	if calls := adCallbacks(d); len(calls) != 3 || !reflect.DeepEqual(calls[2].Args, []any{alice.ID, "", "m.direct", map[string]any{"from": a}}) {
		t.Errorf("module put calls %+v", calls)
	}
	if r := s.Do(t, "GET", roomCS("user", alice.ID, "account_data", "m.direct"), nil, alice.Token).Expect(t, 200, ""); r.Str("from") != a {
		t.Errorf("module-put data = %s", r.Raw)
	}
	s.Do(t, "PUT", roomCS("user", alice.ID, "account_data", "m.direct"), map[string]any{"@bob:test.local": []any{adRoom}}, alice.Token).Expect(t, 200, "")
	if r := api("api=getaccountdata&user="+alice.ID+"&type=m.direct").Expect(t, 200, ""); !reflect.DeepEqual(r.Body["result"], map[string]any{"@bob:test.local": []any{adRoom}}) {
		t.Errorf("module get = %s", r.Raw)
	}
	if r := api("api=getaccountdata&user="+alice.ID+"&type=org.none").Expect(t, 200, ""); r.Body["result"] != nil {
		t.Errorf("module get of nothing = %s", r.Raw)
	}
	api("api=getaccountdata&user=@x:elsewhere.org&type=m.direct").Expect(t, 500, "M_UNKNOWN")
	api("api=putaccountdata&user=@x:elsewhere.org&type=m.direct").Expect(t, 500, "M_UNKNOWN")
}

func TestAccountDataCallbackHang(t *testing.T) {
	t.Parallel()
	a, b := roomModID(t, 1), roomModID(t, 2)
	s := modServer(t,
		modEntry(a, "    timeout: 100ms\n", map[string]string{"on_account_data_updated": "hang"}),
		modEntry(b, "    timeout: 100ms\n", map[string]string{"on_account_data_updated": "ok"}),
	)
	alice := roomRegister(t, s, "alice")
	start := time.Now()
	s.Do(t, "PUT", roomCS("user", alice.ID, "account_data", "x"), map[string]any{}, alice.Token).Expect(t, 200, "")
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("PUT took %s with a hung callback (timeout 100ms)", el)
	}
	if len(adCallbacks(a)) != 1 || len(adCallbacks(b)) != 1 {
		t.Errorf("calls: hung module %d, next module %d; want 1 and 1", len(adCallbacks(a)), len(adCallbacks(b)))
	}
}
