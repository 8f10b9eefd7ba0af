package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/runtime/podman"
	"github.com/site-controller/site-controller/pkg/status"
)

// runMainEnv makes the test binary behave as site-controller itself, so a
// test can run the command as another user without building it again.
const runMainEnv = "SITE_CONTROLLER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRootlessPodmanLive runs `site-controller run` as an unprivileged user
// against that user's rootless Podman service, as the per-user unit does,
// with the real router image: the router runs in a keep-id container
// reading the user's 0600 keys, the controller manages it live over the
// management listener, traffic flows from a Listener to a Connector, and a
// later Listener reaches the router without a restart.
func TestRootlessPodmanLive(t *testing.T) {
	ep, owner := os.Getenv("SITE_CONTROLLER_TEST_PODMAN_ROOTLESS"), os.Getenv("SITE_CONTROLLER_TEST_ROOTLESS_OWNER")
	if ep == "" || owner == "" {
		t.Skip("no rootless Podman service for tests: run under scripts/with-engines.sh (sets SITE_CONTROLLER_TEST_PODMAN_ROOTLESS)")
	}
	image := routertest.Image(t)
	var uid, gid int
	if _, err := fmt.Sscanf(owner, "%d:%d", &uid, &gid); err != nil {
		t.Fatal(err)
	}
	// a data home the user owns, beside the user's Podman socket
	home, err := os.MkdirTemp(filepath.Dir(strings.TrimPrefix(ep, "unix://")), "home")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	ns := fmt.Sprintf("rl%d", time.Now().UnixNano()%1e9)
	res := filepath.Join(home, "namespaces", ns, "input", "resources")
	if err := os.MkdirAll(res, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(home, "site-controller")
	copyFile(t, exe)
	filepath.Walk(home, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })

	rt := podman.New(podman.Options{Endpoint: ep, Image: image})
	t.Cleanup(func() { rt.Remove(context.Background(), ns, filepath.Join(home, "namespaces", ns)) })
	var log strings.Builder
	cmd := exec.Command("setpriv", "--reuid", fmt.Sprint(uid), "--regid", fmt.Sprint(gid), "--init-groups",
		exe, "run", "--data-home", home, "--platform", "podman", "--container-endpoint", ep,
		"--router-image", image, "--pull", "never", "--rescan-interval", "0")
	cmd.Env = []string{runMainEnv + "=1", "HOME=" + home, "PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("site-controller output:\n%s", log.String())
		}
	})

	echo := routertest.EchoServer(t, nil)
	in, in2 := routertest.FreePort(t), routertest.FreePort(t)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(res, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("site.yaml", routertest.EchoSite("mine", in, echo))
	statusOf := func(kind, name string) *status.Status {
		s, _ := status.Read(filepath.Join(home, "namespaces", ns, "runtime", "resources", kind+"-"+name+".yaml"))
		return s
	}
	waitFor(t, 60*time.Second, "Listener matched by the router", func() bool {
		s := statusOf("Listener", "front")
		return s != nil && s.Status == status.Ready && s.HasMatchingConnector != nil && *s.HasMatchingConnector
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := routertest.RoundTrip(ctx, in, nil); err != nil {
		t.Fatalf("traffic from Listener to Connector: %v", err)
	}
	st, err := rt.State(context.Background(), ns, filepath.Join(home, "namespaces", ns))
	if err != nil || !st.Running {
		t.Fatalf("router state %+v %v", st, err)
	}

	// a second Listener reaches the router live: no restart
	write("second.yaml", fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: second}\nspec: {routingKey: echo, host: 127.0.0.1, port: %d}\n", in2))
	waitFor(t, 30*time.Second, "second Listener in the router", func() bool {
		s := statusOf("Listener", "second")
		return s != nil && s.Status == status.Ready
	})
	if err := routertest.RoundTrip(ctx, in2, nil); err != nil {
		t.Fatalf("traffic through the second Listener: %v", err)
	}
	after, _ := rt.State(context.Background(), ns, filepath.Join(home, "namespaces", ns))
	if after.Pid != st.Pid || !after.Started.Equal(st.Started) {
		t.Errorf("the router restarted for a new Listener: %+v -> %+v", st, after)
	}
	// keys stay the user's and private
	for _, f := range []string{"skupper-local-server/tls.key", "skupper-local-client/tls.key"} {
		fi, err := os.Stat(filepath.Join(home, "namespaces", ns, "runtime", "certs", f))
		if err != nil {
			t.Fatal(err)
		}
		if sys := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o600 || int(sys.Uid) != uid {
			t.Errorf("%s: mode %v uid %d, want 0600 owned by %d", f, fi.Mode().Perm(), sys.Uid, uid)
		}
	}
}

// copyFile copies the running test binary to dst, executable by anyone.
func copyFile(t *testing.T, dst string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
