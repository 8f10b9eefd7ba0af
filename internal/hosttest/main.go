package hosttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tags are the build tags the binary is built with (the Makefile's).
const Tags = "remote,exclude_graphdriver_btrfs,containers_image_openpgp"

// BinEnv names a site-controller binary to run instead of building one
// (to measure another build of it, say).
const BinEnv = "SITE_CONTROLLER_HOSTTEST_BIN"

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// Binary builds site-controller once per test process (go build with the
// Makefile's tags) and returns its path, or the binary $SITE_CONTROLLER_HOSTTEST_BIN
// names; Main removes what it built.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinEnv); p != "" {
		return p
	}
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("finding the module: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		binDir, buildErr = os.MkdirTemp("", fmt.Sprintf("%s%d-bin-", Prefix, os.Getpid()))
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "site-controller")
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", Tags, "-o", binPath, "./cmd/site-controller")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building site-controller: %w: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Main runs a test package's tests (call it from TestMain): on SIGINT or
// SIGTERM every network is torn down before the process ends, and the
// binary Binary built is removed after.
func Main(m *testing.M) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "hosttest: %v: tearing the simulated hosts down\n", s)
		closeAll()
		if binDir != "" {
			os.RemoveAll(binDir)
		}
		os.Exit(1)
	}()
	code := m.Run()
	closeAll()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}
