package media

import (
	"bufio"
	"encoding/binary"
	"image"
	"io"
)

// JPEG photos often store their pixels as the camera saw them and say in
// their EXIF Orientation tag (0x0112) how to turn them for display. As
// Synapse does, thumbnails are made of the turned image.

// jpegOrientation reads the EXIF Orientation of a JPEG (1, the identity,
// when there is none or it cannot be read). It reads only the segments
// before the image data.
func jpegOrientation(r io.Reader) int {
	br := bufio.NewReader(r)
	var soi [2]byte
	if _, err := io.ReadFull(br, soi[:]); err != nil || soi != [2]byte{0xff, 0xd8} {
		return 1
	}
	for {
		var m [4]byte
		if _, err := io.ReadFull(br, m[:2]); err != nil || m[0] != 0xff {
			return 1
		}
		for m[1] == 0xff { // fill bytes
			b, err := br.ReadByte()
			if err != nil {
				return 1
			}
			m[1] = b
		}
		if m[1] == 0xda || m[1] == 0xd9 { // start of scan, end of image
			return 1
		}
		if _, err := io.ReadFull(br, m[2:4]); err != nil {
			return 1
		}
		n := int(binary.BigEndian.Uint16(m[2:4])) - 2
		if n < 0 {
			return 1
		}
		if m[1] != 0xe1 {
			if _, err := br.Discard(n); err != nil {
				return 1
			}
			continue
		}
		seg := make([]byte, n)
		if _, err := io.ReadFull(br, seg); err != nil {
			return 1
		}
		if o := exifOrientation(seg); o != 0 {
			return o
		}
	}
}

// exifOrientation finds the Orientation tag in an APP1 segment's data
// (0 when it is not EXIF or has none).
func exifOrientation(seg []byte) int {
	if len(seg) < 14 || string(seg[:6]) != "Exif\x00\x00" {
		return 0
	}
	tiff := seg[6:]
	var bo binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(tiff[2:4]) != 42 {
		return 0
	}
	off := int(bo.Uint32(tiff[4:8]))
	if off < 8 || off+2 > len(tiff) {
		return 0
	}
	count := int(bo.Uint16(tiff[off : off+2]))
	for i := 0; i < count; i++ {
		e := off + 2 + 12*i
		if e+12 > len(tiff) {
			return 0
		}
		if bo.Uint16(tiff[e:e+2]) == 0x0112 && bo.Uint16(tiff[e+2:e+4]) == 3 {
			if o := int(bo.Uint16(tiff[e+8 : e+10])); o >= 1 && o <= 8 {
				return o
			}
			return 0
		}
	}
	return 0
}

// swapsAxes reports whether an orientation turns the image by a quarter.
func swapsAxes(o int) bool { return o >= 5 && o <= 8 }

// orient turns a rendered thumbnail (in the stored orientation) for
// display.
func orient(src *image.RGBA, o int) *image.RGBA {
	if o <= 1 || o > 8 {
		return src
	}
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dw, dh := w, h
	if swapsAxes(o) {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < dh; y++ {
		for x := 0; x < dw; x++ {
			var sx, sy int
			switch o {
			case 2: // mirrored
				sx, sy = w-1-x, y
			case 3: // upside down
				sx, sy = w-1-x, h-1-y
			case 4: // mirrored upside down
				sx, sy = x, h-1-y
			case 5: // transposed
				sx, sy = y, x
			case 6: // turned a quarter clockwise for display
				sx, sy = y, h-1-x
			case 7: // transversed
				sx, sy = w-1-y, h-1-x
			case 8: // turned a quarter counter-clockwise for display
				sx, sy = w-1-y, x
			}
			si := src.PixOffset(src.Rect.Min.X+sx, src.Rect.Min.Y+sy)
			di := dst.PixOffset(x, y)
			copy(dst.Pix[di:di+4], src.Pix[si:si+4])
		}
	}
	return dst
}
