package daemon

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/pkg/controller"
	"github.com/site-controller/site-controller/pkg/status"
)

// TestFaultNamedPipeCredential: a named pipe as input/certs/<name>/ca.crt
// (read by every pass and by the periodic rescan) stalls nothing: the
// first pass ends and /readyz says ok, the Listener that uses it says why
// it is left out while the rest of the namespace is rendered, and
// cancelling the daemon (what SIGTERM does) ends it promptly.
func TestFaultNamedPipeCredential(t *testing.T) {
	home := t.TempDir()
	nsDir := fixture.NSDir(home, "pipe")
	fixture.WriteFile(t, filepath.Join(nsDir, "input", "resources", "r.yaml"), fixture.SiteYAML("s")+"---\n"+fixture.ListenerYAML("ok", 1000)+
		"---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: tls}\nspec: {routingKey: tls, host: 127.0.0.1, port: 1001, tlsCredentials: x}\n")
	mkfifo(t, filepath.Join(nsDir, "input", "certs", "x", "ca.crt"))

	d, err := New(Options{Options: controller.Options{DataHome: home}, Notify: func(string) {}, Rescan: 50 * time.Millisecond, UnwatchedRescan: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	ready := func() bool {
		resp, err := srv.Client().Get(srv.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	fixture.EventuallyWithin(t, 10*time.Second, "/readyz ok with a named pipe as input/certs/x/ca.crt", ready)
	fixture.Eventually(t, "Listener/tls says why it is left out", func() bool {
		st := fixture.StatusOf(home, "pipe", "Listener", "tls")
		return st != nil && st.Status == status.Error &&
			strings.Contains(st.Message, "spec.tlsCredentials: input/certs/x/ca.crt: not a regular file (a named pipe)")
	})
	if !fixture.HasListener(home, "pipe", "ok", 1000) {
		t.Error("listener/ok is not rendered")
	}
	// a pipe that turns up later is met by the watcher's pass and by the
	// periodic rescan, which reads what changed
	periodic := d.metrics.rescans.WithLabelValues("periodic")
	mkfifo(t, filepath.Join(nsDir, "input", "certs", "y", "ca.crt"))
	seen := testutil.ToFloat64(periodic)
	fixture.Eventually(t, "periodic rescans", func() bool { return testutil.ToFloat64(periodic) >= seen+3 })

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the daemon did not stop within 5 s of being cancelled")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the daemon took %v to stop", took)
	}
}

// mkfifo makes a named pipe at path and, when the test ends, opens and
// closes its writing end, so that a reader stuck on it (the fault this
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
