package media

import (
	"image"
	"testing"

	"github.com/sluice-im/sluice/internal/storage"
)

func TestContentHeaders(t *testing.T) {
	for _, tc := range []struct{ typ, name, disp, ct string }{
		{"image/png", "a.png", "inline; filename=a.png", "image/png"},
		{"IMAGE/PNG; x=y", "", "inline", "IMAGE/PNG; x=y"},
		{"text/html", "a.html", "attachment; filename=a.html", "text/html; charset=UTF-8"},
		{"Text/HTML", "", "attachment", "Text/HTML; charset=UTF-8"},
		{"image/svg+xml", "", "attachment", "image/svg+xml; charset=UTF-8"},
		{"text/plain; charset=latin1", "", "inline", "text/plain; charset=latin1"},
		// A browser takes the last of comma-separated types: text/html.
		{"text/plain;, text/html", "", "attachment", "text/plain;, text/html"},
		{"text/plain, text/html", "", "attachment", "text/plain, text/html"},
		{"image/png;;", "", "attachment", "image/png;;"},
		{"", "x", "attachment; filename=x", "application/octet-stream"},
		{"application/pdf", "a b", "attachment; filename*=utf-8''a%20b", "application/pdf"},
		{"application/pdf", "a/b\"c", "attachment; filename*=utf-8''a/b%22c", "application/pdf"},
		{"application/pdf", "\u00e9\r\n", "attachment; filename*=utf-8''%C3%A9%0D%0A", "application/pdf"},
		{"application/pdf", "~_.-", "attachment; filename=~_.-", "application/pdf"},
	} {
		if got := ContentDisposition(tc.typ, tc.name); got != tc.disp {
			t.Errorf("ContentDisposition(%q, %q) = %q, want %q", tc.typ, tc.name, got, tc.disp)
		}
		if got := ContentType(tc.typ); got != tc.ct {
			t.Errorf("ContentType(%q) = %q, want %q", tc.typ, got, tc.ct)
		}
	}
}

func TestScaleAndCropSizes(t *testing.T) {
	for _, tc := range []struct{ sw, sh, w, h, ww, wh int }{
		{1000, 500, 320, 240, 320, 160},
		{500, 1000, 320, 240, 120, 240},
		{640, 480, 800, 600, 640, 480}, // never larger than the source
		{10000, 1, 32, 32, 32, 1},      // at least one pixel
	} {
		if w, h := scaleSize(tc.sw, tc.sh, tc.w, tc.h); w != tc.ww || h != tc.wh {
			t.Errorf("scaleSize(%d, %d, %d, %d) = %d, %d; want %d, %d", tc.sw, tc.sh, tc.w, tc.h, w, h, tc.ww, tc.wh)
		}
	}
	for _, src := range []image.Rectangle{image.Rect(0, 0, 1, 10000), image.Rect(0, 0, 10000, 1), image.Rect(5, 5, 105, 55)} {
		img := render(source{image.NewRGBA(src), 1}, 96, 96, "crop")
		if b := img.Bounds(); b.Dx() != 96 || b.Dy() != 96 {
			t.Errorf("crop of %v is %v", src, b)
		}
	}
}

func TestRequirements(t *testing.T) {
	s := &Service{opts: Options{ThumbnailSizes: []ThumbnailSize{
		{32, 32, "crop"}, {96, 96, "crop"}, {320, 240, "scale"}, {640, 480, "scale"}, {800, 600, "scale"},
	}}}
	got := s.requirements("image/webp", 400, 300)
	want := []thumbnailSpec{{32, 32, "crop", "image/jpeg"}, {96, 96, "crop", "image/jpeg"}, {320, 240, "scale", "image/jpeg"}, {400, 300, "scale", "image/jpeg"}}
	if len(got) != len(want) {
		t.Fatalf("requirements = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("requirements = %v, want %v", got, want)
		}
	}
	// A scale of the same size replaces a crop (Synapse keeps the scale).
	s.opts.ThumbnailSizes = []ThumbnailSize{{32, 32, "crop"}, {32, 32, "scale"}}
	if got := s.requirements("image/gif; x=1", 32, 32); len(got) != 1 || got[0] != (thumbnailSpec{32, 32, "scale", "image/png"}) {
		t.Fatalf("crop then scale = %v", got)
	}
	if got := s.requirements("text/plain", 32, 32); got != nil {
		t.Fatalf("text = %v", got)
	}
}

func TestSelectThumbnail(t *testing.T) {
	th := func(w, h int, typ, method string, length int64) storage.MediaThumbnail {
		return storage.MediaThumbnail{Width: w, Height: h, Type: typ, Method: method, Length: length}
	}
	all := []storage.MediaThumbnail{
		th(32, 32, "image/png", "crop", 100), th(96, 96, "image/png", "crop", 300),
		th(320, 160, "image/png", "scale", 1000), th(640, 320, "image/png", "scale", 3000), th(800, 400, "image/png", "scale", 4000),
		th(96, 96, "image/jpeg", "crop", 200),
	}
	for _, tc := range []struct {
		w, h   int
		method string
		want   storage.MediaThumbnail
		ok     bool
	}{
		{32, 32, "crop", all[0], true},
		{40, 40, "crop", all[1], true},   // the nearest at least as large
		{96, 96, "crop", all[1], true},   // PNG preferred over the JPEG of the same size
		{500, 500, "crop", all[1], true}, // none large enough: the nearest smaller
		{300, 100, "scale", all[2], true},
		{700, 350, "scale", all[4], true},
		{2000, 2000, "scale", all[4], true},
		{1, 1, "SCALE", all[2], true},
		{32, 32, "zoom", storage.MediaThumbnail{}, false},
	} {
		got, ok := selectThumbnail(tc.w, tc.h, tc.method, "image/png", all)
		if ok != tc.ok || got != tc.want {
			t.Errorf("select(%d, %d, %s) = %+v, %v; want %+v", tc.w, tc.h, tc.method, got, ok, tc.want)
		}
	}
	if _, ok := selectThumbnail(32, 32, "scale", "image/png", all[:2]); ok {
		t.Error("a scale thumbnail was picked among crops only")
	}
}
