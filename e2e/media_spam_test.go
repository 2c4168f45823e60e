package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/internal/testserver"
	"github.com/sluice-im/sluice/module"
)

// test.MediaSpam implements check_media_file_for_spam as its config says:
//
//	check_media_file_for_spam: false | true | error | panic | hang | thumbnail_true
//
// (thumbnail_true: spam for thumbnails only). It reads the whole file on
// each call and records what it was given and read under its id.
type mediaSpamConfig struct {
	ID       string `yaml:"id"`
	Behavior string `yaml:"check_media_file_for_spam"`
}

// mediaSpamCall is one recorded call.
type mediaSpamCall struct {
	Info   module.FileInfo
	SHA256 [32]byte
	Read   int64
}

var (
	mediaSpamMu    sync.Mutex
	mediaSpamCalls = map[string][]mediaSpamCall{}
)

func mediaSpamCallsOf(id string) []mediaSpamCall {
	mediaSpamMu.Lock()
	defer mediaSpamMu.Unlock()
	return append([]mediaSpamCall(nil), mediaSpamCalls[id]...)
}

func init() {
	module.Register("test.MediaSpam", module.Factory{
		ParseConfig: func(raw module.RawConfig) (any, error) {
			var c mediaSpamConfig
			if err := raw.Decode(&c); err != nil {
				return nil, err
			}
			return c, nil
		},
		New: func(config any, api *module.API) (any, error) {
			c := config.(mediaSpamConfig)
			return nil, api.RegisterSpamCheckerCallbacks(module.SpamCheckerCallbacks{
				CheckMediaFileForSpam: func(ctx context.Context, file io.Reader, info module.FileInfo) (bool, error) {
					h := sha256.New()
					n, err := io.Copy(h, file)
					if err != nil {
						return false, err
					}
					call := mediaSpamCall{Info: info, Read: n}
					h.Sum(call.SHA256[:0])
					mediaSpamMu.Lock()
					mediaSpamCalls[c.ID] = append(mediaSpamCalls[c.ID], call)
					mediaSpamMu.Unlock()
					switch c.Behavior {
					case "true":
						return true, nil
					case "thumbnail_true":
						return info.Thumbnail != nil, nil
					case "error":
						return false, errors.New("media spam checker failed")
					case "panic":
						panic("media spam checker panicked")
					case "hang":
						<-modHangRelease // ignores its context, on purpose
						return false, nil
					}
					return false, nil
				},
			})
		},
	})
}

// mediaSpamYAML configures one test.MediaSpam module (timeout 300ms).
func mediaSpamYAML(id, behavior, extra string) string {
	return convRegistrationOn + extra + "modules:\n  - module: test.MediaSpam\n    timeout: 300ms\n    config: {id: " + id +
		", check_media_file_for_spam: '" + behavior + "'}\n"
}

// mediaExpectNothingLeft checks that a rejected upload left no file in the
// media store and no row in the database (created: the media ID came from
// /create, whose row stays, without content).
func mediaExpectNothingLeft(t *testing.T, s *testserver.Server, mediaID string, created bool) {
	t.Helper()
	if files := mediaFiles(t, s); len(files) != 0 {
		t.Errorf("media store has %v after a rejected upload", files)
	}
	m, err := s.Srv.Store().GetLocalMedia(context.Background(), mediaID)
	if created {
		if err != nil || m.Uploaded() || m.MediaType != "" || m.SHA256 != "" {
			t.Errorf("created media %s after a rejected upload: %+v, %v", mediaID, m, err)
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("media %s is in the database after a rejected upload (%v)", mediaID, err)
	}
	if th, _ := s.Srv.Store().LocalThumbnails(context.Background(), mediaID); len(th) != 0 {
		t.Errorf("media %s has thumbnails after a rejected upload", mediaID)
	}
}

func TestMediaSpamCheckerNotSpam(t *testing.T) {
	const modID = "ms-false"
	testserver.ForEachDB(t, testserver.Options{YAML: mediaSpamYAML(modID, "false", "")}, func(t *testing.T, s *testserver.Server) {
		before := len(mediaSpamCallsOf(modID))
		userID, tok := s.Register(t, "alice", "password-alice")
		data := mediaPNG(t, 400, 300)
		id := mediaID(t, s, tok, "image/png", "pic.png", data)
		calls := mediaSpamCallsOf(modID)[before:]
		if len(calls) == 0 {
			t.Fatal("check_media_file_for_spam was not called")
		}
		// The upload first, with its FileInfo and the whole file.
		first := calls[0]
		want := module.FileInfo{FileID: id, ContentType: "image/png", Length: int64(len(data)), UploadName: "pic.png", UserID: userID}
		if first.Info != want {
			t.Errorf("FileInfo %+v, want %+v", first.Info, want)
		}
		if first.Read != int64(len(data)) || first.SHA256 != sha256.Sum256(data) {
			t.Errorf("the module read %d bytes (of %d), hash match %v", first.Read, len(data), first.SHA256 == sha256.Sum256(data))
		}
		// Then each thumbnail made at upload, with FileInfo.Thumbnail set.
		thumbs, err := s.Srv.Store().LocalThumbnails(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		// 400x300: 32x32 and 96x96 crops, 320x240 and 400x300 scales (640x480
		// and 800x600 both come down to the source's size).
		if len(calls)-1 != len(thumbs) || len(thumbs) != 4 {
			t.Fatalf("%d thumbnail checks for %d thumbnails", len(calls)-1, len(thumbs))
		}
		for _, c := range calls[1:] {
			ti := c.Info.Thumbnail
			if ti == nil || c.Info.FileID != id || ti.Length != c.Read || ti.Type != "image/png" || ti.Width == 0 || ti.Height == 0 ||
				(ti.Method != "crop" && ti.Method != "scale") || c.Info.UserID != userID {
				t.Errorf("thumbnail check %+v (thumbnail %+v, read %d)", c.Info, ti, c.Read)
			}
		}
		r := mediaGet(t, s, "/_matrix/client/v1/media/download/test.local/"+id, tok, nil).Expect(t, 200, "")
		if !bytes.Equal(r.Raw, data) {
			t.Fatal("download differs")
		}
	})
}

func TestMediaSpamCheckerRejects(t *testing.T) {
	for _, tc := range []struct {
		behavior     string
		status       int
		errcode, msg string
	}{
		{"true", 400, "M_UNKNOWN", "Bad content"},
		{"error", 500, "M_UNKNOWN", "Internal server error"},
		{"panic", 500, "M_UNKNOWN", "Internal server error"},
		{"hang", 500, "M_UNKNOWN", "Internal server error"},
	} {
		t.Run(tc.behavior, func(t *testing.T) {
			modID := "ms-" + tc.behavior
			testserver.ForEachDB(t, testserver.Options{YAML: mediaSpamYAML(modID, tc.behavior, "")}, func(t *testing.T, s *testserver.Server) {
				tok := mediaUser(t, s, "alice")
				for _, upload := range []struct {
					name string
					do   func() testserver.Response
				}{
					{"POST", func() testserver.Response { return mediaUpload(t, s, tok, "image/png", "x.png", mediaPNG(t, 64, 64)) }},
					{"create+PUT", func() testserver.Response {
						id := strings.TrimPrefix(s.Do(t, "POST", "/_matrix/media/v1/create", nil, tok).Expect(t, 200, "").Str("content_uri"), "mxc://test.local/")
						hdr := convBearer(tok)
						hdr.Set("Content-Type", "image/png")
						r := s.DoHeaders(t, "PUT", "/_matrix/media/v3/upload/test.local/"+id, hdr, mediaPNG(t, 64, 64))
						// The created ID stays, without content.
						if m, err := s.Srv.Store().GetLocalMedia(context.Background(), id); err != nil || m.Uploaded() {
							t.Errorf("created media after a rejected PUT: %+v, %v", m, err)
						}
						convExpect(t, mediaGet(t, s, "/_matrix/client/v1/media/download/test.local/"+id+"?timeout_ms=0", tok, nil), 504, "M_NOT_YET_UPLOADED", "")
						return r
					}},
				} {
					before := len(mediaSpamCallsOf(modID))
					convExpect(t, upload.do(), tc.status, tc.errcode, tc.msg)
					calls := mediaSpamCallsOf(modID)[before:]
					if len(calls) != 1 || calls[0].Info.Thumbnail != nil {
						t.Fatalf("%s: calls %+v, want one for the upload", upload.name, calls)
					}
					mediaExpectNothingLeft(t, s, calls[0].Info.FileID, upload.name != "POST")
				}
				// The server goes on serving.
				mediaGet(t, s, "/_matrix/client/v1/media/config", tok, nil).Expect(t, 200, "")
			})
		})
	}
}

// TestMediaSpamCheckerThumbnails: a thumbnail the module rejects is not
// stored (and, as in Synapse, stops the upload's thumbnailing without
// failing the upload); one made on request with dynamic_thumbnails is a
// 404 with the errcode of a boolean true, M_FORBIDDEN.
func TestMediaSpamCheckerThumbnails(t *testing.T) {
	for _, dynamic := range []bool{false, true} {
		extra := ""
		if dynamic {
			extra = "dynamic_thumbnails: true\n"
		}
		name := map[bool]string{false: "pregenerated", true: "dynamic"}[dynamic]
		t.Run(name, func(t *testing.T) {
			testserver.ForEachDB(t, testserver.Options{YAML: mediaSpamYAML("ms-thumb-"+name, "thumbnail_true", extra)}, func(t *testing.T, s *testserver.Server) {
				tok := mediaUser(t, s, "alice")
				data := mediaPNG(t, 100, 100)
				id := mediaID(t, s, tok, "image/png", "", data)
				if th, _ := s.Srv.Store().LocalThumbnails(context.Background(), id); len(th) != 0 {
					t.Fatalf("thumbnails %+v stored despite the spam checker", th)
				}
				if files := mediaFiles(t, s); len(files) != 1 || !strings.HasPrefix(files[0], "local_content") {
					t.Fatalf("media store has %v, want the upload only", files)
				}
				r := mediaGet(t, s, "/_matrix/client/v1/media/thumbnail/test.local/"+id+"?width=32&height=32&method=crop", tok, nil)
				if dynamic {
					convExpect(t, r, 404, "M_FORBIDDEN", "Not found")
				} else {
					convExpect(t, r, 400, "M_UNKNOWN", "")
				}
				if files := mediaFiles(t, s); len(files) != 1 {
					t.Fatalf("media store has %v after a rejected thumbnail", files)
				}
				mediaGet(t, s, "/_matrix/client/v1/media/download/test.local/"+id, tok, nil).Expect(t, 200, "")
			})
		})
	}
}

// TestMediaConcurrentPut: a PUT to a media ID while another PUT to it is
// under way (held here by a spam checker that hangs until its timeout)
// gets Synapse's 409 "Media ID cannot be overwritten".
func TestMediaConcurrentPut(t *testing.T) {
	yaml := convRegistrationOn + "modules:\n  - module: test.MediaSpam\n    timeout: 1s\n    config: {id: ms-concurrent, check_media_file_for_spam: hang}\n"
	testserver.ForEachDB(t, testserver.Options{YAML: yaml}, func(t *testing.T, s *testserver.Server) {
		tok := mediaUser(t, s, "alice")
		id := strings.TrimPrefix(s.Do(t, "POST", "/_matrix/media/v1/create", nil, tok).Expect(t, 200, "").Str("content_uri"), "mxc://test.local/")
		hdr := convBearer(tok)
		hdr.Set("Content-Type", "text/plain")
		before := len(mediaSpamCallsOf("ms-concurrent"))
		first := make(chan testserver.Response, 1)
		go func() { first <- s.DoHeaders(t, "PUT", "/_matrix/media/v3/upload/test.local/"+id, hdr, []byte("one")) }()
		for len(mediaSpamCallsOf("ms-concurrent")) == before {
			time.Sleep(10 * time.Millisecond) // until the first PUT is in the spam check
		}
		convExpect(t, s.DoHeaders(t, "PUT", "/_matrix/media/v3/upload/test.local/"+id, hdr, []byte("two")), 409, "M_CANNOT_OVERWRITE_MEDIA", "Media ID cannot be overwritten")
		convExpect(t, <-first, 500, "M_UNKNOWN", "Internal server error") // the checker timed out
		mediaExpectNothingLeft(t, s, id, true)
	})
}
