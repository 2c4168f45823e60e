package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-im/sluice/internal/ratelimit"
	"github.com/sluice-im/sluice/internal/yamlstrict"
	"gopkg.in/yaml.v3"
)

// Media holds the media repository's keys, with Synapse's names and
// defaults (filled in by validation).
type Media struct {
	// MaxUploadSize is max_upload_size (default "50M").
	MaxUploadSize ByteSize `yaml:"max_upload_size"`
	// MaxImagePixels is max_image_pixels (default "32M"): larger images
	// get no thumbnails.
	MaxImagePixels ByteSize `yaml:"max_image_pixels"`
	// DynamicThumbnails is dynamic_thumbnails (default false).
	DynamicThumbnails bool `yaml:"dynamic_thumbnails"`
	// ThumbnailSizes is thumbnail_sizes (default Synapse's five sizes).
	ThumbnailSizes []ThumbnailSize `yaml:"thumbnail_sizes"`
	// EnableAuthenticatedMedia is enable_authenticated_media (default true).
	EnableAuthenticatedMedia *bool `yaml:"enable_authenticated_media"`
	// UnusedExpirationTime is unused_expiration_time (default "24h"): how
	// long a media ID from /create waits for its content.
	UnusedExpirationTime *Duration `yaml:"unused_expiration_time"`
	// MaxPendingMediaUploads is max_pending_media_uploads (default 5).
	MaxPendingMediaUploads *int `yaml:"max_pending_media_uploads"`
	// RCMediaCreate is rc_media_create (default 10 per second, burst 50):
	// POST /_matrix/media/v1/create per user.
	RCMediaCreate *ratelimit.Config `yaml:"rc_media_create"`
}

// ThumbnailSize is one entry of thumbnail_sizes.
type ThumbnailSize struct {
	Width  int    `yaml:"width"`
	Height int    `yaml:"height"`
	Method string `yaml:"method"`
}

// DefaultThumbnailSizes are Synapse's thumbnail_sizes.
var DefaultThumbnailSizes = []ThumbnailSize{
	{32, 32, "crop"}, {96, 96, "crop"}, {320, 240, "scale"}, {640, 480, "scale"}, {800, 600, "scale"},
}

// ByteSize is a Synapse size: an integer of bytes or a string with a K, M,
// G or T suffix (powers of 1024), such as "50M".
type ByteSize int64

// UnmarshalYAML accepts both forms.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yamlstrict.Error{Line: n.Line, Column: n.Column, Msg: "expected a size such as 50M or a number of bytes"}
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return &yamlstrict.Error{Line: n.Line, Column: n.Column, Msg: err.Error()}
	}
	*b = ByteSize(v)
	return nil
}

// ParseByteSize parses a Synapse size ("50M", "32K", "1G", "1024").
func ParseByteSize(text string) (int64, error) {
	s := strings.TrimSpace(text)
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			s = s[:len(s)-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid size %q (use a whole number with an optional unit: 50M, 512K, 1G, or bytes)", text)
	}
	if v > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", text)
	}
	return v * mult, nil
}

// AuthenticatedMedia is enable_authenticated_media with its default.
func (m *Media) AuthenticatedMedia() bool {
	return m.EnableAuthenticatedMedia == nil || *m.EnableAuthenticatedMedia
}

func (c *Config) validateMedia(fail func(key, msg string, args ...any) error) error {
	m := &c.Media
	if m.MaxUploadSize == 0 {
		m.MaxUploadSize = 50 << 20
	}
	if m.MaxImagePixels == 0 {
		m.MaxImagePixels = 32 << 20
	}
	if m.ThumbnailSizes == nil {
		m.ThumbnailSizes = append([]ThumbnailSize(nil), DefaultThumbnailSizes...)
	}
	for i, t := range m.ThumbnailSizes {
		key := fmt.Sprintf("thumbnail_sizes[%d]", i)
		if t.Width <= 0 || t.Height <= 0 {
			return fail(key, "width and height must be positive integers")
		}
		if t.Method != "crop" && t.Method != "scale" {
			return fail(key+".method", "must be crop or scale, got %q", t.Method)
		}
	}
	if m.UnusedExpirationTime == nil {
		d := Duration(24 * time.Hour)
		m.UnusedExpirationTime = &d
	}
	if m.MaxPendingMediaUploads == nil {
		n := 5
		m.MaxPendingMediaUploads = &n
	}
	if *m.MaxPendingMediaUploads < 0 {
		return fail("max_pending_media_uploads", "must not be negative")
	}
	if m.RCMediaCreate == nil {
		m.RCMediaCreate = &ratelimit.Config{PerSecond: 10, BurstCount: 50}
	}
	if m.RCMediaCreate.PerSecond < 0 || m.RCMediaCreate.BurstCount < 0 {
		return fail("rc_media_create", "per_second and burst_count must not be negative")
	}
	return nil
}
