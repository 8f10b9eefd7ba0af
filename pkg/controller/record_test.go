package controller

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/passrecord"
)

// TestRenderRecord: a render that finds nothing changed records itself;
// the next one stands on the record (nothing read, the same problems)
// until anything the pass depended on changes: a file of the namespace
// (input, status, configuration, credentials), the data home's port
// registries, the options, the host's names, the clock reaching a change.
func TestRenderRecord(t *testing.T) {
	defer func(w time.Duration) { passrecord.Window = w }(passrecord.Window)
	passrecord.Window = 0 // files written by the first pass count as settled at once
	listener := filepath.Join("input", "resources", "extra.yaml")
	for _, tc := range []struct {
		name    string
		change  func(t *testing.T, home string, dir namespace.Dir)
		opts    func(o *Options, res *Result)
		skipped bool
		// changed is a file the pass that does not skip must write again
		changed string
	}{
		{name: "nothing changed", skipped: true},
		{name: "input file rewritten", change: func(t *testing.T, home string, dir namespace.Dir) {
			write(t, filepath.Join(dir.Path, listener), listenerYAML("extra", 9091))
		}, changed: "runtime/router/skrouterd.json"},
		{name: "input file added", change: func(t *testing.T, home string, dir namespace.Dir) {
			write(t, filepath.Join(dir.Path, "input", "resources", "more.yaml"), listenerYAML("more", 9092))
		}, changed: "runtime/resources/Listener-more.yaml"},
		{name: "input file removed", change: func(t *testing.T, home string, dir namespace.Dir) {
			remove(t, filepath.Join(dir.Path, listener))
		}, changed: "runtime/resources/Listener-extra.yaml"},
		{name: "status file removed", change: func(t *testing.T, home string, dir namespace.Dir) {
			remove(t, filepath.Join(dir.Path, "runtime", "resources", "Listener-extra.yaml"))
		}, changed: "runtime/resources/Listener-extra.yaml"},
		{name: "configuration edited", change: func(t *testing.T, home string, dir namespace.Dir) {
			write(t, dir.RouterConfig(), "[]\n")
		}, changed: "runtime/router/skrouterd.json"},
		{name: "credential removed", change: func(t *testing.T, home string, dir namespace.Dir) {
			remove(t, filepath.Join(dir.RuntimeCerts(), "skupper-local-server", "tls.crt"))
		}, changed: "runtime/certs/skupper-local-server/tls.crt"},
		{name: "port registry changed", change: func(t *testing.T, home string, dir namespace.Dir) {
			f, err := os.OpenFile(filepath.Join(namespace.Root(home), ".ports"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("45000 * other listener/x\n")
			f.Close()
		}},
		{name: "another version", opts: func(o *Options, _ *Result) { o.Version = "test-2" }},
		{name: "another platform", opts: func(o *Options, _ *Result) { o.Platform = "docker" }},
		{name: "other host names", opts: func(o *Options, _ *Result) {
			o.HostNames = func() []string { return []string{"other-host"} }
		}},
		{name: "before the clock's change", skipped: true, opts: func(o *Options, res *Result) {
			at := earliest(res.Until, res.RenewAt).Add(-time.Second)
			o.Now = func() time.Time { return at }
		}},
		{name: "the clock's change", opts: func(o *Options, res *Result) {
			at := earliest(res.Until, res.RenewAt)
			o.Now = func() time.Time { return at }
		}, changed: "runtime/certs/skupper-local-server/tls.crt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home, dir := setupNamespace(t, filepath.Join("testdata", "render", "matched"), "ns")
			write(t, filepath.Join(dir.Path, listener), listenerYAML("extra", 9090))
			// a problem, that a render standing on the record reports too
			write(t, filepath.Join(dir.Path, "input", "resources", "bad.yaml"), "kind: Listener\n")
			opts := newTestReconciler(home).opts
			render := func(opts Options) (*Result, bool) {
				t.Helper()
				res, skipped, err := New(opts).Render(context.Background(), "ns")
				if err != nil {
					t.Fatal(err)
				}
				return res, skipped
			}
			first, skipped := render(opts)
			if skipped || len(first.Changed) == 0 {
				t.Fatalf("first render: skipped %v, changed %v", skipped, first.Changed)
			}
			unchanged, skipped := render(opts)
			if skipped || len(unchanged.Changed) != 0 {
				t.Fatalf("second render: skipped %v, changed %v", skipped, unchanged.Changed)
			}
			if _, err := os.Stat(filepath.Join(dir.Internal(), recordFile)); err != nil {
				t.Fatalf("no record after an unchanged pass: %v", err)
			}
			again, skipped := render(opts)
			if !skipped || len(again.Changed) != 0 || !slices.Equal(problemLines(again.Problems), problemLines(unchanged.Problems)) || len(again.Problems) == 0 {
				t.Fatalf("third render: skipped %v, changed %v, problems %v, want %v", skipped, again.Changed, problemLines(again.Problems), problemLines(unchanged.Problems))
			}
			if tc.change != nil {
				tc.change(t, home, dir)
			}
			if tc.opts != nil {
				tc.opts(&opts, unchanged)
			}
			res, skipped := render(opts)
			if skipped != tc.skipped {
				t.Fatalf("after the change: skipped %v, want %v", skipped, tc.skipped)
			}
			if tc.changed != "" && !slices.Contains(res.Changed, tc.changed) {
				t.Errorf("after the change: changed %v, want %s among them", res.Changed, tc.changed)
			}
			if !skipped && len(res.Problems) == 0 {
				t.Errorf("after the change: no problems, want bad.yaml's")
			}
		})
	}
}

// TestRenderNotRecorded: a pass whose outcome depends on more than its
// files and the clock, or that met what a record cannot stand for, is not
// recorded, and an old record is removed.
func TestRenderNotRecorded(t *testing.T) {
	defer func(w time.Duration) { passrecord.Window = w }(passrecord.Window)
	for _, tc := range []struct {
		name   string
		window time.Duration
		setup  func(t *testing.T, dir namespace.Dir)
	}{
		{name: "files changed within the window", window: time.Hour},
		{name: "a symbolic link among the input", setup: func(t *testing.T, dir namespace.Dir) {
			target := filepath.Join(t.TempDir(), "l.yaml")
			write(t, target, listenerYAML("linked", 9093))
			if err := os.Symlink(target, filepath.Join(dir.Path, "input", "resources", "linked.yaml")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "an AccessToken", setup: func(t *testing.T, dir namespace.Dir) {
			write(t, filepath.Join(dir.Path, "input", "resources", "token.yaml"),
				accessTokenYAML("t", "https://127.0.0.1:1/redeem", "code", testCA(t)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			passrecord.Window = tc.window
			home, dir := setupNamespace(t, filepath.Join("testdata", "render", "matched"), "ns")
			record := filepath.Join(dir.Internal(), recordFile)
			write(t, record, "site-controller pass record 1\nstale\n0\nnull\n")
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			r := newTestReconciler(home)
			for i := range 3 {
				_, skipped, err := r.Render(context.Background(), "ns")
				if err != nil {
					t.Fatal(err)
				}
				if skipped {
					t.Fatalf("render %d stood on a record", i+1)
				}
			}
			if _, err := os.Stat(record); err == nil {
				t.Errorf("a record is left")
			}
		})
	}
}

func listenerYAML(name string, port int) string {
	return "apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: " + name +
		"\nspec:\n  routingKey: " + name + "\n  host: 127.0.0.1\n  port: " + strconv.Itoa(port) + "\n"
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// a new file each time (renamed over the old one): another inode
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
