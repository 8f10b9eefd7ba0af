package controller

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/status"
)

// hostileCredentialFiles are what a credential file (input/certs/<name>/…,
// input/issuers/<name>/…) must never be read as: each made at path, with
// what the file is then reported as.
var hostileCredentialFiles = []struct {
	name string
	make func(t *testing.T, path string)
	want string
}{
	{"named pipe", func(t *testing.T, p string) { mkfifo(t, p) }, "not a regular file (a named pipe)"},
	{"symlink to a named pipe", func(t *testing.T, p string) {
		fifo := filepath.Join(t.TempDir(), "fifo")
		mkfifo(t, fifo)
		if err := os.Symlink(fifo, p); err != nil {
			t.Fatal(err)
		}
	}, "not a regular file (a named pipe)"},
	{"directory", func(t *testing.T, p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}, "not a regular file (a directory)"},
	{"device", func(t *testing.T, p string) {
		if err := os.Symlink("/dev/zero", p); err != nil {
			t.Fatal(err)
		}
	}, "not a regular file (a device)"},
	{"oversize", func(t *testing.T, p string) {
		fixture.WriteFile(t, p, strings.Repeat("-----BEGIN CERTIFICATE-----\n", 80000)) // 2,240,000 bytes
	}, "too large: 2240000 bytes, more than the 1048576 allowed"},
}

// mkfifo makes a named pipe at path, and, when the test ends, opens and
// closes its writing end, so that a reader stuck on it (the bug this
// guards against) is let go.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			syscall.Close(fd)
		}
	})
}

// TestHostileCredentialFiles: a credential or issuer file that is a named
// pipe (or a link to one), a directory, a device or too large is a problem
// of the resources that use it, named exactly; the pass ends well within
// its deadline, and the rest of the namespace is rendered.
func TestHostileCredentialFiles(t *testing.T) {
	const site = "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: s}\n" +
		"---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: ok}\nspec: {routingKey: ok, host: 127.0.0.1, port: 1000}\n"
	for _, where := range []struct {
		name string
		// resources uses the credential; file is the one made hostile
		resources, file, problem string
		prepare                  func(t *testing.T, nsDir string)
	}{{
		name: "input/certs",
		resources: "---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: tls}\n" +
			"spec: {routingKey: tls, host: 127.0.0.1, port: 1001, tlsCredentials: x}\n",
		file:    "input/certs/x/ca.crt",
		problem: "input/resources/r.yaml:13: Listener/tls: spec.tlsCredentials: input/certs/x/ca.crt: ",
		prepare: func(t *testing.T, nsDir string) {
			ca, _, err := certs.NewCA("user-ca", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			f, err := ca.Issue(certs.Leaf{CommonName: "tls", Hosts: []string{"127.0.0.1"}, Server: true}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			fixture.WriteFile(t, filepath.Join(nsDir, "input/certs/x/tls.crt"), string(f.Cert))
			fixture.WriteFile(t, filepath.Join(nsDir, "input/certs/x/tls.key"), string(f.Key))
		},
	}, {
		name: "input/issuers",
		resources: "---\napiVersion: skupper.io/v2alpha1\nkind: Certificate\nmetadata: {name: leaf}\n" +
			"spec: {ca: team-ca, subject: leaf, server: true}\n",
		file:    "input/issuers/team-ca/tls.crt",
		problem: "input/resources/r.yaml:13: Certificate/leaf: spec.ca: input/issuers/team-ca/tls.crt: ",
		prepare: func(t *testing.T, nsDir string) {
			_, f, err := certs.NewCA("team-ca", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			fixture.WriteFile(t, filepath.Join(nsDir, "input/issuers/team-ca/tls.key"), string(f.Key))
		},
	}} {
		for _, hostile := range hostileCredentialFiles {
			t.Run(where.name+"/"+hostile.name, func(t *testing.T) {
				home := t.TempDir()
				nsDir := fixture.NSDir(home, "bad")
				fixture.WriteFile(t, filepath.Join(nsDir, "input/resources/r.yaml"), site+where.resources)
				where.prepare(t, nsDir)
				hostile.make(t, filepath.Join(nsDir, where.file))

				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				type pass struct {
					res *Result
					err error
				}
				done := make(chan pass, 1)
				start := time.Now()
				go func() {
					res, err := newTestReconciler(home).Reconcile(ctx, "bad")
					done <- pass{res, err}
				}()
				var p pass
				select {
				case p = <-done:
				case <-time.After(6 * time.Second):
					t.Fatalf("the pass did not end within its 5 s deadline (stuck reading %s)", where.file)
				}
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("the pass took %v", took)
				}
				if p.err != nil {
					t.Fatal(p.err)
				}
				var got []string
				for _, pr := range p.res.Problems {
					got = append(got, pr.String())
				}
				want := []string{where.problem + hostile.want}
				if !slices.Equal(got, want) {
					t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				// the problem is in the status of the resource that uses it
				id := strings.Split(strings.TrimPrefix(where.problem, "input/resources/r.yaml:13: "), ":")[0]
				kind, name, _ := strings.Cut(id, "/")
				st := fixture.StatusOf(home, "bad", kind, name)
				if st == nil || st.Status != status.Error || !strings.Contains(st.Message, where.file+": "+hostile.want) {
					t.Errorf("%s status: %+v", id, st)
				}
				// the rest of the namespace is rendered
				if !slices.ContainsFunc(p.res.Config, func(e routerconfig.Entity) bool {
					return e.Type == "tcpListener" && e.Name() == "listener/ok"
				}) {
					t.Error("listener/ok is not rendered")
				}
			})
		}
	}
}
