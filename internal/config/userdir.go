package config

import "github.com/sluice-im/sluice/internal/ratelimit"

// UserDirectory is `user_directory:` (Synapse's keys and defaults).
type UserDirectory struct {
	// Enabled (default true): when false, POST /user_directory/search
	// answers no results.
	Enabled *bool `yaml:"enabled"`
	// SearchAllUsers (default false): search every local user instead of
	// those who share a room with the searcher or are in a public room.
	SearchAllUsers bool `yaml:"search_all_users"`
	// PreferLocalUsers (default false) ranks local users first. Without
	// federation every user in the directory is local, so it changes
	// nothing yet.
	PreferLocalUsers bool `yaml:"prefer_local_users"`
	// ExcludeRemoteUsers (default false) leaves remote users out. Without
	// federation there are none yet.
	ExcludeRemoteUsers bool `yaml:"exclude_remote_users"`
	// ShowLockedUsers is accepted for Synapse compatibility; Sluice has no
	// locked users.
	ShowLockedUsers bool `yaml:"show_locked_users"`
}

// SearchEnabled is user_directory.enabled with its default.
func (u UserDirectory) SearchEnabled() bool { return u.Enabled == nil || *u.Enabled }

// defaultUserDirectoryLimit is Synapse's rc_user_directory default.
func defaultUserDirectoryLimit(p **ratelimit.Config) {
	if *p == nil {
		*p = &ratelimit.Config{PerSecond: 0.016, BurstCount: 200}
	}
}
