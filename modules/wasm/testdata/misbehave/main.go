//go:build wasip1

// Command misbehave is a test guest for the wasm module: its
// check_event_for_spam misbehaves on command (the message body) so that
// tests can show each failure is contained. Other callbacks echo their
// arguments into the log and decide by them.
package main

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-im/sluice/modules/wasm/guest"
)

var sink [][]byte

func init() {
	guest.Register(guest.Module{
		Init: func(cfg []byte) error {
			if strings.Contains(string(cfg), "fail_init") {
				return errors.New("misbehave: told to fail in Init")
			}
			return nil
		},
		CheckEventForSpam: func(ev guest.Event) (guest.Decision, error) {
			body, _ := ev.ContentString("body")
			switch body {
			case "loop":
				for {
				}
			case "panic":
				panic("misbehave: told to panic")
			case "alloc":
				for {
					sink = append(sink, make([]byte, 1<<20))
				}
			case "sleep":
				time.Sleep(5 * time.Second)
			case "error":
				return guest.Allow, errors.New("misbehave: told to fail")
			case "deny":
				return guest.Deny("M_LIMIT_EXCEEDED"), nil
			case "sandbox":
				// What the sandbox leaves a guest: no files, a fake clock.
				_, err := os.ReadFile("/etc/hostname")
				guest.Log("sandbox fs=" + errStr(err) + " year=" + strconv.Itoa(time.Now().Year()))
			case "fields":
				sk, isState := ev.StateKey()
				guest.Log(strings.Join([]string{ev.EventID(), ev.Type(), ev.Sender(), ev.RoomID(), sk, boolStr(isState), string(ev.ContentJSON())}, "|"))
			}
			return guest.Allow, nil
		},
		UserMayInvite: func(inviter, invitee, roomID string) (guest.Decision, error) {
			guest.Log("user_may_invite " + inviter + " " + invitee + " " + roomID)
			if strings.HasPrefix(invitee, "@blocked") {
				return guest.Deny("M_FORBIDDEN"), nil
			}
			return guest.Allow, nil
		},
		UserMayJoinRoom: func(userID, roomID string, isInvited bool) (guest.Decision, error) {
			guest.Log("user_may_join_room " + userID + " " + roomID + " " + boolStr(isInvited))
			return guest.Allow, nil
		},
	})
}

func errStr(err error) string {
	if err == nil {
		return "readable"
	}
	return "refused"
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func main() {}
