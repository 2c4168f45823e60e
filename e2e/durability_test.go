package e2e_test

// Durability across a restart: every event the server acknowledged with a
// 200 is there after the server was shut down in the middle of a burst of
// concurrent sends and started again on the same database. Helpers are
// prefixed room.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/testserver"
)

// roomAck is a send the server acknowledged.
type roomAck struct {
	user            roomUser
	room, txn, body string
	eventID         string
	duringShutdown  bool // answered after Shutdown had begun
}

// roomRawSend sends a message without failing the test: it runs on sender
// goroutines and must tell a refused connection from an answer.
func roomRawSend(client *http.Client, base string, u roomUser, roomID, txn, body string) (status int, eventID string, err error) {
	b, _ := json.Marshal(map[string]any{"msgtype": "m.text", "body": body})
	req, err := http.NewRequest("PUT", base+roomCS("rooms", roomID, "send", "m.room.message", txn), bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+u.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	var out struct {
		EventID string `json:"event_id"`
	}
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return resp.StatusCode, "", fmt.Errorf("200 with a body that is not JSON: %s", raw)
		}
	}
	return resp.StatusCode, out.EventID, nil
}

func TestRoomDurabilityAcrossRestart(t *testing.T) {
	t.Parallel()
	testserver.ForEachDB(t, roomOptions(), func(t *testing.T, s *testserver.Server) {
		if s.Config.Database.Name == "sqlite3" && s.Config.Database.Args.Database == "" {
			t.Fatal("the test server's SQLite database is not a file")
		}
		const (
			users          = 4
			perSenderLimit = 5000 // bounds each sender; the shutdown comes long before
			ackedBeforeCut = 100  // sends acknowledged before the shutdown begins
		)
		var us []roomUser
		for i := 0; i < users; i++ {
			us = append(us, roomRegister(t, s, fmt.Sprintf("sender%d", i)))
		}
		var rooms []string
		for i := 0; i < 2; i++ {
			room := roomCreate(t, s, us[0], map[string]any{"preset": "public_chat"})
			for _, u := range us[1:] {
				s.Do(t, "POST", roomCS("join", room), nil, u.Token).Expect(t, 200, "")
			}
			rooms = append(rooms, room)
		}

		var (
			mu           sync.Mutex
			acks         []roomAck
			ackCount     atomic.Int64
			shuttingDown atomic.Bool
			unexpected   []string
			wg           sync.WaitGroup
		)
		base := s.URL
		client := &http.Client{Timeout: 30 * time.Second}
		for _, u := range us {
			for _, room := range rooms {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < perSenderLimit; i++ {
						if shuttingDown.Load() {
							return // what is in flight now is what the shutdown must let finish
						}
						txn := fmt.Sprintf("dur-%s-%d", room[1:8], i)
						body := fmt.Sprintf("%s #%d in %s", u.ID, i, room)
						status, id, err := roomRawSend(client, base, u, room, txn, body)
						during := shuttingDown.Load()
						if err != nil {
							return // the server is gone: no answer, nothing promised
						}
						if status != 200 {
							mu.Lock()
							unexpected = append(unexpected, fmt.Sprintf("%s: status %d", body, status))
							mu.Unlock()
							return
						}
						mu.Lock()
						acks = append(acks, roomAck{user: u, room: room, txn: txn, body: body, eventID: id, duringShutdown: during})
						mu.Unlock()
						ackCount.Add(1)
					}
				}()
			}
		}
		roomEventually(t, fmt.Sprintf("%d acknowledged sends", ackedBeforeCut), func() bool { return ackCount.Load() >= ackedBeforeCut })

		shuttingDown.Store(true)
		s2 := testserver.Restart(t, s)
		wg.Wait() // every sender has met the closed server
		if len(unexpected) > 0 {
			t.Fatalf("sends refused before the shutdown: %v", unexpected)
		}
		late := 0
		for _, a := range acks {
			if a.duringShutdown {
				late++
			}
		}
		t.Logf("%d sends acknowledged, %d of them answered once the shutdown had begun", len(acks), late)

		seen := map[string]bool{}
		for _, a := range acks {
			roomExpectEventID(t, a.eventID)
			if seen[a.eventID] {
				t.Fatalf("event ID %s acknowledged twice", a.eventID)
			}
			seen[a.eventID] = true
			r := s2.Do(t, "GET", roomCS("rooms", a.room, "event", a.eventID), nil, a.user.Token)
			if r.Status != 200 {
				t.Fatalf("acknowledged event %s (%s) lost across the restart: %d %s", a.eventID, a.body, r.Status, r.Raw)
			}
			if c, _ := r.Body["content"].(map[string]any); c["body"] != a.body || r.Str("sender") != a.user.ID {
				t.Fatalf("event %s came back as %s, want body %q", a.eventID, r.Raw, a.body)
			}
		}
		if pos := roomStreamPos(t, s2); pos < int64(len(acks)) {
			t.Errorf("stream position %d after %d acknowledged sends", pos, len(acks))
		}

		// Transactions survive too: a retry after the restart is answered
		// with the first event, not sent again.
		last := acks[len(acks)-1]
		pos := roomStreamPos(t, s2)
		status, id, err := roomRawSend(s2.Client, s2.URL, last.user, last.room, last.txn, last.body)
		if err != nil || status != 200 || id != last.eventID {
			t.Fatalf("retry after the restart: %d %q %v, want 200 %s", status, id, err, last.eventID)
		}
		if p := roomStreamPos(t, s2); p != pos {
			t.Errorf("the retry persisted a new event (stream %d -> %d)", pos, p)
		}
		// And the rooms go on: members, state and new events build on what
		// was persisted.
		for _, room := range rooms {
			id := roomSendOK(t, s2, us[1], room, "after the restart")
			s2.Do(t, "GET", roomCS("rooms", room, "event", id), nil, us[2].Token).Expect(t, 200, "")
			if m := roomMembership(t, s2, us[0], room, us[3].ID); m != "join" {
				t.Errorf("membership %q after the restart", m)
			}
		}
	})
}
