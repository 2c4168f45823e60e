package module

import "maps"

// Matrix error codes modules commonly answer with. Any string is accepted;
// these are the ones Synapse's Codes enum names most often.
const (
	CodeForbidden             = "M_FORBIDDEN"
	CodeUnknown               = "M_UNKNOWN"
	CodeLimitExceeded         = "M_LIMIT_EXCEEDED"
	CodeConsentNotGiven       = "M_CONSENT_NOT_GIVEN"
	CodeResourceLimitExceeded = "M_RESOURCE_LIMIT_EXCEEDED"
	CodeUserDeactivated       = "M_USER_DEACTIVATED"
	CodeExpiredAccount        = "ORG_MATRIX_EXPIRED_ACCOUNT"
	CodeBadJSON               = "M_BAD_JSON"
	CodeNotFound              = "M_NOT_FOUND"
)

// Decision is a spam-checker answer: Synapse's NOT_SPAM, Codes, (Codes,
// dict) and deprecated str return forms. The zero value is Allow.
type Decision struct {
	code    string
	extra   map[string]any
	message string
	legacy  string // "str" or "bool" for Synapse's deprecated forms
}

// Allow lets the operation go on (Synapse's NOT_SPAM); later callbacks of
// the chain still get their say.
var Allow = Decision{}

// Deny rejects the operation with a Matrix error code (M_FORBIDDEN if code
// is empty). The client sees the call site's status and message with this
// errcode.
func Deny(code string) Decision {
	if code == "" {
		code = CodeForbidden
	}
	return Decision{code: code}
}

// DenyWith rejects with a code and extra fields merged into the JSON error
// body after errcode and error, so they may override either (as in Synapse's
// (Codes, dict) form).
func DenyWith(code string, extra map[string]any) Decision {
	d := Deny(code)
	d.extra = maps.Clone(extra)
	return d
}

// DenyMessage is Synapse's deprecated str form. For check_event_for_spam it
// rejects with M_FORBIDDEN and msg as the client's error text; the other
// callbacks treat it, as Synapse does, as an invalid answer: M_FORBIDDEN
// with the call site's message. Sluice logs a deprecation warning once per
// module and callback.
func DenyMessage(msg string) Decision {
	return Decision{code: CodeForbidden, message: msg, legacy: "str"}
}

// SpamBool is check_event_for_spam's deprecated bool form: true means spam
// (rejected with M_FORBIDDEN), false means allowed. Sluice logs a
// deprecation warning once per module and callback.
func SpamBool(isSpam bool) Decision {
	if isSpam {
		return Decision{code: CodeForbidden, legacy: "bool"}
	}
	return Decision{legacy: "bool"}
}

// AllowedBool is the user_may_* callbacks' deprecated bool form: true means
// allowed, false rejected with M_FORBIDDEN (the opposite polarity of
// SpamBool, which is why Synapse deprecated both). Sluice logs a
// deprecation warning once per module and callback.
func AllowedBool(allowed bool) Decision {
	if allowed {
		return Decision{legacy: "bool"}
	}
	return Decision{code: CodeForbidden, legacy: "bool"}
}

// Deprecated reports which deprecated Synapse form produced the decision:
// "str", "bool" or "".
func (d Decision) Deprecated() string { return d.legacy }

// Allowed reports whether the decision lets the operation through.
func (d Decision) Allowed() bool { return d.code == "" }

// Code is the Matrix errcode of a rejection ("" when allowed).
func (d Decision) Code() string { return d.code }

// Message is the module's own message for the client, "" to use the call
// site's.
func (d Decision) Message() string { return d.message }

// Extra returns a copy of the extra JSON fields of a rejection.
func (d Decision) Extra() map[string]any { return maps.Clone(d.extra) }

func (d Decision) String() string {
	if d.Allowed() {
		return "allow"
	}
	return "deny(" + d.code + ")"
}

// RegistrationBehaviour is check_registration_for_spam's answer. The zero
// value is RegistrationAllow.
type RegistrationBehaviour int

const (
	// RegistrationAllow lets the registration through (Synapse's ALLOW).
	RegistrationAllow RegistrationBehaviour = iota
	// RegistrationShadowBan creates the account shadow-banned: the user's
	// actions seem to succeed but reach nobody.
	RegistrationShadowBan
	// RegistrationDeny refuses the registration; the client sees 429
	// M_UNKNOWN "Rate limited", as Synapse deliberately disguises it.
	RegistrationDeny
)

func (b RegistrationBehaviour) String() string {
	switch b {
	case RegistrationAllow:
		return "allow"
	case RegistrationShadowBan:
		return "shadow_ban"
	case RegistrationDeny:
		return "deny"
	}
	return "invalid"
}

// Expiry is is_user_expired's answer: Synapse's Optional[bool]. The zero
// value is ExpiryUnknown.
type Expiry int

const (
	// ExpiryUnknown: this module cannot tell (Synapse's None); the next
	// callback is asked, and if none knows the account is not expired.
	ExpiryUnknown Expiry = iota
	// NotExpired: the account is valid (False).
	NotExpired
	// Expired: the account has expired (True); requests are refused with
	// 403 ORG_MATRIX_EXPIRED_ACCOUNT, but the access token stays valid.
	Expired
)

func (e Expiry) String() string {
	switch e {
	case ExpiryUnknown:
		return "unknown"
	case NotExpired:
		return "not_expired"
	case Expired:
		return "expired"
	}
	return "invalid"
}
