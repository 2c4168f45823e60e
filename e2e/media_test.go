package e2e_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/spectest"
	"github.com/sluice-im/sluice/internal/testserver"
)

// Helpers of the media tests are prefixed media.

// mediaPNG is a w×h PNG with a gradient (so that scaling has work to do).
func mediaPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mediaJPEG is a w×h JPEG.
func mediaJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), 64, uint8(y * 255 / h), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mediaUser registers a user and returns its token.
func mediaUser(t testing.TB, s *testserver.Server, name string) string {
	t.Helper()
	_, tok := s.Register(t, name, "password-"+name)
	return tok
}

// mediaUpload uploads body with a Content-Type and an optional file name.
func mediaUpload(t testing.TB, s *testserver.Server, token, contentType, filename string, body []byte) testserver.Response {
	t.Helper()
	path := "/_matrix/media/v3/upload"
	if filename != "" {
		path += "?filename=" + filename
	}
	hdr := convBearer(token)
	if contentType != "" {
		hdr.Set("Content-Type", contentType)
	}
	return s.DoHeaders(t, "POST", path, hdr, body)
}

// mediaID uploads and returns the media ID (the server is test.local).
func mediaID(t testing.TB, s *testserver.Server, token, contentType, filename string, body []byte) string {
	t.Helper()
	r := mediaUpload(t, s, token, contentType, filename, body).Expect(t, 200, "")
	uri := r.Str("content_uri")
	id, ok := strings.CutPrefix(uri, "mxc://test.local/")
	if !ok || id == "" {
		t.Fatalf("content_uri %q", uri)
	}
	return id
}

// mediaGet is a GET with an optional token and extra headers.
func mediaGet(t testing.TB, s *testserver.Server, path, token string, hdr http.Header) testserver.Response {
	t.Helper()
	h := http.Header{}
	for k, v := range hdr {
		h[k] = v
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return s.DoHeaders(t, "GET", path, h, nil)
}

// mediaDecode decodes a served image and checks its format and size.
func mediaDecode(t testing.TB, r testserver.Response, format string, w, h int) {
	t.Helper()
	img, got, err := image.Decode(bytes.NewReader(r.Raw))
	if err != nil {
		t.Fatalf("thumbnail does not decode: %v (Content-Type %s, %d bytes)", err, r.Header.Get("Content-Type"), len(r.Raw))
	}
	if got != format {
		t.Fatalf("thumbnail format %s, want %s", got, format)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("thumbnail is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
}

// mediaFiles lists the regular files under the media store.
func mediaFiles(t testing.TB, s *testserver.Server) []string {
	t.Helper()
	var out []string
	root := s.Config.MediaStorePath
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// mediaExpectSecurityHeaders checks the headers every served media has.
func mediaExpectSecurityHeaders(t testing.TB, r testserver.Response) {
	t.Helper()
	for k, want := range map[string]string{
		"Cross-Origin-Resource-Policy": "cross-origin",
		"X-Content-Type-Options":       "nosniff",
		"Content-Security-Policy": "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; " +
			"style-src 'unsafe-inline'; media-src 'self'; object-src 'self';",
		"Referrer-Policy":             "no-referrer",
		"Access-Control-Allow-Origin": "*",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
}

func TestMediaRoundTrip(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		pngData := mediaPNG(t, 1000, 500)
		up := mediaUpload(t, s, tok, "image/png", "cat.png", pngData).Expect(t, 200, "")
		spectest.Response(t, "content-repo.yaml", "POST", "/media/v3/upload", 200).CheckJSON(t, up.Raw)
		id := strings.TrimPrefix(up.Str("content_uri"), "mxc://test.local/")

		// The authenticated download: the bytes, Synapse's headers.
		r := mediaGet(t, s, "/_matrix/client/v1/media/download/test.local/"+id, tok, nil).Expect(t, 200, "")
		if !bytes.Equal(r.Raw, pngData) {
			t.Fatalf("downloaded %d bytes, uploaded %d", len(r.Raw), len(pngData))
		}
		for k, want := range map[string]string{
			"Content-Type": "image/png", "Content-Disposition": "inline; filename=cat.png",
			"Cache-Control": "public,max-age=86400,s-maxage=0,proxy-revalidate", "ETag": "1",
		} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("%s: %q, want %q", k, got, want)
			}
		}
		mediaExpectSecurityHeaders(t, r)
		// A name in the path replaces the upload's, percent-encoded when it
		// is not a token.
		r = mediaGet(t, s, "/_matrix/client/v1/media/download/test.local/"+id+"/un%20chat%C3%A9.png", tok, nil).Expect(t, 200, "")
		if got := r.Header.Get("Content-Disposition"); got != "inline; filename*=utf-8''un%20chat%C3%A9.png" {
			t.Errorf("Content-Disposition %q", got)
		}
		// A cached copy is still good.
		r = mediaGet(t, s, "/_matrix/client/v1/media/download/test.local/"+id, tok, http.Header{"If-None-Match": {"1"}})
		if r.Status != 304 || len(r.Raw) != 0 {
			t.Fatalf("If-None-Match: status %d, %d bytes", r.Status, len(r.Raw))
		}
		// The legacy path does not serve media uploaded with
		// enable_authenticated_media on (the default), as in Synapse.
		convExpect(t, mediaGet(t, s, "/_matrix/media/v3/download/test.local/"+id, "", nil), 404, "M_NOT_FOUND", "Not found")
		convExpect(t, mediaGet(t, s, "/_matrix/media/v3/thumbnail/test.local/"+id+"?width=32&height=32", "", nil), 404, "M_NOT_FOUND", "Not found")

		// Thumbnails made at upload: PNG for a PNG source.
		for _, tc := range []struct {
			q    string
			w, h int
		}{
			{"width=32&height=32&method=crop", 32, 32},
			{"width=96&height=96&method=crop", 96, 96},
			{"width=90&height=90&method=crop", 96, 96}, // the nearest crop at least as large
			{"width=320&height=240&method=scale", 320, 160},
			{"width=300&height=200", 320, 160}, // scale is the default method
			{"width=800&height=600&method=scale&animated=true", 800, 400},
			{"width=2000&height=2000&method=scale", 800, 400}, // the largest there is
		} {
			r := mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+id+"?"+tc.q, tok, nil).Expect(t, 200, "")
			if ct := r.Header.Get("Content-Type"); ct != "image/png" {
				t.Errorf("%s: Content-Type %q", tc.q, ct)
			}
			mediaDecode(t, r, "png", tc.w, tc.h)
			mediaExpectSecurityHeaders(t, r)
		}
		thumbs, err := s.Srv.Store().LocalThumbnails(context.Background(), id)
		if err != nil || len(thumbs) != 5 {
			t.Fatalf("thumbnails %v, %v; want 5", thumbs, err)
		}

		// A JPEG: JPEG thumbnails.
		jid := mediaID(t, s, tok, "image/jpeg", "", mediaJPEG(t, 640, 480))
		r = mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+jid+"?width=320&height=240&method=scale", tok, nil).Expect(t, 200, "")
		if ct := r.Header.Get("Content-Type"); ct != "image/jpeg" {
			t.Errorf("JPEG thumbnail Content-Type %q", ct)
		}
		mediaDecode(t, r, "jpeg", 320, 240)
		r = mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+jid+"?width=96&height=96&method=crop", tok, nil).Expect(t, 200, "")
		mediaDecode(t, r, "jpeg", 96, 96)
		// Scale never enlarges: 800x600 of a 640x480 image is 640x480.
		r = mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+jid+"?width=800&height=600", tok, nil).Expect(t, 200, "")
		mediaDecode(t, r, "jpeg", 640, 480)

		// The configuration, on both paths.
		for _, p := range []string{"/_matrix/client/v1/media/config", "/_matrix/media/v3/config", "/_matrix/media/r0/config"} {
			r := mediaGet(t, s, p, tok, nil).Expect(t, 200, "")
			convJSONEqual(t, p, r.Body, `{"m.upload.size": 52428800}`)
		}
		spectest.Response(t, "authed-content-repo.yaml", "GET", "/media/config", 200).CheckJSON(t,
			mediaGet(t, s, "/_matrix/client/v1/media/config", tok, nil).Raw)
		spectest.Response(t, "content-repo.yaml", "GET", "/media/v3/config", 200).CheckJSON(t,
			mediaGet(t, s, "/_matrix/media/v3/config", tok, nil).Raw)
	})
}

func TestMediaSafeServing(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		for _, tc := range []struct {
			ct, name, wantType, wantDisp string
		}{
			{"text/html", "page.html", "text/html; charset=UTF-8", "attachment; filename=page.html"},
			{"text/html; charset=utf-8", "", "text/html; charset=utf-8", "attachment"},
			{"image/svg+xml", "x.svg", "image/svg+xml; charset=UTF-8", "attachment; filename=x.svg"},
			{"text/plain", "a b.txt", "text/plain; charset=UTF-8", "inline; filename*=utf-8''a%20b.txt"},
			{"", "", "application/octet-stream", "attachment"},
			{"application/pdf", "r\u00e9sum\u00e9.pdf", "application/pdf", "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf"},
			{"video/mp4", "clip.mp4", "video/mp4", "inline; filename=clip.mp4"},
		} {
			name := tc.name
			if name != "" {
				name = strings.ReplaceAll(strings.ReplaceAll(name, " ", "%20"), "\u00e9", "%C3%A9")
			}
			id := mediaID(t, s, tok, tc.ct, name, []byte("<html><script>alert(1)</script></html>"))
			r := mediaGet(t, s, "/_matrix/client/v1/media/download/test.local/"+id, tok, nil).Expect(t, 200, "")
			if got := r.Header.Get("Content-Type"); got != tc.wantType {
				t.Errorf("%q: Content-Type %q, want %q", tc.ct, got, tc.wantType)
			}
			if got := r.Header.Get("Content-Disposition"); got != tc.wantDisp {
				t.Errorf("%q: Content-Disposition %q, want %q", tc.ct, got, tc.wantDisp)
			}
			mediaExpectSecurityHeaders(t, r)
		}
	})
}

// TestMediaLegacyEndpoints runs with enable_authenticated_media: false, where
// the unauthenticated /_matrix/media paths serve everything; media uploaded
// then stays there after the setting is turned on, as in Synapse.
func TestMediaLegacyEndpoints(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn + "enable_authenticated_media: false\n"}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		data := mediaPNG(t, 200, 100)
		id := mediaID(t, s, tok, "image/png", "a.png", data)
		for _, v := range []string{"v3", "r0", "v1"} {
			r := mediaGet(t, s, "/_matrix/media/"+v+"/download/test.local/"+id, "", nil).Expect(t, 200, "")
			if !bytes.Equal(r.Raw, data) {
				t.Fatalf("%s: wrong bytes", v)
			}
			mediaExpectSecurityHeaders(t, r)
			r = mediaGet(t, s, "/_matrix/media/"+v+"/download/test.local/"+id+"/b.png", "", nil).Expect(t, 200, "")
			if got := r.Header.Get("Content-Disposition"); got != "inline; filename=b.png" {
				t.Errorf("Content-Disposition %q", got)
			}
			r = mediaGet(t, s, "/_matrix/media/"+v+"/thumbnail/test.local/"+id+"?width=32&height=32&method=crop", "", nil).Expect(t, 200, "")
			mediaDecode(t, r, "png", 32, 32)
		}
		// Uploads on r0 and v1 too.
		for _, v := range []string{"r0", "v1"} {
			s.DoHeaders(t, "POST", "/_matrix/media/"+v+"/upload", convBearer(tok), []byte("x")).Expect(t, 200, "")
		}
		// Remote media: no federation, so Synapse's answer to a failed fetch.
		convExpect(t, mediaGet(t, s, "/_matrix/media/v3/download/other.example/abcdefghij", "", nil), 502, "M_UNKNOWN", "Failed to fetch remote media")
		convExpect(t, mediaGet(t, s, "/_matrix/media/v3/thumbnail/other.example/abcdefghij?width=1&height=1", "", nil), 502, "M_UNKNOWN", "Failed to fetch remote media")

		// Turned on: the media of before is still served on the legacy
		// path, a new upload is not.
		on := true
		s.Config.EnableAuthenticatedMedia = &on
		s = testserver.Restart(t, s)
		tok = s.Login(t, "alice", "password-alice")
		mediaGet(t, s, "/_matrix/media/v3/download/test.local/"+id, "", nil).Expect(t, 200, "")
		id2 := mediaID(t, s, tok, "image/png", "", data)
		convExpect(t, mediaGet(t, s, "/_matrix/media/v3/download/test.local/"+id2, "", nil), 404, "M_NOT_FOUND", "Not found")
		mediaGet(t, s, "/_matrix/client/v1/media/download/test.local/"+id2, tok, nil).Expect(t, 200, "")
	})
}

func TestMediaCreateAndPut(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn + "max_pending_media_uploads: 3\n"}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		bob := mediaUser(t, s, "bob")
		create := func(token string) string {
			t.Helper()
			r := s.Do(t, "POST", "/_matrix/media/v1/create", nil, token).Expect(t, 200, "")
			spectest.Response(t, "content-repo.yaml", "POST", "/media/v1/create", 200).CheckJSON(t, r.Raw)
			exp, _ := r.Body["unused_expires_at"].(float64)
			if d := time.UnixMilli(int64(exp)).Sub(time.Now()); d < 23*time.Hour || d > 25*time.Hour {
				t.Fatalf("unused_expires_at %v is not in 24 hours", exp)
			}
			return strings.TrimPrefix(r.Str("content_uri"), "mxc://test.local/")
		}
		id := create(tok)
		put := func(token, server, mediaID, ct string, body []byte) testserver.Response {
			hdr := convBearer(token)
			hdr.Set("Content-Type", ct)
			return s.DoHeaders(t, "PUT", "/_matrix/media/v3/upload/"+server+"/"+mediaID+"?filename=later.png", hdr, body)
		}
		// Not uploaded yet: 504 once the wait is over.
		convExpect(t, mediaGet(t, s, "/_matrix/client/v1/media/download/test.local/"+id+"?timeout_ms=0", tok, nil), 504, "M_NOT_YET_UPLOADED", "Media has not been uploaded yet")
		// Errors of the PUT, Synapse's.
		convExpect(t, put(tok, "other.example", id, "image/png", []byte("x")), 404, "M_NOT_FOUND", "Non-local server name specified")
		convExpect(t, put(tok, "test.local", "unknownmediaidxyz", "image/png", []byte("x")), 404, "M_NOT_FOUND", "Unknown media ID")
		convExpect(t, put(bob, "test.local", id, "image/png", []byte("x")), 403, "M_FORBIDDEN", "Only the creator of the media ID can upload to it")
		convExpect(t, put("", "test.local", id, "image/png", []byte("x")), 401, "M_MISSING_TOKEN", "")

		// A download waiting for the content gets it when it comes.
		data := mediaPNG(t, 120, 80)
		done := make(chan testserver.Response, 1)
		go func() {
			done <- mediaGet(t, s, "/_matrix/client/v1/media/download/test.local/"+id+"?timeout_ms=10000", tok, nil)
		}()
		time.Sleep(300 * time.Millisecond)
		r := put(tok, "test.local", id, "image/png", data).Expect(t, 200, "")
		convJSONEqual(t, "PUT body", r.Body, `{}`)
		r = <-done
		if r.Status != 200 || !bytes.Equal(r.Raw, data) {
			t.Fatalf("waiting download: status %d, %d bytes", r.Status, len(r.Raw))
		}
		if got := r.Header.Get("Content-Disposition"); got != "inline; filename=later.png" {
			t.Errorf("Content-Disposition %q", got)
		}
		r = mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+id+"?width=32&height=32&method=crop", tok, nil).Expect(t, 200, "")
		mediaDecode(t, r, "png", 32, 32)
		convExpect(t, put(tok, "test.local", id, "image/png", data), 409, "M_CANNOT_OVERWRITE_MEDIA", "Media ID already has content")

		// max_pending_media_uploads: 3 per user.
		create(tok)
		create(tok)
		create(tok)
		r = convExpect(t, s.Do(t, "POST", "/_matrix/media/v1/create", nil, tok), 429, "M_LIMIT_EXCEEDED", "")
		if ms, _ := r.Body["retry_after_ms"].(float64); ms <= 0 {
			t.Errorf("retry_after_ms %v", r.Body["retry_after_ms"])
		}
		create(bob)
		convExpect(t, s.Do(t, "POST", "/_matrix/media/v1/create", nil, ""), 401, "M_MISSING_TOKEN", "")
	})
}

func TestMediaErrors(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn + "max_upload_size: 1K\n"}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		textID := mediaID(t, s, tok, "text/plain", "", []byte("hello"))
		dl := "/_matrix/client/v1/media/download/"
		th := "/_matrix/client/v1/media/thumbnail/"
		for _, tc := range []struct {
			name, path, token string
			status            int
			errcode, msg      string
		}{
			{"download without token", dl + "test.local/" + textID, "", 401, "M_MISSING_TOKEN", ""},
			{"download unknown", dl + "test.local/unknownmediaid", tok, 404, "M_NOT_FOUND", "Not found '" + dl + "test.local/unknownmediaid'"},
			{"download remote", dl + "other.example/abcdefghij", tok, 502, "M_UNKNOWN", "Failed to fetch remote media"},
			{"download bad server name", dl + "bad_server!/abcdefghij", tok, 400, "M_INVALID_PARAM", "Server name 'bad_server!' has an invalid format"},
			{"download bad timeout", dl + "test.local/" + textID + "?timeout_ms=soon", tok, 400, "M_INVALID_PARAM", "Query parameter timeout_ms must be an integer"},
			{"legacy download remote", "/_matrix/media/v3/download/other.example/abcdefghij", "", 404, "M_NOT_FOUND", "Not found"},
			{"legacy download remote, allow_remote=false", "/_matrix/media/v3/download/other.example/abcdefghij?allow_remote=false", "", 404, "M_NOT_FOUND",
				"Not found '/_matrix/media/v3/download/other.example/abcdefghij'"},
			{"legacy download unknown", "/_matrix/media/v3/download/test.local/unknownmediaid", "", 404, "M_NOT_FOUND", "Not found '/_matrix/media/v3/download/test.local/unknownmediaid'"},
			{"thumbnail without token", th + "test.local/" + textID + "?width=1&height=1", "", 401, "M_MISSING_TOKEN", ""},
			{"thumbnail without width", th + "test.local/" + textID + "?height=1", tok, 400, "M_MISSING_PARAM", "Missing required integer query parameter width"},
			{"thumbnail without height", th + "test.local/" + textID + "?width=1", tok, 400, "M_MISSING_PARAM", "Missing required integer query parameter height"},
			{"thumbnail bad width", th + "test.local/" + textID + "?width=big&height=1", tok, 400, "M_INVALID_PARAM", "Query parameter width must be an integer"},
			{"thumbnail negative height", th + "test.local/" + textID + "?width=1&height=-4", tok, 400, "M_INVALID_PARAM", "Query parameter height must be a positive integer."},
			{"thumbnail bad animated", th + "test.local/" + textID + "?width=1&height=1&animated=yes", tok, 400, "M_INVALID_PARAM",
				"Boolean query parameter 'animated' must be one of ['true', 'false']"},
			{"thumbnail of text", th + "test.local/" + textID + "?width=32&height=32", tok, 400, "M_UNKNOWN",
				"Cannot find any thumbnails for the requested media ('" + th + "test.local/" + textID + "'). This might mean the media is not a " +
					"supported_media_format=(image/jpeg, image/jpg, image/webp, image/gif, image/png) or that thumbnailing failed for some other reason. " +
					"(Dynamic thumbnails are disabled on this server.)"},
			{"thumbnail unknown", th + "test.local/unknownmediaid?width=1&height=1", tok, 404, "M_NOT_FOUND", "Not found '" + th + "test.local/unknownmediaid'"},
			{"thumbnail remote", th + "other.example/abcdefghij?width=1&height=1", tok, 502, "M_UNKNOWN", "Failed to fetch remote media"},
			{"config without token", "/_matrix/client/v1/media/config", "", 401, "M_MISSING_TOKEN", ""},
			{"legacy config without token", "/_matrix/media/v3/config", "", 401, "M_MISSING_TOKEN", ""},
			{"config bad token", "/_matrix/client/v1/media/config", "nope", 401, "M_UNKNOWN_TOKEN", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				convExpect(t, mediaGet(t, s, tc.path, tc.token, nil), tc.status, tc.errcode, tc.msg)
			})
		}

		// Uploads.
		convExpect(t, mediaUpload(t, s, "", "text/plain", "", []byte("x")), 401, "M_MISSING_TOKEN", "")
		convExpect(t, mediaUpload(t, s, tok, "text/plain", "", make([]byte, 1025)), 413, "M_TOO_LARGE", "Upload request body is too large")
		mediaUpload(t, s, tok, "text/plain", "", make([]byte, 1024)).Expect(t, 200, "")
		convExpect(t, mediaUpload(t, s, tok, "text/plain", "%FF%FE", []byte("x")), 400, "M_UNKNOWN", `Invalid UTF-8 filename parameter: "\xff\xfe"`)
		// A chunked body has no Content-Length: Synapse refuses it.
		req, err := http.NewRequest("POST", s.URL+"/_matrix/media/v3/upload", io.MultiReader(strings.NewReader("chunked")))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(raw), "Request must specify a Content-Length") {
			t.Fatalf("chunked upload: %d %s", resp.StatusCode, raw)
		}
		// Nothing of the refused uploads is left: two files were accepted.
		files := mediaFiles(t, s)
		if len(files) != 2 {
			t.Fatalf("media store has %v, want the two accepted uploads", files)
		}
		// The server goes on serving.
		mediaGet(t, s, "/_matrix/client/v1/media/config", tok, nil).Expect(t, 200, "")
	})
}

// TestMediaBodyLimit checks that uploads are not bound by the 4 MiB limit
// of JSON bodies, while other endpoints still are.
func TestMediaBodyLimit(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		big := bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16)
		id := mediaID(t, s, tok, "application/octet-stream", "big.bin", big)
		r := mediaGet(t, s, "/_matrix/client/v1/media/download/test.local/"+id, tok, nil).Expect(t, 200, "")
		if !bytes.Equal(r.Raw, big) {
			t.Fatal("5 MiB round trip differs")
		}
		convExpect(t, s.DoHeaders(t, "PUT", "/_matrix/client/v3/user/@alice:test.local/account_data/x", convBearer(tok), big), 413, "M_TOO_LARGE", "")
	})
}

func TestMediaDynamicThumbnails(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn + "dynamic_thumbnails: true\n"}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		id := mediaID(t, s, tok, "image/jpeg", "", mediaJPEG(t, 300, 200))
		before, err := s.Srv.Store().LocalThumbnails(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		path := "/_matrix/client/v1/media/thumbnail/test.local/" + id
		// The exact size asked for, as PNG (Synapse asks for PNG).
		r := mediaGet(t, s, path+"?width=50&height=40&method=crop", tok, nil).Expect(t, 200, "")
		mediaDecode(t, r, "png", 50, 40)
		r = mediaGet(t, s, path+"?width=150&height=150&method=scale", tok, nil).Expect(t, 200, "")
		mediaDecode(t, r, "png", 150, 100)
		after, _ := s.Srv.Store().LocalThumbnails(context.Background(), id)
		if len(after) != len(before)+2 {
			t.Fatalf("thumbnails %d, then %d: want two more", len(before), len(after))
		}
		// Made once, then reused.
		mediaGet(t, s, path+"?width=50&height=40&method=crop", tok, nil).Expect(t, 200, "")
		again, _ := s.Srv.Store().LocalThumbnails(context.Background(), id)
		if len(again) != len(after) {
			t.Fatalf("a second request made another thumbnail")
		}
		textID := mediaID(t, s, tok, "text/plain", "", []byte("not an image"))
		convExpect(t, mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+textID+"?width=32&height=32", tok, nil),
			400, "M_UNKNOWN", "Failed to generate thumbnail.")
		convExpect(t, mediaGet(t, s, path+"?width=0&height=32", tok, nil), 400, "M_UNKNOWN", "Failed to generate thumbnail.")
		convExpect(t, mediaGet(t, s, path+"?width=32&height=32&method=zoom", tok, nil), 400, "M_UNKNOWN", "Failed to generate thumbnail.")
	})
}

// TestMediaThumbnailFormats covers GIF and WebP sources and
// max_image_pixels.
func TestMediaThumbnailFormats(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn + "max_image_pixels: 40000\n"}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		// A GIF (first frame) gets PNG thumbnails.
		var gifData bytes.Buffer
		mediaGIF(t, &gifData, 100, 50)
		id := mediaID(t, s, tok, "image/gif", "", gifData.Bytes())
		r := mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+id+"?width=32&height=32&method=crop", tok, nil).Expect(t, 200, "")
		mediaDecode(t, r, "png", 32, 32)
		// A WebP (a 1x1 lossless one) gets JPEG thumbnails.
		wid := mediaID(t, s, tok, "image/webp", "", mediaWebP)
		r = mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+wid+"?width=32&height=32&method=crop", tok, nil).Expect(t, 200, "")
		mediaDecode(t, r, "jpeg", 32, 32)
		// Over max_image_pixels: no thumbnails.
		bigID := mediaID(t, s, tok, "image/png", "", mediaPNG(t, 250, 200))
		convExpect(t, mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+bigID+"?width=32&height=32", tok, nil), 400, "M_UNKNOWN", "")
		// A file that claims to be a PNG but is not: no thumbnails, and
		// the upload still succeeds.
		badID := mediaID(t, s, tok, "image/png", "", []byte("\x89PNG\r\n\x1a\nbroken"))
		convExpect(t, mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+badID+"?width=32&height=32", tok, nil), 400, "M_UNKNOWN", "")
	})
}

// mediaGIF writes a two-frame w×h GIF.
func mediaGIF(t testing.TB, w io.Writer, width, height int) {
	t.Helper()
	pal := color.Palette{color.Black, color.White, color.RGBA{255, 0, 0, 255}}
	var frames []*image.Paletted
	for f := 0; f < 2; f++ {
		img := image.NewPaletted(image.Rect(0, 0, width, height), pal)
		for y := 0; y < height; y++ {
			for x := 0; x < width; x++ {
				img.SetColorIndex(x, y, uint8((x/10+y/10+f)%3))
			}
		}
		frames = append(frames, img)
	}
	if err := gif.EncodeAll(w, &gif.GIF{Image: frames, Delay: []int{10, 10}}); err != nil {
		t.Fatal(err)
	}
}

// mediaWebP is a 1x1 lossless WebP (Go has no WebP encoder).
var mediaWebP, _ = base64.StdEncoding.DecodeString("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")

func TestMediaCreateRateLimit(t *testing.T) {
	yaml := convRegistrationOn + "rc_media_create: {per_second: 0.001, burst_count: 2}\nmax_pending_media_uploads: 100\n"
	testserver.ForEachDB(t, testserver.Options{YAML: yaml}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		bob := mediaUser(t, s, "bob")
		s.Do(t, "POST", "/_matrix/media/v1/create", nil, tok).Expect(t, 200, "")
		s.Do(t, "POST", "/_matrix/media/v1/create", nil, tok).Expect(t, 200, "")
		r := convExpect(t, s.Do(t, "POST", "/_matrix/media/v1/create", nil, tok), 429, "M_LIMIT_EXCEEDED", "Too Many Requests")
		if ms, _ := r.Body["retry_after_ms"].(float64); ms <= 0 || r.Header.Get("Retry-After") == "" {
			t.Errorf("retry_after_ms %v, Retry-After %q", r.Body["retry_after_ms"], r.Header.Get("Retry-After"))
		}
		s.Do(t, "POST", "/_matrix/media/v1/create", nil, bob).Expect(t, 200, "") // per user
	})
}

// mediaRotatedJPEG is a 200x100 JPEG, red on the left and blue on the
// right, whose EXIF says to turn it a quarter clockwise for display (as
// phones write portrait photos): displayed, it is 100x200, red on top.
func mediaRotatedJPEG(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 200, 100))
	for y := 0; y < 100; y++ {
		for x := 0; x < 200; x++ {
			c := color.RGBA{255, 0, 0, 255}
			if x >= 100 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.Set(x, y, c)
		}
	}
	var j bytes.Buffer
	if err := jpeg.Encode(&j, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	// APP1: Exif, big-endian TIFF, IFD0 with Orientation (0x0112) = 6.
	seg := []byte("Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00")
	out := []byte{0xff, 0xd8, 0xff, 0xe1, 0, byte(len(seg) + 2)}
	out = append(out, seg...)
	return append(out, j.Bytes()[2:]...)
}

// TestMediaThumbnailOrientation: thumbnails of a JPEG follow its EXIF
// orientation, as Synapse's do.
func TestMediaThumbnailOrientation(t *testing.T) {
	testserver.ForEachDB(t, testserver.Options{YAML: convRegistrationOn}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		id := mediaID(t, s, tok, "image/jpeg", "portrait.jpg", mediaRotatedJPEG(t))
		r := mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+id+"?width=320&height=240&method=scale", tok, nil).Expect(t, 200, "")
		mediaDecode(t, r, "jpeg", 100, 200)
		img, _, _ := image.Decode(bytes.NewReader(r.Raw))
		top, bottom := img.At(50, 30), img.At(50, 170)
		if tr, _, tb, _ := top.RGBA(); tr < 0xc000 || tb > 0x4000 {
			t.Errorf("top of the thumbnail is %v, want red", top)
		}
		if br, _, bb, _ := bottom.RGBA(); bb < 0xc000 || br > 0x4000 {
			t.Errorf("bottom of the thumbnail is %v, want blue", bottom)
		}
		r = mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+id+"?width=32&height=32&method=crop", tok, nil).Expect(t, 200, "")
		mediaDecode(t, r, "jpeg", 32, 32)
	})
}
