// Package userdir is the user directory service: POST
// /user_directory/search, with check_username_for_spam applied to each
// result, following Synapse's UserDirectoryHandler.search_users.
package userdir

import (
	"context"
	"log/slog"

	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/ratelimit"
	"github.com/sluice-im/sluice/internal/storage"
	"github.com/sluice-im/sluice/module"
)

// Hooks are the module callbacks the service invokes (the module host).
type Hooks interface {
	HasCheckUsernameForSpam() bool
	CheckUsernameForSpam(ctx context.Context, profile module.UserProfile, requesterID string) (bool, error)
}

// Options configure the service (user_directory: and rc_user_directory).
type Options struct {
	// Enabled is user_directory.enabled: when false, every search answers
	// no results.
	Enabled bool
	// SearchAllUsers is user_directory.search_all_users.
	SearchAllUsers bool
	// Limiter is rc_user_directory, per user (nil: none).
	Limiter *ratelimit.Limiter
	Logger  *slog.Logger
}

// Service is the user directory.
type Service struct {
	opts  Options
	store storage.Store
	hooks Hooks
}

// New makes the service.
func New(o Options, store storage.Store, hooks Hooks) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{opts: o, store: store, hooks: hooks}
}

// Enabled reports whether searches are served (user_directory.enabled).
func (s *Service) Enabled() bool { return s.opts.Enabled }

// RateLimit applies rc_user_directory to a user's search (429
// M_LIMIT_EXCEEDED).
func (s *Service) RateLimit(userID string) error {
	if s.opts.Limiter == nil {
		return nil
	}
	if ok, wait := s.opts.Limiter.Allow(userID); !ok {
		return httpx.LimitExceeded(wait)
	}
	return nil
}

// Result is one user found.
type Result struct {
	UserID      string  `json:"user_id"`
	DisplayName *string `json:"display_name,omitempty"`
	AvatarURL   *string `json:"avatar_url,omitempty"`
}

// Results is the answer to a search.
type Results struct {
	Results []Result `json:"results"`
	Limited bool     `json:"limited"`
}

// MaxLimit is the largest limit a search may ask for (Synapse's 50).
const MaxLimit = 50

// Search finds up to limit users for searcher (see
// storage.SearchUserDirectory for who and in which order), then asks
// check_username_for_spam about each, with a copy of the result and the
// searcher's ID, and leaves out those it calls spammy. As in Synapse the
// check comes after the limit: a search may return fewer than limit
// results while limited says whether more users matched. A failing
// callback fails the search.
func (s *Service) Search(ctx context.Context, searcher, term string, limit int) (Results, error) {
	limit = max(min(limit, MaxLimit), 0)
	res, err := s.store.SearchUserDirectory(ctx, storage.UserDirectoryQuery{
		Searcher: searcher, SearchTerm: term, Limit: limit, AllUsers: s.opts.SearchAllUsers,
	})
	if err != nil {
		return Results{}, err
	}
	out := Results{Results: make([]Result, 0, len(res.Results)), Limited: res.Limited}
	check := s.hooks.HasCheckUsernameForSpam()
	for _, e := range res.Results {
		if check {
			p := module.UserProfile{UserID: e.UserID}
			if e.DisplayName != nil {
				p.DisplayName = *e.DisplayName
			}
			if e.AvatarURL != nil {
				p.AvatarURL = *e.AvatarURL
			}
			spam, err := s.hooks.CheckUsernameForSpam(ctx, p, searcher)
			if err != nil {
				return Results{}, err
			}
			if spam {
				continue
			}
		}
		out.Results = append(out.Results, Result(e))
	}
	return out, nil
}
