package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// makeRunArgs reads the daemon's command line from the Makefile's run
// target: "run --data-home examples" (a relative data home).
func makeRunArgs(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	inRun := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "run:"):
			inRun = true
		case inRun && strings.HasPrefix(line, "\t"):
			fields := strings.Fields(line)
			if len(fields) > 1 && fields[0] == "./bin/site-controller" {
				return fields[1:]
			}
		case inRun:
			inRun = false
		}
	}
	t.Fatal("the Makefile's run target does not run ./bin/site-controller")
	return nil
}

// TestMakeRunRelativeDataHome runs `make run`'s command line — the daemon
// with the relative data home "examples" — from a working directory
// holding a copy of the Hello World examples, on the test Docker engine and
// the test Podman service with the real router image: both Sites become
// Ready with their routers running, bound to absolute paths (Docker took
// the relative "examples/namespaces/…/runtime/router" for a volume name
// and refused it). Two things differ from the examples, as tests listen on
// 127.0.0.1 only and on ports they chose: east's RouterAccess binds
// 127.0.0.1 on free ports, and west's Listener uses a free port.
func TestMakeRunRelativeDataHome(t *testing.T) {
	args := makeRunArgs(t)
	if i := indexOf(args, "--data-home"); i < 0 || i+1 >= len(args) || filepath.IsAbs(args[i+1]) {
		t.Fatalf("make run's command line %q no longer names a relative data home", args)
	}
	image := routertest.Image(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, platform := range []string{"docker", "podman"} {
		t.Run(platform, func(t *testing.T) {
			rt := enginetest.Real(t, platform)
			ep := map[string]func(testing.TB) string{"docker": enginetest.DockerEndpoint, "podman": enginetest.PodmanEndpoint}[platform](t)
			work := t.TempDir()
			rel := args[indexOf(args, "--data-home")+1]
			home := filepath.Join(work, rel)
			names := []string{"hello-world-east", "hello-world-west"}
			for _, ns := range names {
				testfs.Copy(t, filepath.Join("../../examples/namespaces", ns, "input"), filepath.Join(fixture.NSDir(home, ns), "input"))
			}
			ports := []int{routertest.FreePort(t), routertest.FreePort(t), routertest.FreePort(t)}
			listener := filepath.Join(fixture.NSDir(home, "hello-world-west"), "input", "resources", "listener.yaml")
			data, err := os.ReadFile(listener)
			if err != nil || !strings.Contains(string(data), "port: 8081") {
				t.Fatalf("%s does not say port: 8081: %v", listener, err)
			}
			fixture.WriteFile(t, listener, strings.Replace(string(data), "port: 8081", fmt.Sprintf("port: %d", ports[0]), 1))
			fixture.WriteFile(t, filepath.Join(fixture.NSDir(home, "hello-world-east"), "input", "resources", "loopback-access.yaml"),
				fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata:\n  name: east\nspec:\n  bindHost: 127.0.0.1\n"+
					"  roles:\n  - name: inter-router\n    port: %d\n  - name: edge\n    port: %d\n", ports[1], ports[2]))
			for _, ns := range names {
				t.Cleanup(func() {
					if err := rt.Remove(context.Background(), ns, fixture.NSDir(home, ns)); err != nil {
						t.Errorf("removing the router of %s: %v", ns, err)
					}
				})
			}

			var log syncBuffer
			cmd := exec.Command(exe, append(append([]string{}, args...),
				"--container-endpoint", ep, "--router-image", image, "--pull", "never")...)
			cmd.Dir = work
			cmd.Env = append(os.Environ(), runMainEnv+"=1")
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			stopped := false
			stop := func() {
				if stopped {
					return
				}
				stopped = true
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					<-done
					t.Error("the daemon did not stop within 30s of SIGTERM")
				}
			}
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("daemon log:\n%s", log.String())
				}
			})

			fixture.EventuallyWithin(t, 90*time.Second, "both Sites Ready with their routers running", func() bool {
				return fixture.SiteReady(home, "hello-world-east", "east")() && fixture.SiteReady(home, "hello-world-west", "west")()
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, ns := range names {
				st, err := rt.State(ctx, ns, fixture.NSDir(home, ns))
				if err != nil || !st.Running {
					t.Errorf("router %s: %+v %v", runtime.ContainerName(ns), st, err)
				}
			}
			routers, err := rt.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			found := 0
			for _, r := range routers {
				for _, ns := range names {
					if r.Namespace == ns && r.Dir == fixture.NSDir(home, ns) {
						found++
					}
				}
			}
			if found != len(names) {
				t.Errorf("%d of the routers were made for %s (absolute), want %d: %+v", found, home, len(names), routers)
			}
			if !strings.Contains(log.String(), "data_home="+home) {
				t.Errorf("the daemon does not log its data home as %s:\n%s", home, log.String())
			}
			// version: each running site's router, as it reports itself
			out, _, err := run(t, "version", "--data-home", home)
			for _, ns := range names {
				if want := "namespace " + ns + ": skupper-router 3.5.1\n"; err != nil || !strings.Contains(out, want) {
					t.Errorf("version says %q (%v), want a line %q", out, err, want)
				}
			}
			stop()
			for _, ns := range names { // stopping the controller never stops a router
				if st, err := rt.State(ctx, ns, fixture.NSDir(home, ns)); err != nil || !st.Running {
					t.Errorf("router of %s after the daemon stopped: %+v %v", ns, st, err)
				}
			}
		})
	}
}

// syncBuffer collects a process's output while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// TestDataHomeIsAbsolute: every command's --data-home is an absolute,
// clean path from the start, whatever it was given.
func TestDataHomeIsAbsolute(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	var withFlag []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if f := c.Flags().Lookup("data-home"); f != nil {
			withFlag = append(withFlag, c.CommandPath())
			if !filepath.IsAbs(f.DefValue) {
				t.Errorf("%s: default --data-home %q is not absolute", c.CommandPath(), f.DefValue)
			}
			for _, tc := range []struct{ given, want, err string }{
				{"examples", filepath.Join(wd, "examples"), ""},
				{"./a/../examples/", filepath.Join(wd, "examples"), ""},
				{"/var/lib//skupper/", "/var/lib/skupper", ""},
				{"", "", "empty path"},
			} {
				err := c.Flags().Set("data-home", tc.given)
				switch {
				case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
					t.Errorf("%s --data-home %q: %v, want %q", c.CommandPath(), tc.given, err, tc.err)
				case tc.err == "" && (err != nil || f.Value.String() != tc.want):
					t.Errorf("%s --data-home %q: %q %v, want %q", c.CommandPath(), tc.given, f.Value, err, tc.want)
				}
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand())
	if len(withFlag) < 7 {
		t.Errorf("only %v have --data-home", withFlag)
	}
}
