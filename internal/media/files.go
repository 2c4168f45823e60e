package media

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// The on-disk layout of the media store is Synapse's:
//
//	local_content/ab/cd/efghij…                 the file of media ID abcdefghij…
//	local_thumbnails/ab/cd/efghij…/W-H-TOP-SUB-METHOD   its thumbnails
//	tmp/                                        uploads and thumbnails being written
//
// A file is written under tmp/, checked, and only then renamed into place,
// so a rejected or failed upload leaves nothing behind but an empty tmp/.

// files is the media store on disk.
type files struct {
	root string
}

// errBadMediaID: a media ID that cannot name a file (never one of ours).
var errBadMediaID = errors.New("media: invalid media ID")

// validMediaID reports whether id is safe as path components (Synapse's
// IDs are 24 ASCII letters; a few more characters are allowed).
func validMediaID(id string) bool {
	if len(id) < 5 || len(id) > 255 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (f files) localPath(mediaID string) (string, error) {
	if !validMediaID(mediaID) {
		return "", errBadMediaID
	}
	return filepath.Join(f.root, "local_content", mediaID[0:2], mediaID[2:4], mediaID[4:]), nil
}

func (f files) thumbnailDir(mediaID string) (string, error) {
	if !validMediaID(mediaID) {
		return "", errBadMediaID
	}
	return filepath.Join(f.root, "local_thumbnails", mediaID[0:2], mediaID[2:4], mediaID[4:]), nil
}

func (f files) thumbnailPath(mediaID string, w, h int, typ, method string) (string, error) {
	dir, err := f.thumbnailDir(mediaID)
	if err != nil {
		return "", err
	}
	top, sub, ok := strings.Cut(typ, "/")
	if !ok || strings.ContainsAny(sub, `/\`) || (method != "crop" && method != "scale") {
		return "", fmt.Errorf("media: bad thumbnail type %q or method %q", typ, method)
	}
	return filepath.Join(dir, strconv.Itoa(w)+"-"+strconv.Itoa(h)+"-"+top+"-"+sub+"-"+method), nil
}

// tempFile creates a new file under tmp/.
func (f files) tempFile(pattern string) (*os.File, error) {
	dir := filepath.Join(f.root, "tmp")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("media: temporary directory: %w", err)
	}
	t, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, fmt.Errorf("media: temporary file: %w", err)
	}
	return t, nil
}

// errFileExists: placeNew found a file at the final path.
var errFileExists = errors.New("media: file exists")

// placeNew moves a checked temporary file to a final path that must not
// exist yet (a hard link, then the temporary name removed), so that it
// never replaces another upload's file.
func (f files) placeNew(tmp, final string) error {
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	err := os.Link(tmp, final)
	if errors.Is(err, os.ErrExist) {
		return errFileExists
	}
	if err != nil {
		// A file system without hard links: the media ID is checked not
		// to have content already, so a rename is as good.
		return f.place(tmp, final)
	}
	_ = os.Remove(tmp)
	return nil
}

// place moves a checked temporary file to its final path, replacing what
// is there (thumbnails: the same size made twice is the same file).
func (f files) place(tmp, final string) error {
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	return nil
}

// copyBufSize is the buffer an upload is copied through: the whole body
// never sits in memory.
const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// errTooLarge: the body went past the limit.
var errTooLarge = errors.New("media: upload too large")

// writeLimited streams r into w through a pooled buffer, counting bytes
// and hashing them, and stops with errTooLarge once more than limit bytes
// came.
func writeLimited(w io.Writer, r io.Reader, limit int64) (n int64, sum string, err error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	h := sha256.New()
	n, err = io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(r, limit+1), *bp)
	if err != nil {
		return n, "", err
	}
	if n > limit {
		return n, "", errTooLarge
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
