// Package config loads, validates and generates Sluice's YAML configuration.
// Key names and shapes follow Synapse's wherever Synapse has the setting, so
// an operator's knowledge and most of a Synapse config file carry over.
// Loading is strict: an unknown key, a wrong type or a bad value is an error
// naming the key and its line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-im/sluice/internal/mx/event"
	"github.com/sluice-im/sluice/internal/ratelimit"
	"github.com/sluice-im/sluice/internal/yamlstrict"
	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	ServerName                            string            `yaml:"server_name"`
	PublicBaseURL                         string            `yaml:"public_baseurl"`
	Listeners                             []Listener        `yaml:"listeners"`
	Database                              Database          `yaml:"database"`
	SigningKeyPath                        string            `yaml:"signing_key_path"`
	MediaStorePath                        string            `yaml:"media_store_path"`
	RegistrationSharedSecret              string            `yaml:"registration_shared_secret"`
	RegistrationSharedSecretPath          string            `yaml:"registration_shared_secret_path"`
	EnableRegistration                    bool              `yaml:"enable_registration"`
	EnableRegistrationWithoutVerification bool              `yaml:"enable_registration_without_verification"`
	BcryptRounds                          int               `yaml:"bcrypt_rounds"`
	EnableMetrics                         bool              `yaml:"enable_metrics"`
	DefaultRoomVersion                    string            `yaml:"default_room_version"`
	RCMessage                             *ratelimit.Config `yaml:"rc_message"`
	RCJoins                               *RCJoins          `yaml:"rc_joins"`
	RCLogin                               *RCLogin          `yaml:"rc_login"`
	RCRegistration                        *ratelimit.Config `yaml:"rc_registration"`
	Modules                               []Module          `yaml:"modules"`
	// The room directory (directory.go).
	AllowPublicRoomsWithoutAuth bool            `yaml:"allow_public_rooms_without_auth"`
	RequireMembershipForAliases *bool           `yaml:"require_membership_for_aliases"`
	EnableRoomListSearch        *bool           `yaml:"enable_room_list_search"`
	AliasCreationRules          []DirectoryRule `yaml:"alias_creation_rules"`
	RoomListPublicationRules    []DirectoryRule `yaml:"room_list_publication_rules"`
	// Profiles and the user directory (userdir.go).
	RequireAuthForProfileRequests            bool              `yaml:"require_auth_for_profile_requests"`
	LimitProfileRequestsToUsersWhoShareRooms bool              `yaml:"limit_profile_requests_to_users_who_share_rooms"`
	UserDirectory                            UserDirectory     `yaml:"user_directory"`
	RCUserDirectory                          *ratelimit.Config `yaml:"rc_user_directory"`
	// The media repository's keys (media.go).
	Media `yaml:",inline"`

	// Path is the file the configuration was read from ("" if built in code).
	Path string `yaml:"-"`
}

// RCJoins is `rc_joins` (Synapse's shape; remote joins arrive with
// federation).
type RCJoins struct {
	Local  *ratelimit.Config `yaml:"local"`
	Remote *ratelimit.Config `yaml:"remote"`
}

// RCLogin is `rc_login`.
type RCLogin struct {
	Address        *ratelimit.Config `yaml:"address"`
	Account        *ratelimit.Config `yaml:"account"`
	FailedAttempts *ratelimit.Config `yaml:"failed_attempts"`
}

// Listener is one entry of `listeners:`.
type Listener struct {
	Port          int        `yaml:"port"`
	BindAddresses []string   `yaml:"bind_addresses"`
	Type          string     `yaml:"type"`
	TLS           bool       `yaml:"tls"`
	XForwarded    bool       `yaml:"x_forwarded"`
	Resources     []Resource `yaml:"resources"`
}

// Resource is one entry of a listener's `resources:`.
type Resource struct {
	Names    []string `yaml:"names"`
	Compress bool     `yaml:"compress"`
}

// Database is `database:`.
type Database struct {
	Name string       `yaml:"name"`
	Args DatabaseArgs `yaml:"args"`
}

// DatabaseArgs are `database.args`: `database` for sqlite3; for postgres
// either `dsn` or Synapse's psycopg2 keys.
type DatabaseArgs struct {
	Database string `yaml:"database"` // sqlite3: file path; postgres: database name
	DSN      string `yaml:"dsn"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	DBName   string `yaml:"dbname"`
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	SSLMode  string `yaml:"sslmode"`
	CPMin    int    `yaml:"cp_min"`
	CPMax    int    `yaml:"cp_max"`
}

// Module is one entry of `modules:`. Timeout and OnError go beyond Synapse.
type Module struct {
	Module  string    `yaml:"module"`
	Config  yaml.Node `yaml:"config"`
	Timeout Duration  `yaml:"timeout"`
	OnError string    `yaml:"on_error"`

	Line int    `yaml:"-"` // line of the entry in the file
	Dir  string `yaml:"-"` // the configuration file's directory, for the module's relative paths
}

// Duration is a Synapse-style duration: an integer of milliseconds or a
// string with a unit ("500ms", "5s", "10m", "1h", "2d", "1w", "1y").
type Duration time.Duration

// UnmarshalYAML accepts both forms.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yamlstrict.Error{Line: n.Line, Column: n.Column, Msg: "expected a duration such as 5s or 500ms"}
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &yamlstrict.Error{Line: n.Line, Column: n.Column, Msg: err.Error()}
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses a Synapse-style duration.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return 0, fmt.Errorf("duration %q is negative", s)
		}
		if ms > math.MaxInt64/int64(time.Millisecond) {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	units := []struct {
		suffix string
		d      time.Duration
	}{{"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour},
		{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}, {"y", 365 * 24 * time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil || !(f >= 0) { // !(f >= 0) also catches NaN
				break
			}
			v := f * float64(u.d)
			if v >= math.MaxInt64 { // also +Inf; converting it is undefined
				return 0, fmt.Errorf("duration %q is too long", s)
			}
			return time.Duration(v), nil
		}
	}
	return 0, fmt.Errorf("invalid duration %q (use e.g. 500ms, 5s, 10m, 1h, 2d or an integer of milliseconds)", s)
}

// Error is a configuration problem, with the file and line it is on.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "%s: ", e.Key)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and validates a configuration file. Relative paths in it are
// resolved against the directory of the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse parses and validates configuration text; path is used for messages
// and to resolve relative paths ("" means the working directory).
func Parse(data []byte, path string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		// "yaml: line 3: did not find expected '-' indicator": yaml.v3's
		// line is often that of the enclosing block, counted from 0 (so
		// the line before it). Put the line the text stops parsing at
		// where every other error has its line.
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "line ") {
			msg = rest
		}
		return nil, &Error{File: path, Line: syntaxErrorLine(data), Msg: "not valid YAML: " + msg}
	}
	c := &Config{Path: path}
	if root.Kind == 0 {
		return nil, &Error{File: path, Msg: "the file is empty"}
	}
	if err := yamlstrict.Decode(&root, c, ""); err != nil {
		var ye *yamlstrict.Error
		if errors.As(err, &ye) {
			return nil, &Error{File: path, Line: ye.Line, Key: ye.Path, Msg: ye.Msg}
		}
		return nil, &Error{File: path, Msg: err.Error()}
	}
	c.recordModuleLines(&root)
	if err := c.validate(&root); err != nil {
		return nil, err
	}
	return c, nil
}

// syntaxErrorLine finds the line of a YAML syntax error: the line after the
// longest beginning of the text that still parses.
func syntaxErrorLine(data []byte) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	for k := len(lines) - 1; k > 0; k-- {
		var n yaml.Node
		if yaml.Unmarshal(bytes.Join(lines[:k], nil), &n) == nil {
			return k + 1
		}
	}
	return 1
}

func (c *Config) recordModuleLines(root *yaml.Node) {
	n := mapValue(docRoot(root), "modules")
	if n == nil || n.Kind != yaml.SequenceNode {
		return
	}
	dir := filepath.Dir(c.Resolve("sluice.yaml"))
	for i, e := range n.Content {
		if i < len(c.Modules) {
			c.Modules[i].Line = e.Line
			c.Modules[i].Dir = dir
		}
	}
}

// Resolve makes a path from the configuration absolute, relative to the
// configuration file's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	base := "."
	if c.Path != "" {
		base = filepath.Dir(c.Path)
	}
	abs, err := filepath.Abs(filepath.Join(base, p))
	if err != nil {
		return filepath.Join(base, p)
	}
	return abs
}

// Known resource names: Synapse's; the ones Sluice serves are marked.
var resourceNames = map[string]bool{
	"client": true, "metrics": true, "health": true,
	"federation": true, "keys": true, // so far: the server key endpoint
	"media": true, "openid": false, "replication": false, "static": false, "consent": false,
}

// ServedResource reports whether Sluice serves a resource name (the others
// are accepted for Synapse compatibility and ignored with a warning).
func ServedResource(name string) bool { return resourceNames[name] }

func (c *Config) validate(root *yaml.Node) error {
	doc := docRoot(root)
	fail := func(key, msg string, args ...any) error {
		return &Error{File: c.Path, Line: lineOf(doc, key), Key: key, Msg: fmt.Sprintf(msg, args...)}
	}
	if c.ServerName == "" {
		return fail("server_name", "is required (the domain part of your users' IDs, e.g. example.org)")
	}
	if err := validServerName(c.ServerName); err != nil {
		return fail("server_name", "%v", err)
	}
	if c.PublicBaseURL != "" {
		u, err := url.Parse(c.PublicBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail("public_baseurl", "must be an http:// or https:// URL, got %q", c.PublicBaseURL)
		}
		if !strings.HasSuffix(c.PublicBaseURL, "/") {
			c.PublicBaseURL += "/"
		}
	}
	if len(c.Listeners) == 0 {
		c.Listeners = []Listener{{Port: 8008, BindAddresses: []string{"127.0.0.1"}, Type: "http",
			Resources: []Resource{{Names: []string{"client", "federation"}}}}}
	}
	listenerNodes := mapValue(doc, "listeners")
	for i := range c.Listeners {
		l := &c.Listeners[i]
		key := fmt.Sprintf("listeners[%d]", i)
		if listenerNodes != nil && i < len(listenerNodes.Content) && mapValue(listenerNodes.Content[i], "port") == nil {
			return fail(key, "port is required (0 picks a free port)")
		}
		if l.Port < 0 || l.Port > 65535 {
			return fail(key+".port", "must be between 0 and 65535, got %d", l.Port)
		}
		if l.Type == "" {
			return fail(key, "type is required (http or metrics)")
		}
		if l.Type != "http" && l.Type != "metrics" {
			return fail(key+".type", "must be http or metrics, got %q", l.Type)
		}
		if l.TLS {
			return fail(key+".tls", "TLS listeners are not supported; put a reverse proxy in front of Sluice")
		}
		if len(l.BindAddresses) == 0 {
			// Synapse's default: every address, IPv6 and IPv4.
			l.BindAddresses = []string{"::", "0.0.0.0"}
		}
		for j, a := range l.BindAddresses {
			if net.ParseIP(a) == nil {
				return fail(fmt.Sprintf("%s.bind_addresses[%d]", key, j), "%q is not an IP address", a)
			}
		}
		for j, r := range l.Resources {
			for k, name := range r.Names {
				if _, ok := resourceNames[name]; !ok {
					return fail(fmt.Sprintf("%s.resources[%d].names[%d]", key, j, k), "unknown resource %q", name)
				}
			}
		}
	}
	switch c.Database.Name {
	case "":
		c.Database.Name = "sqlite3"
	case "sqlite3":
	case "postgres", "psycopg2":
		c.Database.Name = "postgres"
	default:
		return fail("database.name", "must be sqlite3 or postgres (psycopg2 is accepted as an alias), got %q", c.Database.Name)
	}
	if c.Database.Name == "sqlite3" {
		a := c.Database.Args
		if a.DSN != "" || a.User != "" || a.Password != "" || a.DBName != "" || a.Host != "" || a.Port != 0 || a.SSLMode != "" || a.CPMin != 0 || a.CPMax != 0 {
			return fail("database.args", "sqlite3 takes only database (the file path); the other args are for postgres")
		}
		if c.Database.Args.Database == "" {
			c.Database.Args.Database = "homeserver.db"
		}
		c.Database.Args.Database = c.Resolve(c.Database.Args.Database)
	} else if c.Database.Args.CPMax < 0 || c.Database.Args.CPMin < 0 {
		return fail("database.args", "cp_min and cp_max must not be negative")
	}
	if c.SigningKeyPath == "" {
		c.SigningKeyPath = c.ServerName + ".signing.key"
	}
	c.SigningKeyPath = c.Resolve(c.SigningKeyPath)
	if c.MediaStorePath == "" {
		c.MediaStorePath = "media_store"
	}
	c.MediaStorePath = c.Resolve(c.MediaStorePath)
	if c.RegistrationSharedSecret != "" && c.RegistrationSharedSecretPath != "" {
		return fail("registration_shared_secret_path", "cannot be set together with registration_shared_secret")
	}
	if c.RegistrationSharedSecretPath != "" {
		p := c.Resolve(c.RegistrationSharedSecretPath)
		b, err := os.ReadFile(p)
		if err != nil {
			return fail("registration_shared_secret_path", "cannot read the secret: %v", err)
		}
		c.RegistrationSharedSecret = strings.TrimSpace(string(b))
	}
	if c.EnableRegistration && !c.EnableRegistrationWithoutVerification {
		// Synapse refuses open registration without verification too: it is
		// a known vector for spam.
		return fail("enable_registration", "open registration without any verification is a known vector for spam and abuse; "+
			"set enable_registration_without_verification: true as well if you really want it")
	}
	if c.DefaultRoomVersion == "" {
		c.DefaultRoomVersion = event.DefaultVersion
	}
	if _, ok := event.LookupVersion(c.DefaultRoomVersion); !ok {
		return fail("default_room_version", "room version %q is not supported; supported: %s", c.DefaultRoomVersion, strings.Join(event.VersionIDs(), ", "))
	}
	// Synapse's defaults for the rate limiters.
	def := func(p **ratelimit.Config, perSecond, burst float64) {
		if *p == nil {
			*p = &ratelimit.Config{PerSecond: perSecond, BurstCount: burst}
		}
	}
	def(&c.RCMessage, 0.2, 10)
	def(&c.RCRegistration, 0.17, 3)
	if c.RCJoins == nil {
		c.RCJoins = &RCJoins{}
	}
	def(&c.RCJoins.Local, 0.1, 10)
	def(&c.RCJoins.Remote, 0.01, 10)
	if c.RCLogin == nil {
		c.RCLogin = &RCLogin{}
	}
	def(&c.RCLogin.Address, 0.003, 5)
	def(&c.RCLogin.Account, 0.003, 5)
	def(&c.RCLogin.FailedAttempts, 0.17, 3)
	defaultUserDirectoryLimit(&c.RCUserDirectory)
	for key, rc := range map[string]*ratelimit.Config{"rc_message": c.RCMessage, "rc_registration": c.RCRegistration,
		"rc_joins.local": c.RCJoins.Local, "rc_joins.remote": c.RCJoins.Remote, "rc_login.address": c.RCLogin.Address,
		"rc_login.account": c.RCLogin.Account, "rc_login.failed_attempts": c.RCLogin.FailedAttempts,
		"rc_user_directory": c.RCUserDirectory} {
		if rc.PerSecond < 0 || rc.BurstCount < 0 {
			return fail(key, "per_second and burst_count must not be negative")
		}
	}
	if err := c.validateMedia(fail); err != nil {
		return err
	}
	if c.BcryptRounds == 0 {
		c.BcryptRounds = 12
	}
	if c.BcryptRounds < 4 || c.BcryptRounds > 31 {
		return fail("bcrypt_rounds", "must be between 4 and 31, got %d", c.BcryptRounds)
	}
	if err := c.validateDirectory(fail); err != nil {
		return err
	}
	for i, m := range c.Modules {
		key := fmt.Sprintf("modules[%d]", i)
		if strings.TrimSpace(m.Module) == "" {
			return fail(key+".module", "is required: the name of the module")
		}
		switch m.OnError {
		case "", "allow", "deny":
		default:
			return fail(key+".on_error", "must be allow or deny, got %q", m.OnError)
		}
		if m.Timeout < 0 {
			return fail(key+".timeout", "must not be negative")
		}
	}
	return nil
}

// validServerName checks the spec's server name grammar: a DNS name, an
// IPv4 literal or a bracketed IPv6 literal, with an optional port.
func validServerName(s string) error {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return fmt.Errorf("%q: unterminated IPv6 literal", s)
		}
		host, port = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		if s[end+1:] != "" && !strings.HasPrefix(s[end+1:], ":") {
			return fmt.Errorf("%q: unexpected text after the IPv6 literal", s)
		}
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return fmt.Errorf("%q: not a valid IPv6 literal", s)
		}
	} else if i := strings.LastIndex(s, ":"); i >= 0 {
		host, port = s[:i], s[i+1:]
	}
	if port != "" || strings.HasSuffix(s, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || len(port) > 5 {
			return fmt.Errorf("%q: invalid port", s)
		}
	}
	if host == "" {
		return fmt.Errorf("%q: empty host", s)
	}
	if !strings.HasPrefix(s, "[") {
		for _, r := range host {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
				return fmt.Errorf("%q: invalid character %q in the host name", s, r)
			}
		}
	}
	if len(s) > 255 {
		return fmt.Errorf("server name longer than 255 characters")
	}
	return nil
}

func docRoot(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return n.Content[0]
	}
	return n
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// lineOf finds the line of a dotted key path such as listeners[0].port,
// falling back to the nearest ancestor that is present in the file.
func lineOf(root *yaml.Node, path string) int {
	line := 0
	n := root
	for _, part := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			if n == nil || n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == name {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		}
		for rest != "" {
			idxStr, after, _ := strings.Cut(rest, "]")
			idx, _ := strconv.Atoi(idxStr)
			if n == nil || n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return line
}
