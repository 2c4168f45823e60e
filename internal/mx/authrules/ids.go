package authrules

import (
	"strings"
	"unicode/utf8"
)

// domainOf is the server name of a user ID (everything after the first
// colon), or "" when there is none.
func domainOf(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		return id[i+1:]
	}
	return ""
}

// validUserID reports whether s is a user ID that servers must accept in
// events (appendices, "Historical User IDs"): "@", a localpart of any
// code points but ":" and NUL (possibly empty), ":", a valid server name;
// valid UTF-8 and 255 bytes at most.
func validUserID(s string) bool {
	if len(s) > 255 || len(s) < 3 || s[0] != '@' || !utf8.ValidString(s) {
		return false
	}
	i := strings.IndexByte(s, ':')
	if i < 0 || strings.IndexByte(s[:i], 0) >= 0 {
		return false
	}
	return validServerName(s[i+1:])
}

// validServerName checks the spec's server name grammar:
// hostname [ ":" port ], where hostname is an IPv4 address, a bracketed
// IPv6 address or a DNS name.
func validServerName(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[:end+1], s[end+1:]
		ip := host[1 : len(host)-1]
		if len(ip) < 2 || len(ip) > 45 {
			return false
		}
		for k := 0; k < len(ip); k++ {
			c := ip[k]
			if !(isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.') {
				return false
			}
		}
	} else {
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i:]
		}
		if len(host) < 1 || len(host) > 255 {
			return false
		}
		for k := 0; k < len(host); k++ {
			c := host[k]
			if !(isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.') {
				return false
			}
		}
	}
	if port == "" {
		return true
	}
	if port[0] != ':' || len(port) < 2 || len(port) > 6 {
		return false
	}
	for k := 1; k < len(port); k++ {
		if !isDigit(port[k]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
