package module

import (
	"errors"
	"path/filepath"
	"strconv"

	"github.com/sluice-im/sluice/internal/yamlstrict"
	"gopkg.in/yaml.v3"
)

// RawConfig is a module entry's `config:` as written in the configuration
// file. Decode it into a typed struct (strictly), or take it as a map.
type RawConfig struct {
	node *yaml.Node // nil when `config:` is missing or null
	dir  string     // the configuration file's directory ("" when unknown)
}

// WithDir returns the config with the directory relative paths in it are
// resolved against. Sluice's host sets it to the configuration file's
// directory.
func (c RawConfig) WithDir(dir string) RawConfig {
	c.dir = dir
	return c
}

// ResolvePath makes a path from the module's configuration absolute,
// relative to the configuration file's directory, as Sluice resolves its
// own paths (media_store_path, signing_key_path, ...). Absolute paths and
// "" are returned as they are; without a known directory, the path is
// relative to the working directory.
func (c RawConfig) ResolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if c.dir == "" {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	return filepath.Join(c.dir, p)
}

// NewRawConfig wraps a YAML node; nil means "no config". Sluice's host calls
// it; tests of a module's ParseConfig can use ParseRawConfig instead.
func NewRawConfig(node *yaml.Node) RawConfig {
	if node != nil && node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	if node != nil && node.Tag == "!!null" {
		node = nil
	}
	return RawConfig{node: node}
}

// ParseRawConfig parses YAML text into a RawConfig, for tests and for modules
// that receive their configuration from elsewhere.
func ParseRawConfig(text string) (RawConfig, error) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		return RawConfig{}, &ConfigError{Msg: err.Error()}
	}
	if n.Kind == 0 {
		return RawConfig{}, nil
	}
	return NewRawConfig(&n), nil
}

// IsZero reports whether the entry had no (or a null) `config:`.
func (c RawConfig) IsZero() bool { return c.node == nil }

// Decode decodes the config into v (a pointer to a struct with `yaml:` tags,
// or a map) strictly: a key v has no field for, or a value of the wrong type,
// is a *ConfigError naming the key and its line in the configuration file. A
// missing config leaves v untouched.
func (c RawConfig) Decode(v any) error {
	if c.node == nil {
		return nil
	}
	err := yamlstrict.Decode(c.node, v, "")
	var ye *yamlstrict.Error
	if errors.As(err, &ye) {
		ce := &ConfigError{Msg: ye.Msg}
		if ye.Path != "" {
			ce.Path = []string{ye.Path}
		}
		if ye.Line > 0 {
			ce.Msg = ye.Msg + " (line " + strconv.Itoa(ye.Line) + ")"
		}
		return ce
	}
	return err
}

// Map returns the config as generic Go values (map[string]any, []any,
// string, int, float64, bool, nil). A missing config is an empty map, as
// Synapse passes {}. A config that is not a mapping is returned under "".
func (c RawConfig) Map() map[string]any {
	if c.node == nil {
		return map[string]any{}
	}
	var v any
	if err := c.node.Decode(&v); err != nil {
		return map[string]any{}
	}
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{"": v}
}
