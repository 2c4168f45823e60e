package directory

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/sluice-im/sluice/internal/httpx"
)

// MaxPublicRooms is the most rooms one page of the public room list holds,
// whatever limit the client asks for (Synapse's
// MAX_PUBLIC_ROOMS_IN_RESPONSE).
const MaxPublicRooms = 100

// PublicRoomsQuery is a request for a page of the local public room list.
type PublicRoomsQuery struct {
	Limit int    // 0: no limit (MaxPublicRooms still applies)
	Since string // a next_batch or prev_batch token, or ""
	// SearchTerm keeps rooms whose name, topic or canonical alias holds it
	// (ignoring case); "" keeps all.
	SearchTerm string
	// RoomTypes, when FilterRoomTypes, keeps rooms of these types; a nil
	// entry stands for rooms without a type.
	RoomTypes       []*string
	FilterRoomTypes bool
	// ThirdPartyNetwork asks for an application service's network list
	// (third_party_instance_id): Sluice has no application services, so it
	// is empty.
	ThirdPartyNetwork bool
}

// PublicRoom is one entry of the public room list.
type PublicRoom struct {
	RoomID           string  `json:"room_id"`
	Name             *string `json:"name,omitempty"`
	Topic            *string `json:"topic,omitempty"`
	CanonicalAlias   *string `json:"canonical_alias,omitempty"`
	NumJoinedMembers int     `json:"num_joined_members"`
	AvatarURL        *string `json:"avatar_url,omitempty"`
	WorldReadable    bool    `json:"world_readable"`
	GuestCanJoin     bool    `json:"guest_can_join"`
	JoinRule         *string `json:"join_rule,omitempty"`
	RoomType         *string `json:"room_type,omitempty"`

	historyVisibility string
}

// PublicRoomsPage is a page of the public room list.
type PublicRoomsPage struct {
	Chunk                  []PublicRoom `json:"chunk"`
	NextBatch              string       `json:"next_batch,omitempty"`
	PrevBatch              string       `json:"prev_batch,omitempty"`
	TotalRoomCountEstimate int          `json:"total_room_count_estimate"`
}

// batchToken is a position in the list: the last room a page considered
// and the direction to go on in. Tokens are opaque to clients.
type batchToken struct {
	Members int    `json:"m"`
	RoomID  string `json:"r"`
	Forward bool   `json:"d"`
}

func (t batchToken) String() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseBatchToken(s string) (batchToken, error) {
	var t batchToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil {
		return batchToken{}, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid since token")
	}
	return t, nil
}

// before reports whether room a comes before room b in the list's order:
// most joined members first, then room IDs in descending byte order, as
// Synapse orders it (joined_members DESC, room_id DESC).
func before(aMembers int, aID string, bMembers int, bID string) bool {
	if aMembers != bMembers {
		return aMembers > bMembers
	}
	return aID > bID
}

// listed builds the list's entries from the published rooms: the rooms
// with joined members whose join rule is public, knock or
// knock_restricted, or whose history is world_readable (Synapse's
// condition).
func (s *Service) listed(ctx context.Context) ([]PublicRoom, error) {
	rooms, err := s.store.PublishedRooms(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PublicRoom, 0, len(rooms))
	for _, r := range rooms {
		if r.JoinedMembers <= 0 {
			continue
		}
		e := PublicRoom{RoomID: r.RoomID, NumJoinedMembers: r.JoinedMembers}
		field := func(typ, key string) *string {
			raw := r.State[typ]
			if raw == nil {
				return nil
			}
			var ev struct {
				Content map[string]any `json:"content"`
			}
			if json.Unmarshal(raw, &ev) != nil {
				return nil
			}
			if v, ok := ev.Content[key].(string); ok {
				return &v
			}
			return nil
		}
		e.Name = field("m.room.name", "name")
		e.Topic = field("m.room.topic", "topic")
		e.CanonicalAlias = field("m.room.canonical_alias", "alias")
		e.AvatarURL = field("m.room.avatar", "url")
		e.JoinRule = field("m.room.join_rules", "join_rule")
		e.RoomType = field("m.room.create", "type")
		if hv := field("m.room.history_visibility", "history_visibility"); hv != nil {
			e.historyVisibility = *hv
		}
		e.WorldReadable = e.historyVisibility == "world_readable"
		if ga := field("m.room.guest_access", "guest_access"); ga != nil {
			e.GuestCanJoin = *ga == "can_join"
		}
		jr := ""
		if e.JoinRule != nil {
			jr = *e.JoinRule
		}
		if jr != "public" && jr != "knock" && jr != "knock_restricted" && !e.WorldReadable {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func typeWanted(q PublicRoomsQuery, t *string) bool {
	if !q.FilterRoomTypes || len(q.RoomTypes) == 0 {
		return true
	}
	for _, w := range q.RoomTypes {
		if (w == nil && t == nil) || (w != nil && t != nil && *w == *t) {
			return true
		}
	}
	return false
}

func matches(term string, fields ...*string) bool {
	for _, f := range fields {
		if f != nil && strings.Contains(strings.ToLower(*f), term) {
			return true
		}
	}
	return false
}

// PublicRooms is a page of the local public room list (GET and POST
// /publicRooms), paged as Synapse pages it: a token names the last room
// of the previous page, so a page never repeats or skips a room that stays
// listed, while rooms joining or leaving the list in between show up or
// drop out. total_room_count_estimate counts the listed rooms of the asked
// room types, regardless of the search term (as Synapse counts). The list
// is read in a fixed number of queries, whatever the number of rooms.
func (s *Service) PublicRooms(ctx context.Context, q PublicRoomsQuery) (*PublicRoomsPage, error) {
	if !s.opts.EnableRoomListSearch || q.ThirdPartyNetwork {
		if q.Since != "" {
			if _, err := parseBatchToken(q.Since); err != nil {
				return nil, err
			}
		}
		return &PublicRoomsPage{Chunk: []PublicRoom{}}, nil
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxPublicRooms {
		limit = MaxPublicRooms
	}
	var bound *batchToken
	forwards := true
	if q.Since != "" {
		t, err := parseBatchToken(q.Since)
		if err != nil {
			return nil, err
		}
		bound, forwards = &t, t.Forward
	}
	all, err := s.listed(ctx)
	if err != nil {
		return nil, err
	}
	term := strings.ToLower(q.SearchTerm)
	total := 0
	rooms := all[:0]
	for _, r := range all {
		if !typeWanted(q, r.RoomType) {
			continue
		}
		total++
		if term != "" && !matches(term, r.Name, r.Topic, r.CanonicalAlias) {
			continue
		}
		rooms = append(rooms, r)
	}
	slices.SortFunc(rooms, func(a, b PublicRoom) int {
		if before(a.NumJoinedMembers, a.RoomID, b.NumJoinedMembers, b.RoomID) {
			return -1
		}
		if a.RoomID == b.RoomID {
			return 0
		}
		return 1
	})

	// results is what Synapse's query returns: up to limit+1 rooms beyond
	// the bound in the direction of travel, in list order.
	probing := limit + 1
	var results []PublicRoom
	if forwards {
		for _, r := range rooms {
			if bound == nil || before(bound.Members, bound.RoomID, r.NumJoinedMembers, r.RoomID) {
				results = append(results, r)
				if len(results) == probing {
					break
				}
			}
		}
	} else {
		for i := len(rooms) - 1; i >= 0; i-- {
			r := rooms[i]
			if before(r.NumJoinedMembers, r.RoomID, bound.Members, bound.RoomID) {
				results = append(results, r)
				if len(results) == probing {
					break
				}
			}
		}
		slices.Reverse(results)
	}

	page := &PublicRoomsPage{Chunk: []PublicRoom{}, TotalRoomCountEstimate: total}
	var first, last *PublicRoom
	cut := false
	consider := func(r *PublicRoom) bool {
		if len(page.Chunk) >= limit {
			cut = true
			return false
		}
		if first == nil {
			first = r
		}
		last = r
		page.Chunk = append(page.Chunk, *r)
		return true
	}
	if forwards {
		for i := range results {
			if !consider(&results[i]) {
				break
			}
		}
	} else {
		for i := len(results) - 1; i >= 0; i-- {
			if !consider(&results[i]) {
				break
			}
		}
		slices.Reverse(page.Chunk)
		first, last = last, first
	}
	more := len(results) == probing
	if forwards && bound != nil {
		if first != nil {
			page.PrevBatch = batchToken{first.NumJoinedMembers, first.RoomID, false}.String()
		} else {
			page.PrevBatch = batchToken{0, "", false}.String()
		}
	}
	if len(results) > 0 {
		if forwards {
			if more || cut {
				page.NextBatch = batchToken{last.NumJoinedMembers, last.RoomID, true}.String()
			}
		} else {
			if bound != nil {
				page.NextBatch = batchToken{last.NumJoinedMembers, last.RoomID, true}.String()
			}
			if more || cut {
				page.PrevBatch = batchToken{first.NumJoinedMembers, first.RoomID, false}.String()
			}
		}
	}
	return page, nil
}
