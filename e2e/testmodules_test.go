package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/sluice-im/sluice/module"
)

// test.Scripted is a module whose every callback does what its config
// says, so that tests can drive each return form through the real server:
//
//	allow | deny[:CODE] | denywith | denymsg | shadow_ban | expired |
//	not_expired | unknown | ok | error | panic | hang | invalid
//
// It records each call under its config's id so tests can see the chain.
type scriptedConfig struct {
	ID                       string `yaml:"id"`
	CheckRegistrationForSpam string `yaml:"check_registration_for_spam"`
	CheckLoginForSpam        string `yaml:"check_login_for_spam"`
	UserMayCreateRoom        string `yaml:"user_may_create_room"`
	IsUserExpired            string `yaml:"is_user_expired"`
	OnUserRegistration       string `yaml:"on_user_registration"`
	OnUserLogin              string `yaml:"on_user_login"`
	WebResource              string `yaml:"web_resource"`
	FailNew                  bool   `yaml:"fail_new"`
	// Room callbacks (see roomcallbacks_test.go): the same behaviours, plus
	// check_event_allowed: deny | replace | replace_bad | module_error;
	// on_create_room: ok | modify | module_error; on_new_event: ok.
	CheckEventForSpam            string `yaml:"check_event_for_spam"`
	UserMayJoinRoom              string `yaml:"user_may_join_room"`
	UserMayInvite                string `yaml:"user_may_invite"`
	UserMaySendStateEvent        string `yaml:"user_may_send_state_event"`
	UserMayCreateRoomAlias       string `yaml:"user_may_create_room_alias"`
	CheckVisibilityCanBeModified string `yaml:"check_visibility_can_be_modified"`
	CheckEventAllowed            string `yaml:"check_event_allowed"`
	OnCreateRoom                 string `yaml:"on_create_room"`
	OnNewEvent                   string `yaml:"on_new_event"`
	// EventType limits check_event_for_spam, check_event_allowed and
	// on_new_event to events of that type (others pass unrecorded); all
	// events when empty.
	EventType string `yaml:"event_type"`
	// OnAccountDataUpdated (accountdata_test.go): ok | error | panic | hang.
	OnAccountDataUpdated string `yaml:"on_account_data_updated"`
}

// modCall is one recorded callback invocation.
type modCall struct {
	Module   string
	Callback string
	Args     []any
}

var (
	modCallsMu sync.Mutex
	modCalls   []modCall
	// modHangRelease unblocks "hang" callbacks at the end of the run.
	modHangRelease = make(chan struct{})
)

func modRecord(id, callback string, args ...any) {
	modCallsMu.Lock()
	defer modCallsMu.Unlock()
	modCalls = append(modCalls, modCall{Module: id, Callback: callback, Args: args})
}

// modCallsOf returns the recorded calls of the given module ids (all when none).
func modCallsOf(ids ...string) []modCall {
	modCallsMu.Lock()
	defer modCallsMu.Unlock()
	var out []modCall
	for _, c := range modCalls {
		if len(ids) == 0 {
			out = append(out, c)
			continue
		}
		for _, id := range ids {
			if c.Module == id {
				out = append(out, c)
			}
		}
	}
	return out
}

func init() {
	module.Register("test.Scripted", module.Factory{
		ParseConfig: func(raw module.RawConfig) (any, error) {
			var c scriptedConfig
			if err := raw.Decode(&c); err != nil {
				return nil, err
			}
			if c.ID == "" {
				return nil, &module.ConfigError{Path: []string{"id"}, Msg: "is required"}
			}
			return c, nil
		},
		New: newScripted,
	})
	// test.LateRegistrar keeps its API and tries to register from a web
	// request, after start-up.
	module.Register("test.LateRegistrar", module.Factory{New: func(_ any, api *module.API) (any, error) {
		return nil, api.RegisterWebResource("/_synapse/client/late", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err := api.RegisterSpamCheckerCallbacks(module.SpamCheckerCallbacks{})
			werr := api.RegisterWebResource("/_synapse/client/later", http.NotFoundHandler())
			module.RespondJSON(w, 200, map[string]any{"callbacks_error": fmt.Sprint(err), "resource_error": fmt.Sprint(werr)})
		}))
	}})
	// test.Reserved tries to serve a path under /_matrix/client.
	module.Register("test.Reserved", module.Factory{New: func(_ any, api *module.API) (any, error) {
		return nil, api.RegisterWebResource("/_matrix/client/v3/mine", http.NotFoundHandler())
	}})
	// test.PanicNew panics in New.
	module.Register("test.PanicNew", module.Factory{New: func(any, *module.API) (any, error) { panic("boom in New") }})
}

type scripted struct {
	cfg scriptedConfig
	api *module.API
}

func newScripted(config any, api *module.API) (any, error) {
	c := config.(scriptedConfig)
	if c.FailNew {
		return nil, errors.New("scripted: refusing to start")
	}
	s := &scripted{cfg: c, api: api}
	var spam module.SpamCheckerCallbacks
	if c.CheckRegistrationForSpam != "" {
		spam.CheckRegistrationForSpam = s.checkRegistration
	}
	if c.CheckLoginForSpam != "" {
		spam.CheckLoginForSpam = s.checkLogin
	}
	if c.UserMayCreateRoom != "" {
		spam.UserMayCreateRoom = s.userMayCreateRoom
	}
	if c.CheckEventForSpam != "" {
		spam.CheckEventForSpam = s.checkEventForSpam
	}
	if c.UserMayJoinRoom != "" {
		spam.UserMayJoinRoom = s.userMayJoinRoom
	}
	if c.UserMayInvite != "" {
		spam.UserMayInvite = s.userMayInvite
	}
	if c.UserMayCreateRoomAlias != "" {
		spam.UserMayCreateRoomAlias = s.userMayCreateRoomAlias
	}
	if c.UserMaySendStateEvent != "" {
		spam.UserMaySendStateEvent = s.userMaySendStateEvent
	}
	if err := api.RegisterSpamCheckerCallbacks(spam); err != nil {
		return nil, err
	}
	var tp module.ThirdPartyRulesCallbacks
	if c.CheckEventAllowed != "" {
		tp.CheckEventAllowed = s.checkEventAllowed
	}
	if c.OnCreateRoom != "" {
		tp.OnCreateRoom = s.onCreateRoom
	}
	if c.CheckVisibilityCanBeModified != "" {
		tp.CheckVisibilityCanBeModified = s.checkVisibility
	}
	if c.OnNewEvent != "" {
		tp.OnNewEvent = s.onNewEvent
	}
	if err := api.RegisterThirdPartyRulesCallbacks(tp); err != nil {
		return nil, err
	}
	var av module.AccountValidityCallbacks
	if c.IsUserExpired != "" {
		av.IsUserExpired = s.isUserExpired
	}
	if c.OnUserRegistration != "" {
		av.OnUserRegistration = s.onUserRegistration
	}
	if c.OnUserLogin != "" {
		av.OnUserLogin = s.onUserLogin
	}
	if err := api.RegisterAccountValidityCallbacks(av); err != nil {
		return nil, err
	}
	if c.OnAccountDataUpdated != "" {
		if err := api.RegisterAccountDataCallbacks(module.AccountDataCallbacks{OnAccountDataUpdated: s.onAccountDataUpdated}); err != nil {
			return nil, err
		}
	}
	if c.WebResource != "" {
		if err := api.RegisterWebResource(c.WebResource, http.HandlerFunc(s.serve)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// serve answers {"module": id, "user_id": ...}; ?auth=1 authenticates the
// request through the module API; ?panic=1 panics.
func (s *scripted) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("panic") == "1" {
		panic("scripted web resource panic: secret-internal-detail")
	}
	if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
		modRecord(s.cfg.ID, "web_request_started")
		time.Sleep(d) // an in-flight request, for the graceful shutdown test
	}
	out := map[string]any{"module": s.cfg.ID}
	if op := r.URL.Query().Get("api"); op != "" {
		s.apiCall(w, r, op)
		return
	}
	if r.URL.Query().Get("auth") == "1" {
		req, err := s.api.GetUserByRequest(r)
		if err != nil {
			module.RespondError(w, err)
			return
		}
		out["user_id"] = req.UserID
	}
	module.RespondJSON(w, http.StatusOK, out)
}

// fail performs the failure forms shared by every callback.
func (s *scripted) fail(ctx context.Context, behaviour string) (handled bool, err error) {
	switch behaviour {
	case "error":
		return true, errors.New("scripted failure")
	case "panic":
		panic("scripted panic")
	case "hang":
		// Ignores its context on purpose: a badly written module.
		<-modHangRelease
		return true, errors.New("released")
	}
	return false, nil
}

func decision(behaviour string) (module.Decision, bool) {
	switch {
	case behaviour == "allow":
		return module.Allow, true
	case behaviour == "deny":
		return module.Deny(""), true
	case len(behaviour) > 5 && behaviour[:5] == "deny:":
		return module.Deny(behaviour[5:]), true
	case behaviour == "denywith":
		return module.DenyWith("M_LIMIT_EXCEEDED", map[string]any{"retry_after_ms": 1234, "error": "module says slow down"}), true
	case behaviour == "denymsg":
		return module.DenyMessage("module message"), true
	case behaviour == "spam_true":
		return module.SpamBool(true), true
	case behaviour == "spam_false":
		return module.SpamBool(false), true
	case behaviour == "allowed_true":
		return module.AllowedBool(true), true
	case behaviour == "allowed_false":
		return module.AllowedBool(false), true
	}
	return module.Decision{}, false
}

func (s *scripted) checkRegistration(ctx context.Context, r module.RegistrationCheck) (module.RegistrationBehaviour, error) {
	modRecord(s.cfg.ID, "check_registration_for_spam", r.Username, r.RequestInfo)
	if h, err := s.fail(ctx, s.cfg.CheckRegistrationForSpam); h {
		return 0, err
	}
	switch s.cfg.CheckRegistrationForSpam {
	case "allow":
		return module.RegistrationAllow, nil
	case "shadow_ban":
		return module.RegistrationShadowBan, nil
	case "deny":
		return module.RegistrationDeny, nil
	}
	return module.RegistrationBehaviour(42), nil // "invalid"
}

func (s *scripted) checkLogin(ctx context.Context, l module.LoginCheck) (module.Decision, error) {
	modRecord(s.cfg.ID, "check_login_for_spam", l.UserID, l.DeviceID, l.InitialDisplayName, l.RequestInfo)
	if h, err := s.fail(ctx, s.cfg.CheckLoginForSpam); h {
		return module.Decision{}, err
	}
	d, _ := decision(s.cfg.CheckLoginForSpam)
	return d, nil
}

func (s *scripted) userMayCreateRoom(ctx context.Context, userID string, cfg map[string]any) (module.Decision, error) {
	modRecord(s.cfg.ID, "user_may_create_room", userID, cfg)
	if h, err := s.fail(ctx, s.cfg.UserMayCreateRoom); h {
		return module.Decision{}, err
	}
	if s.cfg.UserMayCreateRoom == "mutate" {
		// A module changing its copy must change nothing else.
		cfg["name"] = "mutated by " + s.cfg.ID
		return module.Allow, nil
	}
	d, _ := decision(s.cfg.UserMayCreateRoom)
	return d, nil
}

func (s *scripted) isUserExpired(ctx context.Context, userID string) (module.Expiry, error) {
	modRecord(s.cfg.ID, "is_user_expired", userID)
	if h, err := s.fail(ctx, s.cfg.IsUserExpired); h {
		return 0, err
	}
	switch s.cfg.IsUserExpired {
	case "expired":
		return module.Expired, nil
	case "not_expired":
		return module.NotExpired, nil
	case "unknown":
		return module.ExpiryUnknown, nil
	}
	return module.Expiry(42), nil
}

func (s *scripted) onUserRegistration(ctx context.Context, userID string) error {
	modRecord(s.cfg.ID, "on_user_registration", userID)
	_, err := s.fail(ctx, s.cfg.OnUserRegistration)
	return err
}

func (s *scripted) onUserLogin(ctx context.Context, userID, typ, id string) error {
	modRecord(s.cfg.ID, "on_user_login", userID, typ, id)
	_, err := s.fail(ctx, s.cfg.OnUserLogin)
	return err
}

// apiCall exercises a module API helper for TestModuleAPIHelpers.
func (s *scripted) apiCall(w http.ResponseWriter, r *http.Request, op string) {
	ctx, user := r.Context(), r.URL.Query().Get("user")
	var out any
	var err error
	switch op {
	case "names":
		out = map[string]any{"server_name": s.api.ServerName(), "public_baseurl": s.api.PublicBaseURL(),
			"qualified": s.api.GetQualifiedUserID("zed"), "is_mine": s.api.IsMine("@zed:" + s.api.ServerName()),
			"is_mine_remote": s.api.IsMine("@zed:elsewhere.org"), "module_name": s.api.ModuleName()}
		s.api.Logger().Info("names asked")
	case "admin":
		out, err = s.api.IsUserAdmin(ctx, user)
	case "exists":
		out, err = s.api.CheckUserExists(ctx, user)
	case "info":
		out, err = s.api.GetUserInfo(ctx, user)
	case "register":
		out, err = s.api.RegisterUser(ctx, user, module.RegisterUserOptions{Password: "pw-" + user, Admin: r.URL.Query().Get("admin") == "1"})
	case "createroom":
		out, err = s.api.CreateRoom(ctx, user, map[string]any{"preset": "public_chat", "name": "made by a module"})
	case "roomstate":
		var st module.StateMap
		if st, err = s.api.GetRoomState(ctx, r.URL.Query().Get("room")); err == nil {
			keys := map[string]any{}
			for k, e := range st {
				keys[k.Type+"|"+k.StateKey] = e.Sender()
			}
			out = keys
		}
	case "sendevent":
		var ev module.Event
		ev, err = s.api.CreateAndSendEventIntoRoom(ctx, map[string]any{"type": "m.room.message", "room_id": r.URL.Query().Get("room"),
			"sender": user, "content": map[string]any{"msgtype": "m.notice", "body": "from a module"}})
		if err == nil {
			out = ev.EventID()
		}
	case "getaccountdata":
		out, err = s.api.GetGlobalAccountData(ctx, user, r.URL.Query().Get("type"))
	case "putaccountdata":
		err = s.api.PutGlobalAccountData(ctx, user, r.URL.Query().Get("type"), map[string]any{"from": s.cfg.ID})
		out = "ok"
	case "membership":
		var ev module.Event
		ev, err = s.api.UpdateRoomMembership(ctx, user, r.URL.Query().Get("target"), r.URL.Query().Get("room"), r.URL.Query().Get("m"), nil)
		if err == nil {
			out = ev.EventID()
		}
	}
	if errors.Is(err, module.ErrNotFound) {
		module.RespondError(w, &module.Error{Status: 404, Code: "M_NOT_FOUND", Message: "no such user"})
		return
	}
	if err != nil {
		module.RespondError(w, err)
		return
	}
	module.RespondJSON(w, http.StatusOK, map[string]any{"result": out})
}

// eventWanted reports whether an event callback acts on ev (event_type).
func (s *scripted) eventWanted(ev module.Event) bool {
	return s.cfg.EventType == "" || ev.Type() == s.cfg.EventType
}

func (s *scripted) checkEventForSpam(ctx context.Context, ev module.Event) (module.Decision, error) {
	if !s.eventWanted(ev) {
		return module.Allow, nil
	}
	modRecord(s.cfg.ID, "check_event_for_spam", ev.EventID(), ev.Type(), ev.Sender(), ev.RoomID(), ev.Content())
	if h, err := s.fail(ctx, s.cfg.CheckEventForSpam); h {
		return module.Decision{}, err
	}
	d, _ := decision(s.cfg.CheckEventForSpam)
	return d, nil
}

func (s *scripted) userMayJoinRoom(ctx context.Context, userID, roomID string, isInvited bool) (module.Decision, error) {
	modRecord(s.cfg.ID, "user_may_join_room", userID, roomID, isInvited)
	if h, err := s.fail(ctx, s.cfg.UserMayJoinRoom); h {
		return module.Decision{}, err
	}
	d, _ := decision(s.cfg.UserMayJoinRoom)
	return d, nil
}

func (s *scripted) userMayInvite(ctx context.Context, inviter, invitee, roomID string) (module.Decision, error) {
	modRecord(s.cfg.ID, "user_may_invite", inviter, invitee, roomID)
	if h, err := s.fail(ctx, s.cfg.UserMayInvite); h {
		return module.Decision{}, err
	}
	d, _ := decision(s.cfg.UserMayInvite)
	return d, nil
}

func (s *scripted) userMaySendStateEvent(ctx context.Context, userID, roomID, typ, stateKey string, content map[string]any) (module.Decision, error) {
	modRecord(s.cfg.ID, "user_may_send_state_event", userID, roomID, typ, stateKey, maps.Clone(content))
	if h, err := s.fail(ctx, s.cfg.UserMaySendStateEvent); h {
		return module.Decision{}, err
	}
	content["scripted_was_here"] = true // a copy: must not reach the event
	d, _ := decision(s.cfg.UserMaySendStateEvent)
	return d, nil
}

func (s *scripted) checkEventAllowed(ctx context.Context, ev module.Event, state module.StateMap) (bool, map[string]any, error) {
	if !s.eventWanted(ev) {
		return true, nil, nil
	}
	_, hasCreate := state[module.StateKey{Type: "m.room.create"}]
	modRecord(s.cfg.ID, "check_event_allowed", ev.Type(), ev.Sender(), ev.Content(), hasCreate)
	if h, err := s.fail(ctx, s.cfg.CheckEventAllowed); h {
		return false, nil, err
	}
	switch s.cfg.CheckEventAllowed {
	case "deny":
		return false, nil, nil
	case "replace", "replace_bad":
		var dict map[string]any
		if err := json.Unmarshal(ev.JSON(), &dict); err != nil {
			return false, nil, err
		}
		dict["content"] = map[string]any{"msgtype": "m.text", "body": "replaced by " + s.cfg.ID}
		if s.cfg.CheckEventAllowed == "replace_bad" {
			dict["type"] = "m.room.other"
		}
		return true, dict, nil
	case "module_error":
		return false, nil, &module.Error{Status: 418, Code: "ORG_SLUICE_TEAPOT", Message: "module raised", Extra: map[string]any{"hint": "tea"}}
	}
	return true, nil, nil // "allow"
}

func (s *scripted) onCreateRoom(ctx context.Context, req module.Requester, content map[string]any, isAdmin bool) error {
	modRecord(s.cfg.ID, "on_create_room", req.UserID, isAdmin, maps.Clone(content))
	if h, err := s.fail(ctx, s.cfg.OnCreateRoom); h {
		return err
	}
	switch s.cfg.OnCreateRoom {
	case "modify":
		initial, _ := content["initial_state"].([]any)
		content["initial_state"] = append(initial, map[string]any{
			"type": "org.sluice.test.added", "state_key": "", "content": map[string]any{"by": s.cfg.ID},
		})
		content["topic"] = "topic by " + s.cfg.ID
	case "module_error":
		return &module.Error{Status: 400, Code: "M_INVALID_PARAM", Message: "module says no", Extra: map[string]any{"hint": "rename"}}
	}
	return nil
}

func (s *scripted) onNewEvent(ctx context.Context, ev module.Event, state module.StateMap) error {
	if !s.eventWanted(ev) {
		return nil
	}
	_, hasCreate := state[module.StateKey{Type: "m.room.create"}]
	// A state event already persisted is in the room's state as the
	// module API reads it.
	persisted := false
	if sk, ok := ev.StateKey(); ok {
		if st, err := s.api.GetRoomState(ctx, ev.RoomID()); err == nil {
			cur := st[module.StateKey{Type: ev.Type(), StateKey: sk}]
			persisted = cur != nil && cur.EventID() == ev.EventID()
		}
	}
	modRecord(s.cfg.ID, "on_new_event", ev.EventID(), ev.Type(), ev.Content(), hasCreate, persisted)
	_, err := s.fail(ctx, s.cfg.OnNewEvent)
	return err
}

func (s *scripted) userMayCreateRoomAlias(ctx context.Context, userID, alias string) (module.Decision, error) {
	modRecord(s.cfg.ID, "user_may_create_room_alias", userID, alias)
	if h, err := s.fail(ctx, s.cfg.UserMayCreateRoomAlias); h {
		return module.Decision{}, err
	}
	d, _ := decision(s.cfg.UserMayCreateRoomAlias)
	return d, nil
}

func (s *scripted) checkVisibility(ctx context.Context, roomID string, _ module.StateMap, visibility string) (bool, error) {
	modRecord(s.cfg.ID, "check_visibility_can_be_modified", roomID, visibility)
	if h, err := s.fail(ctx, s.cfg.CheckVisibilityCanBeModified); h {
		return false, err
	}
	return s.cfg.CheckVisibilityCanBeModified == "allow", nil
}

func (s *scripted) onAccountDataUpdated(ctx context.Context, userID, roomID, typ string, content map[string]any) error {
	modRecord(s.cfg.ID, "on_account_data_updated", userID, roomID, typ, maps.Clone(content))
	content["scripted_was_here"] = true // a copy: must not reach the next module
	_, err := s.fail(ctx, s.cfg.OnAccountDataUpdated)
	return err
}
