package selector

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Requirement
	}{
		{"", nil},
		{"app=backend", []Requirement{{"app", Equals, []string{"backend"}}}},
		{"app == backend", []Requirement{{"app", Equals, []string{"backend"}}}},
		{"tier!=cache", []Requirement{{"tier", NotEquals, []string{"cache"}}}},
		{"app=", []Requirement{{"app", Equals, []string{""}}}},
		{"env in (prod, staging)", []Requirement{{"env", In, []string{"prod", "staging"}}}},
		{"env notin (dev)", []Requirement{{"env", NotIn, []string{"dev"}}}},
		{"canary", []Requirement{{"canary", Exists, nil}}},
		{"!canary", []Requirement{{"canary", DoesNotExist, nil}}},
		{"app.kubernetes.io/name=web", []Requirement{{"app.kubernetes.io/name", Equals, []string{"web"}}}},
		{"app=backend, env in (a,b),!canary , tier", []Requirement{
			{"app", Equals, []string{"backend"}}, {"env", In, []string{"a", "b"}},
			{"canary", DoesNotExist, nil}, {"tier", Exists, nil}}},
	} {
		sel, err := Parse(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(sel.Requirements, tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.in, sel.Requirements, tc.want)
		}
		if sel.String() != tc.in {
			t.Errorf("%q: String %q", tc.in, sel.String())
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"app=backend,", `"": empty requirement (two commas in a row, or a comma at an end)`},
		{"app=a=b", `"app=a=b": value "a=b": more than one operator`},
		{"=backend", `"=backend": a requirement needs a key`},
		{"-app=x", `"-app=x": key "-app": a label name is 1 to 63 characters, [A-Za-z0-9] at both ends and [-_.A-Za-z0-9] between`},
		{"Example.com/app=x", `"Example.com/app=x": key "Example.com/app": the prefix before / must be a DNS subdomain (lower case, at most 253 characters)`},
		{"app=-x", `"app=-x": value "-x": a label value is empty or 1 to 63 characters, [A-Za-z0-9] at both ends and [-_.A-Za-z0-9] between`},
		{"env in ()", `"env in ()": in needs at least one value: env in (a,b)`},
		{"env in (a,(b))", `nested parenthesis at character 11`},
		{"env in (a", `the ( at character 8 is never closed: end the list of values with )`},
		{"env in a)", `unmatched ) at character 9`},
		{"app backend", `"app backend": not a requirement: use key=value, key!=value, key in (a,b), key notin (a,b), key or !key`},
		{"!", `"!": a requirement needs a key`},
	} {
		_, err := Parse(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: error %v, want %s", tc.in, err, tc.want)
		}
	}
}

func TestMatches(t *testing.T) {
	labels := map[string]string{"app": "backend", "env": "prod", "canary": ""}
	for _, tc := range []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"app=backend", true},
		{"app=frontend", false},
		{"app!=frontend", true},
		{"tier!=cache", true}, // no tier label
		{"env in (prod,staging)", true},
		{"env in (dev)", false},
		{"env notin (dev)", true},
		{"tier notin (cache)", true},
		{"canary", true},
		{"!canary", false},
		{"!tier", true},
		{"tier in (cache)", false},
		{"app=backend,env=prod", true},
		{"app=backend,env=dev", false},
		{"canary=", true}, // the label exists with an empty value
	} {
		sel, err := Parse(tc.sel)
		if err != nil {
			t.Fatalf("%q: %v", tc.sel, err)
		}
		if got := sel.Matches(labels); got != tc.want {
			t.Errorf("%q matches %v: %v, want %v", tc.sel, labels, got, tc.want)
		}
	}
}
