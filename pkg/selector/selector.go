// Package selector parses and matches label selectors in Kubernetes
// syntax, as a Connector's spec.selector is written: requirements joined
// by commas, all of which must hold.
//
//	app=backend            equal (also app==backend)
//	tier!=cache            not equal (also true when there is no tier label)
//	env in (prod,staging)  one of
//	env notin (dev)        none of (also true without the label)
//	canary                 the label exists
//	!canary                the label does not exist
//
// Keys and values follow Kubernetes' label rules: a key is a name of at most
// 63 characters ([A-Za-z0-9] at both ends, [-_.A-Za-z0-9] between) with an
// optional DNS subdomain prefix and "/"; a value is empty or such a name.
package selector

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Op is a requirement's operator.
type Op string

// Operators.
const (
	Equals       Op = "="
	NotEquals    Op = "!="
	In           Op = "in"
	NotIn        Op = "notin"
	Exists       Op = "exists"
	DoesNotExist Op = "!"
)

// Requirement is one comma-separated part of a selector.
type Requirement struct {
	Key    string
	Op     Op
	Values []string // Equals and NotEquals: one; In and NotIn: one or more
}

// Selector is a parsed selector: every requirement must hold. The empty
// selector matches everything.
type Selector struct {
	Requirements []Requirement
	text         string
}

// String is the selector as written.
func (s Selector) String() string { return s.text }

// Matches tells whether a set of labels satisfies every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s.Requirements {
		if !r.matches(labels) {
			return false
		}
	}
	return true
}

func (r Requirement) matches(labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Op {
	case Equals:
		return ok && v == r.Values[0]
	case NotEquals:
		return !ok || v != r.Values[0]
	case In:
		return ok && slices.Contains(r.Values, v)
	case NotIn:
		return !ok || !slices.Contains(r.Values, v)
	case Exists:
		return ok
	case DoesNotExist:
		return !ok
	}
	return false
}

// Parse parses a selector. The error says which requirement is wrong and
// why.
func Parse(text string) (Selector, error) {
	sel := Selector{text: text}
	if strings.TrimSpace(text) == "" {
		return sel, nil
	}
	parts, err := split(text)
	if err != nil {
		return Selector{}, err
	}
	for _, part := range parts {
		r, err := parseRequirement(strings.TrimSpace(part))
		if err != nil {
			return Selector{}, fmt.Errorf("%q: %w", strings.TrimSpace(part), err)
		}
		sel.Requirements = append(sel.Requirements, r)
	}
	return sel, nil
}

// split cuts at the commas that are not inside parentheses.
func split(text string) ([]string, error) {
	var parts []string
	depth, start, open := 0, 0, 0
	for i, c := range text {
		switch c {
		case '(':
			depth++
			open = i
			if depth > 1 {
				return nil, fmt.Errorf("nested parenthesis at character %d", i+1)
			}
		case ')':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unmatched ) at character %d", i+1)
			}
		case ',':
			if depth == 0 {
				parts = append(parts, text[start:i])
				start = i + 1
			}
		}
	}
	if depth > 0 {
		return nil, fmt.Errorf("the ( at character %d is never closed: end the list of values with )", open+1)
	}
	return append(parts, text[start:]), nil
}

var setOp = regexp.MustCompile(`^(\S+)\s+(in|notin)\s*\((.*)\)$`)

func parseRequirement(part string) (Requirement, error) {
	if part == "" {
		return Requirement{}, fmt.Errorf("empty requirement (two commas in a row, or a comma at an end)")
	}
	if m := setOp.FindStringSubmatch(part); m != nil {
		r := Requirement{Key: m[1], Op: Op(m[2])}
		if err := checkKey(r.Key); err != nil {
			return Requirement{}, err
		}
		for _, v := range strings.Split(m[3], ",") {
			v = strings.TrimSpace(v)
			if err := checkValue(v); err != nil {
				return Requirement{}, err
			}
			r.Values = append(r.Values, v)
		}
		if len(r.Values) == 1 && r.Values[0] == "" {
			return Requirement{}, fmt.Errorf("%s needs at least one value: %s %s (a,b)", r.Op, r.Key, r.Op)
		}
		return r, nil
	}
	for _, op := range []struct {
		text string
		op   Op
	}{{"!=", NotEquals}, {"==", Equals}, {"=", Equals}} {
		key, value, ok := strings.Cut(part, op.text)
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if err := checkKey(key); err != nil {
			return Requirement{}, err
		}
		if strings.ContainsAny(value, "=!") {
			return Requirement{}, fmt.Errorf("value %q: more than one operator", value)
		}
		if err := checkValue(value); err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: key, Op: op.op, Values: []string{value}}, nil
	}
	if key, ok := strings.CutPrefix(part, "!"); ok {
		key = strings.TrimSpace(key)
		if err := checkKey(key); err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: key, Op: DoesNotExist}, nil
	}
	if strings.ContainsAny(part, " \t()") {
		return Requirement{}, fmt.Errorf("not a requirement: use key=value, key!=value, key in (a,b), key notin (a,b), key or !key")
	}
	if err := checkKey(part); err != nil {
		return Requirement{}, err
	}
	return Requirement{Key: part, Op: Exists}, nil
}

var (
	name      = regexp.MustCompile(`^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$`)
	subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("a requirement needs a key")
	}
	prefix, n, hasPrefix := strings.Cut(key, "/")
	if !hasPrefix {
		n, prefix = prefix, ""
	}
	if hasPrefix && (prefix == "" || len(prefix) > 253 || !subdomain.MatchString(prefix)) {
		return fmt.Errorf("key %q: the prefix before / must be a DNS subdomain (lower case, at most 253 characters)", key)
	}
	if len(n) > 63 || !name.MatchString(n) {
		return fmt.Errorf("key %q: a label name is 1 to 63 characters, [A-Za-z0-9] at both ends and [-_.A-Za-z0-9] between", key)
	}
	return nil
}

func checkValue(v string) error {
	if v == "" {
		return nil
	}
	if len(v) > 63 || !name.MatchString(v) {
		return fmt.Errorf("value %q: a label value is empty or 1 to 63 characters, [A-Za-z0-9] at both ends and [-_.A-Za-z0-9] between", v)
	}
	return nil
}
