package httpx

import (
	"net/http"
	"strings"
)

// bodyLimitExempt reports the requests whose bodies MaxBodySize does not
// bound: media uploads (POST /_matrix/media/{r0,v1,v3}/upload and PUT
// /_matrix/media/v3/upload/{serverName}/{mediaId}). The media repository
// streams them to disk and bounds them by max_upload_size itself.
func bodyLimitExempt(r *http.Request) bool {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		return false
	}
	segs := strings.Split(r.URL.Path, "/")
	return len(segs) >= 5 && segs[0] == "" && segs[1] == "_matrix" && segs[2] == "media" && segs[4] == "upload"
}
