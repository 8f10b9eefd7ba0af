package daemon

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/skschema"
	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/namespace"
)

// churn runs ops random file operations from workers goroutines over
// namespaces c0…c(n-1) under home: creates, overwrites, editor-style
// rename saves, deletes, garbage, and whole namespaces appearing and
// disappearing.
func churn(t testing.TB, home string, seed uint64, workers, ops, n int) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for range ops / workers {
				churnOp(t, home, r, n)
			}
		}()
	}
	wg.Wait()
}

func churnOp(t testing.TB, home string, r *rand.Rand, n int) {
	ns := fmt.Sprintf("c%d", r.IntN(n))
	res := filepath.Join(namespace.Root(home), ns, "input", "resources")
	file := filepath.Join(res, fmt.Sprintf("r%d.yaml", r.IntN(12)))
	content := func() string {
		switch r.IntN(6) {
		case 0:
			return "kind: [broken"
		case 1:
			return fixture.ListenerYAML(fmt.Sprintf("l%d", r.IntN(8)), 70000)
		case 2:
			return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: c%d\nspec:\n  routingKey: l%d\n  host: backend\n  port: %d\n", r.IntN(8), r.IntN(8), 1+r.IntN(9000))
		}
		return fixture.ListenerYAML(fmt.Sprintf("l%d", r.IntN(8)), 1000+r.IntN(40))
	}
	// errors are expected: other goroutines remove what this one uses
	switch op := r.IntN(100); {
	case op < 30: // create or overwrite in place
		os.MkdirAll(res, 0o755)
		os.WriteFile(file, []byte(content()), 0o644)
	case op < 55: // editor save: write a temporary file, rename it over
		os.MkdirAll(res, 0o755)
		tmp := filepath.Join(res, fmt.Sprintf(".%d.tmp", r.Int()))
		if os.WriteFile(tmp, []byte(content()), 0o644) == nil {
			if os.Rename(tmp, file) != nil {
				os.Remove(tmp)
			}
		}
	case op < 70:
		os.Remove(file)
	case op < 80: // the Site comes and goes
		if r.IntN(2) == 0 {
			os.MkdirAll(res, 0o755)
			os.WriteFile(filepath.Join(res, "site.yaml"), []byte(fixture.SiteYAML(ns)), 0o644)
		} else {
			os.Remove(filepath.Join(res, "site.yaml"))
		}
	case op < 85: // rename a file away and back under another name
		os.Rename(file, filepath.Join(res, fmt.Sprintf("r%d.yml", r.IntN(12))))
	case op < 87: // the whole namespace goes
		os.RemoveAll(filepath.Join(namespace.Root(home), ns))
	case op < 92: // a new namespace with a Site and a listener
		os.MkdirAll(res, 0o755)
		os.WriteFile(filepath.Join(res, "site.yaml"), []byte(fixture.SiteYAML(ns)), 0o644)
		os.WriteFile(file, []byte(content()), 0o644)
	default: // chmod
		os.Chmod(file, 0o600)
	}
}

// snapshot reads the files a one-shot render compares: the router config
// and every status file.
func snapshot(t testing.TB, dir namespace.Dir) map[string][]byte {
	out := map[string][]byte{}
	if data, err := os.ReadFile(dir.RouterConfig()); err == nil {
		out["skrouterd.json"] = data
	}
	files, _ := filepath.Glob(filepath.Join(dir.RuntimeResources(), "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = data
	}
	return out
}

// assertConverged proves that each namespace's runtime/ is what a one-shot
// render of its final input produces: a render over it changes nothing.
func assertConverged(t testing.TB, home string) int {
	t.Helper()
	names, err := namespace.List(home)
	if err != nil {
		t.Fatal(err)
	}
	r := controller.New(controller.Options{DataHome: home})
	for _, ns := range names {
		dir, _ := namespace.Open(home, ns)
		before := snapshot(t, dir)
		res, err := r.Reconcile(context.Background(), ns)
		if err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		if res.Config != nil {
			skschema.CheckConfig(t, res.Config)
		}
		if len(res.Changed) > 0 {
			t.Errorf("%s: a one-shot render changed %v: the daemon had not converged", ns, res.Changed)
		}
		after := snapshot(t, dir)
		for name, data := range after {
			if !bytes.Equal(before[name], data) {
				t.Errorf("%s: %s differs from a one-shot render:\n--- daemon\n%s\n--- render\n%s", ns, name, before[name], data)
			}
		}
		for name, data := range before {
			if _, ok := after[name]; !ok {
				t.Errorf("%s: the one-shot render removed %s:\n%s", ns, name, data)
			}
		}
	}
	return len(names)
}

// waitQuiet waits until the daemon has had nothing to do for a while:
// nothing waiting, nothing in flight, no retry scheduled.
func waitQuiet(t testing.TB, d *Daemon) {
	t.Helper()
	quietSince := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Since(quietSince) < 300*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatal("daemon never went quiet")
		}
		if d.queue.Len() > 0 || d.queue.Scheduled() > 0 {
			quietSince = time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestChurn: thousands of random operations from several goroutines, then
// quiet; every namespace must be exactly what a one-shot render gives.
func TestChurn(t *testing.T) {
	ops := 4000
	if testing.Short() {
		ops = 800
	}
	home := t.TempDir()
	d := startDaemon(t, home, nil)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	churn(t, home, seed, 4, ops, 6)
	waitQuiet(t, d.Daemon)
	d.stop()
	if n := assertConverged(t, home); n == 0 {
		t.Log("every namespace ended up removed")
	}
}
