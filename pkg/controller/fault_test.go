package controller

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/status"
)

// TestFaultHostileFiles: each hostile file is a clear problem of its own,
// never a pass that hangs, and the rest of the namespace is rendered.
func TestFaultHostileFiles(t *testing.T) {
	for _, c := range fixture.HostileFiles {
		t.Run(c.Name, func(t *testing.T) {
			home := t.TempDir()
			res := filepath.Join(namespace.Root(home), "hostile", "input", "resources")
			fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("s")+"---\n"+fixture.ListenerYAML("ok", 1000))
			c.Make(t, filepath.Join(res, c.Name))
			done := make(chan *Result, 1)
			go func() {
				r, err := New(Options{DataHome: home, Platform: "none"}).Reconcile(context.Background(), "hostile")
				if err != nil {
					t.Error(err)
				}
				done <- r
			}()
			var r *Result
			select {
			case r = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the pass hangs on the file")
			}
			if r == nil {
				return
			}
			found := false
			for _, p := range r.Problems {
				found = found || (p.File == "input/resources/"+c.Name && strings.Contains(p.Message, c.Want))
			}
			if !found {
				t.Errorf("problems %v, want one of %s saying %q", r.Problems, c.Name, c.Want)
			}
			if !fixture.HasListener(home, "hostile", "ok", 1000) {
				t.Error("the rest of the namespace was not rendered")
			}
		})
	}
}

// TestSecretStatusHoldsNoKey: a Secret's status file shows its name, type
// and the keys it holds, never their data; the copy kept of its file for
// last-good use is readable by the owner only.
func TestSecretStatusHoldsNoKey(t *testing.T) {
	home := t.TempDir()
	res := filepath.Join(namespace.Root(home), "sec", "input", "resources")
	const key = "c2VjcmV0LWtleS1tYXRlcmlhbA=="
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("s"))
	fixture.WriteFile(t, filepath.Join(res, "secret.yaml"), "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ntype: kubernetes.io/tls\ndata:\n  tls.key: "+key+"\n  tls.crt: Y2VydA==\nstringData:\n  ca.crt: plain-ca\n")
	if _, err := New(Options{DataHome: home, Platform: "none"}).Reconcile(context.Background(), "sec"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(namespace.Root(home), "sec", "runtime", "resources", "Secret-creds.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{key, "Y2VydA==", "plain-ca", "\ndata:", "stringData"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("the Secret's status file holds %q:\n%s", secret, data)
		}
	}
	st, err := status.Read(path)
	if err != nil || !strings.Contains(st.Message, "holds ca.crt, tls.crt, tls.key") || !strings.Contains(string(data), "type: kubernetes.io/tls") {
		t.Errorf("status %+v %v:\n%s", st, err, data)
	}
	// nothing under the namespace that holds the key is readable by others
	filepath.WalkDir(filepath.Join(namespace.Root(home), "sec"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.Contains(p, "/input/") {
			return err
		}
		b, _ := os.ReadFile(p)
		fi, _ := e.Info()
		if strings.Contains(string(b), key) && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s holds the key with mode %v", p, fi.Mode().Perm())
		}
		return nil
	})
}

// TestReplacedNamespaceKeepsItsState: a namespace directory replaced
// during a pass (restored with mv) keeps its runtime/ and internal/.
func TestReplacedNamespaceKeepsItsState(t *testing.T) {
	root := t.TempDir()
	dir := namespace.Dir{Name: "ns", Path: filepath.Join(root, "ns")}
	os.MkdirAll(dir.Join("input", "resources"), 0o755)
	before, err := dir.Identity()
	if err != nil {
		t.Fatal(err)
	}
	os.Rename(dir.Path, filepath.Join(root, "away"))
	os.MkdirAll(filepath.Join(root, "restored", "input", "resources"), 0o755)
	fixture.WriteFile(t, filepath.Join(root, "restored", "internal", "site-id"), "id\n")
	os.Rename(filepath.Join(root, "restored"), dir.Path)
	undoRecreation(dir, before)
	if _, err := os.Stat(dir.Join("internal", "site-id")); err != nil {
		t.Errorf("the state of a namespace with input/ was removed: %v", err)
	}
}

// TestRecreatedNamespaceStartsAfresh: a namespace directory removed and
// created again is a new namespace even when the file system gives it the
// same inode (ext4 does, at once): a broken file in it does not bring back
// what a file of the same name held in the old one.
func TestRecreatedNamespaceStartsAfresh(t *testing.T) {
	home := t.TempDir()
	r := newTestReconciler(home)
	res := filepath.Join(fixture.NSDir(home, "re"), "input", "resources")
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("s")+"---\n"+fixture.ListenerYAML("old", 1234))
	if _, err := r.Reconcile(context.Background(), "re"); err != nil {
		t.Fatal(err)
	}
	dir, _ := namespace.Open(home, "re")
	before, _ := os.Stat(dir.Path)
	reused := false
	for range 100 { // until the file system hands out the same inode
		os.RemoveAll(dir.Path)
		os.Mkdir(dir.Path, 0o755)
		after, _ := os.Stat(dir.Path)
		if reused = os.SameFile(before, after); reused {
			break
		}
	}
	if !reused {
		t.Log("the file system never gave the new directory the old inode: the case is weaker here")
	}
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), "kind: [broken")
	got, err := r.Reconcile(context.Background(), "re")
	if err != nil {
		t.Fatal(err)
	}
	if got.Config != nil || fixture.HasListener(home, "re", "old", 1234) {
		t.Error("the old directory's Site and Listener came back for a broken file in a new directory")
	}
}

// TestNoRouterNoMatch: without a router to ask (platform none, render, a
// runtime that fails), a Listener and the Connector it would match are
// only rendered: Pending, Configured, with why there is no router, and
// never Matched: that only a router can say.
func TestNoRouterNoMatch(t *testing.T) {
	home := t.TempDir()
	res := filepath.Join(fixture.NSDir(home, "nr"), "input", "resources")
	fixture.WriteFile(t, filepath.Join(res, "site.yaml"), fixture.SiteYAML("s")+"---\n"+fixture.ListenerYAML("db", 5432)+"---\n"+fixture.ConnectorYAML("db", "db", 15432))
	for _, tc := range []struct {
		name string
		opts Options
		why  string
	}{
		{"platform none", Options{Platform: "none"}, "no router: platform none renders configuration and status only"},
		{"render", Options{Platform: "podman"}, "no router: rendered only (no runtime for platform podman in this command)"},
		{"runtime fails", Options{Platform: "docker", Runtimes: map[string]runtime.Runtime{"docker": failingRuntime{}}}, "no router: the engine refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.DataHome = home
			if _, err := New(tc.opts).Reconcile(context.Background(), "nr"); err != nil {
				t.Fatal(err)
			}
			for _, kind := range []string{"Listener", "Connector"} {
				st := fixture.StatusOf(home, "nr", kind, "db")
				if st == nil || st.Status != status.Pending || st.Message != "rendered; "+tc.why ||
					st.HasMatchingConnector != nil || st.HasMatchingListener != nil || st.Condition(status.Matched) != nil ||
					st.Condition(status.Configured) == nil || st.Condition(status.Configured).Status != "True" {
					t.Errorf("%s: %+v", kind, st)
				}
			}
		})
	}
}

// failingRuntime is a fake: a runtime whose every call fails, for a status
// that must not depend on how the runtime failed.
type failingRuntime struct{}

func (failingRuntime) Platform() string { return "docker" }
func (failingRuntime) Ensure(context.Context, runtime.Site) (runtime.State, error) {
	return runtime.State{}, errors.New("the engine refused")
}
func (failingRuntime) Remove(context.Context, string, string) error {
	return errors.New("the engine refused")
}
func (failingRuntime) State(context.Context, string, string) (runtime.State, error) {
	return runtime.State{}, errors.New("the engine refused")
}
func (failingRuntime) List(context.Context) ([]runtime.Router, error) {
	return nil, errors.New("the engine refused")
}
func (failingRuntime) RouterUser(bool) (int, int) { return os.Geteuid(), os.Getegid() }
