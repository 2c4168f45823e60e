// Package httpx holds Sluice's HTTP conventions: Matrix error bodies with
// Synapse's status codes, strict JSON request parsing with a size limit,
// routing that answers unknown paths and methods with M_UNRECOGNIZED, CORS,
// panic recovery with request IDs, and structured request logs.
package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sluice-im/sluice/module"
)

// MaxBodySize bounds request bodies. Every endpoint so far takes JSON, and
// a JSON body costs many times its size in memory once decoded, so the
// bound is well below Synapse's 50 MiB (which exists for media uploads):
// 4 MiB still holds the largest bodies clients send (to-device messages
// for big rooms, key backups).
const MaxBodySize = 4 << 20

// Error is a Matrix error for a client (the same type modules use).
type Error = module.Error

// NewError makes a Matrix error.
func NewError(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// Errorf makes a Matrix error with a formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// LimitExceeded is Synapse's 429 for a rate limit, with retry_after_ms
// (and a Retry-After header when written).
func LimitExceeded(wait time.Duration) *Error {
	ms := wait.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return &Error{Status: http.StatusTooManyRequests, Code: "M_LIMIT_EXCEEDED", Message: "Too Many Requests",
		Extra: map[string]any{"retry_after_ms": ms}}
}

// Common errors, with Synapse's messages.
var (
	ErrUnrecognized = func() *Error { return NewError(http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request") }
	ErrNotJSON      = func() *Error { return NewError(http.StatusBadRequest, "M_NOT_JSON", "Content not JSON.") }
	ErrNotObject    = func() *Error { return NewError(http.StatusBadRequest, "M_BAD_JSON", "Content must be a JSON object.") }
)

// WriteJSON writes v as JSON with Synapse's headers.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errcode":"M_UNKNOWN","error":"Internal server error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteError answers with err: an *Error as it is, anything else as a 500
// M_UNKNOWN without internals, logged with the request ID.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var me *Error
	if !errors.As(err, &me) {
		info := InfoFrom(r.Context())
		info.logger().Error("internal error", "request_id", info.RequestID(), "method", r.Method, "path", r.URL.Path, "err", err)
		me = NewError(http.StatusInternalServerError, "M_UNKNOWN", "Internal server error")
	}
	if ms, ok := me.Extra["retry_after_ms"].(int64); ok && me.Code == "M_LIMIT_EXCEEDED" {
		w.Header().Set("Retry-After", strconv.FormatInt((ms+999)/1000, 10))
	}
	body := make(map[string]any, 2+len(me.Extra))
	body["errcode"] = me.Code
	body["error"] = me.Message
	for k, v := range me.Extra {
		body[k] = v
	}
	WriteJSON(w, me.Status, body)
}

// ReadJSON reads the request body as a JSON object into v. A body that is
// not JSON is M_NOT_JSON; JSON that is not an object, or does not fit v, is
// M_BAD_JSON; a body over MaxBodySize is M_TOO_LARGE.
func ReadJSON(r *http.Request, v any) error {
	raw, err := ReadJSONObject(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Errorf(http.StatusBadRequest, "M_BAD_JSON", "%s: expected %s, got %s", te.Field, te.Type.String(), te.Value)
		}
		return Errorf(http.StatusBadRequest, "M_BAD_JSON", "%v", err)
	}
	return nil
}

// ReadJSONMap reads the body as one JSON object into a map (numbers as
// float64), with ReadJSONObject's errors.
func ReadJSONMap(r *http.Request) (map[string]any, error) {
	raw, err := ReadJSONObject(r)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, ErrNotJSON()
	}
	return m, nil
}

// ReadJSONObject reads the body and checks it is one JSON object.
func ReadJSONObject(r *http.Request) (json.RawMessage, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(mbe.Limit)
		}
		return nil, NewError(http.StatusBadRequest, "M_UNKNOWN", "Could not read the request body")
	}
	// Synapse decodes the body as UTF-8 first, then as JSON (whose only
	// whitespace is space, tab, CR and LF); NaN and Infinity are refused.
	if !utf8.Valid(b) || !json.Valid(b) {
		return nil, ErrNotJSON()
	}
	b = bytes.Trim(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return nil, ErrNotObject()
	}
	return b, nil
}

func tooLarge(limit int64) *Error {
	return Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Request content is too large (>%d)", limit)
}

// RequestInfo is per-request data the middleware logs; handlers fill in
// what they learn (the route pattern, the user).
type RequestInfo struct {
	id      string
	log     *slog.Logger
	Pattern string
	UserID  string
}

// logger is the middleware's logger (the default one outside it).
func (i *RequestInfo) logger() *slog.Logger {
	if i == nil || i.log == nil {
		return slog.Default()
	}
	return i.log
}

// RequestID is the request's ID, as shown in logs.
func (i *RequestInfo) RequestID() string {
	if i == nil {
		return ""
	}
	return i.id
}

type infoKey struct{}

// InfoFrom returns the request's info (never nil).
func InfoFrom(ctx context.Context) *RequestInfo {
	if i, ok := ctx.Value(infoKey{}).(*RequestInfo); ok {
		return i
	}
	return &RequestInfo{}
}

var requestCounter atomic.Uint64

// Middleware wraps the whole server: request ID, CORS, OPTIONS, body limit
// (except for media uploads, see bodyLimitExempt), panic recovery and
// request logs.
func Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &RequestInfo{id: r.Method + "-" + strconv.FormatUint(requestCounter.Add(1), 10), log: log}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		sw := &statusWriter{ResponseWriter: w}
		setCORS(sw.Header())
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("handler panicked", "request_id", info.id, "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !sw.wrote {
					WriteError(sw, r, NewError(http.StatusInternalServerError, "M_UNKNOWN", "Internal server error"))
				}
			}
			log.Info("request", "request_id", info.id, "method", r.Method, "route", info.Pattern,
				"status", sw.status, "duration_ms", float64(time.Since(start).Microseconds())/1000, "user", info.UserID)
		}()
		if r.Method == http.MethodOptions {
			// Synapse answers every OPTIONS request before routing.
			sw.Header().Set("Content-Length", "0")
			sw.WriteHeader(http.StatusNoContent)
			return
		}
		if strings.IndexByte(r.URL.Path, 0) >= 0 || strings.Contains(r.URL.RawQuery, "%00") {
			// No Matrix identifier, token or parameter holds a NUL byte,
			// and PostgreSQL refuses one in a query: answer here rather
			// than with a 500 from deep inside an endpoint.
			WriteError(sw, r, NewError(http.StatusBadRequest, "M_INVALID_PARAM", "The request path or query contains a NUL character"))
			return
		}
		if !bodyLimitExempt(r) {
			if r.ContentLength > MaxBodySize {
				w.Header().Set("Connection", "close")
				WriteError(sw, r, tooLarge(MaxBodySize))
				return
			}
			// The server's own writer, not the wrapper: hitting the limit
			// then makes net/http close the connection after the 413.
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodySize)
		}
		next.ServeHTTP(sw, r)
	})
}

// setCORS sets the headers the spec requires on every response (Synapse's
// values).
func setCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization, Date")
	h.Set("Access-Control-Expose-Headers", "Synapse-Trace-Id, Server")
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.status, s.wrote = http.StatusOK, true
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush lets long-polling handlers flush through the wrapper.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Router is a net/http ServeMux that answers an unknown path with 404
// M_UNRECOGNIZED and a known path with the wrong method with 405
// M_UNRECOGNIZED, as Synapse does, and records the matched pattern.
type Router struct {
	mux *http.ServeMux
}

// NewRouter makes an empty router.
func NewRouter() *Router { return &Router{mux: http.NewServeMux()} }

// Handle registers a handler for a Go 1.22 pattern ("GET /path/{var}").
func (rt *Router) Handle(pattern string, h http.Handler) { rt.mux.Handle(pattern, h) }

// HandleFunc registers a handler function.
func (rt *Router) HandleFunc(pattern string, h http.HandlerFunc) { rt.mux.Handle(pattern, h) }

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !cleanPath(r.URL.Path) {
		// ServeMux would redirect to the cleaned path with an HTML body;
		// Synapse treats such paths as unknown.
		WriteError(w, r, ErrUnrecognized())
		return
	}
	h, pattern := rt.mux.Handler(r)
	if pattern == "" {
		// Let the mux tell "no such path" from "wrong method" without
		// letting it write its plain-text answer.
		probe := &probeWriter{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			e := ErrUnrecognized()
			e.Status = http.StatusMethodNotAllowed
			WriteError(w, r, e)
			return
		}
		WriteError(w, r, ErrUnrecognized())
		return
	}
	InfoFrom(r.Context()).Pattern = pattern
	rt.mux.ServeHTTP(w, r)
}

type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header         { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *probeWriter) WriteHeader(code int)        { p.status = code }

// cleanPath reports whether p has no empty, "." or ".." segments.
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." || (seg == "" && i != len(segs)-1) {
			return false
		}
	}
	return true
}
