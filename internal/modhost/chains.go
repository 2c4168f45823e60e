package modhost

import (
	"context"
	"encoding/json"
	"io"

	"github.com/sluice-im/sluice/module"
)

// hook is one module's implementation of one callback.
type hook[F any] struct {
	mod *loaded
	fn  F
}

type spamChains struct {
	checkEventForSpam        []hook[func(context.Context, module.Event) (module.Decision, error)]
	userMayJoinRoom          []hook[func(context.Context, string, string, bool) (module.Decision, error)]
	userMayInvite            []hook[func(context.Context, string, string, string) (module.Decision, error)]
	userMaySendStateEvent    []hook[func(context.Context, string, string, string, string, map[string]any) (module.Decision, error)]
	userMayCreateRoomAlias   []hook[func(context.Context, string, string) (module.Decision, error)]
	userMayCreateRoom        []hook[func(context.Context, string, map[string]any) (module.Decision, error)]
	checkRegistrationForSpam []hook[func(context.Context, module.RegistrationCheck) (module.RegistrationBehaviour, error)]
	checkLoginForSpam        []hook[func(context.Context, module.LoginCheck) (module.Decision, error)]
	userMayPublishRoom       []hook[func(context.Context, string, string) (module.Decision, error)]
	checkUsernameForSpam     []hook[func(context.Context, module.UserProfile, string) (bool, error)]
	checkMediaFileForSpam    []hook[func(context.Context, io.Reader, module.FileInfo) (bool, error)]
}

type validityChains struct {
	isUserExpired      []hook[func(context.Context, string) (module.Expiry, error)]
	onUserRegistration []hook[func(context.Context, string) error]
	onUserLogin        []hook[func(context.Context, string, string, string) error]
}

func add[F any](list *[]hook[F], m *loaded, fn F) {
	*list = append(*list, hook[F]{mod: m, fn: fn})
}

func (h *Host) registerSpam(m *loaded, cb module.SpamCheckerCallbacks) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return errAfterStartup
	}
	if cb.CheckEventForSpam != nil {
		add(&h.spam.checkEventForSpam, m, cb.CheckEventForSpam)
	}
	if cb.UserMayJoinRoom != nil {
		add(&h.spam.userMayJoinRoom, m, cb.UserMayJoinRoom)
	}
	if cb.UserMayInvite != nil {
		add(&h.spam.userMayInvite, m, cb.UserMayInvite)
	}
	if cb.UserMayCreateRoomAlias != nil {
		add(&h.spam.userMayCreateRoomAlias, m, cb.UserMayCreateRoomAlias)
	}
	if cb.UserMaySendStateEvent != nil {
		add(&h.spam.userMaySendStateEvent, m, cb.UserMaySendStateEvent)
	}
	if cb.UserMayCreateRoom != nil {
		add(&h.spam.userMayCreateRoom, m, cb.UserMayCreateRoom)
	}
	if cb.CheckRegistrationForSpam != nil {
		add(&h.spam.checkRegistrationForSpam, m, cb.CheckRegistrationForSpam)
	}
	if cb.CheckLoginForSpam != nil {
		add(&h.spam.checkLoginForSpam, m, cb.CheckLoginForSpam)
	}
	if cb.UserMayPublishRoom != nil {
		add(&h.spam.userMayPublishRoom, m, cb.UserMayPublishRoom)
	}
	if cb.CheckUsernameForSpam != nil {
		add(&h.spam.checkUsernameForSpam, m, cb.CheckUsernameForSpam)
	}
	if cb.CheckMediaFileForSpam != nil {
		add(&h.spam.checkMediaFileForSpam, m, cb.CheckMediaFileForSpam)
	}
	return nil
}

func (h *Host) registerValidity(m *loaded, cb module.AccountValidityCallbacks) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return errAfterStartup
	}
	if cb.IsUserExpired != nil {
		add(&h.validity.isUserExpired, m, cb.IsUserExpired)
	}
	if cb.OnUserRegistration != nil {
		add(&h.validity.onUserRegistration, m, cb.OnUserRegistration)
	}
	if cb.OnUserLogin != nil {
		add(&h.validity.onUserLogin, m, cb.OnUserLogin)
	}
	return nil
}

// decisionChain runs a Synapse decision chain: in order, skip Allow, the
// first rejection wins. A failed callback counts per its module's policy
// (default: fail the request, as a raising Synapse spam callback does).
func decisionChain[F any](ctx context.Context, h *Host, name string, hooks []hook[F], call func(context.Context, F) (module.Decision, error)) (module.Decision, error) {
	for _, hk := range hooks {
		d, err := invoke(ctx, h, hk.mod, name, func(c context.Context) (module.Decision, error) { return call(c, hk.fn) })
		if err != nil {
			switch hk.mod.policy(policyFailRequest) {
			case policyAllow:
				continue
			case policyDeny:
				return module.Deny(module.CodeForbidden), nil
			default:
				return module.Decision{}, err
			}
		}
		h.warnDeprecated(hk.mod, name, d)
		if d.Allowed() {
			h.metrics.decision(hk.mod.name, name, "allow")
			continue
		}
		h.metrics.decision(hk.mod.name, name, "deny")
		return d, nil
	}
	return module.Allow, nil
}

// notify runs every callback of a notification chain. A failure stops the
// chain and fails the request (Synapse lets the exception propagate) unless
// the module's on_error is allow, which logs and goes on.
func notify[F any](ctx context.Context, h *Host, name string, hooks []hook[F], call func(context.Context, F) error) error {
	for _, hk := range hooks {
		_, err := invoke(ctx, h, hk.mod, name, func(c context.Context) (struct{}, error) { return struct{}{}, call(c, hk.fn) })
		if err != nil {
			if hk.mod.policy(policyFailRequest) == policyAllow {
				continue
			}
			return err
		}
		h.metrics.decision(hk.mod.name, name, "ok")
	}
	return nil
}

// UserMayCreateRoom runs user_may_create_room.
func (h *Host) UserMayCreateRoom(ctx context.Context, userID string, roomConfig map[string]any) (module.Decision, error) {
	return decisionChain(ctx, h, "user_may_create_room", h.spam.userMayCreateRoom,
		func(c context.Context, f func(context.Context, string, map[string]any) (module.Decision, error)) (module.Decision, error) {
			// Each module gets its own deep copy, as Synapse gives one.
			return f(c, userID, deepCopy(roomConfig))
		})
}

// CheckLoginForSpam runs check_login_for_spam.
func (h *Host) CheckLoginForSpam(ctx context.Context, l module.LoginCheck) (module.Decision, error) {
	return decisionChain(ctx, h, "check_login_for_spam", h.spam.checkLoginForSpam,
		func(c context.Context, f func(context.Context, module.LoginCheck) (module.Decision, error)) (module.Decision, error) {
			lc := l
			lc.RequestInfo = append([]module.RequestInfo(nil), l.RequestInfo...)
			return f(c, lc)
		})
}

// CheckRegistrationForSpam runs check_registration_for_spam: the first
// answer other than RegistrationAllow wins. A failed callback fails the
// request unless its on_error says allow (RegistrationAllow) or deny
// (RegistrationDeny).
func (h *Host) CheckRegistrationForSpam(ctx context.Context, r module.RegistrationCheck) (module.RegistrationBehaviour, error) {
	const name = "check_registration_for_spam"
	for _, hk := range h.spam.checkRegistrationForSpam {
		rc := r
		rc.RequestInfo = append([]module.RequestInfo(nil), r.RequestInfo...)
		rc.EmailThreepid = deepCopy(r.EmailThreepid)
		b, err := invoke(ctx, h, hk.mod, name, func(c context.Context) (module.RegistrationBehaviour, error) { return hk.fn(c, rc) })
		if err == nil && (b < module.RegistrationAllow || b > module.RegistrationDeny) {
			err = h.invalid(hk.mod, name, b)
		}
		if err != nil {
			switch hk.mod.policy(policyFailRequest) {
			case policyAllow:
				continue
			case policyDeny:
				return module.RegistrationDeny, nil
			default:
				return module.RegistrationAllow, err
			}
		}
		h.metrics.decision(hk.mod.name, name, b.String())
		if b != module.RegistrationAllow {
			return b, nil
		}
	}
	return module.RegistrationAllow, nil
}

// IsUserExpired runs is_user_expired: the first answer other than
// ExpiryUnknown wins; when none knows, the account is not expired. A
// failed callback fails the request unless on_error says allow (unknown) or
// deny (expired).
func (h *Host) IsUserExpired(ctx context.Context, userID string) (bool, error) {
	const name = "is_user_expired"
	for _, hk := range h.validity.isUserExpired {
		e, err := invoke(ctx, h, hk.mod, name, func(c context.Context) (module.Expiry, error) { return hk.fn(c, userID) })
		if err == nil && (e < module.ExpiryUnknown || e > module.Expired) {
			err = h.invalid(hk.mod, name, e)
		}
		if err != nil {
			switch hk.mod.policy(policyFailRequest) {
			case policyAllow:
				continue
			case policyDeny:
				return true, nil
			default:
				return false, err
			}
		}
		h.metrics.decision(hk.mod.name, name, e.String())
		if e != module.ExpiryUnknown {
			return e == module.Expired, nil
		}
	}
	return false, nil
}

// HasIsUserExpired reports whether any module implements is_user_expired,
// so that the request path can skip the call entirely when none does.
func (h *Host) HasIsUserExpired() bool { return len(h.validity.isUserExpired) > 0 }

// OnUserRegistration runs on_user_registration.
func (h *Host) OnUserRegistration(ctx context.Context, userID string) error {
	return notify(ctx, h, "on_user_registration", h.validity.onUserRegistration,
		func(c context.Context, f func(context.Context, string) error) error { return f(c, userID) })
}

// OnUserLogin runs on_user_login.
func (h *Host) OnUserLogin(ctx context.Context, userID, authProviderType, authProviderID string) error {
	return notify(ctx, h, "on_user_login", h.validity.onUserLogin,
		func(c context.Context, f func(context.Context, string, string, string) error) error {
			return f(c, userID, authProviderType, authProviderID)
		})
}

// deepCopy copies a JSON-shaped map so that a module cannot change what the
// server or the next module sees.
func deepCopy(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return map[string]any{}
	}
	var out map[string]any
	if json.Unmarshal(b, &out) != nil {
		return map[string]any{}
	}
	return out
}
