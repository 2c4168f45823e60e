package modhost

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/sluice-im/sluice/module"
)

// hostAPI implements module.Host for one module.
type hostAPI struct {
	h   *Host
	mod *loaded
}

var errNoServices = errors.New("modhost: the server's services are not available")

func (a *hostAPI) ServerName() string         { return a.h.opts.ServerName }
func (a *hostAPI) PublicBaseURL() string      { return a.h.opts.PublicBaseURL }
func (a *hostAPI) Logger(string) *slog.Logger { return a.mod.log }
func (a *hostAPI) RegisterWebResource(_ string, path string, handler http.Handler) error {
	return a.h.registerWebResource(a.mod, path, handler)
}

func (a *hostAPI) RegisterSpamCheckerCallbacks(_ string, cb module.SpamCheckerCallbacks) error {
	return a.h.registerSpam(a.mod, cb)
}

func (a *hostAPI) RegisterAccountValidityCallbacks(_ string, cb module.AccountValidityCallbacks) error {
	return a.h.registerValidity(a.mod, cb)
}

func (a *hostAPI) RegisterThirdPartyRulesCallbacks(_ string, cb module.ThirdPartyRulesCallbacks) error {
	return a.h.registerThirdParty(a.mod, cb)
}

func (a *hostAPI) GetUserByRequest(r *http.Request, allowExpired bool) (module.Requester, error) {
	if a.h.services == nil {
		return module.Requester{}, errNoServices
	}
	return a.h.services.GetUserByRequest(r, allowExpired)
}

func (a *hostAPI) GetUserInfo(ctx context.Context, userID string) (module.UserInfo, error) {
	if a.h.services == nil {
		return module.UserInfo{}, errNoServices
	}
	return a.h.services.GetUserInfo(ctx, userID)
}

func (a *hostAPI) CheckUserExists(ctx context.Context, userID string) (string, error) {
	if a.h.services == nil {
		return "", errNoServices
	}
	return a.h.services.CheckUserExists(ctx, userID)
}

func (a *hostAPI) RegisterUser(ctx context.Context, localpart string, opts module.RegisterUserOptions) (string, error) {
	if a.h.services == nil {
		return "", errNoServices
	}
	return a.h.services.RegisterUser(ctx, localpart, opts)
}

func (a *hostAPI) GetRoomState(ctx context.Context, roomID string) (module.StateMap, error) {
	if a.h.services == nil {
		return nil, errNoServices
	}
	return a.h.services.ModuleRoomState(ctx, roomID)
}

func (a *hostAPI) CreateAndSendEventIntoRoom(ctx context.Context, ev map[string]any) (module.Event, error) {
	if a.h.services == nil {
		return nil, errNoServices
	}
	return a.h.services.ModuleSendEvent(ctx, ev)
}

func (a *hostAPI) UpdateRoomMembership(ctx context.Context, sender, target, roomID, membership string, content map[string]any) (module.Event, error) {
	if a.h.services == nil {
		return nil, errNoServices
	}
	return a.h.services.ModuleUpdateMembership(ctx, sender, target, roomID, membership, content)
}

func (a *hostAPI) CreateRoom(ctx context.Context, userID string, config map[string]any) (string, error) {
	if a.h.services == nil {
		return "", errNoServices
	}
	return a.h.services.ModuleCreateRoom(ctx, userID, config)
}
