package resources

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

func listenerYAML(name, key string, port int) string {
	return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: %s\nspec:\n  routingKey: %s\n  host: 127.0.0.1\n  port: %d\n", name, key, port)
}

func connectorYAML(name, key string) string {
	return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: %s\nspec:\n  routingKey: %s\n  host: 10.0.0.1\n  port: 80\n", name, key)
}

// TestPatch: a namespace patched with the documents of changed files is
// the one Build makes of all the files, for the changes Patch takes; the
// others it refuses (and a Build decides them).
func TestPatch(t *testing.T) {
	base := map[string]string{
		"input/resources/Site.yaml":   "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: s\n",
		"input/resources/access.yaml": "apiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata:\n  name: ra\nspec:\n  roles:\n  - name: inter-router\n    port: 55671\n",
		"input/resources/b.yaml":      listenerYAML("b", "kb", 9001) + "---\n" + connectorYAML("cb", "kb"),
		"input/resources/c.yaml":      listenerYAML("c", "kc", 9002),
		"input/resources/d.yaml":      connectorYAML("d", "kd"),
	}
	for _, tc := range []struct {
		name    string
		changes map[string]string // "" removes the file
		ok      bool
	}{
		{"a port changed", map[string]string{"input/resources/c.yaml": listenerYAML("c", "kc", 9100)}, true},
		{"a new file", map[string]string{"input/resources/a.yaml": listenerYAML("a", "ka", 9000)}, true},
		{"a new file at the end", map[string]string{"input/resources/z.yaml": connectorYAML("z", "kz")}, true},
		{"a file removed", map[string]string{"input/resources/d.yaml": ""}, true},
		{"a file of two removed", map[string]string{"input/resources/b.yaml": ""}, true},
		{"renamed within its file", map[string]string{"input/resources/c.yaml": listenerYAML("c2", "kc", 9002)}, true},
		{"moved to another file", map[string]string{"input/resources/c.yaml": "", "input/resources/e.yaml": listenerYAML("c", "kc", 9002)}, true},
		{"the port of one that went", map[string]string{"input/resources/c.yaml": "", "input/resources/e.yaml": listenerYAML("e", "ke", 9002)}, true},
		{"kind changed", map[string]string{"input/resources/d.yaml": listenerYAML("d", "kd", 9003)}, true},
		{"an address taken", map[string]string{"input/resources/e.yaml": listenerYAML("e", "ke", 9001)}, false},
		{"two new on one address", map[string]string{"input/resources/e.yaml": listenerYAML("e", "ke", 9005), "input/resources/f.yaml": listenerYAML("f", "kf", 9005)}, false},
		{"a RouterAccess port", map[string]string{"input/resources/e.yaml": listenerYAML("e", "ke", 55671)}, false},
		{"a duplicate name", map[string]string{"input/resources/e.yaml": connectorYAML("d", "kd")}, false},
		{"a problem", map[string]string{"input/resources/c.yaml": listenerYAML("c", "kc", 0)}, false},
		{"a Site", map[string]string{"input/resources/e.yaml": "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: s2\n"}, false},
		{"the Site's file", map[string]string{"input/resources/Site.yaml": ""}, false},
		{"a RouterAccess's file", map[string]string{"input/resources/access.yaml": ""}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read := func(files map[string]string) (map[string][]*Document, []*Document) {
				byFile := map[string][]*Document{}
				var all []*Document
				for _, p := range slices.Sorted(maps.Keys(files)) {
					docs, probs := Decode(p, []byte(files[p]))
					if len(probs) > 0 {
						t.Fatal(probs)
					}
					byFile[p] = docs
					all = append(all, docs...)
				}
				return byFile, all
			}
			before, docs := read(base)
			ns := Build("ns", docs, nil)
			if HasErrors(ns.Problems) {
				t.Fatal(ns.Problems)
			}
			after := maps.Clone(base)
			changed := map[string][]*Document{}
			for p, text := range tc.changes {
				if text == "" {
					delete(after, p)
					changed[p] = []*Document{}
				} else {
					after[p] = text
				}
			}
			byFile, _ := read(after)
			var all []*Document
			for _, p := range slices.Sorted(maps.Keys(after)) {
				if _, ok := tc.changes[p]; ok {
					changed[p] = byFile[p]
					all = append(all, byFile[p]...)
				} else {
					all = append(all, before[p]...) // unchanged: the same documents
				}
			}
			patched, _, ok := ns.Patch(changed)
			if ok != tc.ok {
				t.Fatalf("Patch took it: %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			want := Build("ns", all, nil)
			if !slices.Equal(patched.Docs, want.Docs) {
				t.Errorf("documents:\n%v\nwant\n%v", ids(patched.Docs), ids(want.Docs))
			}
			if !slices.Equal(patched.Listeners, want.Listeners) || !slices.Equal(patched.Connectors, want.Connectors) {
				t.Errorf("listeners %v connectors %v, want %v %v", patched.Listeners, patched.Connectors, want.Listeners, want.Connectors)
			}
			if patched.Site != want.Site || !slices.Equal(patched.RouterAccess, want.RouterAccess) || !slices.Equal(patched.Problems, want.Problems) {
				t.Errorf("site %v accesses %v problems %v, want %v %v %v", patched.Site, patched.RouterAccess, patched.Problems, want.Site, want.RouterAccess, want.Problems)
			}
			for _, d := range want.Docs {
				if d.Object != nil && patched.DocumentOf(d.Object) != want.DocumentOf(d.Object) {
					t.Errorf("the document of %s differs", d.ID())
				}
				if !slices.Equal(patched.ProblemsOf(d), want.ProblemsOf(d)) {
					t.Errorf("the problems of %s: %v, want %v", d.ID(), patched.ProblemsOf(d), want.ProblemsOf(d))
				}
			}
			if !maps.Equal(patched.defined, want.defined) {
				t.Errorf("defined: %v, want %v", patched.defined, want.defined)
			}
		})
	}
}

func ids(docs []*Document) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.File+":"+d.ID())
	}
	return out
}

// TestPatchChain: patches one after another agree with Build at each step
// (what Patch keeps between them, the Listeners by port, stays true), and
// where Patch refuses, Build finds the problem it stood back from.
func TestPatchChain(t *testing.T) {
	files := map[string]string{"input/resources/Site.yaml": "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: s\n"}
	docs := map[string][]*Document{}
	build := func() *Namespace {
		var all []*Document
		for _, p := range slices.Sorted(maps.Keys(files)) {
			all = append(all, docs[p]...)
		}
		return Build("ns", all, nil)
	}
	set := func(p, text string) map[string][]*Document {
		if text == "" {
			delete(files, p)
			delete(docs, p)
			return map[string][]*Document{p: {}}
		}
		files[p] = text
		docs[p], _ = Decode(p, []byte(text))
		return map[string][]*Document{p: docs[p]}
	}
	set("input/resources/Site.yaml", files["input/resources/Site.yaml"])
	ns := build()
	steps := []struct {
		path, text string
		ok         bool
	}{
		{"input/resources/a.yaml", listenerYAML("a", "k", 9000), true},
		{"input/resources/b.yaml", listenerYAML("b", "k", 9000), false}, // a holds it
		{"input/resources/b.yaml", listenerYAML("b", "k", 9001), false}, // a Build follows a refusal: b had a problem
		{"input/resources/a.yaml", "", true},
		{"input/resources/c.yaml", listenerYAML("c", "k", 9000), true}, // free again
		{"input/resources/c.yaml", listenerYAML("c", "k", 9001), false},
		{"input/resources/c.yaml", listenerYAML("c", "k", 9002), false}, // after a problem, a Build
		{"input/resources/e.yaml", listenerYAML("e", "k", 9003), true},
		{"input/resources/d.yaml", listenerYAML("d", "k", 9001), false}, // b's
		{"input/resources/d.yaml", listenerYAML("d", "k", 9000), false},
		{"input/resources/f.yaml", listenerYAML("f", "k", 9004), true},
	}
	for i, step := range steps {
		hadErrors := HasErrors(ns.Problems)
		changed := set(step.path, step.text)
		want := build()
		patched, _, ok := ns.Patch(changed)
		if ok != step.ok {
			t.Fatalf("step %d (%s): Patch took it: %v, want %v (problems after a Build: %v)", i, step.path, ok, step.ok, want.Problems)
		}
		if !ok {
			if !HasErrors(want.Problems) && !hadErrors {
				t.Errorf("step %d: Patch refused what Build finds no problem in", i)
			}
			ns = want
			continue
		}
		if !slices.Equal(patched.Docs, want.Docs) || !slices.Equal(patched.Listeners, want.Listeners) || !slices.Equal(patched.Problems, want.Problems) {
			t.Errorf("step %d: patched %v %v %v, built %v %v %v", i, ids(patched.Docs), patched.Listeners, patched.Problems, ids(want.Docs), want.Listeners, want.Problems)
		}
		ns = patched
	}
}
