package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/site-controller/site-controller/internal/skschema"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/daemon"
	"github.com/site-controller/site-controller/pkg/status"
	"gopkg.in/yaml.v3"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// examples copies the example namespaces into a fresh data home.
func examples(t *testing.T) string {
	home := t.TempDir()
	testfs.Copy(t, "../../examples", home)
	// only the input: a local `make run` leaves output in examples/
	dirs, _ := filepath.Glob(filepath.Join(home, "namespaces", "*"))
	for _, d := range dirs {
		os.RemoveAll(filepath.Join(d, "runtime"))
		os.RemoveAll(filepath.Join(d, "internal"))
	}
	return home
}

func TestValidate(t *testing.T) {
	home := examples(t)
	out, _, err := run(t, "validate", "--data-home", home)
	if err != nil || strings.Count(out, ": warning: ") != strings.Count(out, "\n") {
		t.Fatalf("examples: only warnings expected, got %q %v", out, err)
	}
	bad := filepath.Join(home, "namespaces", "hello-world-west", "input", "resources", "extra.yaml")
	os.WriteFile(bad, []byte("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: x\nspec:\n  routingKey: k\n  host: 127.0.0.1\n  port: 70000\n"), 0o644)
	out, _, err = run(t, "validate", "--data-home", home, "hello-world-west")
	if !errors.Is(err, errProblems) {
		t.Errorf("exit error %v, want problems", err)
	}
	if want := bad + ":8: Listener/x: spec.port: must be between 1 and 65535, got 70000\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if _, _, err := run(t, "validate", "--data-home", home, "missing"); err == nil {
		t.Error("a missing namespace validated")
	}
	// what only the pass used to find: credentials that are not there
	os.Remove(bad)
	nosuch := filepath.Join(home, "namespaces", "hello-world-east", "input", "resources", "tls.yaml")
	os.WriteFile(nosuch, []byte("apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata:\n  name: tls\nspec:\n  routingKey: k\n  host: db\n  port: 5432\n  tlsCredentials: nosuch\n"), 0o644)
	before := testfs.Fingerprint(t, filepath.Join(home, "namespaces"))
	out, _, err = run(t, "validate", "--data-home", home, "hello-world-east")
	if !errors.Is(err, errProblems) || !strings.Contains(out, nosuch+":9: Connector/tls: spec.tlsCredentials: input/certs/nosuch not found") {
		t.Errorf("validate of a missing credential: %v\n%s", err, out)
	}
	if after := testfs.Fingerprint(t, filepath.Join(home, "namespaces")); after != before {
		t.Errorf("validate wrote:\n%s\n---\n%s", before, after)
	}
}

func TestRenderAndStatus(t *testing.T) {
	home := examples(t)
	out, errOut, err := run(t, "render", "--data-home", home, "--platform", "docker", "hello-world-east")
	if err != nil {
		t.Fatalf("render: %v %s", err, errOut)
	}
	nsDir := filepath.Join(home, "namespaces", "hello-world-east")
	if !strings.Contains(out, filepath.Join(nsDir, "runtime/router/skrouterd.json")+"\n") {
		t.Errorf("render output lacks the router config:\n%s", out)
	}
	data, err := os.ReadFile(filepath.Join(nsDir, "runtime/router/skrouterd.json"))
	if err != nil || !strings.Contains(string(data), `\"platform\":\"docker\"`) {
		t.Errorf("router config: %v", err)
	}
	if n := skschema.CheckTree(t, home); n != 1 {
		t.Errorf("%d router configs checked, want 1", n)
	}
	if out, _, _ := run(t, "render", "--data-home", home, "--platform", "docker", "hello-world-east"); out != "" {
		t.Errorf("second render changed:\n%s", out)
	}
	if _, _, err := run(t, "render", "--data-home", home, "--platform", "kubernetes", "hello-world-east"); err == nil || !strings.Contains(err.Error(), "--platform must be podman, docker or linux") {
		t.Errorf("bad platform: %v", err)
	}
	out, _, err = run(t, "status", "--data-home", home)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"hello-world-east  Connector     backend        Pending  -        rendered; no router: rendered only (no runtime for platform docker in this command)",
		"hello-world-west  -             -              -        -        no status yet: run render or the daemon",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}

// TestRenderBesideDaemonIsRefused: while a daemon holds the data home's
// lock, render refuses, says why, and writes nothing.
func TestRenderBesideDaemonIsRefused(t *testing.T) {
	home := examples(t)
	release, err := daemon.LockDataHome(home)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "render", "--data-home", home, "hello-world-east")
	if err == nil || !strings.Contains(err.Error(), "is locked: another site-controller manages this data home") ||
		!strings.Contains(err.Error(), "'site-controller status hello-world-east'") {
		t.Errorf("render beside a daemon: %v", err)
	}
	if out != "" {
		t.Errorf("render beside a daemon printed %q", out)
	}
	if _, err := os.Stat(filepath.Join(home, "namespaces", "hello-world-east", "runtime")); !os.IsNotExist(err) {
		t.Errorf("render beside a daemon wrote runtime/: %v", err)
	}
	release()
	if _, _, err := run(t, "render", "--data-home", home, "hello-world-east"); err != nil {
		t.Errorf("render once the daemon is gone: %v", err)
	}
}

// TestStatusCommand: a namespace that does not exist is an error; -o wide
// prints messages whole; -o json and -o yaml print every status for
// scripts.
func TestStatusCommand(t *testing.T) {
	home := examples(t)
	if _, _, err := run(t, "status", "--data-home", home, "nosuch"); err == nil || !strings.Contains(err.Error(), "namespace nosuch does not exist") {
		t.Errorf("status of a missing namespace: %v", err)
	}
	if _, _, err := run(t, "render", "--data-home", home, "hello-world-east"); err != nil {
		t.Fatal(err)
	}
	short, _, err := run(t, "status", "--data-home", home, "hello-world-east")
	if err != nil {
		t.Fatal(err)
	}
	wide, _, err := run(t, "status", "--data-home", home, "-o", "wide", "hello-world-east")
	if err != nil {
		t.Fatal(err)
	}
	site, err := status.Read(filepath.Join(home, "namespaces", "hello-world-east", "runtime", "resources", "RouterAccess-east.yaml"))
	if err != nil || len(site.Message) <= 160 {
		t.Fatalf("the example's RouterAccess needs a long message for this test: %+v %v", site, err)
	}
	if strings.Contains(short, site.Message) || !strings.Contains(wide, site.Message) {
		t.Errorf("the whole message %q should be in -o wide only:\n%s\n---\n%s", site.Message, short, wide)
	}
	var asJSON struct {
		Items []struct {
			Namespace, Kind, Name string
			Status                status.Status
		}
	}
	out, _, err := run(t, "status", "--data-home", home, "-o", "json", "hello-world-east")
	if err != nil || json.Unmarshal([]byte(out), &asJSON) != nil || len(asJSON.Items) != 4 {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	for _, it := range asJSON.Items {
		if it.Kind == "RouterAccess" && it.Name == "east" && (it.Status.Message != site.Message || len(it.Status.Conditions) == 0 || len(it.Status.Endpoints) == 0) {
			t.Errorf("-o json RouterAccess: %+v", it)
		}
	}
	var asYAML struct {
		Items []map[string]any `yaml:"items"`
	}
	out, _, err = run(t, "status", "--data-home", home, "-o", "yaml")
	if err != nil || yaml.Unmarshal([]byte(out), &asYAML) != nil || len(asYAML.Items) != 4 {
		t.Errorf("-o yaml: %v\n%s", err, out)
	}
	if _, _, err := run(t, "status", "--data-home", home, "-o", "xml"); err == nil {
		t.Error("-o xml accepted")
	}
}

// TestRenderPrintsFiles: render prints each file it changed, never a
// directory; without a namespace it says how to call it.
func TestRenderPrintsFiles(t *testing.T) {
	home := examples(t)
	out, _, err := run(t, "render", "--data-home", home, "secure-backend")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 5 {
		t.Fatalf("render printed %d lines:\n%s", len(lines), out)
	}
	for _, line := range lines {
		if st, err := os.Stat(line); err != nil || !st.Mode().IsRegular() {
			t.Errorf("render printed %q, not a file it wrote (%v)", line, err)
		}
	}
	if _, _, err := run(t, "render", "--data-home", home); err == nil || !strings.Contains(err.Error(), "usage: site-controller render NAMESPACE") {
		t.Errorf("render without a namespace: %v", err)
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "site-controller ") {
		t.Errorf("version: %q %v", out, err)
	}
}

// TestHTTPNeedsAuthOffLoopback: the console on a non-loopback address
// without --http-auth is refused before anything starts; so are a bad
// htpasswd file and --http-auth without --http.
func TestHTTPNeedsAuthOffLoopback(t *testing.T) {
	dir := t.TempDir()
	md5 := filepath.Join(dir, "md5")
	os.WriteFile(md5, []byte("ann:$apr1$abcdefgh$0123456789abcdefghijkl\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http", "0.0.0.0:0"}, "--http 0.0.0.0:0 is not a loopback address: serving the console there needs --http-auth FILE"},
		{[]string{"--http", "192.0.2.1:9090"}, "--http 192.0.2.1:9090 is not a loopback address"},
		{[]string{"--http", ":9090"}, "--http :9090 is not a loopback address"},
		{[]string{"--http", "[::]:9090"}, "--http [::]:9090 is not a loopback address"},
		{[]string{"--http", "0.0.0.0:0", "--http-auth", filepath.Join(dir, "missing")}, "--http-auth: open " + filepath.Join(dir, "missing")},
		{[]string{"--http", "0.0.0.0:0", "--http-auth", md5}, "--http-auth " + md5 + ":1: user ann: not a bcrypt hash (make it with htpasswd -B)"},
		{[]string{"--http-auth", md5}, "--http-auth needs --http"},
	} {
		args := append([]string{"run", "--data-home", t.TempDir(), "--platform", "none"}, tc.args...)
		_, _, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
