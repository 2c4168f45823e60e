package server

import (
	"time"

	"github.com/sluice-im/sluice/internal/media"
	"github.com/sluice-im/sluice/internal/ratelimit"
)

// newMedia builds the media repository from the configuration's media keys.
func (s *Server) newMedia() error {
	m := s.cfg.Media
	sizes := make([]media.ThumbnailSize, len(m.ThumbnailSizes))
	for i, t := range m.ThumbnailSizes {
		sizes[i] = media.ThumbnailSize{Width: t.Width, Height: t.Height, Method: t.Method}
	}
	svc, err := media.New(media.Options{
		ServerName:         s.cfg.ServerName,
		Path:               s.cfg.MediaStorePath,
		MaxUploadSize:      int64(m.MaxUploadSize),
		MaxImagePixels:     int64(m.MaxImagePixels),
		DynamicThumbnails:  m.DynamicThumbnails,
		ThumbnailSizes:     sizes,
		AuthenticatedMedia: m.AuthenticatedMedia(),
		UnusedExpiration:   time.Duration(*m.UnusedExpirationTime),
		MaxPendingUploads:  *m.MaxPendingMediaUploads,
		CreateLimiter:      ratelimit.New(*m.RCMediaCreate),
		Logger:             s.log.With("component", "media"),
	}, s.store, s.host)
	if err != nil {
		return err
	}
	s.media = svc
	return nil
}
