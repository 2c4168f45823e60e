package config

import "testing"

func TestZZProbe(t *testing.T) {
	for _, s := range []string{
		"server_name: a\nlisteners:\n  - port: [1, 2]\n    type: http\n",
		"server_name: a\nlisteners:\n  - {type: http, port: abc, x_forwarded: true}\n",
		"server_name: a\nmodules:\n  - {module: x, timeout: 5 parsecs, on_error: allow}\n",
		"server_name: a\nmodules:\n  - {module: x, timeout: Infs}\n",
		"server_name: a\nmodules:\n  - {module: x, timeout: 1e300s}\n",
		"server_name: a\nfoo: [\n",
		"server_name: a\n  bad: indent\n",
		"# only a comment\n",
		"---\n",
		"null\n",
		"- a\n",
		"server_name: a\nserver_name: b\n",
		"server_name: a\nlisteners: 5\n",
		"server_name: a\nlisteners:\n  - type: http\n    port: 1\n    bind_addresses: 127.0.0.1\n",
		"server_name: a\nbcrypt_rounds: 12.5\n",
	} {
		_, err := Parse([]byte(s), "/x/h.yaml")
		t.Logf("%q\n   -> %v", s, err)
	}
}
