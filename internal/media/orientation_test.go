package media

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// exifJPEG is a JPEG with an EXIF APP1 segment carrying orientation o.
func exifJPEG(t testing.TB, img image.Image, o int, bo binary.ByteOrder) []byte {
	t.Helper()
	var j bytes.Buffer
	if err := jpeg.Encode(&j, img, nil); err != nil {
		t.Fatal(err)
	}
	tiff := make([]byte, 8+2+12+4)
	if bo == binary.BigEndian {
		copy(tiff, "MM")
	} else {
		copy(tiff, "II")
	}
	bo.PutUint16(tiff[2:], 42)
	bo.PutUint32(tiff[4:], 8)
	bo.PutUint16(tiff[8:], 1)
	bo.PutUint16(tiff[10:], 0x0112)
	bo.PutUint16(tiff[12:], 3)
	bo.PutUint32(tiff[14:], 1)
	bo.PutUint16(tiff[18:], uint16(o))
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(app1[2:], uint16(len(seg)+2))
	out := append([]byte{0xff, 0xd8}, app1...)
	out = append(out, seg...)
	return append(out, j.Bytes()[2:]...)
}

func TestJPEGOrientation(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for o := 1; o <= 8; o++ {
		for _, bo := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
			if got := jpegOrientation(bytes.NewReader(exifJPEG(t, img, o, bo))); got != o {
				t.Errorf("orientation %d (%v) read as %d", o, bo, got)
			}
		}
	}
	var plain bytes.Buffer
	_ = jpeg.Encode(&plain, img, nil)
	for _, b := range [][]byte{plain.Bytes(), nil, []byte("\xff\xd8\xff\xe1\x00"), exifJPEG(t, img, 9, binary.BigEndian)} {
		if got := jpegOrientation(bytes.NewReader(b)); got != 1 {
			t.Errorf("orientation of %d bytes without a valid tag: %d", len(b), got)
		}
	}
}

func TestOrient(t *testing.T) {
	// a b c
	// d e f
	src := image.NewRGBA(image.Rect(0, 0, 3, 2))
	names := "abcdef"
	for i := range 6 {
		src.Set(i%3, i/3, color.RGBA{uint8(names[i]), 0, 0, 255})
	}
	for o, want := range map[int][]string{
		1: {"abc", "def"}, 2: {"cba", "fed"}, 3: {"fed", "cba"}, 4: {"def", "abc"},
		5: {"ad", "be", "cf"}, 6: {"da", "eb", "fc"}, 7: {"fc", "eb", "da"}, 8: {"cf", "be", "ad"},
	} {
		got := orient(src, o)
		var rows []string
		for y := 0; y < got.Rect.Dy(); y++ {
			var row []byte
			for x := 0; x < got.Rect.Dx(); x++ {
				row = append(row, got.RGBAAt(x, y).R)
			}
			rows = append(rows, string(row))
		}
		if len(rows) != len(want) {
			t.Errorf("orientation %d: %v, want %v", o, rows, want)
			continue
		}
		for i := range rows {
			if rows[i] != want[i] {
				t.Errorf("orientation %d: %v, want %v", o, rows, want)
				break
			}
		}
	}
}
