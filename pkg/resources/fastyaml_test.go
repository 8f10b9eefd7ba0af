package resources

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// same tells where two node trees differ in what decoding uses: kind, tag,
// value, style, line and column.
func sameTree(a, b *yaml.Node, path string) string {
	if a.Kind != b.Kind || a.Tag != b.Tag || a.Value != b.Value || a.Style != b.Style || a.Line != b.Line || a.Column != b.Column {
		return fmt.Sprintf("%s: fast {%d %s %q s%d L%d C%d} yaml.v3 {%d %s %q s%d L%d C%d}", path,
			a.Kind, a.Tag, a.Value, a.Style, a.Line, a.Column, b.Kind, b.Tag, b.Value, b.Style, b.Line, b.Column)
	}
	if len(a.Content) != len(b.Content) {
		return fmt.Sprintf("%s: %d children, yaml.v3 %d", path, len(a.Content), len(b.Content))
	}
	for i := range a.Content {
		if d := sameTree(a.Content[i], b.Content[i], fmt.Sprintf("%s/%d", path, i)); d != "" {
			return d
		}
	}
	return ""
}

// checkAgainstYAML requires fastParse to either decline or agree with
// yaml.v3 exactly.
func checkAgainstYAML(t *testing.T, name string, data []byte) bool {
	t.Helper()
	fast, ok := fastParse(data)
	if !ok {
		return false
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Errorf("%s: fast parse accepted what yaml.v3 rejects (%v):\n%s", name, err, data)
		return true
	}
	if len(doc.Content) != 1 {
		t.Errorf("%s: fast parse accepted an empty document", name)
		return true
	}
	if d := sameTree(fast, doc.Content[0], ""); d != "" {
		t.Errorf("%s: %s\n%s", name, d, data)
	}
	return true
}

// TestFastParseMatchesYAML runs every document of the project's fixtures
// and examples, and hand-picked edge cases, through both parsers.
func TestFastParseMatchesYAML(t *testing.T) {
	var files []string
	for _, glob := range []string{"../controller/testdata/*/*/input/resources/*", "../controller/testdata/bad/*", "../../examples/namespaces/*/input/resources/*"} {
		m, _ := filepath.Glob(glob)
		files = append(files, m...)
	}
	taken := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range splitDocuments(data) {
			if checkAgainstYAML(t, f, c.text) {
				taken++
			}
		}
	}
	if taken < 20 {
		t.Errorf("fast path took only %d fixture documents", taken)
	}
	for _, src := range []string{
		"a: 1\nb:\n- x\n- y: 2\n  z: 3\nc:\n  - q\n",
		"k: 0123\n", "k: 0x1F\n", "k: 1_000\n", "k: yes\n", "k: 1.5\n", "k: -3\n", "k: +3\n", "k: ''\n", "k: \"\"\n",
		"k: 2026-01-02\n", "k: 127.0.0.1\n", "k: 1.2.3\n", "k: .inf\n", "k: ~\n", "k: null\n", "k: True\n",
		"k: a b c\n", "k: a # c\n", "k: 'it''s'\n", "k: \"a\\tb\"\n", "k: [1, 2]\n", "k: {a: 1}\n", "k: &x 1\n", "k: !!str 1\n",
		"k: |\n  text\n", "k: a\n  b\n", "k:\n", "k:\n  j: 1\n", "- a\n- b\n", "-\n  a: 1\n", "k:   spaced\n", "k: v   \n",
		"k: app=backend\n", "\"k\": 1\n", "k : 1\n", "k: -\n", "k: -1\n", "k: --1\n", "k: 9223372036854775808\n",
		"a:\n  b:\n    c: 1\n  d: 2\ne: 3\n", "list:\n  - name: a\n    port: 1\n  - name: b\n", "x: ünïcode\n",
	} {
		checkAgainstYAML(t, fmt.Sprintf("%q", src), []byte(src))
	}
}

// FuzzFastParse: whatever the input, the fast path declines or agrees
// with yaml.v3.
func FuzzFastParse(f *testing.F) {
	for _, s := range []string{"a: 1\n", "a:\n- b\n- c: d\n  e: 1\n", "k: 127.0.0.1\nport: 8080\n", "x: 'y'\n",
		"apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: backend\n  namespace: west\nspec:\n  routingKey: backend\n  host: 127.0.0.1\n  port: 8080\n  settings:\n    observer: none\n",
		"# comment\nkind: RouterAccess\nspec:\n  roles:\n  - name: inter-router\n    port: 55671\n  - name: edge\n    port: 45671\n  subjectAlternativeNames:\n    - a.example\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) {
			return
		}
		checkAgainstYAML(t, "fuzz", []byte(s))
	})
}
