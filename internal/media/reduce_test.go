package media

import (
	"image"
	"image/color"
	"runtime"
	"testing"
)

func TestReduceAveragesBlocks(t *testing.T) {
	// A 5x4 source whose 2x2 blocks have known averages; the odd column
	// is dropped.
	gray := image.NewGray(image.Rect(0, 0, 5, 4))
	copy(gray.Pix, []uint8{
		0, 100, 10, 30, 255,
		200, 100, 50, 70, 255,
		8, 8, 255, 255, 255,
		8, 8, 255, 251, 255,
	})
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	for i := range 4 {
		nrgba.SetNRGBA(i%2, i/2, color.NRGBA{200, 100, 0, 128})
	}
	cases := []struct {
		name string
		src  image.Image
		r    image.Rectangle
		f    int
		want []uint8 // RGBA of the result, row by row
	}{
		{"gray", gray, gray.Bounds(), 2, []uint8{
			100, 100, 100, 255, 40, 40, 40, 255,
			8, 8, 8, 255, 254, 254, 254, 255}},
		{"gray part", gray, image.Rect(2, 2, 4, 4), 2, []uint8{254, 254, 254, 255}},
		// NRGBA is premultiplied on the way in.
		{"nrgba", nrgba, nrgba.Bounds(), 2, []uint8{100, 50, 0, 128}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := reduce(tc.src, tc.r, tc.f)
			if string(got.Pix) != string(tc.want) {
				t.Errorf("got %v, want %v", got.Pix, tc.want)
			}
		})
	}
}

// TestRenderLargeSourceMemory: thumbnailing a 30-megapixel source (under
// the default max_image_pixels) allocates a bounded amount beyond the
// decoded image. Without the box pre-shrink, the kernel scaler's working
// buffer alone was over 100 MB for an 800x600 thumbnail.
func TestRenderLargeSourceMemory(t *testing.T) {
	src := source{img: image.NewGray(image.Rect(0, 0, 6000, 5000)), orientation: 1}
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	for _, sz := range []struct {
		w, h   int
		method string
	}{{32, 32, "crop"}, {96, 96, "crop"}, {320, 240, "scale"}, {640, 480, "scale"}, {800, 600, "scale"}} {
		w, h := sz.w, sz.h
		if sz.method == "scale" {
			w, h = scaleSize(6000, 5000, w, h)
		}
		if img := render(src, w, h, sz.method); img.Bounds().Dx() != w || img.Bounds().Dy() != h {
			t.Fatalf("%v: got %v", sz, img.Bounds())
		}
	}
	runtime.ReadMemStats(&b)
	if got := b.TotalAlloc - a.TotalAlloc; got > 64<<20 {
		t.Errorf("the five default thumbnails of a 6000x5000 image allocated %d MB; want under 64 MB", got>>20)
	}
}
