package id

import (
	"net/netip"
	"strconv"
	"strings"
)

// ServerName is a homeserver's name: a host (DNS name, IPv4 address, or
// IPv6 address in brackets) and an optional port.
//
//	server_name = hostname [ ":" port ]
//	port        = 1*5DIGIT
//	hostname    = IPv4address / "[" IPv6address "]" / dns-name
//
// Beyond the grammar, as the spec's prose asks: IPv4 octets are at most
// 255, IPv6 addresses are RFC 3513 addresses (no zone), and DNS names are
// dot-separated labels that are not empty (as Synapse checks). The spec's
// recommendations (at most 230 characters, no upper case) are not checked:
// other servers' names need not follow them.
type ServerName struct{ s string }

// ParseServerName checks s as a server name.
func ParseServerName(s string) (ServerName, error) {
	if reason := serverNameProblem(s); reason != "" {
		return ServerName{}, &Error{Kind: "server name", Input: s, Reason: reason}
	}
	return ServerName{s}, nil
}

func (n ServerName) String() string { return n.s }

// IsZero reports whether n is the zero ServerName, which no parse returns.
func (n ServerName) IsZero() bool { return n.s == "" }

// Host is the name without its port; an IPv6 address keeps its brackets.
func (n ServerName) Host() string {
	h, _, _ := splitHostPort(n.s)
	return h
}

// Port is the explicit port, if there is one. The grammar allows up to
// five digits, so it may be above 65535.
func (n ServerName) Port() (port int, ok bool) {
	_, p, ok := splitHostPort(n.s)
	if !ok {
		return 0, false
	}
	port, _ = strconv.Atoi(p)
	return port, true
}

// IP is the address when the host is an IP literal.
func (n ServerName) IP() (netip.Addr, bool) {
	h := n.Host()
	switch {
	case h == "":
		return netip.Addr{}, false
	case h[0] == '[':
		a, err := netip.ParseAddr(h[1 : len(h)-1])
		return a, err == nil
	case isIPv4Shaped(h):
		// Not netip.ParseAddr, which refuses leading zeros: the grammar
		// allows them, and they are decimal.
		var b [4]byte
		for i, octet := range strings.Split(h, ".") {
			v, _ := strconv.Atoi(octet)
			b[i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	return netip.Addr{}, false
}

func (n ServerName) MarshalText() ([]byte, error) { return []byte(n.s), nil }

func (n *ServerName) UnmarshalText(text []byte) error {
	return unmarshalText(n, text, ParseServerName)
}

// splitHostPort splits at the port's ':', which for IPv6 follows the ']'.
func splitHostPort(s string) (host, port string, hasPort bool) {
	if strings.HasPrefix(s, "[") {
		if j := strings.IndexByte(s, ']'); j >= 0 && len(s) > j+1 && s[j+1] == ':' {
			return s[:j+1], s[j+2:], true
		}
		return s, "", false
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// serverNameProblem says what is wrong with s, or "".
func serverNameProblem(s string) string {
	switch {
	case s == "":
		return "empty"
	case s[0] != '[' && strings.Count(s, ":") > 1:
		return "an IPv6 address must be in brackets"
	case s[0] == ':':
		return "no host before the port"
	}
	host, port, hasPort := splitHostPort(s)
	if hasPort {
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return "the port must be 1 to 5 digits"
		}
	}
	if host[0] == '[' {
		if host[len(host)-1] != ']' {
			if strings.IndexByte(host, ']') >= 0 {
				return "only a port may follow ']'"
			}
			return "'[' without ']'"
		}
		return ipv6Problem(host[1 : len(host)-1])
	}
	if isIPv4Shaped(host) {
		for _, octet := range strings.Split(host, ".") {
			if v, _ := strconv.Atoi(octet); v > 255 {
				return "IPv4 address with an octet above 255"
			}
		}
		return ""
	}
	return dnsNameProblem(host)
}

// isIPv4Shaped: 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT.
func isIPv4Shaped(h string) bool {
	parts := strings.Split(h, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// ipv6Problem checks a bracketed IPv6 literal: 2*45 of 0-9 A-F a-f : .,
// and an address RFC 3513 accepts.
func ipv6Problem(a string) string {
	if len(a) < 2 || len(a) > 45 {
		return "an IPv6 address has 2 to 45 characters"
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
			return "'" + string(rune(c)) + "' is not allowed in an IPv6 address"
		}
	}
	if addr, err := netip.ParseAddr(a); err != nil || !addr.Is6() {
		return "not an IPv6 address"
	}
	return ""
}

// dnsNameProblem checks a DNS name: 1*255 of letters, digits, '-' and
// '.', in labels that are not empty.
func dnsNameProblem(h string) string {
	if len(h) > 255 {
		return "a DNS name has at most 255 characters"
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			if c >= 0x80 {
				return "non-ASCII characters are not allowed in a DNS name (use its punycode form)"
			}
			return strconv.QuoteRune(rune(c)) + " is not allowed in a DNS name"
		}
	}
	if h[0] == '.' || h[len(h)-1] == '.' || strings.Contains(h, "..") {
		return "empty label in DNS name"
	}
	return ""
}
