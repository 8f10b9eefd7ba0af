package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/daemon"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/status"
)

// TestDebugDumpHoldsNoCredential gives two sites every credential a site
// can have — generated ones (CAs, server and client certificates, the
// management client), its own in input/certs, a Secret resource, a link
// file from the other site, an AccessGrant with a code, an AccessToken
// with a code and the grant server's answer to it — with real routers
// (east in a Docker container, west under the test systemd user manager),
// runs `debug dump`, and looks through every file of the archive: no
// private key body, no code, no Secret data value, and never "PRIVATE
// KEY"; while what a dump is for is there: versions, statuses, the
// configuration, the live entities of both routers, the container's
// inspect and log, the unit, the daemon's metrics and host facts.
func TestDebugDumpHoldsNoCredential(t *testing.T) {
	linux := enginetest.Real(t, "linux")
	docker := enginetest.RealDocker(t)
	dockerEP := enginetest.DockerEndpoint(t)
	home := t.TempDir()
	east, west := fixture.Namespace("dde"), fixture.Namespace("ddw")
	t.Cleanup(func() {
		docker.Remove(context.Background(), east, fixture.NSDir(home, east))
		linux.Remove(context.Background(), west, fixture.NSDir(home, west))
	})
	res := func(ns, file string) string {
		return filepath.Join(fixture.NSDir(home, ns), "input", "resources", file)
	}
	t.Cleanup(func() {
		if t.Failed() {
			files, _ := filepath.Glob(filepath.Join(home, "namespaces", "*", "runtime", "resources", "*.yaml"))
			for _, f := range files {
				if s, err := status.Read(f); err == nil {
					t.Logf("%s: %s: %s", f[len(home):], s.Status, s.Message)
				}
			}
		}
	})

	// east (Docker): accepts links, a Listener with its own credential, a
	// Secret, an AccessGrant with a code; west (linux): a Listener
	eastPorts := []int{routertest.FreePort(t), routertest.FreePort(t), routertest.FreePort(t)}
	westPort, echo := routertest.FreePort(t), routertest.EchoServer(t, nil)
	fixture.WriteFile(t, res(east, "site.yaml"), fixture.SiteYAML("east")+fmt.Sprintf("---\napiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata:\n  name: east-access\n"+
		"spec:\n  bindHost: 127.0.0.1\n  roles:\n  - name: inter-router\n    port: %d\n  - name: edge\n    port: %d\n", eastPorts[0], eastPorts[1])+
		"---\n"+fixture.ConnectorYAML("backend", "backend", echo)+
		fmt.Sprintf("---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata:\n  name: secure\nspec:\n  routingKey: secure\n  host: 127.0.0.1\n  port: %d\n  tlsCredentials: mine\n", eastPorts[2]))
	spec := filepath.Join(t.TempDir(), "certs.txt")
	fixture.WriteFile(t, spec, "mine full\n")
	testfs.IssueUserCredentials(t, spec, fixture.NSDir(home, east))
	secretKey, _ := os.ReadFile(filepath.Join(fixture.NSDir(home, east), "input", "certs", "mine", "tls.key"))
	fixture.WriteFile(t, res(east, "secret.yaml"), "apiVersion: v1\nkind: Secret\nmetadata:\n  name: extra\ntype: kubernetes.io/tls\ndata:\n"+
		"  tls.key: "+base64.StdEncoding.EncodeToString(secretKey)+"\n  password: "+base64.StdEncoding.EncodeToString([]byte("secret-data-value-8c1f"))+"\n")
	fixture.WriteFile(t, res(east, "grant.yaml"), "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: given\nspec:\n  redemptionsAllowed: 3\n  code: explicit-grant-code-71d2a9\n")
	eastDir, err := namespace.Open(home, east)
	if err != nil {
		t.Fatal(err)
	}
	if err := eastDir.SetPlatform("docker"); err != nil {
		t.Fatal(err)
	}
	fixture.WriteFile(t, res(west, "site.yaml"), fixture.SiteYAML("west")+"---\n"+fixture.ListenerYAML("backend", westPort))

	httpAddr := startDumpDaemon(t, home, map[string]runtime.Runtime{"linux": linux, "docker": docker})
	fixture.EventuallyWithin(t, time.Minute, "both sites running", func() bool {
		return fixture.SiteReady(home, east, "east")() && fixture.SiteReady(home, west, "west")()
	})

	// a link file from east in west's input, and a token from east redeemed by west
	var link string
	fixture.Eventually(t, "a link file from east", func() bool {
		var err error
		link, _, err = run(t, "link", "generate", "--data-home", home, east)
		return err == nil
	})
	fixture.WriteFile(t, res(west, "link-to-east.yaml"), link)
	token := filepath.Join(t.TempDir(), "token.yaml")
	out, _, err := run(t, "token", "issue", "--data-home", home, east, token)
	if err != nil {
		t.Fatalf("token issue: %v", err)
	}
	if _, _, err := run(t, "token", "redeem", "--data-home", home, west, token); err != nil {
		t.Fatalf("token redeem: %v", err)
	}
	grant := strings.Fields(out)[1]
	fixture.EventuallyWithin(t, 30*time.Second, "the token redeemed: the grant server's answer kept", func() bool {
		tk := fixture.StatusOf(home, west, "AccessToken", grant)
		_, err := os.Stat(filepath.Join(fixture.NSDir(home, west), "runtime", "tokens", grant+".yaml"))
		return tk != nil && tk.Redeemed != nil && *tk.Redeemed && err == nil
	})
	fixture.EventuallyWithin(t, 30*time.Second, "west linked to east", func() bool {
		l := fixture.StatusOf(home, west, "Link", grant)
		return l != nil && l.Status == status.Ready
	})

	// every credential of the data home (and the token file)
	secrets := credentialsUnder(t, home, token)
	if len(secrets) < 20 {
		t.Fatalf("found only %d credential values to look for: %v", len(secrets), secrets)
	}

	archive := filepath.Join(t.TempDir(), "dump.tar.gz")
	start := time.Now()
	_, errOut, err := run(t, "debug", "dump", "--data-home", home, "-o", archive, "--http", httpAddr,
		"--container-endpoint", dockerEP, "--systemd-scope", "user")
	if err != nil {
		t.Fatalf("debug dump: %v %s", err, errOut)
	}
	st, err := os.Stat(archive)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the archive: %v %v", st, err)
	}
	t.Logf("debug dump: %d bytes in %s; %s", st.Size(), time.Since(start).Round(time.Millisecond), strings.TrimSpace(errOut))

	files := readArchive(t, archive)
	for name, body := range files {
		if strings.Contains(body, "PRIVATE KEY") {
			t.Errorf("%s says PRIVATE KEY", name)
		}
		for _, s := range secrets {
			if strings.Contains(body, s.value) {
				t.Errorf("%s holds %s", name, s.what)
			}
		}
	}

	// what the dump is for
	get := func(suffix string) string {
		t.Helper()
		for name, body := range files {
			if strings.HasSuffix(name, "/"+suffix) {
				return body
			}
		}
		t.Errorf("the dump has no %s", suffix)
		return ""
	}
	summary := get("summary.yaml")
	for _, want := range []string{"version: " + controllerVersion(), "routerVersion: 3.5", "docker:", "endpoint: " + dockerEP, "platform: docker", "platform: linux"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary.yaml lacks %q:\n%s", want, summary)
		}
	}
	checks := map[string][]string{
		"namespaces/" + east + "/input/resources/secret.yaml":                      {"name: extra", "tls.key: <redacted>", "password: <redacted>"},
		"namespaces/" + east + "/input/resources/grant.yaml":                       {"code: <redacted>", "redemptionsAllowed: 3"},
		"namespaces/" + east + "/runtime/resources/AccessGrant-" + grant + ".yaml": {"code: <redacted>", "url: \"https://"},
		"namespaces/" + west + "/input/resources/AccessToken-" + grant + ".yaml":   {"code: <redacted>"},
		"namespaces/" + west + "/input/resources/link-to-east.yaml":                {"kind: Link", "tls.key: <redacted>"},
		"namespaces/" + west + "/runtime/tokens/" + grant + ".yaml":                {"kind: Secret", "<redacted>"},
		"namespaces/" + east + "/runtime/router/skrouterd.json":                    {`"tcpListener"`, `"privateKeyFile"`},
		"namespaces/" + east + "/router/entities/tcpListener.json":                 {`"name": "listener/secure"`},
		"namespaces/" + east + "/router/entities/connection.json":                  {`"role": "inter-router"`},
		"namespaces/" + east + "/router/entities/router.json":                      {`"mode": "interior"`},
		"namespaces/" + east + "/router/entities/routerMetrics.json":               {`"3.5.1"`},
		"namespaces/" + east + "/router/entities/sslProfile.json":                  {`"name": "mine"`},
		"namespaces/" + east + "/router/container.json":                            {runtime.ContainerName(east), runtime.LabelSiteDir},
		"namespaces/" + east + "/router/log.txt":                                   {"Router started"},
		"namespaces/" + west + "/router/entities/connector.json":                   {`"role": "inter-router"`},
		"namespaces/" + west + "/router/entities/router.node.json":                 {`"id"`},
		"namespaces/" + west + "/router/unit.txt":                                  {"ExecStart=", runtime.UnitName(west)},
		"namespaces/" + east + "/files.txt":                                        {"runtime/links/link-east-access-127.0.0.1.yaml", "input/certs/mine/tls.key"},
		"namespaces/" + east + "/certificates.txt":                                 {"input/certs/mine/tls.crt #1", "skupper-site-ca"},
		"host/facts.txt":              {"/proc/sys/fs/inotify/max_user_watches: ", "/proc/sys/kernel/osrelease: "},
		"host/limits-of-dump.txt":     {"Max open files"},
		"daemon/http-metrics.txt":     {"site_controller_"},
		"engines/docker-version.json": {`"ApiVersion"`},
	}
	for suffix, wants := range checks {
		body := get(suffix)
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q:\n%.2000s", suffix, want, body)
			}
		}
	}
	for name := range files {
		if strings.Contains(name, "/runtime/links/") || strings.HasSuffix(name, ".key") {
			t.Errorf("the dump carries %s", name)
		}
	}
}

// secretValue is a credential to look for, and what it is.
type secretValue struct{ what, value string }

// credentialsUnder finds every credential in the files under root (and
// the extra files): each line of every private key block's body, every
// code, every Secret data value, base64 and decoded.
func credentialsUnder(t *testing.T, root string, extra ...string) []secretValue {
	t.Helper()
	var out []secretValue
	seen := map[string]bool{}
	add := func(what, v string) {
		if len(v) >= 8 && !seen[v] {
			seen[v] = true
			out = append(out, secretValue{what, v})
		}
	}
	var keys func(what string, data []byte)
	keys = func(what string, data []byte) {
		for rest := data; ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if strings.Contains(block.Type, "PRIVATE KEY") {
				body := base64.StdEncoding.EncodeToString(block.Bytes)
				for i := 0; i+64 <= len(body); i += 64 {
					add("a line of a private key in "+what, body[i:i+64])
				}
				add("the end of a private key in "+what, body[len(body)/64*64:])
			}
		}
	}
	var walkYAML func(what, kind string, n *yaml.Node, depth int)
	walkYAML = func(what, kind string, n *yaml.Node, depth int) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walkYAML(what, kind, c, depth)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				switch {
				case k == "code" && v.Kind == yaml.ScalarNode:
					add("a code in "+what, v.Value)
				case kind == "Secret" && depth == 0 && (k == "data" || k == "stringData"):
					for j := 1; j < len(v.Content); j += 2 {
						add("a Secret value in "+what, v.Content[j].Value)
						if dec, err := base64.StdEncoding.DecodeString(v.Content[j].Value); err == nil {
							add("a decoded Secret value in "+what, string(dec))
							keys(what, dec)
						}
					}
				default:
					walkYAML(what, kind, v, depth+1)
				}
			}
		}
	}
	visit := func(path string) {
		data, err := os.ReadFile(path)
		if err != nil {
			return
		}
		keys(path, data)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var n yaml.Node
			if err := dec.Decode(&n); err != nil {
				break
			}
			kind := ""
			if len(n.Content) == 1 && n.Content[0].Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content[0].Content); i += 2 {
					if n.Content[0].Content[i].Value == "kind" {
						kind = n.Content[0].Content[i+1].Value
					}
				}
			}
			walkYAML(path, kind, &n, 0)
		}
	}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			visit(path)
		}
		return nil
	})
	for _, f := range extra {
		visit(f)
	}
	return out
}

// readArchive returns every file of a .tar.gz, decompressed.
func readArchive(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = string(data)
	}
	return files
}

// startDumpDaemon runs the daemon with a grant server and the given
// runtimes (linux the default platform), serving /metrics; it returns
// the HTTP address.
func startDumpDaemon(t *testing.T, home string, runtimes map[string]runtime.Runtime) string {
	t.Helper()
	srv, err := grants.New(grants.Options{Addr: "127.0.0.1:0", Host: "127.0.0.1", Dir: filepath.Join(home, "grant-server")})
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.Options{Options: controller.Options{DataHome: home, Platform: "linux", Runtimes: runtimes, Live: true, Grants: srv, Version: controllerVersion()}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); d.Run(ctx) }()
	go func() { defer wg.Done(); srv.Serve(ctx) }()
	go func() { defer wg.Done(); hs.Serve(l) }()
	t.Cleanup(func() { cancel(); hs.Close(); wg.Wait() })
	return l.Addr().String()
}

// TestDebugDumpFindsDaemon: without --http, the dump finds the running
// daemon of its data home by its command line (a relative --data-home
// against the daemon's working directory, as the daemon reads it) and
// takes its /metrics, its limits and its command line.
func TestDebugDumpFindsDaemon(t *testing.T) {
	work := t.TempDir()
	home := filepath.Join(work, "home")
	fixture.WriteFile(t, filepath.Join(fixture.NSDir(home, "solo"), "input", "resources", "site.yaml"), fixture.SiteYAML("solo"))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", routertest.FreePort(t))
	daemon := runDaemon(t, work, "--data-home", "home", "--platform", "none", "--http", httpAddr, "--rescan-interval", "0")
	fixture.Eventually(t, "the daemon ready", func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	archive := filepath.Join(t.TempDir(), "dump.tar.gz")
	if _, errOut, err := run(t, "debug", "dump", "--data-home", home, "-o", archive); err != nil {
		t.Fatalf("debug dump: %v %s", err, errOut)
	}
	files := readArchive(t, archive)
	found := map[string]string{}
	for name, body := range files {
		if i := strings.Index(name, "/daemon/"); i >= 0 {
			found[name[i+len("/daemon/"):]] = body
		}
		if strings.HasSuffix(name, "/summary.yaml") {
			found["summary"] = body
		}
	}
	for file, want := range map[string]string{
		"http-metrics.txt": "site_controller_",
		"http-readyz.txt":  "200 OK",
		"cmdline.txt":      "run --data-home home --platform none --http " + httpAddr,
		"limits.txt":       "Max open files",
		"summary":          fmt.Sprintf("pid: %d\n    http: %s\n    dataHome: %s", daemon.Pid, httpAddr, home),
	} {
		if !strings.Contains(found[file], want) {
			t.Errorf("daemon/%s lacks %q:\n%s", file, want, found[file])
		}
	}
}

// runDaemon runs `site-controller run args...` in directory dir ("": the
// test's) from a copy of the test binary named site-controller (the name
// the dump looks for), until the test ends; its log is shown when the
// test fails. It returns the daemon's process.
func runDaemon(t *testing.T, dir string, args ...string) *os.Process {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "site-controller")
	copyFile(t, exe)
	var log strings.Builder
	cmd := exec.Command(exe, append([]string{"run"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})
	return cmd.Process
}
