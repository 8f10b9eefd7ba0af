package pass

import (
	"bytes"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/yamlstr"
)

// TestLocalAccessText: the document of skupper-local written as text is
// byte for byte what the YAML encoder writes (as the status writer calls
// it) for every namespace name that takes the text; the others take the
// encoder.
func TestLocalAccessText(t *testing.T) {
	encoded := func(name string, port int) string {
		var root yaml.Node
		if err := root.Encode(localAccessObject(name, port)); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(&root); err != nil {
			t.Fatal(err)
		}
		enc.Close()
		return b.String()
	}
	for _, tc := range []struct {
		name string
		text bool
	}{
		{"c0", true}, {"certificate", true}, {"west-1", true}, {"e1", true}, {"nan", true},
		{strings.Repeat("x", 63), true}, {"inf", true}, {"nulls", true}, {"trueish", true},
		{"123", false}, {"0x1f", false}, {"1e3", false}, {"true", false}, {"yes", false}, {"no", false},
		{"on", false}, {"off", false}, {"y", false}, {"n", false}, {"null", false},
	} {
		if resources.ValidName(tc.name) != "" {
			t.Fatalf("%q is not a namespace name", tc.name)
		}
		if got := yamlstr.Plain(tc.name); got != tc.text {
			t.Errorf("%q: written as text %v, want %v", tc.name, got, tc.text)
			continue
		}
		if !tc.text {
			continue
		}
		for _, port := range []int{1, 5671, 65535} {
			if got, want := string(localAccessText(tc.name, port)), encoded(tc.name, port); got != want {
				t.Errorf("%q %d: text\n%s\nencoder\n%s", tc.name, port, got, want)
			}
		}
	}
}
