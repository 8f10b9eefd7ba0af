package site

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/site-controller/site-controller/pkg/resources"
)

// TestPatch: a site patched for changed Listeners and Connectors is the
// one Build renders of the namespace changed so, configuration and file
// byte for byte, step after step; what Patch cannot stand for it refuses.
func TestPatch(t *testing.T) {
	files := map[string]string{
		"input/resources/Site.yaml": "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: s\nspec:\n  linkAccess: default\n",
	}
	listener := func(name string, port int, tls string) string {
		return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: %s\nspec:\n  routingKey: k-%s\n  host: 127.0.0.1\n  port: %d\n  tlsCredentials: %q\n", name, name, port, tls)
	}
	connector := func(name string) string {
		return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: %s\nspec:\n  routingKey: k-%s\n  host: 10.0.0.1\n  port: 80\n", name, name)
	}
	for i := range 5 {
		files[fmt.Sprintf("input/resources/l%d.yaml", i*2)] = listener(fmt.Sprintf("l%d", i*2), 9000+i*2, "")
		files[fmt.Sprintf("input/resources/c%d.yaml", i*2)] = connector(fmt.Sprintf("c%d", i*2))
	}
	docs := map[string][]*resources.Document{}
	for p, text := range files {
		docs[p], _ = resources.Decode(p, []byte(text))
	}
	build := func() (*resources.Namespace, *Desired) {
		var all []*resources.Document
		for _, p := range slices.Sorted(maps.Keys(docs)) {
			all = append(all, docs[p]...)
		}
		ns := resources.Build("ns", all, nil)
		in := Input{Namespace: ns, Platform: "linux", Version: "test", Now: testNow, Dir: "/ns", SiteID: testSiteID,
			ManagementPort: 5671, UserCerts: map[string]UserCert{}, HostNames: testHostNames}
		in.Ports = testPorts(ns)
		d, err := Build(in)
		if err != nil {
			t.Fatal(err)
		}
		return ns, d
	}
	ns, d := build()
	for step, change := range []struct {
		path, text string
		ok         bool
	}{
		{"input/resources/l4.yaml", listener("l4", 9104, ""), true},                          // a port
		{"input/resources/l1.yaml", listener("l1", 9001, ""), true},                          // between
		{"input/resources/l9.yaml", listener("l9", 9009, ""), true},                          // after the last
		{"input/resources/a.yaml", listener("a", 9011, "") + "---\n" + connector("a"), true}, // before the first
		{"input/resources/c0.yaml", "", true},
		{"input/resources/c8.yaml", "", true}, // the last connector
		{"input/resources/c9.yaml", connector("c9"), true},
		{"input/resources/l0.yaml", "", true},
		{"input/resources/l5.yaml", listener("l5", 5671, ""), false}, // the management port
		{"input/resources/l6.yaml", listener("l6", 9006, "tls"), false},
	} {
		var gone, added []resources.Object
		for _, d := range docs[change.path] {
			gone = append(gone, d.Object)
		}
		if change.text == "" {
			delete(docs, change.path)
		} else {
			docs[change.path], _ = resources.Decode(change.path, []byte(change.text))
			for _, d := range docs[change.path] {
				added = append(added, d.Object)
			}
		}
		now, _, ok := ns.Patch(map[string][]*resources.Document{change.path: docs[change.path]})
		if !ok {
			if change.ok {
				t.Fatalf("step %d: resources.Patch refused", step)
			}
			ns, d = build()
			continue
		}
		patched, ok, err := d.Patch(ns, now, gone, added, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok != change.ok {
			t.Fatalf("step %d (%s): Patch took it: %v, want %v", step, change.path, ok, change.ok)
		}
		wantNS, want := build()
		if !ok {
			ns, d = wantNS, want
			continue
		}
		if string(patched.ConfigJSON) != string(want.ConfigJSON) {
			t.Fatalf("step %d (%s): patched\n%s\nbuilt\n%s", step, change.path, patched.ConfigJSON, want.ConfigJSON)
		}
		if got, _ := patched.Config.Marshal(); string(got) != string(want.ConfigJSON) {
			t.Fatalf("step %d: the patched configuration is not its text", step)
		}
		ns, d = now, patched
	}
}
