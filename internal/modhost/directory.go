package modhost

import (
	"context"
	"io"
	"sync"

	"github.com/sluice-im/sluice/module"
)

// This file holds the callbacks of the directory, profile and media
// surfaces: user_may_publish_room, check_username_for_spam,
// check_media_file_for_spam and on_profile_update.

// UserMayPublishRoom runs user_may_publish_room (a decision chain; a failed
// callback fails the request with 500 unless on_error says otherwise).
func (h *Host) UserMayPublishRoom(ctx context.Context, userID, roomID string) (module.Decision, error) {
	return decisionChain(ctx, h, "user_may_publish_room", h.spam.userMayPublishRoom,
		func(c context.Context, f func(context.Context, string, string) (module.Decision, error)) (module.Decision, error) {
			return f(c, userID, roomID)
		})
}

// HasCheckUsernameForSpam reports whether any module implements
// check_username_for_spam, so that a search can skip the per-result calls.
func (h *Host) HasCheckUsernameForSpam() bool { return len(h.spam.checkUsernameForSpam) > 0 }

// CheckUsernameForSpam runs check_username_for_spam for one search result:
// true means leave the user out. The first true wins. A failed callback
// fails the search (Synapse lets the exception through: 500) unless the
// module's on_error is allow (the user is kept) or deny (left out).
func (h *Host) CheckUsernameForSpam(ctx context.Context, profile module.UserProfile, requesterID string) (bool, error) {
	return spamBoolChain(ctx, h, "check_username_for_spam", h.spam.checkUsernameForSpam,
		func(c context.Context, f func(context.Context, module.UserProfile, string) (bool, error)) (bool, error) {
			return f(c, profile, requesterID) // profile is a copy per module, as Synapse gives one
		})
}

// HasCheckMediaFileForSpam reports whether any module implements
// check_media_file_for_spam.
func (h *Host) HasCheckMediaFileForSpam() bool { return len(h.spam.checkMediaFileForSpam) > 0 }

// CheckMediaFileForSpam runs check_media_file_for_spam on a stored file:
// true means the file is spam. open gives each module its own reader from
// the file's start; the host closes it when the call returns (or its
// deadline passes). The first true wins. A failed callback fails the
// upload (500) unless the module's on_error is allow (not spam) or deny
// (spam).
func (h *Host) CheckMediaFileForSpam(ctx context.Context, open func() (io.ReadCloser, error), info module.FileInfo) (bool, error) {
	return spamBoolChain(ctx, h, "check_media_file_for_spam", h.spam.checkMediaFileForSpam,
		func(c context.Context, f func(context.Context, io.Reader, module.FileInfo) (bool, error)) (bool, error) {
			fi := info
			if info.Thumbnail != nil {
				t := *info.Thumbnail
				fi.Thumbnail = &t
			}
			rc, err := open()
			if err != nil {
				return false, err
			}
			// Closed when the call returns, or as soon as its deadline
			// passes (c ends then): that also ends the reads of a callback
			// that outlives its deadline, instead of leaving the file open
			// under it.
			closeOnce := sync.OnceValue(rc.Close)
			stop := context.AfterFunc(c, func() { closeOnce() })
			defer func() { stop(); closeOnce() }()
			return f(c, rc, fi)
		})
}

// spamBoolChain runs a spam checker chain whose callbacks answer true for
// "spam": the first true wins. A failed callback fails the request unless
// the module's on_error is allow (not spam) or deny (spam).
func spamBoolChain[F any](ctx context.Context, h *Host, name string, hooks []hook[F], call func(context.Context, F) (bool, error)) (bool, error) {
	for _, hk := range hooks {
		spam, err := invoke(ctx, h, hk.mod, name, func(c context.Context) (bool, error) { return call(c, hk.fn) })
		if err != nil {
			switch hk.mod.policy(policyFailRequest) {
			case policyAllow:
				continue
			case policyDeny:
				return true, nil
			default:
				return false, err
			}
		}
		if spam {
			h.metrics.decision(hk.mod.name, name, "deny")
			return true, nil
		}
		h.metrics.decision(hk.mod.name, name, "allow")
	}
	return false, nil
}

// OnProfileUpdate runs on_profile_update after a local user's global
// profile changed. Every callback runs, in order; as in Synapse, a failure
// is logged and counted and never fails the request.
func (h *Host) OnProfileUpdate(ctx context.Context, userID string, p module.ProfileInfo, byAdmin, deactivation bool) {
	const name = "on_profile_update"
	for _, hk := range h.thirdParty.onProfileUpdate {
		_, err := invoke(ctx, h, hk.mod, name, func(c context.Context) (struct{}, error) {
			return struct{}{}, hk.fn(c, userID, p, byAdmin, deactivation)
		})
		if err != nil {
			continue // invoke logged and counted the failure
		}
		h.metrics.decision(hk.mod.name, name, "ok")
	}
}
