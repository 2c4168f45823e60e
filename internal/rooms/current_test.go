package rooms

import (
	"fmt"
	"testing"
)

func TestCurrentRoomsBounded(t *testing.T) {
	s := &Service{}
	for i := range maxCurrentRooms + 500 {
		id := fmt.Sprintf("!r%d:hs", i)
		s.keepCurrent(id, &roomState{})
		if _, ok := s.current.Load(id); !ok {
			t.Fatalf("the room just kept (%s) was dropped", id)
		}
	}
	n := 0
	s.current.Range(func(any, any) bool { n++; return true })
	if n > maxCurrentRooms || int64(n) != s.nCurrent.Load() {
		t.Fatalf("%d rooms kept (counter %d), want at most %d and an exact counter", n, s.nCurrent.Load(), maxCurrentRooms)
	}
	s.keepCurrent("!r1:hs", &roomState{}) // replacing does not count twice
	s.forgetCurrent("!nope:hs")
	m := 0
	s.current.Range(func(any, any) bool { m++; return true })
	if int64(m) != s.nCurrent.Load() {
		t.Fatalf("counter %d for %d rooms", s.nCurrent.Load(), m)
	}
}
