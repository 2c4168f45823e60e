package rooms

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"math/big"
	"time"
)

// Shadow-banned users get Synapse's fake success: their messages, state
// events, redactions and invites seem to work after a random delay of one to
// ten seconds, but nothing is sent. Joins and leaves work normally.

// shadowBanDelay waits as Synapse does before a fake success.
func (s *Service) shadowBanDelay(ctx context.Context) error {
	if s.opts.ShadowBanDelay != nil {
		return sleepCtx(ctx, s.opts.ShadowBanDelay())
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(9000))
	return sleepCtx(ctx, time.Second+time.Duration(n.Int64())*time.Millisecond)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fakeEventID looks like a real event ID of room versions 4 and later.
func fakeEventID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "$" + base64.RawURLEncoding.EncodeToString(b)
}
