package media

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/mx/id"
	"github.com/sluice-im/sluice/module"
)

// Authenticator resolves a request's access token (accounts.Service).
type Authenticator interface {
	Authenticate(r *http.Request, allowExpired bool) (module.Requester, error)
}

// Handler serves the media endpoints: thin functions that parse, authorise
// and call the Service.
type Handler struct {
	svc  *Service
	auth Authenticator
}

// NewHandler makes the media endpoints' handler.
func NewHandler(svc *Service, auth Authenticator) *Handler { return &Handler{svc: svc, auth: auth} }

// handlerFunc is a handler that may fail; errors become Matrix errors.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (f handlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		if errors.Is(err, ErrNotFound) {
			// Synapse's respond_404.
			err = httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", fmt.Sprintf("Not found '%s'", r.URL.Path))
		}
		httpx.WriteError(w, r, err)
	}
}

// Register adds the media routes: the legacy /_matrix/media/{r0,v3,v1}
// endpoints (Synapse serves every one of them under all three prefixes)
// and the authenticated /_matrix/client/v1/media ones.
func (h *Handler) Register(rt *httpx.Router) {
	for _, v := range []string{"r0", "v3", "v1"} {
		p := "/_matrix/media/" + v
		rt.Handle("POST "+p+"/upload", handlerFunc(h.upload))
		rt.Handle("GET "+p+"/download/{serverName}/{mediaId}", handlerFunc(h.legacyDownload))
		rt.Handle("GET "+p+"/download/{serverName}/{mediaId}/{fileName}", handlerFunc(h.legacyDownload))
		rt.Handle("GET "+p+"/thumbnail/{serverName}/{mediaId}", handlerFunc(h.legacyThumbnail))
		rt.Handle("GET "+p+"/config", handlerFunc(h.config))
	}
	rt.Handle("POST /_matrix/media/v1/create", handlerFunc(h.create))
	rt.Handle("PUT /_matrix/media/v3/upload/{serverName}/{mediaId}", handlerFunc(h.uploadTo))

	c := "/_matrix/client/v1/media"
	rt.Handle("GET "+c+"/download/{serverName}/{mediaId}", handlerFunc(h.download))
	rt.Handle("GET "+c+"/download/{serverName}/{mediaId}/{fileName}", handlerFunc(h.download))
	rt.Handle("GET "+c+"/thumbnail/{serverName}/{mediaId}", handlerFunc(h.thumbnail))
	rt.Handle("GET "+c+"/config", handlerFunc(h.config))
}

func (h *Handler) authenticate(r *http.Request) (module.Requester, error) {
	req, err := h.auth.Authenticate(r, false)
	if err != nil {
		return req, err
	}
	httpx.InfoFrom(r.Context()).UserID = req.UserID
	return req, nil
}

// config answers GET .../config: Synapse's {"m.upload.size": max_upload_size}.
func (h *Handler) config(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.authenticate(r); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"m.upload.size": h.svc.MaxUploadSize()})
	return nil
}

// uploadMeta are an upload's Content-Type and file name, after Synapse's
// checks of its Content-Length.
func (h *Handler) uploadMeta(r *http.Request) (contentType, uploadName string, err error) {
	if r.ContentLength < 0 || r.Header.Get("Content-Length") == "" {
		return "", "", httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Request must specify a Content-Length")
	}
	if r.ContentLength > h.svc.MaxUploadSize() {
		return "", "", ErrUploadTooLarge()
	}
	uploadName = r.URL.Query().Get("filename")
	if !utf8.ValidString(uploadName) || strings.IndexByte(uploadName, 0) >= 0 {
		return "", "", httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", fmt.Sprintf("Invalid UTF-8 filename parameter: %q", uploadName))
	}
	contentType = "application/octet-stream"
	if v := r.Header.Values("Content-Type"); len(v) > 0 {
		contentType = v[0]
		for i := 0; i < len(contentType); i++ {
			if c := contentType[i]; c < 0x20 || c > 0x7e {
				return "", "", httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "The Content-Type header must be ASCII")
			}
		}
	}
	return contentType, uploadName, nil
}

// upload answers POST /_matrix/media/v3/upload.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request) error {
	req, err := h.authenticate(r)
	if err != nil {
		return err
	}
	ct, name, err := h.uploadMeta(r)
	if err != nil {
		return err
	}
	mediaID, err := h.svc.Store(r.Context(), Upload{UserID: req.UserID, ContentType: ct, UploadName: name, Body: r.Body})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"content_uri": "mxc://" + h.svc.ServerName() + "/" + mediaID})
	return nil
}

// create answers POST /_matrix/media/v1/create.
func (h *Handler) create(w http.ResponseWriter, r *http.Request) error {
	req, err := h.authenticate(r)
	if err != nil {
		return err
	}
	mediaID, expires, err := h.svc.CreateMediaID(r.Context(), req.UserID)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"content_uri":       "mxc://" + h.svc.ServerName() + "/" + mediaID,
		"unused_expires_at": expires,
	})
	return nil
}

// uploadTo answers PUT /_matrix/media/v3/upload/{serverName}/{mediaId}.
func (h *Handler) uploadTo(w http.ResponseWriter, r *http.Request) error {
	req, err := h.authenticate(r)
	if err != nil {
		return err
	}
	if r.PathValue("serverName") != h.svc.ServerName() {
		return httpx.NewError(http.StatusNotFound, "M_NOT_FOUND", "Non-local server name specified")
	}
	mediaID := r.PathValue("mediaId")
	release, err := h.svc.BeginUpload(r.Context(), mediaID, req.UserID)
	defer release()
	if err != nil {
		return err
	}
	ct, name, err := h.uploadMeta(r)
	if err != nil {
		return err
	}
	if _, err := h.svc.Store(r.Context(), Upload{UserID: req.UserID, ContentType: ct, UploadName: name, Body: r.Body, MediaID: mediaID}); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// checkServerName validates the {serverName} of a download or thumbnail
// path (Synapse's parse_and_validate_server_name; Synapse lets the
// ValueError through as a 500, Sluice answers 400).
func checkServerName(s string) error {
	if _, err := id.ParseServerName(s); err != nil {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", fmt.Sprintf("Server name '%s' has an invalid format", s))
	}
	return nil
}

// queryInt is Synapse's parse_integer (non-negative).
func queryInt(r *http.Request, name string, def int, required bool) (int, error) {
	q := r.URL.Query()
	if _, ok := q[name]; !ok {
		if required {
			return 0, httpx.NewError(http.StatusBadRequest, "M_MISSING_PARAM", "Missing required integer query parameter "+name)
		}
		return def, nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(q.Get(name)))
	if err != nil {
		return 0, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Query parameter "+name+" must be an integer")
	}
	if v < 0 {
		return 0, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "Query parameter "+name+" must be a positive integer.")
	}
	return v, nil
}

// queryBool is Synapse's parse_boolean.
func queryBool(r *http.Request, name string, def bool) (bool, error) {
	q := r.URL.Query()
	if _, ok := q[name]; !ok {
		return def, nil
	}
	switch q.Get(name) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", fmt.Sprintf("Boolean query parameter '%s' must be one of ['true', 'false']", name))
}

// wait is timeout_ms, bounded as in Synapse.
func wait(r *http.Request) (time.Duration, error) {
	ms, err := queryInt(r, "timeout_ms", int(DefaultWait/time.Millisecond), false)
	if err != nil {
		return 0, err
	}
	return min(time.Duration(ms)*time.Millisecond, MaxWait), nil
}

// begin is what every download and thumbnail answer starts with: the
// security headers (errors included), the path's server name, and the
// token on the authenticated paths.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request, legacy bool) (serverName string, err error) {
	setSecurityHeaders(w.Header())
	serverName = r.PathValue("serverName")
	if err := checkServerName(serverName); err != nil {
		return "", err
	}
	if !legacy {
		if _, err := h.authenticate(r); err != nil {
			return "", err
		}
	}
	return serverName, nil
}

func (h *Handler) legacyDownload(w http.ResponseWriter, r *http.Request) error {
	return h.serveDownload(w, r, true)
}

func (h *Handler) download(w http.ResponseWriter, r *http.Request) error {
	return h.serveDownload(w, r, false)
}

// serveDownload answers both download endpoints: legacy ones without
// authentication (and without media uploaded under
// enable_authenticated_media), authenticated ones for every user.
func (h *Handler) serveDownload(w http.ResponseWriter, r *http.Request, legacy bool) error {
	serverName, err := h.begin(w, r, legacy)
	if err != nil {
		return err
	}
	d, err := wait(r)
	if err != nil {
		return err
	}
	if serverName != h.svc.ServerName() {
		if legacy {
			allowRemote, err := queryBool(r, "allow_remote", true)
			if err != nil {
				return err
			}
			if !allowRemote {
				return ErrNotFound
			}
		}
		return h.svc.RemoteMedia(legacy)
	}
	m, err := h.svc.LocalMedia(r.Context(), r.PathValue("mediaId"), d, legacy)
	if err != nil {
		return err
	}
	if notModified(w, r) {
		return nil
	}
	f, err := h.svc.Open(m)
	if err != nil {
		return err
	}
	defer f.Close()
	size := m.Length
	if st, err := f.Stat(); err == nil {
		size = st.Size() // what will be sent, whatever the row says
	}
	name := m.UploadName
	if fn := r.PathValue("fileName"); fn != "" {
		name = fn
	}
	serveFile(w, f, m.MediaType, size, name)
	return nil
}

func (h *Handler) legacyThumbnail(w http.ResponseWriter, r *http.Request) error {
	return h.serveThumbnail(w, r, true)
}

func (h *Handler) thumbnail(w http.ResponseWriter, r *http.Request) error {
	return h.serveThumbnail(w, r, false)
}

// serveThumbnail answers both thumbnail endpoints.
func (h *Handler) serveThumbnail(w http.ResponseWriter, r *http.Request, legacy bool) error {
	serverName, err := h.begin(w, r, legacy)
	if err != nil {
		return err
	}
	width, err := queryInt(r, "width", 0, true)
	if err != nil {
		return err
	}
	height, err := queryInt(r, "height", 0, true)
	if err != nil {
		return err
	}
	method := "scale"
	if q := r.URL.Query(); q.Has("method") {
		method = q.Get("method")
	}
	// animated is accepted (and checked); Sluice serves still thumbnails.
	if _, err := queryBool(r, "animated", false); err != nil {
		return err
	}
	d, err := wait(r)
	if err != nil {
		return err
	}
	if serverName != h.svc.ServerName() {
		return h.svc.RemoteMedia(legacy)
	}
	t, err := h.svc.GetThumbnail(r.Context(), ThumbnailRequest{MediaID: r.PathValue("mediaId"), Width: width, Height: height,
		Method: method, Wait: d, Legacy: legacy, Path: r.URL.Path})
	if err != nil {
		return err
	}
	if notModified(w, r) {
		return nil
	}
	f, err := os.Open(t.Path)
	if err != nil {
		return ErrNotFound
	}
	defer f.Close()
	serveFile(w, f, t.Type, t.Length, "")
	return nil
}

// setSecurityHeaders sets Synapse's headers for media (Cross-Origin-
// Resource-Policy, the sandboxing Content-Security-Policy, Referrer-
// Policy) and X-Content-Type-Options: nosniff, which Synapse does not set:
// a browser must never guess HTML out of an upload.
func setSecurityHeaders(h http.Header) {
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; "+
		"style-src 'unsafe-inline'; media-src 'self'; object-src 'self';")
	h.Set("X-Content-Security-Policy", "sandbox;")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// immutableETag is Synapse's constant ETag for media.
const immutableETag = "1"

// notModified answers 304 to a request that has the media cached.
func notModified(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("If-None-Match") != immutableETag {
		return false
	}
	w.WriteHeader(http.StatusNotModified)
	return true
}

// textTypes get "; charset=UTF-8" when given bare (Synapse's
// TEXT_CONTENT_TYPES).
var textTypes = map[string]bool{
	"text/css": true, "text/csv": true, "text/html": true, "text/calendar": true, "text/plain": true,
	"text/javascript": true, "application/json": true, "application/ld+json": true, "application/rtf": true,
	"image/svg+xml": true, "text/xml": true,
}

// inlineTypes are the only types served inline (Synapse's
// INLINE_CONTENT_TYPES: no HTML, no SVG); everything else is an attachment.
var inlineTypes = map[string]bool{
	"text/css": true, "text/plain": true, "text/csv": true, "application/json": true, "application/ld+json": true,
	"image/jpeg": true, "image/gif": true, "image/png": true, "image/apng": true, "image/webp": true, "image/avif": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/quicktime": true,
	"audio/mp4": true, "audio/webm": true, "audio/aac": true, "audio/mpeg": true, "audio/ogg": true, "audio/wave": true,
	"audio/wav": true, "audio/x-wav": true, "audio/x-pn-wav": true, "audio/flac": true, "audio/x-flac": true,
}

// ContentDisposition is Synapse's header for a media type and file name:
// inline only for inlineTypes, the name as a token when it is one, else as
// a percent-encoded filename* with the utf-8 charset.
func ContentDisposition(mediaType, uploadName string) string {
	d := "attachment"
	// The whole type must parse as one media type: a browser reads
	// "text/plain;, text/html" as its last type, text/html, while a check
	// of the part before ";" sees text/plain (Synapse serves that inline).
	if t, _, err := mime.ParseMediaType(mediaType); err == nil && !strings.Contains(mediaType, ",") && inlineTypes[t] {
		d = "inline"
	}
	if uploadName == "" {
		return d
	}
	if isToken(uploadName) {
		return d + "; filename=" + uploadName
	}
	return d + "; filename*=utf-8''" + quote(uploadName)
}

// ContentType is the Content-Type a media is served with.
func ContentType(mediaType string) string {
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	if textTypes[strings.ToLower(mediaType)] {
		return mediaType + "; charset=UTF-8"
	}
	return mediaType
}

// isToken is Synapse's _can_encode_filename_as_token (RFC 2616 token).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 127 || c <= 32 || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// quote is Python's urllib.parse.quote of the UTF-8 bytes: everything but
// letters, digits, "_.-~" and "/" percent-encoded.
func quote(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// serveFile writes a media file with Synapse's headers, through a small
// pooled buffer.
func serveFile(w http.ResponseWriter, f *os.File, mediaType string, size int64, uploadName string) {
	hd := w.Header()
	hd.Set("Content-Type", ContentType(mediaType))
	hd.Set("Content-Disposition", ContentDisposition(mediaType, uploadName))
	hd.Set("Cache-Control", "public,max-age=86400,s-maxage=0,proxy-revalidate")
	hd.Set("ETag", immutableETag)
	hd.Set("Content-Length", strconv.FormatInt(size, 10))
	hd.Set("X-Robots-Tag", "noindex, nofollow, noarchive, noimageindex")
	w.WriteHeader(http.StatusOK)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	// The wrapper hides *os.File's WriterTo, which would use a buffer of
	// its own.
	_, _ = io.CopyBuffer(w, struct{ io.Reader }{f}, *bp)
}
