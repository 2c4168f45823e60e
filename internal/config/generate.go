package config

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// GenerateOptions shape a generated configuration.
type GenerateOptions struct {
	ServerName string // default "localhost"
	Port       int    // default 8008
	// BindAddress default "127.0.0.1": a fresh server is not reachable from
	// the network until the operator decides so.
	BindAddress string
}

// Generate returns a commented configuration with a random registration
// shared secret. Paths in it are relative to the file's own directory.
func Generate(o GenerateOptions) []byte {
	if o.ServerName == "" {
		o.ServerName = "localhost"
	}
	if o.Port == 0 {
		o.Port = 8008
	}
	if o.BindAddress == "" {
		o.BindAddress = "127.0.0.1"
	}
	return fmt.Appendf(nil, `# Sluice configuration. Keys follow Synapse's; see docs/configuration.md.
# Relative paths are relative to the directory of this file.

# The domain part of your users' IDs (@alice:%[1]s). It cannot change later.
server_name: %[1]q

# The URL clients reach this server at, when it is not http://<server_name>/.
# public_baseurl: https://matrix.example.org/

listeners:
  - port: %[2]d
    bind_addresses: [%[3]q]
    type: http
    x_forwarded: false
    resources:
      - names: [client, federation]

database:
  name: sqlite3            # or postgres, with args {dsn: ...} or user/password/dbname/host/port
  args:
    database: homeserver.db

signing_key_path: signing.key   # generated when missing
media_store_path: media
# max_upload_size: 50M          # the largest media upload (Synapse's default)

# As in Synapse, nobody may publish a room to the public room list until a
# rule allows it. This allows everyone:
# room_list_publication_rules: [{action: allow}]

# Lets 'sluice register-user' and Synapse's tools create accounts. Keep it secret.
registration_shared_secret: %[4]q

enable_registration: false
# enable_registration_without_verification: true   # needed with enable_registration: true

# Modules, run in this order. See docs/modules/index.md.
modules: []
`, o.ServerName, o.Port, o.BindAddress, randomSecret())
}

func randomSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("config: no randomness: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
