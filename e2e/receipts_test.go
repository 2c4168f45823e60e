package e2e_test

// Typing notifications, read receipts and read markers, through the real
// server: every endpoint's success and Synapse's errors, on both
// databases. What /sync delivers is tested with /sync.

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/testserver"
)

// rcSend sends an event of any type and returns its ID.
func rcSend(t testing.TB, s *testserver.Server, u roomUser, roomID, typ string, content map[string]any) string {
	t.Helper()
	id := s.Do(t, "PUT", roomCS("rooms", roomID, "send", typ, roomTxn()), content, u.Token).Expect(t, 200, "").Str("event_id")
	roomExpectEventID(t, id)
	return id
}

// rcReceipts is the store's current receipts of a room.
func rcReceipts(t testing.TB, s *testserver.Server, roomID string) []storage.Receipt {
	t.Helper()
	ctx := context.Background()
	top, err := s.Srv.Store().MaxReceiptPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.Srv.Store().ReceiptsSince(ctx, []string{roomID}, 0, top)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// rcReceipt finds one receipt ("" when there is none).
func rcReceipt(t testing.TB, s *testserver.Server, roomID, typ, userID, threadID string) (eventID string, r storage.Receipt) {
	t.Helper()
	for _, r := range rcReceipts(t, s, roomID) {
		if r.Type == typ && r.UserID == userID && r.ThreadID == threadID {
			return r.EventID, r
		}
	}
	return "", storage.Receipt{}
}

// rcFullyRead is the user's m.fully_read marker in the room ("" when none).
func rcFullyRead(t testing.TB, s *testserver.Server, u roomUser, roomID string) string {
	t.Helper()
	r := s.Do(t, "GET", roomCS("user", u.ID, "rooms", roomID, "account_data", "m.fully_read"), nil, u.Token)
	if r.Status == 404 {
		return ""
	}
	r.Expect(t, 200, "")
	if len(r.Body) != 1 {
		t.Errorf("m.fully_read content %s, want only event_id", r.Raw)
	}
	return r.Str("event_id")
}

func rcExpectEmpty(t testing.TB, r testserver.Response) {
	t.Helper()
	r.Expect(t, 200, "")
	if string(r.Raw) != "{}" {
		t.Errorf("answer %s, want {}", r.Raw)
	}
}

func TestTypingEndpoint(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, roomOptions(), func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		carol := roomRegister(t, s, "carol")
		dave := roomRegister(t, s, "dave")
		room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		typing := func(roomID, userID string) string { return roomCS("rooms", roomID, "typing", userID) }

		// A shadow-banned user seems to succeed, after Synapse's 1 to 10 s,
		// even where they could not type; run it alongside the rest.
		if err := s.Srv.Store().SetShadowBanned(context.Background(), dave.ID, true); err != nil {
			t.Fatal(err)
		}
		type answer struct {
			status int
			body   string
			err    error
		}
		shadow := make(chan answer, 1)
		shadowStart := time.Now()
		go func() { // not s.Do: it may not fail the test from here
			req, err := http.NewRequest("PUT", s.URL+typing(room, dave.ID), strings.NewReader(`{"typing":true}`))
			if err != nil {
				shadow <- answer{err: err}
				return
			}
			req.Header.Set("Authorization", "Bearer "+dave.Token)
			resp, err := s.Client.Do(req)
			if err != nil {
				shadow <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			shadow <- answer{resp.StatusCode, string(b), err}
		}()

		// Start and stop, with and without a timeout, on v3 and r0.
		rcExpectEmpty(t, s.Do(t, "PUT", typing(room, alice.ID), map[string]any{"typing": true, "timeout": 30000}, alice.Token))
		rcExpectEmpty(t, s.Do(t, "PUT", typing(room, alice.ID), map[string]any{"typing": true}, alice.Token))
		rcExpectEmpty(t, s.Do(t, "PUT", typing(room, alice.ID), map[string]any{"typing": false}, alice.Token))
		rcExpectEmpty(t, s.Do(t, "PUT", "/_matrix/client/r0/rooms/"+room+"/typing/"+bob.ID, map[string]any{"typing": true, "timeout": 5000}, bob.Token))
		// Synapse tests Python truth and caps the timeout; a boolean
		// timeout is a number to it.
		for _, body := range []map[string]any{
			{"typing": "yes"}, {"typing": 1, "timeout": 1e12}, {"typing": []any{}}, {"typing": nil},
			{"typing": true, "timeout": -5}, {"typing": true, "timeout": true}, {"typing": true, "timeout": 1.5},
		} {
			rcExpectEmpty(t, s.Do(t, "PUT", typing(room, bob.ID), body, bob.Token))
		}

		// The user ID's form comes first, then the body, then its fields,
		// then whose typing it is, then membership.
		const notJoined = "User @carol:test.local not in room "
		for _, c := range []struct {
			name            string
			user            roomUser
			roomID, target  string
			body            any
			status          int
			errcode, errmsg string
		}{
			{"no sigil", alice, room, "alice", "[1]", 400, "M_INVALID_PARAM", "Expected UserID string to start with '@'"},
			{"no domain", alice, room, "@alice", "[1]", 400, "M_INVALID_PARAM", "Expected UserID of the form '@localname:domain'"},
			{"body not an object", carol, room, carol.ID, "[1]", 400, "M_BAD_JSON", "Content must be a JSON object."},
			{"body not JSON", carol, room, carol.ID, "{nope", 400, "M_NOT_JSON", "Content not JSON."},
			{"empty body", carol, room, carol.ID, "", 400, "M_NOT_JSON", "Content not JSON."},
			// Synapse's handler raises on these (a 500); Sluice names the
			// bad field with a 400.
			{"typing missing", alice, room, bob.ID, map[string]any{"timeout": 1}, 400, "M_BAD_JSON", "Missing required field: typing"},
			{"timeout a string", carol, room, carol.ID, map[string]any{"typing": true, "timeout": "10"}, 400, "M_BAD_JSON", "timeout must be a number"},
			{"timeout null", carol, room, carol.ID, map[string]any{"typing": true, "timeout": nil}, 400, "M_BAD_JSON", "timeout must be a number"},
			{"remote user", alice, room, "@bob:elsewhere.example", map[string]any{"typing": true}, 400, "M_UNKNOWN", "User is not hosted on this homeserver"},
			{"another user", alice, room, bob.ID, map[string]any{"typing": true}, 400, "M_FORBIDDEN", "Cannot set another user's typing state"},
			{"another user stopping", alice, room, bob.ID, map[string]any{"typing": false}, 400, "M_FORBIDDEN", "Cannot set another user's typing state"},
			{"not joined", carol, room, carol.ID, map[string]any{"typing": true}, 403, "M_FORBIDDEN", notJoined + room},
			{"not joined stopping", carol, room, carol.ID, map[string]any{"typing": false}, 403, "M_FORBIDDEN", notJoined + room},
			{"unknown room", carol, "!nope:test.local", carol.ID, map[string]any{"typing": true}, 403, "M_FORBIDDEN", notJoined + "!nope:test.local"},
			{"not a room ID", carol, "garbage", carol.ID, map[string]any{"typing": true}, 403, "M_FORBIDDEN", notJoined + "garbage"},
		} {
			t.Run(c.name, func(t *testing.T) {
				roomExpectError(t, s.Do(t, "PUT", typing(c.roomID, c.target), c.body, c.user.Token), c.status, c.errcode, c.errmsg)
			})
		}
		s.Do(t, "PUT", typing(room, alice.ID), map[string]any{"typing": true}, "").Expect(t, 401, "M_MISSING_TOKEN")

		// After leaving, no more typing there.
		s.Do(t, "POST", roomCS("rooms", room, "leave"), map[string]any{}, bob.Token).Expect(t, 200, "")
		roomExpectError(t, s.Do(t, "PUT", typing(room, bob.ID), map[string]any{"typing": true}, bob.Token),
			403, "M_FORBIDDEN", "User "+bob.ID+" not in room "+room)

		select {
		case r := <-shadow:
			if r.err != nil || r.status != 200 || r.body != "{}" {
				t.Errorf("shadow-banned typing: %d %s %v, want 200 {}", r.status, r.body, r.err)
			}
			if d := time.Since(shadowStart); d < time.Second {
				t.Errorf("shadow-banned typing answered after %v, want Synapse's 1 s at least", d)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no answer to the shadow-banned typing request")
		}
	})
}

func TestReceiptEndpoint(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, roomOptions(), func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		carol := roomRegister(t, s, "carol")
		room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		other := roomCreate(t, s, alice, map[string]any{})
		s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		e1 := roomSendOK(t, s, alice, room, "one")
		e2 := roomSendOK(t, s, alice, room, "two")
		e3 := roomSendOK(t, s, alice, room, "three")
		otherEv := roomSendOK(t, s, alice, other, "elsewhere")
		// A thread on e1, and a reaction to its reply.
		reply := rcSend(t, s, bob, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "in thread",
			"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": e1}})
		reaction := rcSend(t, s, alice, room, "m.reaction", map[string]any{
			"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": reply, "key": "👍"}})
		receipt := func(roomID, typ, eventID string) string { return roomCS("rooms", roomID, "receipt", typ, eventID) }

		// m.read: stored with the time it was received.
		before := time.Now().UnixMilli()
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read", e2), map[string]any{}, alice.Token))
		got, r := rcReceipt(t, s, room, "m.read", alice.ID, "")
		if got != e2 || r.TS < before || r.TS > time.Now().UnixMilli() || r.StreamPos <= 0 {
			t.Fatalf("alice's m.read receipt %+v, want on %s now", r, e2)
		}
		// Never backwards, nor again for the same event: nothing changes.
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read", e1), map[string]any{}, alice.Token))
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read", e2), map[string]any{}, alice.Token))
		if _, again := rcReceipt(t, s, room, "m.read", alice.ID, ""); again != r {
			t.Errorf("receipt after going back: %+v, want unchanged %+v", again, r)
		}
		// Forwards; private receipts apart; r0.
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read", e3), map[string]any{}, alice.Token))
		rcExpectEmpty(t, s.Do(t, "POST", "/_matrix/client/r0/rooms/"+room+"/receipt/m.read.private/"+e1, map[string]any{}, alice.Token))
		if got, _ := rcReceipt(t, s, room, "m.read", alice.ID, ""); got != e3 {
			t.Errorf("m.read on %s after moving forward, want %s", got, e3)
		}
		if got, _ := rcReceipt(t, s, room, "m.read.private", alice.ID, ""); got != e1 {
			t.Errorf("m.read.private on %q, want %s", got, e1)
		}

		// Threads: the main timeline, and the thread of a reply, of its
		// reaction and of its root.
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read", e2), map[string]any{"thread_id": "main"}, bob.Token))
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read", e1), map[string]any{"thread_id": e1}, bob.Token))
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read", reply), map[string]any{"thread_id": e1}, bob.Token))
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read.private", reaction), map[string]any{"thread_id": e1}, bob.Token))
		for _, c := range []struct{ typ, thread, want string }{
			{"m.read", "main", e2}, {"m.read", e1, reply}, {"m.read.private", e1, reaction}, {"m.read", "", ""},
		} {
			if got, _ := rcReceipt(t, s, room, c.typ, bob.ID, c.thread); got != c.want {
				t.Errorf("bob's %s receipt in thread %q on %q, want %q", c.typ, c.thread, got, c.want)
			}
		}

		// Ignored without an error (Synapse: no such event in the room).
		n := len(rcReceipts(t, s, room))
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read", "$nope"), map[string]any{}, bob.Token))
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read", otherEv), map[string]any{}, bob.Token))
		rcExpectEmpty(t, s.Do(t, "POST", receipt("!nope:test.local", "m.read", e1), map[string]any{}, carol.Token))
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read", "$nope"), map[string]any{"thread_id": "main"}, bob.Token))
		if got := len(rcReceipts(t, s, room)); got != n {
			t.Errorf("%d receipts after ignored ones, want %d", got, n)
		}

		const (
			badIDs   = "A valid room ID and event ID must be specified"
			badType  = "Receipt type must be m.read, m.read.private, m.fully_read"
			badTh    = "thread_id field must be a non-empty string"
			noPerm   = "You don't have permission to access that event."
			thFullyR = "thread_id is not compatible with m.fully_read receipts."
		)
		for _, c := range []struct {
			name            string
			user            roomUser
			path            string
			body            any
			status          int
			errcode, errmsg string
		}{
			// In Synapse's order: IDs, type, body, thread, then the event.
			{"room ID", alice, receipt("garbage", "m.foo", e1), "[1]", 400, "M_UNKNOWN", badIDs},
			{"event ID", alice, receipt(room, "m.foo", "notanevent"), "[1]", 400, "M_UNKNOWN", badIDs},
			{"receipt type", alice, receipt(room, "m.foo", e1), "[1]", 400, "M_UNKNOWN", badType},
			{"m.read.public", alice, receipt(room, "m.read.public", e1), map[string]any{}, 400, "M_UNKNOWN", badType},
			{"body not an object", carol, receipt(room, "m.read", e1), "[1]", 400, "M_BAD_JSON", "Content must be a JSON object."},
			{"body not JSON", carol, receipt(room, "m.read", e1), "{nope", 400, "M_NOT_JSON", "Content not JSON."},
			{"empty body", carol, receipt(room, "m.read", e1), "", 400, "M_NOT_JSON", "Content not JSON."},
			{"empty thread", carol, receipt(room, "m.read", e1), map[string]any{"thread_id": ""}, 400, "M_INVALID_PARAM", badTh},
			{"thread not a string", carol, receipt(room, "m.read", e1), map[string]any{"thread_id": 5}, 400, "M_INVALID_PARAM", badTh},
			{"thread null", carol, receipt(room, "m.read", e1), map[string]any{"thread_id": nil}, 400, "M_INVALID_PARAM", badTh},
			{"thread on m.fully_read", carol, receipt(room, "m.fully_read", e1), map[string]any{"thread_id": "main"}, 400, "M_INVALID_PARAM", thFullyR},
			{"thread reply on main", carol, receipt(room, "m.read", reply), map[string]any{"thread_id": "main"}, 400, "M_INVALID_PARAM",
				"event_id " + reply + " is not related to thread main"},
			{"reaction in a thread on main", carol, receipt(room, "m.read", reaction), map[string]any{"thread_id": "main"}, 400, "M_INVALID_PARAM",
				"event_id " + reaction + " is not related to thread main"},
			{"event of another thread", carol, receipt(room, "m.read", e2), map[string]any{"thread_id": e1}, 400, "M_INVALID_PARAM",
				"event_id " + e2 + " is not related to thread " + e1},
			{"unknown event in a thread", carol, receipt(room, "m.read", "$nope"), map[string]any{"thread_id": e1}, 400, "M_INVALID_PARAM",
				"event_id $nope is not related to thread " + e1},
			// The event must be one the user may see.
			{"never a member", carol, receipt(room, "m.read", e1), map[string]any{}, 403, "M_FORBIDDEN", noPerm},
			{"never a member, private", carol, receipt(room, "m.read.private", e1), map[string]any{}, 403, "M_FORBIDDEN", noPerm},
		} {
			t.Run(c.name, func(t *testing.T) {
				roomExpectError(t, s.Do(t, "POST", c.path, c.body, c.user.Token), c.status, c.errcode, c.errmsg)
			})
		}
		s.Do(t, "POST", receipt(room, "m.read", e1), map[string]any{}, "").Expect(t, 401, "M_MISSING_TOKEN")

		// A former member: events up to their leave, not after.
		s.Do(t, "POST", roomCS("rooms", room, "leave"), map[string]any{}, bob.Token).Expect(t, 200, "")
		e4 := roomSendOK(t, s, alice, room, "four")
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.read", e3), map[string]any{}, bob.Token))
		if got, _ := rcReceipt(t, s, room, "m.read", bob.ID, ""); got != e3 {
			t.Errorf("former member's receipt on %q, want %s", got, e3)
		}
		roomExpectError(t, s.Do(t, "POST", receipt(room, "m.read", e4), map[string]any{}, bob.Token), 403, "M_FORBIDDEN", noPerm)
	})
}

func TestReadMarkers(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, roomOptions(), func(t *testing.T, s *testserver.Server) {
		alice := roomRegister(t, s, "alice")
		bob := roomRegister(t, s, "bob")
		carol := roomRegister(t, s, "carol")
		room := roomCreate(t, s, alice, map[string]any{"preset": "public_chat"})
		other := roomCreate(t, s, alice, map[string]any{})
		s.Do(t, "POST", roomCS("rooms", room, "join"), map[string]any{}, bob.Token).Expect(t, 200, "")
		e1 := roomSendOK(t, s, alice, room, "one")
		e2 := roomSendOK(t, s, alice, room, "two")
		e3 := roomSendOK(t, s, alice, room, "three")
		otherEv := roomSendOK(t, s, alice, other, "elsewhere")
		receipt := func(roomID, typ, eventID string) string { return roomCS("rooms", roomID, "receipt", typ, eventID) }
		markers := func(roomID string) string { return roomCS("rooms", roomID, "read_markers") }
		notFound := func(eventID, roomID string) string { return "Could not find event " + eventID + " in room " + roomID }

		// m.fully_read through the receipt endpoint is room account data
		// {"event_id": ...}, moved only forward.
		if got := rcFullyRead(t, s, alice, room); got != "" {
			t.Fatalf("m.fully_read before any: %q", got)
		}
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.fully_read", e2), map[string]any{}, alice.Token))
		if got := rcFullyRead(t, s, alice, room); got != e2 {
			t.Errorf("m.fully_read on %q, want %s", got, e2)
		}
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.fully_read", e1), map[string]any{}, alice.Token))
		if got := rcFullyRead(t, s, alice, room); got != e2 {
			t.Errorf("m.fully_read moved back to %q, want %s", got, e2)
		}
		rcExpectEmpty(t, s.Do(t, "POST", "/_matrix/client/r0/rooms/"+room+"/receipt/m.fully_read/"+e3, map[string]any{}, alice.Token))
		if got := rcFullyRead(t, s, alice, room); got != e3 {
			t.Errorf("m.fully_read on %q, want %s", got, e3)
		}
		// It is not a receipt.
		if got, _ := rcReceipt(t, s, room, "m.fully_read", alice.ID, ""); got != "" {
			t.Errorf("m.fully_read stored as a receipt on %s", got)
		}
		roomExpectError(t, s.Do(t, "POST", receipt(room, "m.fully_read", "$nope"), map[string]any{}, alice.Token), 404, "M_UNKNOWN", notFound("$nope", room))
		roomExpectError(t, s.Do(t, "POST", receipt(room, "m.fully_read", otherEv), map[string]any{}, alice.Token), 404, "M_UNKNOWN", notFound(otherEv, room))
		// Synapse checks only that the event is in the room, not that the
		// user is a member.
		rcExpectEmpty(t, s.Do(t, "POST", receipt(room, "m.fully_read", e1), map[string]any{}, carol.Token))
		if got := rcFullyRead(t, s, carol, room); got != e1 {
			t.Errorf("carol's m.fully_read on %q, want %s", got, e1)
		}

		// read_markers: all three at once.
		rcExpectEmpty(t, s.Do(t, "POST", markers(room), map[string]any{"m.fully_read": e2, "m.read": e2, "m.read.private": e1}, bob.Token))
		if got := rcFullyRead(t, s, bob, room); got != e2 {
			t.Errorf("bob's m.fully_read on %q, want %s", got, e2)
		}
		for typ, want := range map[string]string{"m.read": e2, "m.read.private": e1} {
			if got, _ := rcReceipt(t, s, room, typ, bob.ID, ""); got != want {
				t.Errorf("bob's %s on %q, want %s", typ, got, want)
			}
		}
		// Forward only, each on its own; empty values and unknown keys are
		// skipped.
		rcExpectEmpty(t, s.Do(t, "POST", "/_matrix/client/r0/rooms/"+room+"/read_markers",
			map[string]any{"m.fully_read": e1, "m.read": e3, "m.read.private": "", "org.example.marker": e3}, bob.Token))
		if got := rcFullyRead(t, s, bob, room); got != e2 {
			t.Errorf("bob's m.fully_read moved back to %q", got)
		}
		if got, _ := rcReceipt(t, s, room, "m.read", bob.ID, ""); got != e3 {
			t.Errorf("bob's m.read on %q, want %s", got, e3)
		}
		n := len(rcReceipts(t, s, room))
		for _, body := range []map[string]any{
			{}, {"m.read": nil, "m.fully_read": "", "m.read.private": false},
			{"m.read": "$nope"}, {"m.read.private": otherEv}, // not in the room: ignored
		} {
			rcExpectEmpty(t, s.Do(t, "POST", markers(room), body, bob.Token))
		}
		// Nothing of the room ID is checked up front.
		rcExpectEmpty(t, s.Do(t, "POST", markers("!nope:test.local"), map[string]any{"m.read": e1}, bob.Token))
		rcExpectEmpty(t, s.Do(t, "POST", markers("garbage"), map[string]any{"m.read": e1}, bob.Token))
		if got := len(rcReceipts(t, s, room)); got != n {
			t.Errorf("%d receipts after ignored ones, want %d", got, n)
		}

		for _, c := range []struct {
			name            string
			user            roomUser
			roomID          string
			body            any
			status          int
			errcode, errmsg string
		}{
			{"body not an object", bob, room, "[1]", 400, "M_BAD_JSON", "Content must be a JSON object."},
			{"body not JSON", bob, room, "{nope", 400, "M_NOT_JSON", "Content not JSON."},
			{"empty body", bob, room, "", 400, "M_NOT_JSON", "Content not JSON."},
			{"unknown event", bob, room, map[string]any{"m.fully_read": "$nope"}, 404, "M_UNKNOWN", notFound("$nope", room)},
			{"event of another room", bob, room, map[string]any{"m.fully_read": otherEv}, 404, "M_UNKNOWN", notFound(otherEv, room)},
			{"not a room ID", bob, "garbage", map[string]any{"m.fully_read": e1}, 404, "M_UNKNOWN", notFound(e1, "garbage")},
			{"never a member", carol, room, map[string]any{"m.read": e1}, 403, "M_FORBIDDEN", "You don't have permission to access that event."},
			// Synapse leaves the type unchecked and fails with a 500;
			// Sluice names the field.
			{"event ID a number", bob, room, map[string]any{"m.read": 5}, 400, "M_BAD_JSON", "m.read must be an event ID"},
			{"event ID a list", bob, room, map[string]any{"m.fully_read": []any{e3}}, 400, "M_BAD_JSON", "m.fully_read must be an event ID"},
		} {
			t.Run(c.name, func(t *testing.T) {
				roomExpectError(t, s.Do(t, "POST", roomCS("rooms", c.roomID, "read_markers"), c.body, c.user.Token), c.status, c.errcode, c.errmsg)
			})
		}
		s.Do(t, "POST", markers(room), map[string]any{}, "").Expect(t, 401, "M_MISSING_TOKEN")

		// m.fully_read cannot be set through the account data API, only here.
		roomExpectError(t, s.Do(t, "PUT", roomCS("user", bob.ID, "rooms", room, "account_data", "m.fully_read"), map[string]any{"event_id": e3}, bob.Token),
			405, "M_BAD_JSON", "Cannot set m.fully_read through this API. Use /rooms/!roomId:server.name/read_markers")
		want := map[string]any{"event_id": e2}
		if r := s.Do(t, "GET", roomCS("user", bob.ID, "rooms", room, "account_data", "m.fully_read"), nil, bob.Token).Expect(t, 200, ""); !reflect.DeepEqual(r.Body, want) {
			t.Errorf("bob's m.fully_read = %s, want %v", r.Raw, want)
		}
	})
}

// TestReadMarkerCallback: a new m.fully_read runs on_account_data_updated
// like any account data write; one that does not move runs nothing.
func TestReadMarkerCallback(t *testing.T) {
	t.Parallel()
	id := roomModID(t, 1)
	s := modServer(t, modEntry(id, "", map[string]string{"on_account_data_updated": "ok"}))
	alice := roomRegister(t, s, "alice")
	room := roomCreate(t, s, alice, map[string]any{})
	e1 := roomSendOK(t, s, alice, room, "one")
	e2 := roomSendOK(t, s, alice, room, "two")
	rcExpectEmpty(t, s.Do(t, "POST", roomCS("rooms", room, "read_markers"), map[string]any{"m.fully_read": e2}, alice.Token))
	rcExpectEmpty(t, s.Do(t, "POST", roomCS("rooms", room, "receipt", "m.fully_read", e1), map[string]any{}, alice.Token))
	rcExpectEmpty(t, s.Do(t, "POST", roomCS("rooms", room, "receipt", "m.read", e2), map[string]any{}, alice.Token))
	calls := adCallbacks(id)
	if len(calls) != 1 {
		t.Fatalf("%d on_account_data_updated calls, want 1: %+v", len(calls), calls)
	}
	if want := []any{alice.ID, room, "m.fully_read", map[string]any{"event_id": e2}}; !reflect.DeepEqual(calls[0].Args, want) {
		t.Errorf("args %#v, want %#v", calls[0].Args, want)
	}
}
