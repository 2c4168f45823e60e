package storage_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/storage/storagetest"
)

func TestProfiles(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, o storage.Options) {
		ctx := ctxT(t)
		st := storagetest.Open(t, o)
		if _, err := st.GetProfile(ctx, "@alice:hs"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetProfile of nobody: %v", err)
		}
		// A new user's profile: the localpart, or the given name.
		mustCreateUser(t, st, "@alice:hs")
		if err := st.CreateUser(ctx, storage.User{UserID: "@bob:hs", CreatedTS: 1, DisplayName: "Bob B"}, nil); err != nil {
			t.Fatal(err)
		}
		p, err := st.GetProfile(ctx, "@alice:hs")
		if err != nil || !reflect.DeepEqual(p, storage.Profile{DisplayName: strp("alice")}) {
			t.Fatalf("alice's profile = %+v, %v", p, err)
		}
		if p, _ := st.GetProfile(ctx, "@bob:hs"); !reflect.DeepEqual(p, storage.Profile{DisplayName: strp("Bob B")}) {
			t.Fatalf("bob's profile = %+v", p)
		}
		// Set, clear, and set a field of a user without a profile.
		if err := st.SetProfileAvatarURL(ctx, "@alice:hs", strp("mxc://hs/a")); err != nil {
			t.Fatal(err)
		}
		if err := st.SetProfileDisplayName(ctx, "@alice:hs", nil); err != nil {
			t.Fatal(err)
		}
		if p, _ := st.GetProfile(ctx, "@alice:hs"); !reflect.DeepEqual(p, storage.Profile{AvatarURL: strp("mxc://hs/a")}) {
			t.Fatalf("alice's profile = %+v", p)
		}
		if err := st.SetProfileDisplayName(ctx, "@new:hs", strp("")); err != nil {
			t.Fatal(err)
		}
		if p, _ := st.GetProfile(ctx, "@new:hs"); !reflect.DeepEqual(p, storage.Profile{DisplayName: strp("")}) {
			t.Fatalf("new profile = %+v", p)
		}
		if ok, err := st.ShareARoom(ctx, "@alice:hs", "@bob:hs"); ok || err != nil {
			t.Fatalf("ShareARoom without rooms = %v, %v", ok, err)
		}

		search := func(term string, all bool) []string {
			t.Helper()
			res, err := st.SearchUserDirectory(ctx, storage.UserDirectoryQuery{Searcher: "@alice:hs", SearchTerm: term, Limit: 10, AllUsers: all})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range res.Results {
				ids = append(ids, e.UserID)
			}
			return ids
		}
		// Not in any room: only search_all_users finds them.
		if got := search("bob", false); got != nil {
			t.Errorf("bob without rooms = %v", got)
		}
		if got := search("b", true); !reflect.DeepEqual(got, []string{"@bob:hs"}) {
			t.Errorf("b = %v", got)
		}
		if got := search("ALICE", true); got != nil {
			t.Errorf("the searcher found themselves: %v", got)
		}

		// Tokens missing (as the migration leaves them) are made at the
		// next search; deactivated and support users are left out.
		db := rawDB(t, o)
		if _, err := db.ExecContext(ctx, `DELETE FROM user_directory_tokens`); err != nil {
			t.Fatal(err)
		}
		mustCreateUser(t, st, "@carol:hs")
		if err := st.CreateUser(ctx, storage.User{UserID: "@carol.help:hs", UserType: "support", CreatedTS: 1}, nil); err != nil {
			t.Fatal(err)
		}
		if got := search("bo", true); !reflect.DeepEqual(got, []string{"@bob:hs"}) {
			t.Errorf("after re-indexing: %v", got)
		}
		if got := search("carol", true); !reflect.DeepEqual(got, []string{"@carol:hs"}) {
			t.Errorf("carol = %v", got)
		}
		if _, err := db.ExecContext(ctx, `UPDATE users SET deactivated = 1 WHERE user_id = '@carol:hs'`); err != nil {
			t.Fatal(err)
		}
		if got := search("carol", true); got != nil {
			t.Errorf("a deactivated user was found: %v", got)
		}

		// The migration's backfill: every user gets the localpart.
		mig, err := os.ReadFile("migrations/0007_profiles.sql")
		if err != nil {
			t.Fatal(err)
		}
		text := string(mig)
		i := strings.Index(text, "INSERT INTO profiles")
		backfill := text[i : i+strings.Index(text[i:], ";")]
		if _, err := db.ExecContext(ctx, `DELETE FROM profiles`); err != nil {
			t.Fatal(err)
		}
		mustCreateUser(t, st, "@d.o-t:example.org:8448")
		if _, err := db.ExecContext(ctx, `DELETE FROM profiles`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, backfill); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]string{"@alice:hs": "alice", "@bob:hs": "bob", "@d.o-t:example.org:8448": "d.o-t"} {
			if p, err := st.GetProfile(ctx, id); err != nil || p.DisplayName == nil || *p.DisplayName != want {
				t.Errorf("backfilled profile of %s = %+v, %v; want %q", id, p, err, want)
			}
		}
	})
}

func TestUserDirectoryTokens(t *testing.T) {
	got := storage.UserTokens("@user-71:Example.org", "Ǆemo  Straße ①")
	want := map[string]int{
		"user-71": 10, "user": 10, "71": 10, // the localpart
		"džemo": 9, "straße": 9, "1": 9, // the display name, lower-cased and NFKC-normalised
		"example.org": 1, "example": 1, "org": 1, // the server name
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UserTokens = %v, want %v", got, want)
	}
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"@bob:test.local", []string{"bob", "test.local"}},
		{"  Bob   BUILDER ", []string{"bob", "builder"}},
		{"user-7", []string{"user-7"}},
		{"-71 .x. _", []string{"71", "x"}},
		{"", nil},
		{"!!! ???", nil},
		{"a b c d e f g h i j k l", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}},
	} {
		if got := storage.SearchTerms(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("SearchTerms(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}
