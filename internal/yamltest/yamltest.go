// Package yamltest reads YAML back the way others read it, for tests: a
// YAML 1.2 reader (gopkg.in/yaml.v3, ours) and a YAML 1.1 one (Skupper's:
// sigs.k8s.io/yaml, over go-yaml v2).
package yamltest

import (
	"fmt"
	"strings"
	"testing"

	yaml3 "gopkg.in/yaml.v3"
	k8syaml "sigs.k8s.io/yaml"
)

// readers are a YAML 1.2 reader (ours) and a YAML 1.1 one (Skupper's:
// sigs.k8s.io/yaml, over go-yaml v2).
var Readers = map[string]func([]byte, any) error{
	"yaml.v3":          yaml3.Unmarshal,
	"sigs.k8s.io/yaml": func(b []byte, v any) error { return k8syaml.Unmarshal(b, v) },
}

// answerDocs reads an answer (a Secret, then Links) with a reader, as
// the Go types of Skupper have them: every field a string where ours is.
type AnswerDocs struct {
	Secret struct {
		Metadata struct {
			Name string `json:"name" yaml:"name"`
		} `json:"metadata" yaml:"metadata"`
	}
	Links []Link
}

func ReadBackAnswer(t *testing.T, reader string, data []byte) AnswerDocs {
	t.Helper()
	var out AnswerDocs
	parts := strings.Split(strings.TrimPrefix(string(data), "---\n"), "\n---\n")
	for i, p := range parts {
		var err error
		if i == 0 {
			err = Readers[reader]([]byte(p), &out.Secret)
		} else {
			var l Link
			err = Readers[reader]([]byte(p), &l)
			out.Links = append(out.Links, l)
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v\n%s", reader, i, err, data)
		}
		// untyped, every value but the cost is a string
		var m map[string]any
		if err := Readers[reader]([]byte(p), &m); err != nil {
			t.Fatal(err)
		}
		CheckUntyped(t, reader, "", m)
	}
	return out
}

func CheckUntyped(t *testing.T, reader, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			CheckUntyped(t, reader, path+"."+k, x)
		}
	case []any:
		for i, x := range v {
			CheckUntyped(t, reader, fmt.Sprintf("%s[%d]", path, i), x)
		}
	case string:
	default:
		if !strings.HasSuffix(path, ".cost") && path != ".metadata.creationTimestamp" {
			t.Errorf("%s read %s as %T %v", reader, path, v, v)
		}
	}
}

// Link is a Link as Skupper's Go types read it: every field a string but
// the cost.
type Link struct {
	Metadata struct {
		Name string `json:"name" yaml:"name"`
	} `json:"metadata" yaml:"metadata"`
	Spec struct {
		Endpoints []struct {
			Name  string `json:"name" yaml:"name"`
			Host  string `json:"host" yaml:"host"`
			Port  string `json:"port" yaml:"port"`
			Group string `json:"group" yaml:"group"`
		} `json:"endpoints" yaml:"endpoints"`
		TLSCredentials string `json:"tlsCredentials" yaml:"tlsCredentials"`
		Cost           int64  `json:"cost" yaml:"cost"`
	} `json:"spec" yaml:"spec"`
}
