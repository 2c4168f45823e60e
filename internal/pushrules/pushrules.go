// Package pushrules holds the push rules a user has: for now the spec's
// predefined ("server-default") rules, which clients read at start-up
// (GET /pushrules/, and m.push_rules in an initial sync). Rules of the
// user's own and the endpoints that change rules are still to come.
package pushrules

import (
	_ "embed"
	"encoding/json"
	"strings"
)

// defaults is the spec's predefined rule set (v1.17: the legacy display
// name, @room and user name rules are gone), in the spec's order. The
// placeholder {{user_id}} stands for the owner's user ID.
//
//go:embed defaults.json
var defaults string

// Defaults returns the predefined rule set of a user: the ruleset object
// ({"override": [...], "content": [...], ...}) as JSON.
func Defaults(userID string) json.RawMessage {
	quoted, _ := json.Marshal(userID)
	return json.RawMessage(strings.ReplaceAll(defaults, `"{{user_id}}"`, string(quoted)))
}
