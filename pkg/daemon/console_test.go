package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/pkg/console"
	"github.com/site-controller/site-controller/pkg/namespace"
)

// TestConsoleFollowsPasses: the daemon's console shows what its passes
// found — the problems with their file and line, every resource with the
// file and line it is defined at — and its event stream sends a new
// snapshot after a pass that changed something; removing the namespace
// takes it off; stopping the daemon ends the stream.
func TestConsoleFollowsPasses(t *testing.T) {
	home := t.TempDir()
	file := filepath.Join(namespace.Root(home), "n", "input", "resources", "all.yaml")
	fixture.WriteFile(t, file, fixture.SiteYAML("n")+"---\n"+fixture.ListenerYAML("bad", 0))
	d := startDaemon(t, home, func(o *Options) { o.Platform = "none" })
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	defer d.stop() // before srv.Close, which waits for the event stream

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := bufio.NewReader(resp.Body)
	next := func() *console.Snapshot {
		t.Helper()
		for {
			line, err := events.ReadString('\n')
			if err != nil {
				return nil
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var snap console.Snapshot
				if err := json.Unmarshal([]byte(data), &snap); err != nil {
					t.Fatal(err)
				}
				return &snap
			}
		}
	}
	snap := next()
	if snap == nil || len(snap.Namespaces) != 1 {
		t.Fatalf("first snapshot: %+v", snap)
	}
	ns := snap.Namespaces[0]
	if ns.Name != "n" || ns.Site != "n" || len(ns.Problems) == 0 {
		t.Fatalf("namespace n: %+v", ns)
	}
	if p := ns.Problems[0]; p.File != "input/resources/all.yaml" || p.Line != 13 || p.ID != "Listener/bad" || p.Field != "spec.port" {
		t.Errorf("problem: %+v", p)
	}
	if r := ns.Resources[0]; r.Kind != "Listener" || r.Name != "bad" || r.Status.Status != "Error" || r.File != "input/resources/all.yaml" || r.Line != 6 {
		t.Errorf("first resource (the broken one): %+v", r)
	}

	// the Listener fixed: one pass, one new snapshot without the problem
	fixture.WriteFile(t, file, fixture.SiteYAML("n")+"---\n"+fixture.ListenerYAML("bad", 9999))
	for snap = next(); snap != nil && len(snap.Namespaces[0].Problems) > 0; snap = next() {
	}
	if snap == nil {
		t.Fatal("no snapshot without the problem")
	}
	for _, r := range snap.Namespaces[0].Resources {
		if r.Kind == "Listener" && r.Status.Status == "Error" {
			t.Errorf("the fixed Listener: %+v", r)
		}
	}

	// the namespace removed
	if err := os.Rename(filepath.Join(namespace.Root(home), "n"), filepath.Join(t.TempDir(), "n")); err != nil {
		t.Fatal(err)
	}
	for snap = next(); snap != nil && len(snap.Namespaces) > 0; snap = next() {
	}
	if snap == nil {
		t.Fatal("no snapshot without the namespace")
	}
	d.stop()
	if snap := next(); snap != nil {
		t.Errorf("a snapshot after the daemon stopped: %+v", snap)
	}
}
