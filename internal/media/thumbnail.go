package media

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// thumbnailTypes maps the image types Sluice thumbnails to the type of
// the thumbnails generated at upload (Synapse's
// THUMBNAIL_SUPPORTED_MEDIA_FORMAT_MAP: JPEG for JPEG and WebP sources,
// PNG for GIF and PNG ones, which may have transparency).
var thumbnailTypes = map[string]string{
	"image/jpeg": "image/jpeg",
	"image/jpg":  "image/jpeg",
	"image/webp": "image/jpeg",
	"image/gif":  "image/png",
	"image/png":  "image/png",
}

// supportedFormats is the list in Synapse's "no thumbnails" message.
const supportedFormats = "image/jpeg, image/jpg, image/webp, image/gif, image/png"

// requestedType is the type a thumbnail request asks for: Synapse always
// asks for PNG (WebP when animated, which Sluice cannot encode: it
// serves a still thumbnail instead).
const requestedType = "image/png"

// errNoThumbnail: the source cannot be thumbnailed (not an image of a
// supported format, corrupt, or over max_image_pixels).
var errNoThumbnail = errors.New("media: cannot thumbnail this file")

// source is a decoded image with its EXIF orientation (1 for none).
type source struct {
	img         image.Image
	orientation int
}

// size is the image's size as displayed.
func (s source) size() (int, int) {
	b := s.img.Bounds()
	if swapsAxes(s.orientation) {
		return b.Dy(), b.Dx()
	}
	return b.Dx(), b.Dy()
}

// decodeImage decodes a PNG, JPEG, GIF (first frame) or WebP file whose
// pixel count is below maxPixels.
func decodeImage(path string, maxPixels int64) (source, error) {
	f, err := os.Open(path)
	if err != nil {
		return source{}, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head, _ := br.Peek(16)
	var (
		decodeConfig func(io.Reader) (image.Config, error)
		decode       func(io.Reader) (image.Image, error)
	)
	switch {
	case strings.HasPrefix(string(head), "\x89PNG\r\n\x1a\n"):
		decodeConfig, decode = png.DecodeConfig, png.Decode
	case strings.HasPrefix(string(head), "\xff\xd8"):
		decodeConfig, decode = jpeg.DecodeConfig, jpeg.Decode
	case strings.HasPrefix(string(head), "GIF87a"), strings.HasPrefix(string(head), "GIF89a"):
		decodeConfig, decode = gif.DecodeConfig, gif.Decode
	case len(head) >= 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		decodeConfig, decode = webp.DecodeConfig, webp.Decode
	default:
		return source{}, errNoThumbnail
	}
	cfg, err := decodeConfig(br)
	if err != nil {
		return source{}, errNoThumbnail
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) >= maxPixels {
		return source{}, errNoThumbnail
	}
	src := source{orientation: 1}
	if head[0] == 0xff {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return source{}, err
		}
		src.orientation = jpegOrientation(f)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return source{}, err
	}
	br.Reset(f)
	if src.img, err = decode(br); err != nil {
		return source{}, errNoThumbnail
	}
	return src, nil
}

// aspect is Synapse's Thumbnailer.aspect: the largest size within
// (maxW, maxH) with the source's aspect ratio.
func aspect(srcW, srcH, maxW, maxH int) (int, int) {
	if maxW*srcH < maxH*srcW {
		return maxW, max(maxW*srcH/srcW, 1)
	}
	return max(maxH*srcW/srcH, 1), maxH
}

// scaleSize is the size of a "scale" thumbnail for a request of (w, h):
// within it, with the source's aspect, never larger than the source.
func scaleSize(srcW, srcH, w, h int) (int, int) {
	tw, th := aspect(srcW, srcH, w, h)
	return min(tw, srcW), min(th, srcH)
}

// render makes a thumbnail of exactly (w, h) of the image as displayed:
// it is rendered in the stored orientation, then turned.
func render(src source, w, h int, method string) image.Image {
	rw, rh := w, h
	if swapsAxes(src.orientation) {
		rw, rh = h, w
	}
	return orient(renderRaw(src.img, rw, rh, method), src.orientation)
}

// renderRaw makes a thumbnail of exactly (w, h): "scale" resizes the whole
// image (w, h come from scaleSize); "crop" resizes it to cover (w, h) with
// its aspect kept and cuts the middle out, as Synapse's
// Thumbnailer.crop does. Only the part of the source that shows is
// scaled, so a narrow image does not make a huge intermediate one.
func renderRaw(src image.Image, w, h int, method string) *image.RGBA {
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	sr := b
	if method == "crop" {
		if w*sh > h*sw {
			// Full width; the source rows that show are h*sw/w of them.
			used := max(int(int64(h)*int64(sw)/int64(w)), 1)
			top := (sh - used) / 2
			sr = image.Rect(b.Min.X, b.Min.Y+top, b.Max.X, b.Min.Y+top+used)
		} else {
			used := max(int(int64(w)*int64(sh)/int64(h)), 1)
			left := (sw - used) / 2
			sr = image.Rect(b.Min.X+left, b.Min.Y, b.Min.X+left+used, b.Max.Y)
		}
	}
	// A large source is first shrunk by a whole factor with a box filter,
	// to between one and two times the thumbnail: the kernel scaler's
	// working buffer is (thumbnail width x source height) x 32 bytes, which
	// for a 6000x5000 source is over 100 MB per thumbnail.
	if f := min(sr.Dx()/w, sr.Dy()/h); f >= 2 {
		src = reduce(src, sr, f)
		sr = src.Bounds()
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, sr, draw.Src, nil)
	return dst
}

// reduce shrinks the part r of src by the whole factor f: each pixel of
// the result is the average of an f x f block (a box filter, which also
// keeps the shrink from aliasing). Edge rows and columns that do not fill
// a block are dropped (less than one pixel of the result). It allocates
// the result and one row of sums.
func reduce(src image.Image, r image.Rectangle, f int) *image.RGBA {
	ow, oh := r.Dx()/f, r.Dy()/f
	dst := image.NewRGBA(image.Rect(0, 0, ow, oh))
	at := pixelReader(src)
	sums := make([]uint32, ow*4)
	n := uint32(f * f)
	for oy := 0; oy < oh; oy++ {
		clear(sums)
		for y := r.Min.Y + oy*f; y < r.Min.Y+(oy+1)*f; y++ {
			x := r.Min.X
			for ox := 0; ox < ow; ox++ {
				s := sums[ox*4 : ox*4+4]
				for range f {
					cr, cg, cb, ca := at(x, y)
					s[0] += uint32(cr)
					s[1] += uint32(cg)
					s[2] += uint32(cb)
					s[3] += uint32(ca)
					x++
				}
			}
		}
		row := dst.Pix[oy*dst.Stride : oy*dst.Stride+ow*4]
		for i, v := range sums {
			row[i] = uint8(v / n)
		}
	}
	return dst
}

// pixelReader returns a function reading premultiplied 8-bit RGBA at
// (x, y), direct for the types the decoders produce (image.At through an
// interface allocates per pixel for some of them).
func pixelReader(src image.Image) func(x, y int) (r, g, b, a uint8) {
	switch m := src.(type) {
	case *image.RGBA:
		return func(x, y int) (uint8, uint8, uint8, uint8) {
			i := m.PixOffset(x, y)
			return m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3]
		}
	case *image.NRGBA:
		return func(x, y int) (uint8, uint8, uint8, uint8) {
			i := m.PixOffset(x, y)
			a := uint32(m.Pix[i+3])
			return uint8(uint32(m.Pix[i]) * a / 255), uint8(uint32(m.Pix[i+1]) * a / 255), uint8(uint32(m.Pix[i+2]) * a / 255), uint8(a)
		}
	case *image.Gray:
		return func(x, y int) (uint8, uint8, uint8, uint8) {
			v := m.Pix[m.PixOffset(x, y)]
			return v, v, v, 0xff
		}
	case *image.YCbCr:
		return func(x, y int) (uint8, uint8, uint8, uint8) {
			r, g, b := color.YCbCrToRGB(m.Y[m.YOffset(x, y)], m.Cb[m.COffset(x, y)], m.Cr[m.COffset(x, y)])
			return r, g, b, 0xff
		}
	}
	return func(x, y int) (uint8, uint8, uint8, uint8) {
		r, g, b, a := src.At(x, y).RGBA()
		return uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)
	}
}

// encode writes img as typ (image/jpeg at quality 80, as Synapse's
// Pillow call, or image/png).
func encode(w io.Writer, img image.Image, typ string) error {
	if typ == "image/jpeg" {
		return jpeg.Encode(w, img, &jpeg.Options{Quality: 80})
	}
	return png.Encode(w, img)
}

// thumbnailSpec is one thumbnail to make.
type thumbnailSpec struct {
	w, h   int
	method string
	typ    string
}

// requirements are the thumbnails generated at upload for a source of
// (srcW, srcH) and type typ: thumbnail_sizes, with Synapse's
// deduplication (a crop of the same size and type as a scale is dropped;
// scale sizes come from the source's aspect).
func (s *Service) requirements(mediaType string, srcW, srcH int) []thumbnailSpec {
	typ, ok := thumbnailTypes[baseType(mediaType)]
	if !ok {
		return nil
	}
	type key struct {
		w, h int
		typ  string
	}
	var order []key
	methods := map[key]string{}
	for _, r := range s.opts.ThumbnailSizes {
		k := key{r.Width, r.Height, typ}
		if r.Method == "scale" {
			k.w, k.h = scaleSize(srcW, srcH, r.Width, r.Height)
		} else if _, dup := methods[k]; dup {
			continue
		}
		if _, seen := methods[k]; !seen {
			order = append(order, k)
		}
		methods[k] = r.Method
	}
	out := make([]thumbnailSpec, 0, len(order))
	for _, k := range order {
		out = append(out, thumbnailSpec{k.w, k.h, methods[k], k.typ})
	}
	return out
}

// baseType is a media type without parameters, lower-cased.
func baseType(t string) string {
	if i := strings.IndexByte(t, ';'); i >= 0 {
		t = t[:i]
	}
	return strings.ToLower(strings.TrimSpace(t))
}

// generateThumbnails makes the upload-time thumbnails of an image. The
// first failure (or a thumbnail the spam checker rejects) stops it, as in
// Synapse.
func (s *Service) generateThumbnails(ctx context.Context, m storage.LocalMedia, path string) error {
	if _, ok := thumbnailTypes[baseType(m.MediaType)]; !ok || len(s.opts.ThumbnailSizes) == 0 {
		return nil
	}
	release, err := s.admitThumbnailing(ctx)
	if err != nil {
		return err
	}
	defer release()
	src, err := decodeImage(path, s.opts.MaxImagePixels)
	if err != nil {
		return err
	}
	w, h := src.size()
	for _, spec := range s.requirements(m.MediaType, w, h) {
		if _, err := s.storeThumbnail(ctx, m, src, spec); err != nil {
			return err
		}
	}
	return nil
}

// storeThumbnail renders, encodes, spam-checks, places and records one
// thumbnail, and returns its row and path.
func (s *Service) storeThumbnail(ctx context.Context, m storage.LocalMedia, src source, spec thumbnailSpec) (storage.MediaThumbnail, error) {
	final, err := s.files.thumbnailPath(m.MediaID, spec.w, spec.h, spec.typ, spec.method)
	if err != nil {
		return storage.MediaThumbnail{}, err
	}
	tmp, err := s.files.tempFile("thumbnail-*")
	if err != nil {
		return storage.MediaThumbnail{}, err
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmpName)
		}
	}()
	bw := bufio.NewWriter(tmp)
	err = encode(bw, render(src, spec.w, spec.h, spec.method), spec.typ)
	if err == nil {
		err = bw.Flush()
	}
	var length int64
	if err == nil {
		var st os.FileInfo
		if st, err = tmp.Stat(); err == nil {
			length = st.Size()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return storage.MediaThumbnail{}, fmt.Errorf("media: write thumbnail: %w", err)
	}
	info := module.FileInfo{FileID: m.MediaID, ContentType: spec.typ, Length: length, UploadName: m.UploadName, UserID: m.UserID,
		Thumbnail: &module.ThumbnailInfo{Width: spec.w, Height: spec.h, Method: spec.method, Type: spec.typ, Length: length}}
	if err := s.checkSpam(ctx, tmpName, info); err != nil {
		return storage.MediaThumbnail{}, err
	}
	if err := s.files.place(tmpName, final); err != nil {
		return storage.MediaThumbnail{}, err
	}
	ok = true
	t := storage.MediaThumbnail{MediaID: m.MediaID, Width: spec.w, Height: spec.h, Type: spec.typ, Method: spec.method, Length: length}
	if err := s.store.AddLocalThumbnail(ctx, t); err != nil {
		_ = os.Remove(final)
		return storage.MediaThumbnail{}, err
	}
	return t, nil
}

// ThumbnailRequest is a thumbnail request's parameters.
type ThumbnailRequest struct {
	MediaID       string
	Width, Height int
	Method        string
	Wait          time.Duration
	Legacy        bool
	// Path is the request's path, for Synapse's messages.
	Path string
}

// Thumbnail is a thumbnail to serve.
type Thumbnail struct {
	Path   string
	Type   string
	Length int64
}

// errThumbnailSpam is Synapse's SpamMediaException for a thumbnail made on
// request: a 404 with the spam checker's errcode (M_FORBIDDEN for a
// boolean true).
func errThumbnailSpam() *httpx.Error {
	return httpx.NewError(http.StatusNotFound, "M_FORBIDDEN", "Not found")
}

// GetThumbnail finds (or, with dynamic_thumbnails, makes) a thumbnail.
// Without dynamic_thumbnails it picks the nearest of the thumbnails made
// at upload with Synapse's rules; with it, it serves or makes the exact
// size asked for, as PNG.
func (s *Service) GetThumbnail(ctx context.Context, req ThumbnailRequest) (Thumbnail, error) {
	m, err := s.LocalMedia(ctx, req.MediaID, req.Wait, req.Legacy)
	if err != nil {
		return Thumbnail{}, err
	}
	thumbs, err := s.store.LocalThumbnails(ctx, m.MediaID)
	if err != nil {
		return Thumbnail{}, err
	}
	if s.opts.DynamicThumbnails {
		for _, t := range thumbs {
			if t.Width == req.Width && t.Height == req.Height && t.Method == req.Method && t.Type == requestedType {
				if th, err := s.existing(t); err == nil {
					return th, nil
				}
			}
		}
		t, err := s.makeExact(ctx, m, thumbnailSpec{req.Width, req.Height, req.Method, requestedType})
		if errors.Is(err, errSpam) {
			return Thumbnail{}, errThumbnailSpam()
		}
		if errors.Is(err, errNoThumbnail) {
			s.log.Warn("failed to generate thumbnail", "media_id", m.MediaID)
			return Thumbnail{}, httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "Failed to generate thumbnail.")
		}
		return t, err
	}
	if len(thumbs) == 0 {
		return Thumbnail{}, httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", fmt.Sprintf(
			"Cannot find any thumbnails for the requested media ('%s'). This might mean the media is not a supported_media_format=(%s) "+
				"or that thumbnailing failed for some other reason. (Dynamic thumbnails are disabled on this server.)", req.Path, supportedFormats))
	}
	t, ok := selectThumbnail(req.Width, req.Height, req.Method, requestedType, thumbs)
	if !ok {
		return Thumbnail{}, ErrNotFound
	}
	if th, err := s.existing(t); err == nil {
		return th, nil
	}
	// The row is there but the file is not: make it again, as Synapse does.
	th, err := s.makeExact(ctx, m, thumbnailSpec{t.Width, t.Height, t.Method, t.Type})
	if errors.Is(err, errSpam) {
		return Thumbnail{}, errThumbnailSpam()
	}
	if errors.Is(err, errNoThumbnail) {
		return Thumbnail{}, ErrNotFound
	}
	return th, err
}

// existing is a recorded thumbnail whose file is there.
func (s *Service) existing(t storage.MediaThumbnail) (Thumbnail, error) {
	p, err := s.files.thumbnailPath(t.MediaID, t.Width, t.Height, t.Type, t.Method)
	if err != nil {
		return Thumbnail{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return Thumbnail{}, err
	}
	return Thumbnail{Path: p, Type: t.Type, Length: st.Size()}, nil
}

// makeExact makes one thumbnail of a request's exact size (Synapse's
// generate_local_exact_thumbnail): "scale" sizes are fitted to the
// source's aspect and never exceed it.
func (s *Service) makeExact(ctx context.Context, m storage.LocalMedia, spec thumbnailSpec) (Thumbnail, error) {
	if spec.w < 1 || spec.h < 1 || (spec.method != "crop" && spec.method != "scale") ||
		int64(spec.w)*int64(spec.h) >= s.opts.MaxImagePixels {
		return Thumbnail{}, errNoThumbnail
	}
	path, err := s.files.localPath(m.MediaID)
	if err != nil {
		return Thumbnail{}, err
	}
	release, err := s.admitThumbnailing(ctx)
	if err != nil {
		return Thumbnail{}, err
	}
	defer release()
	src, err := decodeImage(path, s.opts.MaxImagePixels)
	if errors.Is(err, os.ErrNotExist) {
		return Thumbnail{}, ErrNotFound
	}
	if err != nil {
		return Thumbnail{}, err
	}
	if spec.method == "scale" {
		w, h := src.size()
		spec.w, spec.h = scaleSize(w, h, spec.w, spec.h)
	}
	t, err := s.storeThumbnail(ctx, m, src, spec)
	if err != nil {
		return Thumbnail{}, err
	}
	return s.existing(t)
}

// admitThumbnailing waits for one of the thumbnailing slots (or for ctx
// to end) and returns its release.
func (s *Service) admitThumbnailing(ctx context.Context) (func(), error) {
	select {
	case s.thumbnailing <- struct{}{}:
		return func() { <-s.thumbnailing }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// selectThumbnail is Synapse's _select_thumbnail: among the thumbnails of
// the method asked for, those at least as large in one dimension are
// preferred; then (crop) the closest aspect, whether both dimensions are
// large enough, the size difference, the type and the file size; (scale)
// the size difference, the type and the file size. Ties go to the first.
func selectThumbnail(dw, dh int, method, typ string, thumbs []storage.MediaThumbnail) (storage.MediaThumbnail, bool) {
	method = strings.ToLower(method)
	if method != "crop" && method != "scale" {
		return storage.MediaThumbnail{}, false
	}
	type cand struct {
		keys [5]int64
		t    storage.MediaThumbnail
	}
	less := func(a, b [5]int64) bool {
		for i := range a {
			if a[i] != b[i] {
				return a[i] < b[i]
			}
		}
		return false
	}
	var best [2]*cand // [0]: large enough in a dimension, [1]: the others
	for _, t := range thumbs {
		if t.Method != method {
			continue
		}
		tw, th := int64(t.Width), int64(t.Height)
		w, h := int64(dw), int64(dh)
		typeQ := int64(0)
		if t.Type != typ {
			typeQ = 1
		}
		sizeQ := abs((w - tw) * (h - th))
		var k [5]int64
		if method == "crop" {
			minQ := int64(1)
			if w <= tw && h <= th {
				minQ = 0
			}
			k = [5]int64{abs(w*th - h*tw), minQ, sizeQ, typeQ, t.Length}
		} else {
			k = [5]int64{sizeQ, typeQ, t.Length, 0, 0}
		}
		i := 1
		if tw >= w || th >= h {
			i = 0
		}
		if best[i] == nil || less(k, best[i].keys) {
			best[i] = &cand{k, t}
		}
	}
	for _, c := range best {
		if c != nil {
			return c.t, true
		}
	}
	return storage.MediaThumbnail{}, false
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
