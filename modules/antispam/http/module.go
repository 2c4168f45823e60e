// Package antispamhttp is the built-in module antispam.http: Sluice's side
// of the synapse-http-antispam wire protocol, so that policy servers written
// for it (Meowlnir, Draupnir) work unchanged, whatever language they are in.
//
// Each enabled spam checker callback becomes a JSON POST to
// <base_url>/<callback> with "Authorization: Bearer <secret>". A 2xx answer
// (with a JSON body) allows; a non-2xx answer with a JSON object body
// rejects with that body's errcode (M_FORBIDDEN when it has none) and its
// other fields, "error" included, in the client's error. A server that
// cannot be reached, answers too late or answers garbage counts as the
// callback's fail_open says. An async callback is sent in the background
// and allows at once.
//
// It is also registered as synapse_http_antispam.HTTPAntispam, the name a
// Synapse configuration gives it, so such a `modules:` entry carries over.
package antispamhttp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sluice-im/sluice/module"
)

// Names under which the module is registered.
const (
	Name        = "antispam.http"
	SynapseName = "synapse_http_antispam.HTTPAntispam"
)

func init() {
	f := module.Factory{ParseConfig: parseConfig, New: newModule}
	module.Register(Name, f)
	module.Register(SynapseName, f)
}

const (
	// asyncTimeout bounds a background (async) request: Synapse's HTTP
	// client gives up after 60 s without response headers.
	asyncTimeout = 60 * time.Second
	// maxAsync bounds the background requests in flight; past it, new
	// ones are dropped (and logged) rather than piling up goroutines
	// against a server that stopped answering.
	maxAsync = 1024
	// maxBody bounds how much of an answer is read.
	maxBody = 1 << 20
	// pingInterval is the wait between start-up pings, as the Python
	// module's.
	pingInterval = 5 * time.Second
)

// Module is one configured antispam.http entry.
type Module struct {
	cfg    *parsed
	client *http.Client
	log    *slog.Logger

	// bg is cancelled by Close; async requests and the ping run under it.
	bg       context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
	asyncSem chan struct{}

	mu     sync.Mutex // guards closed, and wg.Add against Close's Wait
	closed bool
}

func newModule(config any, api *module.API) (any, error) {
	cfg := config.(*parsed)
	tr := &http.Transport{
		// Policy servers are named explicitly; an environment proxy must
		// not capture a loopback or LAN address.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: asyncTimeout,
	}
	bg, stop := context.WithCancel(context.Background())
	m := &Module{
		cfg:      cfg,
		client:   &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		log:      api.Logger(),
		bg:       bg,
		stop:     stop,
		asyncSem: make(chan struct{}, maxAsync),
	}
	for _, name := range cfg.inert {
		m.log.Warn("enabled callback is never called by this server (no federation or third-party invites yet); ignored", "callback", name)
	}
	cb := module.SpamCheckerCallbacks{}
	for _, name := range cfg.enabled {
		switch name {
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
		case "check_username_for_spam":
			cb.CheckUsernameForSpam = m.checkUsernameForSpam
		case "check_login_for_spam":
			cb.CheckLoginForSpam = m.checkLoginForSpam
		case "check_event_for_spam":
			cb.CheckEventForSpam = m.checkEventForSpam
		}
	}
	if err := api.RegisterSpamCheckerCallbacks(cb); err != nil {
		stop()
		return nil, err
	}
	if cfg.doPing {
		m.wg.Add(1)
		go m.ping()
	}
	return m, nil
}

// Close stops the start-up ping and waits (until ctx ends) for background
// requests.
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true // no background request starts after this
	m.mu.Unlock()
	m.stop()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	defer m.client.CloseIdleConnections()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Request bodies, with the protocol's field names (Synapse's parameter
// names). Optional strings are JSON null when empty, as Python's None.

func (m *Module) userMayJoinRoom(ctx context.Context, user, room string, isInvited bool) (module.Decision, error) {
	return m.call(ctx, "user_may_join_room", map[string]any{"user": user, "room": room, "is_invited": isInvited}), nil
}

func (m *Module) userMayInvite(ctx context.Context, inviter, invitee, roomID string) (module.Decision, error) {
	return m.call(ctx, "user_may_invite", map[string]any{"inviter": inviter, "invitee": invitee, "room_id": roomID}), nil
}

// userMayCreateRoom sends the one-argument form's body, as the protocol
// does: the room's configuration is not forwarded.
func (m *Module) userMayCreateRoom(ctx context.Context, userID string, _ map[string]any) (module.Decision, error) {
	return m.call(ctx, "user_may_create_room", map[string]any{"user_id": userID}), nil
}

// userMayCreateRoomAlias sends the alias as its string. (Under Synapse the
// alias is an object its JSON encoder refuses, so this callback always
// fails there; that is not copied.)
func (m *Module) userMayCreateRoomAlias(ctx context.Context, userID, alias string) (module.Decision, error) {
	return m.call(ctx, "user_may_create_room_alias", map[string]any{"user_id": userID, "room_alias": alias}), nil
}

func (m *Module) userMayPublishRoom(ctx context.Context, userID, roomID string) (module.Decision, error) {
	return m.call(ctx, "user_may_publish_room", map[string]any{"user_id": userID, "room_id": roomID}), nil
}

// checkUsernameForSpam: a 2xx answer keeps the user in the results, a
// rejection leaves them out. (Under Synapse the module returns a truthy
// value for a 2xx answer, which hides every user; that is not copied.)
func (m *Module) checkUsernameForSpam(ctx context.Context, p module.UserProfile, requesterID string) (bool, error) {
	d := m.call(ctx, "check_username_for_spam", map[string]any{
		"user_profile": map[string]any{"user_id": p.UserID, "display_name": orNull(p.DisplayName), "avatar_url": orNull(p.AvatarURL)},
		"requester_id": requesterID,
	})
	return !d.Allowed(), nil
}

func (m *Module) checkLoginForSpam(ctx context.Context, l module.LoginCheck) (module.Decision, error) {
	info := make([][2]any, 0, len(l.RequestInfo))
	for _, ri := range l.RequestInfo {
		info = append(info, [2]any{orNull(ri.UserAgent), ri.IP})
	}
	return m.call(ctx, "check_login_for_spam", map[string]any{
		"user_id":              l.UserID,
		"device_id":            orNull(l.DeviceID),
		"initial_display_name": orNull(l.InitialDisplayName),
		"request_info":         info,
		"auth_provider_id":     orNull(l.AuthProviderID),
	}), nil
}

func (m *Module) checkEventForSpam(ctx context.Context, ev module.Event) (module.Decision, error) {
	e, err := clientEvent(ev)
	if err != nil {
		// Our own event JSON that does not parse is a bug, not the policy
		// server's answer: fail the callback (the host's policy applies).
		return module.Decision{}, err
	}
	return m.call(ctx, "check_event_for_spam", map[string]any{"event": e}), nil
}

// federationOnly are the keys Synapse's client format leaves out of an
// event (format_event_for_client_v2).
var federationOnly = []string{"auth_events", "prev_events", "hashes", "signatures", "depth", "origin", "prev_state"}

// clientEvent is the event as the protocol sends it: the client format,
// room_id kept, plus event_id.
func clientEvent(ev module.Event) (map[string]json.RawMessage, error) {
	var e map[string]json.RawMessage
	if err := json.Unmarshal(ev.JSON(), &e); err != nil {
		return nil, fmt.Errorf("antispam.http: event %s: %w", ev.EventID(), err)
	}
	for _, k := range federationOnly {
		delete(e, k)
	}
	id, _ := json.Marshal(ev.EventID())
	e["event_id"] = id
	return e, nil
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Answers for the failure branches, as the Python module gives them.
var (
	errUnexpected = module.DenyWith(module.CodeUnknown, map[string]any{"error": "Unexpected response from antispam server"})
	errConnect    = module.DenyWith(module.CodeUnknown, map[string]any{"error": "Failed to connect to antispam server"})
)

// call forwards one callback and turns the answer into a decision.
func (m *Module) call(ctx context.Context, callback string, body any) module.Decision {
	payload, err := encode(body)
	if err != nil {
		m.log.Error("cannot encode the request", "callback", callback, "err", err)
		return m.failure(callback, errConnect)
	}
	if m.cfg.async[callback] {
		m.startAsync(callback, payload)
		return module.Allow
	}
	rctx, cancel := requestContext(ctx)
	defer cancel()
	status, answer, err := m.post(rctx, callback, payload)
	if err != nil {
		m.log.Warn("failed to reach the antispam server", "callback", callback, "url", m.cfg.baseURL+"/"+callback, "err", err)
		return m.failure(callback, errConnect)
	}
	if status >= 200 && status < 300 {
		if !json.Valid(answer) {
			// The Python module's JSON decoding raises here, which lands
			// in its connection-failure branch.
			m.log.Warn("antispam server answered 2xx without a JSON body", "callback", callback, "status", status)
			return m.failure(callback, errConnect)
		}
		return module.Allow
	}
	var obj map[string]any
	if !json.Valid(answer) {
		m.log.Warn("unexpected response from antispam server", "callback", callback, "status", status, "body", truncate(answer))
		return m.failure(callback, errUnexpected)
	}
	if err := json.Unmarshal(answer, &obj); err != nil || obj == nil {
		// JSON, but not an object: a rejection without details.
		return module.Deny(module.CodeForbidden)
	}
	// An errcode that is missing, empty or not a string is M_FORBIDDEN
	// (Deny's default), and is dropped: left among the extra fields it
	// would overwrite the client's errcode.
	code, _ := obj["errcode"].(string)
	delete(obj, "errcode")
	return module.DenyWith(code, obj)
}

// failure is the answer when the server could not be asked or answered
// garbage: allow when the callback fails open, else the given rejection.
func (m *Module) failure(callback string, closed module.Decision) module.Decision {
	if m.cfg.failOpen[callback] {
		return module.Allow
	}
	return closed
}

// requestContext leaves a little of the callback's deadline unused, so
// that a server that answers too late gets this module's fail_open answer
// rather than the host's timeout policy.
func requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeout(ctx, asyncTimeout)
	}
	margin := time.Until(d) / 10
	if margin > 100*time.Millisecond {
		margin = 100 * time.Millisecond
	}
	return context.WithDeadline(ctx, d.Add(-margin))
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func encode(body any) ([]byte, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, err
	}
	return bytes.Clone(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// post sends one request and returns the status and (bounded) body. The
// body is read to its end so that the connection is reused.
func (m *Module) post(ctx context.Context, path string, payload []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.cfg.baseURL+"/"+path, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Sluice antispam.http")
	if m.cfg.auth != "" {
		req.Header.Set("Authorization", m.cfg.auth)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, b, nil
}

// startAsync sends a request in the background; its answer is only
// logged when it is a failure.
func (m *Module) startAsync(callback string, payload []byte) {
	select {
	case m.asyncSem <- struct{}{}:
	default:
		m.log.Error("too many background requests in flight; dropping this one", "callback", callback, "limit", maxAsync)
		return
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		<-m.asyncSem
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		defer func() { <-m.asyncSem }()
		ctx, cancel := context.WithTimeout(m.bg, asyncTimeout)
		defer cancel()
		status, answer, err := m.post(ctx, callback, payload)
		switch {
		case err != nil:
			if !errors.Is(err, context.Canceled) {
				m.log.Warn("error in async callback", "callback", callback, "err", err)
			}
		case status < 200 || status >= 300:
			m.log.Info("antispam server rejected an async callback (ignored)", "callback", callback, "status", status, "body", truncate(answer))
		}
	}()
}

// ping posts <base_url>/ping until the server echoes its id with status ok.
func (m *Module) ping() {
	defer m.wg.Done()
	for {
		id := randomLetters(8)
		payload, _ := encode(map[string]string{"id": id})
		ctx, cancel := context.WithTimeout(m.bg, asyncTimeout)
		status, answer, err := m.post(ctx, "ping", payload)
		cancel()
		var got struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		switch {
		case m.bg.Err() != nil:
			return
		case err != nil:
			m.log.Error("failed to ping the antispam server", "url", m.cfg.baseURL+"/ping", "err", err)
		case status < 200 || status >= 300 || json.Unmarshal(answer, &got) != nil || got.ID != id || got.Status != "ok":
			m.log.Error("unexpected ping response from the antispam server", "url", m.cfg.baseURL+"/ping", "id", id, "status", status, "body", truncate(answer))
		default:
			m.log.Info("pinged the antispam server", "id", id)
			return
		}
		select {
		case <-m.bg.Done():
			return
		case <-time.After(pingInterval):
		}
	}
}

func randomLetters(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
