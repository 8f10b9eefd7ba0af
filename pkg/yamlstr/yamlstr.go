// Package yamlstr writes strings into hand-written YAML so that every
// reader gets back exactly the string written: a YAML 1.2 reader
// (gopkg.in/yaml.v3) and a YAML 1.1 one (go-yaml v2, which
// sigs.k8s.io/yaml, and so Skupper, reads with), where yes, on, no, off,
// y and n are booleans, 012 is octal, 1_000 and 190:20:30 are numbers.
//
// The rule is conservative, and cheap enough for the status files of
// thousands of resources: a string is written plain only when it matches
// a small pattern that no YAML version reads as anything but a string;
// everything else is double-quoted, with the escapes both versions know.
package yamlstr

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Plain tells whether s can be written as a plain scalar and read back as
// the same string by YAML 1.1 and 1.2 readers alike: a letter, then
// letters, digits and . _ - / + = (a name, a host name, base64), but none
// of the words YAML 1.1 or 1.2 reads as a boolean or null, in any case;
// or a dotted IPv4 address (four decimal numbers, no leading zero).
func Plain(s string) bool {
	if s == "" {
		return false
	}
	if c := s[0]; c >= '0' && c <= '9' {
		return dottedQuad(s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/' || c == '+' || c == '='):
		default:
			return false
		}
	}
	if len(s) <= 5 {
		switch strings.ToLower(s) {
		case "y", "n", "yes", "no", "true", "false", "on", "off", "null":
			return false
		}
	}
	return true
}

// dottedQuad tells whether s is four decimal numbers of at most three
// digits, without a leading zero, joined by dots: no YAML version reads
// that as a number (it has more than one dot) or a date.
func dottedQuad(s string) bool {
	parts := 0
	for part := range strings.SplitSeq(s, ".") {
		parts++
		if len(part) == 0 || len(part) > 3 || len(part) > 1 && part[0] == '0' {
			return false
		}
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return parts == 4
}

// Scalar is s as a YAML scalar: plain when Plain, else double-quoted.
func Scalar(s string) string {
	if Plain(s) {
		return s
	}
	return Quote(s)
}

// Quote is s as a YAML double-quoted scalar.
func Quote(s string) string { return string(AppendQuoted(nil, s)) }

// AppendQuoted appends s as a YAML double-quoted scalar. Printable ASCII
// is written as it is (but " and \); everything else YAML could read
// differently — control characters, DEL, the C1 controls, NEL and the
// line and paragraph separators (which YAML 1.1 folds as line breaks), the
// byte order mark, non-characters — is escaped as \uXXXX, \t, \n and so
// on, escapes YAML 1.1 and 1.2 share with Go. Bytes that are not UTF-8
// cannot be a YAML string: each is written as U+FFFD.
func AppendQuoted(dst []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			simple = false
			break
		}
	}
	if simple {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	// strconv escapes every rune Go does not count as printable: the
	// control characters (C0, DEL, C1 with NEL), the separators U+2028 and
	// U+2029, format characters (the byte order mark) and non-characters;
	// its escapes (\a \b \f \n \r \t \v \\ \" \xXX \uXXXX \UXXXXXXXX) all
	// mean in YAML what they mean in Go, and \xXX only stands for a rune
	// below U+0080 here
	return strconv.AppendQuote(dst, s)
}
