package clientapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-im/sluice/internal/accounts"
	"github.com/sluice-im/sluice/internal/httpx"
	"github.com/sluice-im/sluice/internal/profiles"
	"github.com/sluice-im/sluice/module"
)

// registerProfile adds the profile and user directory endpoints (when
// their services are configured).
func (a *API) registerProfile(client func(method, path string, h http.Handler)) {
	if a.opts.Profiles != nil {
		client("GET", "/profile/{userId}", handlerFunc(a.getProfile))
		for _, field := range []string{profiles.DisplayName, profiles.AvatarURL} {
			client("GET", "/profile/{userId}/"+field, handlerFunc(a.getProfileField(field)))
			client("PUT", "/profile/{userId}/"+field, handlerFunc(a.putProfileField(field)))
		}
	}
	if a.opts.UserDirectory != nil {
		client("POST", "/user_directory/search", a.authed(false, a.searchUserDirectory))
	}
}

// profileReader authenticates a profile read when
// require_auth_for_profile_requests is on, and returns the requester ("" when
// not authenticated), then checks the path's user ID, in Synapse's order.
func (a *API) profileReader(r *http.Request) (requester, target string, err error) {
	if a.opts.RequireAuthForProfileRequests {
		req, err := a.accounts.Authenticate(r, false)
		if err != nil {
			return "", "", err
		}
		requester = req.UserID
	}
	target = r.PathValue("userId")
	if err := profiles.ValidUserID(target); err != nil {
		return "", "", err
	}
	if err := a.opts.Profiles.CheckQueryAllowed(r.Context(), target, requester); err != nil {
		return "", "", err
	}
	return requester, target, nil
}

// getProfile is GET /profile/{userId}.
func (a *API) getProfile(w http.ResponseWriter, r *http.Request) error {
	_, target, err := a.profileReader(r)
	if err != nil {
		return err
	}
	p, err := a.opts.Profiles.Profile(r.Context(), target)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, p)
	return nil
}

// getProfileField is GET /profile/{userId}/displayname and /avatar_url. A
// field that is not set is null, as in Synapse.
func (a *API) getProfileField(field string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		_, target, err := a.profileReader(r)
		if err != nil {
			return err
		}
		v, err := a.opts.Profiles.Field(r.Context(), target, field)
		if err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{field: v})
		return nil
	}
}

// putProfileField is PUT /profile/{userId}/displayname and /avatar_url, with
// Synapse's checks in its order: the user ID, the token (guests may set
// their display name only), the body, the field.
func (a *API) putProfileField(field string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		target := r.PathValue("userId")
		if err := profiles.ValidUserID(target); err != nil {
			return err
		}
		req, err := a.accounts.Authenticate(r, false)
		if err != nil {
			return err
		}
		if req.IsGuest && field != profiles.DisplayName {
			return errGuest()
		}
		info, err := a.accounts.GetUserInfo(r.Context(), req.UserID)
		if err != nil && !errors.Is(err, module.ErrNotFound) {
			return err
		}
		body, err := httpx.ReadJSONMap(r)
		if err != nil {
			return err
		}
		v, ok := body[field]
		if !ok {
			return httpx.NewError(http.StatusBadRequest, "M_MISSING_PARAM", "Missing key '"+field+"'")
		}
		if err := a.opts.Profiles.Set(r.Context(), profiles.SetParams{
			Requester: req, ByAdmin: info.IsAdmin, Target: target, Field: field, Value: v,
		}); err != nil {
			return err
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{})
		return nil
	}
}

func errGuest() error {
	return httpx.NewError(http.StatusForbidden, "M_GUEST_ACCESS_FORBIDDEN", "Guest access not allowed")
}

// searchUserDirectory is POST /user_directory/search, in Synapse's order:
// no guests; a disabled directory answers no results; the rate limit; the
// body ({search_term, limit}).
func (a *API) searchUserDirectory(w http.ResponseWriter, r *http.Request, req accounts.Requester) error {
	if req.IsGuest {
		return errGuest()
	}
	ud := a.opts.UserDirectory
	if !ud.Enabled() {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"limited": false, "results": []any{}})
		return nil
	}
	if err := ud.RateLimit(req.UserID); err != nil {
		return err
	}
	body, err := httpx.ReadJSONMap(r)
	if err != nil {
		return err
	}
	limit := 10
	if v, ok := body["limit"]; ok {
		if limit, ok = pythonInt(v); !ok {
			return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "limit must be an integer")
		}
	}
	tv, ok := body["search_term"]
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_UNKNOWN", "`search_term` is required field")
	}
	term, ok := tv.(string)
	if !ok {
		return httpx.NewError(http.StatusBadRequest, "M_INVALID_PARAM", "`search_term` must be a string")
	}
	res, err := ud.Search(r.Context(), req.UserID, term, limit)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, res)
	return nil
}

// pythonInt converts a JSON value as Synapse's int() does where that
// succeeds: a number (truncated), a boolean, a string of an integer.
func pythonInt(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		if x > 1e9 {
			return 1 << 30, true
		}
		if x < -1e9 {
			return -1 << 30, true
		}
		return int(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				if strings.HasPrefix(strings.TrimSpace(x), "-") {
					return -1 << 30, true
				}
				return 1 << 30, true
			}
			return 0, false
		}
		return n, true
	}
	return 0, false
}
