package resources

import (
	"strings"
	"testing"
)

func problems(ps []Problem) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return strings.Join(out, "\n")
}

func TestDecodeDocumentsAndLines(t *testing.T) {
	src := `# leading comment
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata:
  name: a
spec:
  routingKey: a
  host: 127.0.0.1
  port: 1
---
--- {apiVersion: skupper.io/v2alpha1, kind: Connector, metadata: {name: b}, spec: {routingKey: b, host: h, port: 2}}
...
---
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata:
  name: c
spec:
  port: [1
---
apiVersion: skupper.io/v2alpha1
kind: Site
metadata:
  name: d
`
	docs, probs := Decode("f.yaml", []byte(src))
	if got := problems(probs); got != "f.yaml:19: invalid YAML: did not find expected ',' or ']'" {
		t.Errorf("problems: %s", got)
	}
	var names []string
	for _, d := range docs {
		names = append(names, d.ID())
	}
	if strings.Join(names, " ") != "Listener/a Connector/b Site/d" {
		t.Errorf("documents: %v", names)
	}
	if docs[0].Line != 2 || docs[0].LineOf("spec.port") != 9 || docs[1].Line != 11 || docs[2].Line != 21 {
		t.Errorf("lines: %d %d %d %d", docs[0].Line, docs[0].LineOf("spec.port"), docs[1].Line, docs[2].Line)
	}
	if !strings.HasPrefix(string(docs[0].Raw), "# leading comment\napiVersion") || docs[1].Raw != nil {
		t.Errorf("raw text: %q / %q", docs[0].Raw, docs[1].Raw)
	}
	l := docs[0].Object.(*Listener)
	if l.Spec.Port != 1 || l.Spec.Host != "127.0.0.1" {
		t.Errorf("decoded %+v", l.Spec)
	}
}

func TestFieldProblems(t *testing.T) {
	for _, tc := range []struct{ name, spec, want string }{
		{"string for int", "port: abc", `spec.port: must be an integer, got "abc"`},
		{"quoted int", `port: "80"`, `spec.port: must be an integer, got "80"`},
		{"float", "port: 1.5", `spec.port: must be an integer, got 1.5`},
		{"list for string", "host: [a]", "spec.host: must be a string, got a list"},
		{"bool as string", "exposePodsByName: yes", `spec.exposePodsByName: must be true or false, got "yes"`},
		{"settings not a map", "settings: x", `spec.settings: must be a mapping of strings, got "x"`},
		{"duplicate", "port: 1\n  port: 2", "spec.port: duplicate field"}, // reported on line 7, see below
		{"case typo", "RoutingKey: x", "spec.RoutingKey: unknown field; did you mean routingKey?"},
		{"unrelated", "colour: x", "spec.colour: unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: l\nspec:\n  " + tc.spec + "\n"
			docs, _ := Decode("f.yaml", []byte(src))
			if len(docs) != 1 {
				t.Fatalf("%d documents", len(docs))
			}
			got := problems(docs[0].problems)
			line := "6"
			if tc.name == "duplicate" {
				line = "7"
			}
			if want := "f.yaml:" + line + ": Listener/l: " + tc.want; got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestNullFieldsAreUnset(t *testing.T) {
	docs, _ := Decode("f.yaml", []byte("apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: s\nspec:\n  settings:\n  edge: ~\n"))
	if len(docs[0].problems) != 0 {
		t.Errorf("problems: %s", problems(docs[0].problems))
	}
}

func TestBuildSecretAndUnknownSettings(t *testing.T) {
	src := `apiVersion: skupper.io/v2alpha1
kind: Site
metadata: {name: s}
spec:
  ha: true
  settings: {router-logging: "loud"}
---
apiVersion: v1
kind: Secret
metadata: {name: link}
data: {ca.crt: "not base64!"}
`
	docs, probs := Decode("f.yaml", []byte(src))
	ns := Build("n", docs, probs)
	want := []string{
		"f.yaml:5: warning: Site/s: spec.ha: ignored on this platform (HA runs a second router pod on Kubernetes)",
		`f.yaml:6: Site/s: spec.settings.router-logging: "loud": level must be one of trace, debug, info, notice, warning, error, critical (optionally with a trailing +)`,
		"f.yaml:11: Secret/link: data.ca.crt: not valid base64",
	}
	if got := problems(ns.Problems); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if ns.Site != nil || len(ns.Secrets) != 0 {
		t.Error("invalid resources kept")
	}
}
