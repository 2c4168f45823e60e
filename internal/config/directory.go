package config

import (
	"fmt"
	"regexp"
	"strings"
)

// DirectoryRule is one entry of alias_creation_rules or
// room_list_publication_rules, Synapse's shape: globs (* and ?, matched
// case-insensitively against the whole value) on the user ID, the alias
// and the room ID, each "*" when left out, and the action.
type DirectoryRule struct {
	UserID string `yaml:"user_id"`
	Alias  string `yaml:"alias"`
	RoomID string `yaml:"room_id"`
	Action string `yaml:"action"`

	user, alias, room *regexp.Regexp
}

// Matches is Synapse's _RoomDirectoryRule.matches: the user and room globs
// match, and the alias glob is "*" or matches one of the aliases.
func (r *DirectoryRule) Matches(userID, roomID string, aliases []string) bool {
	if !r.user.MatchString(userID) || !r.room.MatchString(roomID) {
		return false
	}
	if r.Alias == "*" {
		return true
	}
	for _, a := range aliases {
		if r.alias.MatchString(a) {
			return true
		}
	}
	return false
}

// DirectoryAllowed applies rules in order: the first that matches decides
// (its action is allow); none matching is a refusal.
func DirectoryAllowed(rules []DirectoryRule, userID, roomID string, aliases []string) bool {
	for i := range rules {
		if rules[i].Matches(userID, roomID, aliases) {
			return rules[i].Action == "allow"
		}
	}
	return false
}

// globRegexp turns a glob into an anchored, case-insensitive expression:
// * is any run of characters, ? any one character.
func globRegexp(glob string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?is)\A`)
	for _, c := range glob {
		switch c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String())
}

// validateDirectory fills the directory settings' defaults (Synapse's) and
// checks the rules.
func (c *Config) validateDirectory(fail func(key, msg string, args ...any) error) error {
	yes := true
	if c.RequireMembershipForAliases == nil {
		c.RequireMembershipForAliases = &yes
	}
	if c.EnableRoomListSearch == nil {
		c.EnableRoomListSearch = &yes
	}
	if c.AliasCreationRules == nil {
		// Synapse's default: anyone may create any alias.
		c.AliasCreationRules = []DirectoryRule{{Action: "allow"}}
	}
	for _, set := range []struct {
		key   string
		rules []DirectoryRule
	}{{"alias_creation_rules", c.AliasCreationRules}, {"room_list_publication_rules", c.RoomListPublicationRules}} {
		for i := range set.rules {
			r := &set.rules[i]
			if r.Action != "allow" && r.Action != "deny" {
				return fail(fmt.Sprintf("%s[%d].action", set.key, i), "rules can only have action of 'allow' or 'deny', got %q", r.Action)
			}
			for _, p := range []*string{&r.UserID, &r.Alias, &r.RoomID} {
				if *p == "" {
					*p = "*"
				}
			}
			r.user, r.alias, r.room = globRegexp(r.UserID), globRegexp(r.Alias), globRegexp(r.RoomID)
		}
	}
	return nil
}
