package modhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-im/sluice/module"
)

type accountDataChains struct {
	onAccountDataUpdated []hook[func(context.Context, string, string, string, map[string]any) error]
}

func (h *Host) registerAccountData(m *loaded, cb module.AccountDataCallbacks) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return errAfterStartup
	}
	if cb.OnAccountDataUpdated != nil {
		add(&h.accountData.onAccountDataUpdated, m, cb.OnAccountDataUpdated)
	}
	return nil
}

// OnAccountDataUpdated runs on_account_data_updated after account data was
// stored (roomID "" for global data). Every callback runs, in order, each
// with its own copy of content. As in Synapse, a failure (error, panic,
// timeout) is logged and counted, and never fails the request, whatever
// the module's on_error says.
func (h *Host) OnAccountDataUpdated(ctx context.Context, userID, roomID, accountDataType string, content map[string]any) {
	const name = "on_account_data_updated"
	for _, hk := range h.accountData.onAccountDataUpdated {
		c := deepCopy(content)
		_, err := invoke(ctx, h, hk.mod, name, func(cc context.Context) (struct{}, error) {
			return struct{}{}, hk.fn(cc, userID, roomID, accountDataType, c)
		})
		if err != nil {
			continue // invoke logged and counted the failure
		}
		h.metrics.decision(hk.mod.name, name, "ok")
	}
}

func (a *hostAPI) RegisterAccountDataCallbacks(_ string, cb module.AccountDataCallbacks) error {
	return a.h.registerAccountData(a.mod, cb)
}

// checkLocalUser refuses a user ID that is not of this server, as Synapse's
// account_data_manager does (a ValueError there).
func (a *hostAPI) checkLocalUser(userID string) error {
	i := strings.IndexByte(userID, ':')
	if !strings.HasPrefix(userID, "@") || i < 0 || userID[i+1:] != a.h.opts.ServerName {
		return fmt.Errorf("modhost: %s is not local to this homeserver; can't access account data for remote users", userID)
	}
	return nil
}

func (a *hostAPI) GetGlobalAccountData(ctx context.Context, userID, accountDataType string) (map[string]any, error) {
	if a.h.services == nil {
		return nil, errNoServices
	}
	if err := a.checkLocalUser(userID); err != nil {
		return nil, err
	}
	raw, err := a.h.services.ModuleGetAccountData(ctx, userID, accountDataType)
	if errors.Is(err, module.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("modhost: account data %s of %s: %w", accountDataType, userID, err)
	}
	return out, nil
}

func (a *hostAPI) PutGlobalAccountData(ctx context.Context, userID, accountDataType string, content map[string]any) error {
	if a.h.services == nil {
		return errNoServices
	}
	if err := a.checkLocalUser(userID); err != nil {
		return err
	}
	if content == nil {
		return errors.New("modhost: PutGlobalAccountData: content must not be nil")
	}
	raw, err := json.Marshal(content)
	if err != nil {
		return fmt.Errorf("modhost: PutGlobalAccountData: content is not JSON: %w", err)
	}
	if err := a.h.services.ModulePutAccountData(ctx, userID, accountDataType, raw); err != nil {
		return err
	}
	a.h.OnAccountDataUpdated(ctx, userID, "", accountDataType, content)
	return nil
}
