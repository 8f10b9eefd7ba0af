package controller

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/skschema"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/site"
	"github.com/site-controller/site-controller/pkg/status"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const (
	testSiteID = "11111111-2222-4333-8444-555555555555"
	testPort   = 5671
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// setupNamespace copies fixture src into a fresh data home as namespace
// name, with a fixed site id and management port, and returns the data
// home and the namespace directory.
func setupNamespace(t *testing.T, src, name string) (string, namespace.Dir) {
	t.Helper()
	home := t.TempDir()
	dir, err := namespace.Open(home, name)
	if err != nil {
		t.Fatal(err)
	}
	testfs.Copy(t, src, dir.Path)
	testfs.IssueUserCredentials(t, filepath.Join(src, "certs"), dir.Path)
	os.Remove(filepath.Join(dir.Path, "certs"))
	os.RemoveAll(filepath.Join(dir.Path, "want"))
	if err := os.MkdirAll(dir.Internal(), 0o755); err != nil {
		t.Fatal(err)
	}
	for file, content := range map[string]string{"site-id": testSiteID, "management-port": "5671"} {
		if err := os.WriteFile(filepath.Join(dir.Internal(), file), []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seedPorts(t, home, dir)
	return home, dir
}

var keyData = regexp.MustCompile(`(?m)^(  (?:ca\.crt|tls\.crt|tls\.key)): \S+$`)

// testHostNames stand in for this host's names in the goldens.
var testHostNames = []string{"test-host", "192.0.2.10"}

// seedPorts reserves the ports the namespace's RouterAccesses would get in
// an empty data home on an idle machine (the first from each role's
// default up), so that goldens do not depend on what listens here now.
func seedPorts(t *testing.T, home string, dir namespace.Dir) {
	t.Helper()
	ns, err := dir.Load()
	if err != nil {
		t.Fatal(err)
	}
	used := map[int]bool{}
	claims := site.PortClaims(ns)
	for _, c := range claims {
		used[c.Port] = true
	}
	var b strings.Builder
	for _, c := range claims {
		if c.Port > 0 {
			continue
		}
		p := c.From
		for used[p] {
			p++
		}
		used[p] = true
		fmt.Fprintf(&b, "%d * %s %s\n", p, dir.Name, c.Key)
	}
	if err := os.WriteFile(filepath.Join(namespace.Root(home), ".ports"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newTestReconciler(home string) *Reconciler {
	return New(Options{DataHome: home, Platform: "podman", Version: "test", Now: func() time.Time { return testNow },
		HostNames: func() []string { return testHostNames }})
}

// checkSchema fails the test when cfg uses anything skrouter.json lacks.
func checkSchema(t *testing.T, cfg routerconfig.Config) {
	t.Helper()
	skschema.CheckConfig(t, cfg)
}

// outputs collects what a pass produced, with the namespace directory
// replaced by $NSDIR so goldens do not depend on the temp dir.
func outputs(t *testing.T, dir namespace.Dir, res *Result) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var probs bytes.Buffer
	for _, p := range res.Problems {
		probs.WriteString(p.String() + "\n")
	}
	out["problems.txt"] = probs.Bytes()
	if data, err := os.ReadFile(dir.RouterConfig()); err == nil {
		out["skrouterd.json"] = bytes.ReplaceAll(data, []byte(dir.Path), []byte("$NSDIR"))
	}
	links, _ := filepath.Glob(dir.Join("runtime", "links", "*.yaml"))
	for _, f := range links {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// key material differs on every run: only its place is kept
		out["links/"+filepath.Base(f)] = keyData.ReplaceAll(data, []byte("$1: <base64>"))
	}
	files, _ := filepath.Glob(filepath.Join(dir.RuntimeResources(), "*.yaml"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out["status/"+filepath.Base(f)] = data
	}
	return out
}

func compareGolden(t *testing.T, wantDir string, got map[string][]byte) {
	t.Helper()
	if *update {
		os.RemoveAll(wantDir)
		for name, data := range got {
			p := filepath.Join(wantDir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	want := map[string][]byte{}
	filepath.WalkDir(wantDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(wantDir, path)
			want[rel], _ = os.ReadFile(path)
		}
		return nil
	})
	if len(want) == 0 {
		t.Fatalf("no golden files in %s; run go test -update", wantDir)
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: expected output missing", name)
			continue
		}
		if !bytes.Equal(g, w) {
			t.Errorf("%s differs from %s (go test -update to accept):\n--- got\n%s\n--- want\n%s", name, filepath.Join(wantDir, name), g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected output (go test -update to accept)", name)
		}
	}
}

// TestRenderGolden renders every fixture and example, compares the router
// config, status files and problems with the goldens, checks the config
// against the router schema, renders again to prove nothing changes, and
// proves input/ untouched.
func TestRenderGolden(t *testing.T) {
	for _, c := range fixture.GoldenCases(t, "../..") {
		t.Run(c.Name, func(t *testing.T) {
			home, dir := setupNamespace(t, c.Src, c.Name)
			// example namespaces must not carry state into the test
			os.RemoveAll(dir.Join("runtime"))
			before := testfs.Fingerprint(t, dir.Join("input"))
			// validate first: it writes nothing and finds what the pass finds
			whole := testfs.Fingerprint(t, dir.Path)
			validated, err := Validate(dir)
			if err != nil {
				t.Fatal(err)
			}
			if after := testfs.Fingerprint(t, dir.Path); after != whole {
				t.Errorf("validate wrote:\n%s\n---\n%s", whole, after)
			}
			r := newTestReconciler(home)
			res, err := r.Reconcile(context.Background(), c.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(validated, res.Problems, func(a, b resources.Problem) bool { return a.String() == b.String() }) {
				t.Errorf("validate found %v, the pass %v", validated, res.Problems)
			}
			if res.Config != nil {
				checkSchema(t, res.Config)
			}
			got := outputs(t, dir, res)
			compareGolden(t, c.Want, got)

			res2, err := r.Reconcile(context.Background(), c.Name)
			if err != nil {
				t.Fatal(err)
			}
			if len(res2.Changed) != 0 || res2.ConfigChanged {
				t.Errorf("second pass changed %v", res2.Changed)
			}
			again := outputs(t, dir, res2)
			for name, data := range got {
				if !bytes.Equal(again[name], data) {
					t.Errorf("%s: second render differs", name)
				}
			}
			if after := testfs.Fingerprint(t, dir.Join("input")); after != before {
				t.Errorf("input/ changed:\n%s\n---\n%s", before, after)
			}
		})
	}
}

// TestCredentialFiles checks modes and reuse of generated and copied
// credentials.
func TestCredentialFiles(t *testing.T) {
	home, dir := setupNamespace(t, "testdata/render/tls", "tls")
	r := newTestReconciler(home)
	if _, err := r.Reconcile(context.Background(), "tls"); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"runtime/certs", "runtime/issuers"} {
		filepath.WalkDir(dir.Join(sub), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			info, _ := d.Info()
			switch {
			case d.IsDir() && info.Mode().Perm() != 0o700:
				t.Errorf("%s: mode %v, want 0700", path, info.Mode().Perm())
			case strings.HasSuffix(path, ".key") && info.Mode().Perm() != 0o600:
				t.Errorf("%s: mode %v, want 0600", path, info.Mode().Perm())
			}
			return nil
		})
	}
	for _, name := range []string{"skupper-local-server", "skupper-local-client", "generated", "listener-creds", "client-creds"} {
		for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
			if _, err := os.Stat(dir.Join("runtime", "certs", name, f)); err != nil {
				t.Errorf("credential %s: %v", name, err)
			}
		}
	}
	// the CA-only profile of a connector without useClientCert really exists
	caOnly := dir.Join("runtime", "certs", "server-ca-profile")
	if _, err := os.Stat(filepath.Join(caOnly, "ca.crt")); err != nil {
		t.Errorf("CA-only profile: %v", err)
	}
	if _, err := os.Stat(filepath.Join(caOnly, "tls.key")); err == nil {
		t.Errorf("CA-only profile holds a key")
	}
	// user files are copied verbatim
	for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
		a, _ := os.ReadFile(dir.Join("input", "certs", "listener-creds", f))
		b, _ := os.ReadFile(dir.Join("runtime", "certs", "listener-creds", f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("listener-creds/%s not copied verbatim", f)
		}
	}
	// generated credentials are reused by a new controller process
	key := dir.Join("runtime", "certs", "skupper-local-server", "tls.key")
	before, _ := os.ReadFile(key)
	if _, err := New(Options{DataHome: home, Now: time.Now}).Reconcile(context.Background(), "tls"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(key)
	if !bytes.Equal(before, after) {
		t.Error("local server key regenerated on a second pass")
	}
	// a replaced user certificate reaches runtime/
	newCA := filepath.Join(t.TempDir(), "ns")
	testfs.IssueUserCredentials(t, writeTemp(t, "listener-creds full\n"), newCA)
	for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
		data, _ := os.ReadFile(filepath.Join(newCA, "input", "certs", "listener-creds", f))
		os.WriteFile(dir.Join("input", "certs", "listener-creds", f), data, 0o600)
	}
	res, err := r.Reconcile(context.Background(), "tls")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dir.Join("runtime", "certs", "listener-creds", "tls.crt"))
	want, _ := os.ReadFile(filepath.Join(newCA, "input", "certs", "listener-creds", "tls.crt"))
	if !bytes.Equal(got, want) {
		t.Error("replaced user certificate not copied")
	}
	if !strings.Contains(strings.Join(res.Changed, " "), "runtime/certs/listener-creds") {
		t.Errorf("changed files %v do not name the replaced credential", res.Changed)
	}
}

func writeTemp(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "certs")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLinkFilesOnDisk: link files hold a private key: 0600 in a 0700
// directory; key material appears in no status file; the files of a
// RouterAccess that goes are removed, and nothing else in runtime/links.
func TestLinkFilesOnDisk(t *testing.T) {
	home, dir := setupNamespace(t, "testdata/render/links", "links")
	r := newTestReconciler(home)
	if _, err := r.Reconcile(context.Background(), "links"); err != nil {
		t.Fatal(err)
	}
	ldir := dir.Join("runtime", "links")
	if st, err := os.Stat(ldir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("runtime/links: %v %v", st, err)
	}
	files, _ := filepath.Glob(filepath.Join(ldir, "*.yaml"))
	if len(files) != 6 {
		t.Fatalf("%d link files", len(files))
	}
	for _, f := range files {
		if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", f, st.Mode().Perm())
		}
	}
	key, _ := os.ReadFile(dir.Join("runtime", "certs", "client-public", certs.KeyFile))
	block := strings.Split(strings.TrimSpace(string(key)), "\n")[1] // a line of the key
	statuses, _ := filepath.Glob(filepath.Join(dir.RuntimeResources(), "*.yaml"))
	for _, f := range statuses {
		data, _ := os.ReadFile(f)
		if strings.Contains(string(data), block) || strings.Contains(string(data), "PRIVATE KEY") {
			t.Errorf("%s holds key material", f)
		}
	}
	mine := filepath.Join(ldir, "notes.txt")
	fixture.WriteFile(t, mine, "kept\n")
	// RouterAccess public goes
	src := dir.Join("input", "resources", "site.yaml")
	data, _ := os.ReadFile(src)
	cut := regexp.MustCompile(`(?s)---\n# no tlsCredentials.*?port: 55700\n`)
	if !cut.Match(data) {
		t.Fatal("fixture changed: cannot remove RouterAccess public")
	}
	fixture.WriteFile(t, src, string(cut.ReplaceAll(data, nil)))
	if _, err := r.Reconcile(context.Background(), "links"); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(ldir, "*"))
	for i := range left {
		left[i] = filepath.Base(left[i])
	}
	if want := []string{"link-hub-access-127.0.0.1.yaml", "link-hub-access-localhost.yaml", "notes.txt"}; !slices.Equal(left, want) {
		t.Errorf("runtime/links holds %v, want %v", left, want)
	}
}

// TestSelectorWithoutContainers: where there are no containers to select
// (linux), a selector is the Connector's error saying to use spec.host;
// where the engine is not in reach of this command, or the platform runs
// nothing (none), the Connector says why it selects nothing.
func TestSelectorWithoutContainers(t *testing.T) {
	for _, c := range []struct {
		platform, status, message string
	}{
		{"linux", status.Error, "input/resources/c.yaml:7: spec.selector: the linux platform has no containers to select; set spec.host to the server's address instead"},
		{"podman", status.Pending, "no podman engine in this command to select containers from"},
		{"none", status.Pending, "platform none runs no containers: nothing is selected"},
	} {
		t.Run(c.platform, func(t *testing.T) {
			home := t.TempDir()
			res := filepath.Join(home, "namespaces", "ns", "input", "resources")
			os.MkdirAll(res, 0o755)
			os.WriteFile(filepath.Join(res, "site.yaml"), []byte("apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata:\n  name: s\n"), 0o644)
			os.WriteFile(filepath.Join(res, "c.yaml"), []byte("apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: backend\nspec:\n  routingKey: backend\n  selector: app=backend\n  port: 8080\n"), 0o644)
			r := New(Options{DataHome: home, Platform: c.platform, Version: "test", Now: func() time.Time { return testNow }, HostNames: func() []string { return testHostNames }})
			out, err := r.Reconcile(context.Background(), "ns")
			if err != nil {
				t.Fatal(err)
			}
			st := fixture.StatusOf(home, "ns", "Connector", "backend")
			if st == nil || st.Status != c.status || st.Message != c.message {
				t.Errorf("status %+v, want %s: %s", st, c.status, c.message)
			}
			for _, e := range out.Config {
				if e.Type == "tcpConnector" {
					t.Errorf("rendered %v with nothing selected", e.Attrs)
				}
			}
		})
	}
}

// TestCrashTempsRemoved: the temporary files a process that stopped
// mid-write left beside the router configuration and in internal/ are
// removed by the first pass of the next one; a file that only looks like
// one elsewhere is left alone.
func TestCrashTempsRemoved(t *testing.T) {
	home, dir := setupNamespace(t, "testdata/render/tls", "tls")
	if _, err := newTestReconciler(home).Reconcile(context.Background(), "tls"); err != nil {
		t.Fatal(err)
	}
	temps := []string{
		filepath.Join(filepath.Dir(dir.RouterConfig()), ".skrouterd.json.tmp4065286361"),
		filepath.Join(dir.Internal(), ".site-id.tmp123"),
	}
	mine := filepath.Join(dir.InputResources(), ".notes.tmp1")
	for _, p := range append(temps, mine) {
		if err := os.WriteFile(p, []byte("cut short"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := newTestReconciler(home).Reconcile(context.Background(), "tls"); err != nil {
		t.Fatal(err)
	}
	for _, p := range temps {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	if _, err := os.Lstat(mine); err != nil {
		t.Errorf("the user's %s: %v", mine, err)
	}
}
