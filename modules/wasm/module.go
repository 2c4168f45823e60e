// Package wasm is the built-in module `wasm`: it loads a module compiled to
// WebAssembly from a file at start-up and runs it in a sandbox (wazero, pure
// Go). The guest exports the callbacks it implements; they join the same
// chains as Go modules' callbacks. The guest has no file system or network,
// and no real clock or randomness unless the configuration grants them; its
// memory is capped; each call has the entry's deadline; a trap, a panic or
// exhausted memory fails the call under the entry's failure policy and the
// instance is replaced. Instances are pooled, one call at a time each.
//
// Guests in Go use the SDK in modules/wasm/guest; the ABI is described in
// docs/modules/wasm.md for other languages.
package wasm

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/sluice-im/sluice/module"
)

// Name is the `module:` name.
const Name = "wasm"

func init() {
	module.Register(Name, module.Factory{ParseConfig: parseConfig, New: newModule})
}

// Module is one loaded .wasm module.
type Module struct {
	e *engine
}

func newModule(config any, api *module.API) (any, error) {
	cfg := config.(*parsed)
	e, err := newEngine(cfg, api.Logger().With("wasm", cfg.path))
	if err != nil {
		return nil, err
	}
	m := &Module{e: e}
	cb := module.SpamCheckerCallbacks{}
	for _, name := range e.declared {
		switch name {
		case "check_event_for_spam":
			cb.CheckEventForSpam = m.checkEventForSpam
		case "user_may_join_room":
			cb.UserMayJoinRoom = m.userMayJoinRoom
		case "user_may_invite":
			cb.UserMayInvite = m.userMayInvite
		case "user_may_create_room":
			cb.UserMayCreateRoom = m.userMayCreateRoom
		case "user_may_create_room_alias":
			cb.UserMayCreateRoomAlias = m.userMayCreateRoomAlias
		case "user_may_publish_room":
			cb.UserMayPublishRoom = m.userMayPublishRoom
		case "user_may_send_state_event":
			cb.UserMaySendStateEvent = m.userMaySendStateEvent
		case "check_username_for_spam":
			cb.CheckUsernameForSpam = m.checkUsernameForSpam
		case "check_login_for_spam":
			cb.CheckLoginForSpam = m.checkLoginForSpam
		case "check_registration_for_spam":
			cb.CheckRegistrationForSpam = m.checkRegistrationForSpam
		default:
			e.close()
			return nil, fmt.Errorf("wasm: %s declares an unknown callback %q", cfg.path, name)
		}
	}
	if err := api.RegisterSpamCheckerCallbacks(cb); err != nil {
		e.close()
		return nil, err
	}
	api.Logger().Info("loaded wasm module", "path", cfg.path, "callbacks", e.declared, "instances", cfg.instances, "memory_limit_pages", cfg.memoryPages)
	return m, nil
}

// Close stops every instance, once the calls under way have ended (or
// ctx has).
func (m *Module) Close(ctx context.Context) error {
	return m.e.shutdown(ctx)
}

// decide runs a decision callback.
func (m *Module) decide(ctx context.Context, name string, st *callState) (module.Decision, error) {
	r, err := m.e.call(ctx, name, st)
	if err != nil {
		return module.Decision{}, err
	}
	switch r {
	case resultAllow:
		return module.Allow, nil
	case resultDeny:
		return module.Deny(st.errcode), nil
	}
	return module.Decision{}, fmt.Errorf("wasm guest: %s returned %d, not 0 (allow) or 1 (deny)", name, r)
}

func (m *Module) checkEventForSpam(ctx context.Context, ev module.Event) (module.Decision, error) {
	return m.decide(ctx, "check_event_for_spam", &callState{ev: ev})
}

func (m *Module) userMayJoinRoom(ctx context.Context, userID, roomID string, isInvited bool) (module.Decision, error) {
	return m.decide(ctx, "user_may_join_room", &callState{args: []string{userID, roomID, strconv.FormatBool(isInvited)}})
}

func (m *Module) userMayInvite(ctx context.Context, inviter, invitee, roomID string) (module.Decision, error) {
	return m.decide(ctx, "user_may_invite", &callState{args: []string{inviter, invitee, roomID}})
}

func (m *Module) userMayCreateRoom(ctx context.Context, userID string, roomConfig map[string]any) (module.Decision, error) {
	return m.decide(ctx, "user_may_create_room", &callState{args: []string{userID, jsonString(roomConfig)}})
}

func (m *Module) userMayCreateRoomAlias(ctx context.Context, userID, alias string) (module.Decision, error) {
	return m.decide(ctx, "user_may_create_room_alias", &callState{args: []string{userID, alias}})
}

func (m *Module) userMayPublishRoom(ctx context.Context, userID, roomID string) (module.Decision, error) {
	return m.decide(ctx, "user_may_publish_room", &callState{args: []string{userID, roomID}})
}

func (m *Module) userMaySendStateEvent(ctx context.Context, userID, roomID, eventType, stateKey string, content map[string]any) (module.Decision, error) {
	return m.decide(ctx, "user_may_send_state_event", &callState{args: []string{userID, roomID, eventType, stateKey, jsonString(content)}})
}

func (m *Module) checkUsernameForSpam(ctx context.Context, p module.UserProfile, requesterID string) (bool, error) {
	r, err := m.e.call(ctx, "check_username_for_spam", &callState{args: []string{p.UserID, p.DisplayName, p.AvatarURL, requesterID}})
	if err != nil {
		return false, err
	}
	switch r {
	case resultAllow:
		return false, nil
	case resultDeny:
		return true, nil
	}
	return false, fmt.Errorf("wasm guest: check_username_for_spam returned %d, not 0 or 1", r)
}

func (m *Module) checkLoginForSpam(ctx context.Context, l module.LoginCheck) (module.Decision, error) {
	return m.decide(ctx, "check_login_for_spam", &callState{args: []string{l.UserID, l.DeviceID, l.InitialDisplayName, l.AuthProviderID, requestInfoJSON(l.RequestInfo)}})
}

func (m *Module) checkRegistrationForSpam(ctx context.Context, r module.RegistrationCheck) (module.RegistrationBehaviour, error) {
	email := "null"
	if r.EmailThreepid != nil {
		email = jsonString(r.EmailThreepid)
	}
	res, err := m.e.call(ctx, "check_registration_for_spam", &callState{args: []string{r.Username, r.AuthProviderID, requestInfoJSON(r.RequestInfo), email}})
	if err != nil {
		return module.RegistrationAllow, err
	}
	b := module.RegistrationBehaviour(res)
	if b < module.RegistrationAllow || b > module.RegistrationDeny {
		return module.RegistrationAllow, fmt.Errorf("wasm guest: check_registration_for_spam returned %d, not 0, 1 or 2", res)
	}
	return b, nil
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

// requestInfoJSON is [[user agent or null, ip], ...].
func requestInfoJSON(ri []module.RequestInfo) string {
	out := make([][2]any, 0, len(ri))
	for _, r := range ri {
		var ua any
		if r.UserAgent != "" {
			ua = r.UserAgent
		}
		out = append(out, [2]any{ua, r.IP})
	}
	return jsonString(out)
}
