package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// homeserver is the client side of the few Matrix endpoints loadgen uses.
type homeserver struct {
	base string
	hc   *http.Client
	log  io.Writer

	setup429   atomic.Int64 // 429 answers seen during setup
	warnedOnce sync.Map     // endpoint name -> struct{}: the 429 warning was printed
}

func newHomeserver(base string, conns int, timeout time.Duration, log io.Writer) *homeserver {
	tr := &http.Transport{
		Proxy:               nil, // measure the server, not a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		// HTTP/1.1 with keep-alive only: an empty TLSNextProto turns HTTP/2 off.
		ForceAttemptHTTP2: false,
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return &homeserver{base: base, hc: &http.Client{Transport: tr, Timeout: timeout}, log: log}
}

func (h *homeserver) close() { h.hc.CloseIdleConnections() }

// matrixError is a non-200 answer.
type matrixError struct {
	Status       int
	ErrCode      string `json:"errcode"`
	Message      string `json:"error"`
	RetryAfterMS *int64 `json:"retry_after_ms"` // or from Retry-After
}

func (e *matrixError) Error() string {
	s := "HTTP " + strconv.Itoa(e.Status)
	if e.ErrCode != "" {
		s += " " + e.ErrCode
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// kind is the error's key in the report's error counts.
func (e *matrixError) kind() string {
	if e.ErrCode != "" {
		return "HTTP " + strconv.Itoa(e.Status) + " " + e.ErrCode
	}
	return "HTTP " + strconv.Itoa(e.Status)
}

// do sends one request and reads the whole answer (so the connection can be
// reused). A non-200 status is returned as *matrixError, with the
// Retry-After header as a fallback for retry_after_ms.
func (h *homeserver) do(ctx context.Context, method, path, token string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return data, nil
	}
	me := &matrixError{Status: resp.StatusCode}
	_ = json.Unmarshal(data, me) // not JSON: status only
	me.Status = resp.StatusCode
	if me.RetryAfterMS == nil {
		if s, perr := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64); perr == nil && s >= 0 {
			ms := s * 1000
			me.RetryAfterMS = &ms
		}
	}
	return nil, me
}

// retryDelay is how long to wait after a 429: retry_after_ms, else the
// Retry-After header (seconds; Synapse sends both), else half a second.
func retryDelay(e *matrixError) time.Duration {
	if e.RetryAfterMS != nil && *e.RetryAfterMS >= 0 {
		return time.Duration(*e.RetryAfterMS) * time.Millisecond
	}
	return 500 * time.Millisecond
}

// errKind names a failed request in the report's error counts.
func errKind(err error) string {
	var me *matrixError
	if errors.As(err, &me) {
		return me.kind()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "transport: timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return "transport: " + err.Error()
}

// setupCall is a setup request: JSON in, JSON out, 429s waited out and
// retried (and counted), any other failure returned.
func (h *homeserver) setupCall(ctx context.Context, name, method, path, token string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for {
		data, err := h.do(ctx, method, path, token, body)
		var me *matrixError
		if errors.As(err, &me) && me.Status == http.StatusTooManyRequests {
			h.setup429.Add(1)
			if _, warned := h.warnedOnce.LoadOrStore(name, struct{}{}); !warned {
				fmt.Fprintf(h.log, "loadgen: the server rate-limits %s (%v); waiting and retrying. Raise its limit for benchmarks (see bench/README.md).\n", name, me)
			}
			select {
			case <-time.After(retryDelay(me)):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%s: decoding the answer: %w", name, err)
			}
		}
		return nil
	}
}

// registrationMAC is Synapse's shared-secret registration MAC for a
// non-admin user without a user type: HMAC-SHA1(secret,
// nonce NUL username NUL password NUL "notadmin"), hex-encoded.
func registrationMAC(secret, nonce, username, password string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(nonce + "\x00" + username + "\x00" + password + "\x00" + "notadmin"))
	return hex.EncodeToString(m.Sum(nil))
}

// user is a registered account.
type user struct {
	Localpart string
	UserID    string
	Token     string
}

// register creates one non-admin user through
// GET+POST /_synapse/admin/v1/register.
func (h *homeserver) register(ctx context.Context, secret, localpart, password string) (user, error) {
	const path = "/_synapse/admin/v1/register"
	var n struct {
		Nonce string `json:"nonce"`
	}
	if err := h.setupCall(ctx, "register (nonce)", http.MethodGet, path, "", nil, &n); err != nil {
		return user{}, err
	}
	if n.Nonce == "" {
		return user{}, errors.New("register: the server gave no nonce")
	}
	req := map[string]any{
		"nonce":    n.Nonce,
		"username": localpart,
		"password": password,
		"admin":    false,
		"mac":      registrationMAC(secret, n.Nonce, localpart, password),
	}
	var resp struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	if err := h.setupCall(ctx, "register", http.MethodPost, path, "", req, &resp); err != nil {
		return user{}, fmt.Errorf("%s: %w", localpart, err)
	}
	if resp.AccessToken == "" {
		return user{}, fmt.Errorf("register %s: the server gave no access_token", localpart)
	}
	return user{Localpart: localpart, UserID: resp.UserID, Token: resp.AccessToken}, nil
}

// createRoom creates a public room and returns its ID.
func (h *homeserver) createRoom(ctx context.Context, token string) (string, error) {
	var resp struct {
		RoomID string `json:"room_id"`
	}
	err := h.setupCall(ctx, "createRoom", http.MethodPost, "/_matrix/client/v3/createRoom", token,
		map[string]any{"preset": "public_chat"}, &resp)
	if err != nil {
		return "", err
	}
	if resp.RoomID == "" {
		return "", errors.New("createRoom: the server gave no room_id")
	}
	return resp.RoomID, nil
}

// join joins the token's user to a room.
func (h *homeserver) join(ctx context.Context, token, roomID string) error {
	return h.setupCall(ctx, "join", http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(roomID), token,
		map[string]any{}, nil)
}

// sendPath is the path of PUT /rooms/{roomId}/send/m.room.message/{txnId}.
func sendPath(roomID, txnID string) string {
	return "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/send/m.room.message/" + url.PathEscape(txnID)
}

// messageBody is the m.room.message content with a body of n bytes.
func messageBody(n int) []byte {
	const filler = "loadgen message abcdefghijklmnopqrstuvwxyz 0123456789 "
	b := strings.Repeat(filler, n/len(filler)+1)[:n]
	data, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": b})
	return data
}

// plan says who is in which room: room r is created by user r%users; user
// u is a member of room u%rooms; client c sends as user c%users in room
// c%rooms (so it is a member of it too).
type plan struct {
	users, rooms, clients int
}

func (p plan) creator(room int) int  { return room % p.users }
func (p plan) clientUser(c int) int  { return c % p.users }
func (p plan) clientRoom(c int) int  { return c % p.rooms }
func (p plan) homeRoom(user int) int { return user % p.rooms }

// joins lists the (user, room) pairs that must join: every member of a
// room but its creator, each pair once, in a stable order.
func (p plan) joins() [][2]int {
	seen := make(map[[2]int]bool)
	var out [][2]int
	add := func(u, r int) {
		k := [2]int{u, r}
		if u == p.creator(r) || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, k)
	}
	for u := 0; u < p.users; u++ {
		add(u, p.homeRoom(u))
	}
	for c := 0; c < p.clients; c++ {
		add(p.clientUser(c), p.clientRoom(c))
	}
	return out
}

// parallel runs f(0..n-1) on at most workers goroutines and returns the
// first error; after an error, the remaining items are skipped.
func parallel(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}
