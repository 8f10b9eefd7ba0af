// Package routertest starts the real skupper-router (skrouterd) for tests.
// Tests that need it skip with a clear message when it is not installed:
// it is looked up as $SKROUTERD, then skrouterd on PATH.
package routertest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the switch that turns a skip for want of the real
// router into a failure: CI sets it, so no real-router test can skip there.
const RequireEnv = "SITE_CONTROLLER_REQUIRE_ROUTER"

// ImageEnv names the variable scripts/with-engines.sh sets when it has
// built the real router image into every test engine.
const ImageEnv = "SITE_CONTROLLER_TEST_ROUTER_IMAGE"

// Missing skips the test for want of the real router, in one line; with
// SITE_CONTROLLER_REQUIRE_ROUTER=1 it fails it instead.
func Missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s, and %s=1 forbids skipping the real-router tests", why, RequireEnv)
	}
	t.Skip(why + ": skipping the real-router test")
}

// Binary returns the skrouterd to use, or skips the test.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SKROUTERD"); p != "" {
		return p
	}
	p, err := exec.LookPath("skrouterd")
	if err != nil {
		Missing(t, "skrouterd not found (set SKROUTERD, or run ../shared/router/install.sh; scripts/with-engines.sh does)")
	}
	return p
}

// Image returns the real router image scripts/with-engines.sh built into
// the test engines, or skips the test.
func Image(t testing.TB) string {
	t.Helper()
	img := os.Getenv(ImageEnv)
	if img == "" {
		Missing(t, "no router image in the test engines (scripts/with-engines.sh builds it from ../shared/router and sets "+ImageEnv+")")
	}
	return img
}

// Router is a running skrouterd.
type Router struct {
	Cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *Router) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.Write(p)
}

// Output returns what the router printed so far.
func (r *Router) Output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// Start runs skrouterd -c config and stops it (SIGTERM, then SIGKILL) when
// the test ends; its output is logged when the test fails.
func Start(t testing.TB, config string) *Router {
	t.Helper()
	return StartEnv(t, config, nil)
}

// StartEnv is Start with variables env added to the router's environment.
func StartEnv(t testing.TB, config string, env []string) *Router {
	t.Helper()
	r := &Router{}
	r.Cmd = exec.Command(Binary(t), "-c", config)
	if env != nil {
		r.Cmd.Env = append(os.Environ(), env...)
	}
	r.Cmd.Stdout = r
	r.Cmd.Stderr = r
	if err := r.Cmd.Start(); err != nil {
		t.Fatalf("starting skrouterd: %v", err)
	}
	done := make(chan struct{})
	go func() { r.Cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		r.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			r.Cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("skrouterd output:\n%s", r.Output())
		}
	})
	return r
}

// Alive tells whether the router process is still running.
func (r *Router) Alive() bool {
	return r.Cmd.ProcessState == nil && r.Cmd.Process.Signal(syscall.Signal(0)) == nil
}

// WaitPort waits until something accepts TCP connections on 127.0.0.1:port.
func WaitPort(ctx context.Context, port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// FreePort returns a loopback port that is free now, never one it gave
// before in this process.
func FreePort(t testing.TB) int {
	t.Helper()
	handedMu.Lock()
	defer handedMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// the kernel may give a port just closed again: never the same
		// one twice to one process's tests (two Listeners given one port
		// overlap, which the controller rightly refuses)
		if !handed[port] {
			handed[port] = true
			return port
		}
	}
}

// handed are the ports FreePort gave out.
var (
	handedMu sync.Mutex
	handed   = map[int]bool{}
)
