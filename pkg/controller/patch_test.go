package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/scale"
	"github.com/site-controller/site-controller/pkg/netview"
	"github.com/site-controller/site-controller/pkg/resources"
)

// TestPatchPass: a pass told which files changed patches the pass before
// it when they hold Listeners and Connectors, and a full pass (of a new
// process) afterwards finds nothing to change: the configuration, the
// statuses, the port registry and the last good content are what it
// makes of the files. What a patch cannot stand for is a full pass.
func TestPatchPass(t *testing.T) {
	home := t.TempDir()
	if err := scale.Generate(home, "p", 8, 8); err != nil {
		t.Fatal(err)
	}
	res := filepath.Join(home, "namespaces", "p", "input", "resources")
	listener := func(name, key string, port int, extra string) string {
		return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: %s\nspec:\n  routingKey: %s\n  host: 127.0.0.1\n  port: %d\n%s", name, key, port, extra)
	}
	connector := func(name, key string) string {
		return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: %s\nspec:\n  routingKey: %s\n  host: 10.0.0.1\n  port: 80\n", name, key)
	}
	opts := Options{DataHome: home, Platform: "none"}
	r := New(opts)
	defer r.Close()
	ctx := context.Background()
	if _, err := r.Reconcile(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name    string
		files   map[string]string // "" removes
		patched bool
		// problem, when set, is a problem the pass must report
		problem string
		// before, when set, runs before the files are written
		before func()
	}{
		{"a port", map[string]string{"Listener-l3.yaml": listener("l3", "key-3", 10103, "")}, true, "", nil},
		{"broken after a patch: its last good content is the patch's", map[string]string{"Listener-l3.yaml": "kind: ["}, false, "broken since", nil},
		{"mended", map[string]string{"Listener-l3.yaml": listener("l3", "key-3", 10113, "")}, false, "", nil},
		{"a new file", map[string]string{"new.yaml": listener("n1", "key-1", 10200, "")}, true, "", nil},
		{"a connector gone", map[string]string{"Connector-c5.yaml": ""}, true, "", nil},
		{"renamed", map[string]string{"Listener-l2.yaml": listener("l2b", "key-2", 10002, "")}, true, "", nil},
		{"moved to another file", map[string]string{"Listener-l4.yaml": "", "more.yaml": listener("l4", "key-4", 10004, "") + "---\n" + connector("c9", "key-9")}, true, "", nil},
		{"a new key for both", map[string]string{"pair.yaml": listener("p1", "pk", 10300, "") + "---\n" + connector("p1", "pk")}, true, "", nil},
		{"an address taken", map[string]string{"clash.yaml": listener("x1", "kx", 10001, "")}, false, "overlaps", nil},
		{"fixed: the pass after a problem is full", map[string]string{"clash.yaml": listener("x1", "kx", 10400, "")}, false, "", nil},
		{"a patch again", map[string]string{"clash.yaml": listener("x1", "kx", 10401, "")}, true, "", nil},
		{"the status files removed behind its back: a full pass writes them all", map[string]string{"clash.yaml": listener("x1", "kx", 10402, "")}, false, "", func() {
			os.RemoveAll(filepath.Join(home, "namespaces", "p", "runtime", "resources"))
		}},
		{"TLS", map[string]string{"tls.yaml": listener("t1", "kt", 10500, "  tlsCredentials: mine\n")}, false, "", nil},
		{"TLS gone", map[string]string{"tls.yaml": ""}, false, "", nil},
		{"broken", map[string]string{"Listener-l6.yaml": "kind: ["}, false, "broken since", nil},
		{"mended", map[string]string{"Listener-l6.yaml": listener("l6", "key-6", 10006, "")}, false, "", nil},
		{"the Site", map[string]string{"Site-scale.yaml": "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: scale\nspec:\n  settings:\n    router-logging: info\n"}, false, "", nil},
		{"a last patch", map[string]string{"Connector-c1.yaml": connector("c1", "key-1")}, true, "", nil},
		{"told nothing changed", map[string]string{}, true, "", nil},
	} {
		if step.before != nil {
			step.before()
		}
		changed := []string{}
		for name, content := range step.files {
			path := filepath.Join(res, name)
			if content == "" {
				os.Remove(path)
			} else if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			changed = append(changed, filepath.Join("input", "resources", name))
		}
		got, err := r.ReconcileChanged(ctx, "p", changed)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got.Patched != step.patched {
			t.Errorf("%s: patched %v, want %v", step.name, got.Patched, step.patched)
		}
		if step.problem != "" && !slices.ContainsFunc(got.Problems, func(p resources.Problem) bool { return contains(p.Message, step.problem) }) {
			t.Errorf("%s: no problem says %q: %v", step.name, step.problem, got.Problems)
		}
		// a new process finds everything as it would have made it
		registry := func() []string {
			data, _ := os.ReadFile(filepath.Join(home, "namespaces", ".ports"))
			lines := strings.Split(string(data), "\n")
			slices.Sort(lines)
			return lines
		}
		claims := registry()
		fresh := New(opts)
		again, err := fresh.Reconcile(ctx, "p")
		fresh.Close()
		if err != nil {
			t.Fatal(err)
		}
		if now := registry(); !slices.Equal(now, claims) {
			t.Errorf("%s: the port registry held\n%v\na full pass makes it\n%v", step.name, claims, now)
		}
		if len(again.Changed) > 0 {
			t.Errorf("%s: after it, a full pass changed %v", step.name, again.Changed)
		}
		want, _ := again.Config.Marshal()
		if have, _ := got.Config.Marshal(); string(have) != string(want) {
			t.Errorf("%s: the pass's configuration is not a full pass's", step.name)
		}
		if !slices.Equal(problemTexts(got.Problems), problemTexts(again.Problems)) {
			t.Errorf("%s: problems %v, a full pass finds %v", step.name, problemTexts(got.Problems), problemTexts(again.Problems))
		}
		if !slices.Equal(docIDs(got.Namespace.Docs), docIDs(again.Namespace.Docs)) {
			t.Errorf("%s: documents %v, a full pass reads %v", step.name, docIDs(got.Namespace.Docs), docIDs(again.Namespace.Docs))
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func problemTexts(ps []resources.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func docIDs(docs []*resources.Document) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.File+":"+d.ID())
	}
	return out
}

// TestViewChanges: between two network views, the documents whose status
// may differ are the Listeners whose tcpListener changed state, the
// Connectors of a routing key that gained or lost a listener in the
// network, and every document of another kind; a view that moved to the
// other side of the router's last listener read makes a full pass.
func TestViewChanges(t *testing.T) {
	yaml := "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: s\n"
	for i := range 3 {
		yaml += fmt.Sprintf("---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: l%d\nspec:\n  routingKey: k%d\n  host: 127.0.0.1\n  port: %d\n", i, i, 9000+i)
		yaml += fmt.Sprintf("---\napiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: c%d\nspec:\n  routingKey: k%d\n  host: 10.0.0.1\n  port: 80\n", i, i)
	}
	docs, _ := resources.Decode("input/resources/all.yaml", []byte(yaml))
	ns := resources.Build("ns", docs, nil)
	read := time.Now()
	before := &netview.View{Taken: read.Add(time.Second), ListenerUp: map[string]bool{"listener/l0": true, "listener/l1": false, "listener/l2": true},
		Listeners: map[string]bool{"k0": true, "k2": true}}
	after := &netview.View{Taken: read.Add(2 * time.Second), ListenerUp: map[string]bool{"listener/l0": true, "listener/l1": true},
		Listeners: map[string]bool{"k0": true, "k1": true, "k2": true}}
	k := &kept{ns: ns, view: before, keys: indexKeys(ns), others: []*resources.Document{docs[0]}}
	got, ok := k.viewChanges(after, read)
	if !ok {
		t.Fatal("refused")
	}
	if want := []string{"Site/s", "Listener/l1", "Listener/l2", "Connector/c1"}; !slices.Equal(sortedIDs(got), sortedIDs2(want)) {
		t.Errorf("documents %v, want %v", sortedIDs(got), want)
	}
	if got, ok := k.viewChanges(before, read); !ok || len(got) != 0 {
		t.Errorf("the same view: %v %v", got, ok)
	}
	if _, ok := k.viewChanges(&netview.View{Taken: read.Add(-time.Second)}, read); ok {
		t.Error("a view older than the listeners' read was taken")
	}
}

func sortedIDs(docs []*resources.Document) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.ID())
	}
	slices.Sort(out)
	return out
}

func sortedIDs2(ids []string) []string { out := slices.Clone(ids); slices.Sort(out); return out }
