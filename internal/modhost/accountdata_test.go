package modhost

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-im/sluice/module"
)

func TestOnAccountDataUpdatedRunsAll(t *testing.T) {
	h := newTestHost(t)
	var got []string
	rec := func(name string, fail func()) func(context.Context, string, string, string, map[string]any) error {
		return func(_ context.Context, user, room, typ string, content map[string]any) error {
			got = append(got, name+":"+user+"|"+room+"|"+typ+"|"+content["k"].(string))
			content["k"] = "changed by " + name // a copy: the next module must not see it
			if fail != nil {
				fail()
			}
			return nil
		}
	}
	add(&h.accountData.onAccountDataUpdated, h.testModule("a", time.Second, ""), rec("a", nil))
	add(&h.accountData.onAccountDataUpdated, h.testModule("b", time.Second, "deny"),
		func(context.Context, string, string, string, map[string]any) error { return errors.New("x") })
	add(&h.accountData.onAccountDataUpdated, h.testModule("c", time.Second, ""), rec("c", func() { panic("boom") }))
	add(&h.accountData.onAccountDataUpdated, h.testModule("d", 20*time.Millisecond, ""),
		func(ctx context.Context, _, _, _ string, _ map[string]any) error { <-ctx.Done(); return ctx.Err() })
	add(&h.accountData.onAccountDataUpdated, h.testModule("e", time.Second, ""), rec("e", nil))
	content := map[string]any{"k": "v"}
	h.OnAccountDataUpdated(context.Background(), "@u:hs.test", "!r:hs.test", "m.tag", content)
	want := []string{"a:@u:hs.test|!r:hs.test|m.tag|v", "c:@u:hs.test|!r:hs.test|m.tag|v", "e:@u:hs.test|!r:hs.test|m.tag|v"}
	if len(got) != len(want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d = %s, want %s", i, got[i], want[i])
		}
	}
	if content["k"] != "v" {
		t.Errorf("the caller's content was changed: %v", content)
	}
}

func TestAccountDataRegistrationAfterStartup(t *testing.T) {
	h := newTestHost(t)
	h.started = true
	if err := h.registerAccountData(h.testModule("a", time.Second, ""), moduleAccountDataCallbacks()); !errors.Is(err, errAfterStartup) {
		t.Errorf("late registration: %v", err)
	}
}

func moduleAccountDataCallbacks() module.AccountDataCallbacks {
	return module.AccountDataCallbacks{OnAccountDataUpdated: func(context.Context, string, string, string, map[string]any) error { return nil }}
}
