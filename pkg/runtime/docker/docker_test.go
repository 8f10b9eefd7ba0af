package docker

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/runtimetest"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// engine returns a runtime on the test Docker engine with the stand-in
// router image imported, or skips.
func engine(t *testing.T, opts Options) *Runtime {
	t.Helper()
	opts.Endpoint = runtimetest.Endpoint(t, "SITE_CONTROLLER_TEST_DOCKER", "Docker engine")
	opts.Image = cmp.Or(opts.Image, routertest.StandinImage)
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	routertest.ImportDocker(t, r.cli)
	return r
}

// contract is the docker runtime as the shared contract sees it.
func contract(t *testing.T, r *Runtime) runtimetest.Engine {
	return runtimetest.Engine{
		Platform: "docker",
		Runtime:  r,
		Again: func() runtime.Runtime {
			again, err := New(Options{Endpoint: r.opts.Endpoint, Image: routertest.StandinImage})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { again.Close() })
			return again
		},
		Logs: r.Logs,
		Inspect: func(ns string) (runtimetest.Container, error) {
			c, err := r.cli.ContainerInspect(context.Background(), runtime.ContainerName(ns))
			if err != nil {
				return runtimetest.Container{}, err
			}
			out := runtimetest.Container{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), Image: c.Config.Image, User: c.Config.User,
				Network: string(c.HostConfig.NetworkMode), Restart: string(c.HostConfig.RestartPolicy.Name),
				Env: c.Config.Env, Labels: c.Config.Labels, Mounts: map[string]string{},
				CapDrop: c.HostConfig.CapDrop, CapAdd: c.HostConfig.CapAdd, SecurityOpt: c.HostConfig.SecurityOpt,
				ReadOnlyRoot: c.HostConfig.ReadonlyRootfs, Tmpfs: slices.Sorted(maps.Keys(c.HostConfig.Tmpfs))}
			for _, m := range c.Mounts {
				if m.RW && m.Type == "bind" {
					out.Writable = append(out.Writable, m.Destination)
				}
			}
			out.Started, _ = time.Parse(time.RFC3339Nano, c.State.StartedAt)
			for _, b := range c.HostConfig.Binds {
				if parts := strings.Split(b, ":"); len(parts) >= 2 {
					out.Mounts[parts[1]] = parts[0]
				}
			}
			return out, nil
		},
		Stop: func(id string) error {
			zero := 0
			return r.cli.ContainerStop(context.Background(), id, container.StopOptions{Timeout: &zero})
		},
	}
}

func TestRouterContainerLifecycle(t *testing.T) {
	r := engine(t, Options{})
	runtimetest.Lifecycle(t, contract(t, r), 18081, func(t *testing.T, s runtime.Site, _ runtimetest.Container) {
		// the binds as sent, SELinux relabel option included
		c, err := r.cli.ContainerInspect(context.Background(), runtime.ContainerName(s.Namespace))
		if err != nil {
			t.Fatal(err)
		}
		wantBinds := []string{
			s.Dir + "/runtime/router:/etc/skupper-router/config:ro,z",
			s.Dir + "/runtime/certs:/etc/skupper-router/runtime/certs:ro,z",
		}
		if !slices.Equal(c.HostConfig.Binds, wantBinds) {
			t.Errorf("binds %v, want %v", c.HostConfig.Binds, wantBinds)
		}
	})
}

func TestCrashLoopIsReported(t *testing.T) {
	runtimetest.CrashLoop(t, contract(t, engine(t, Options{})), 18083)
}

func TestImageProblems(t *testing.T) {
	base := engine(t, Options{})
	s := contract(t, base).Site(t, t.TempDir(), fixture.Namespace("dk"), fmt.Sprintf(runtimetest.SiteAndListener, "img", 18084))
	for policy, want := range map[runtime.PullPolicy]string{
		runtime.PullNever:   "router image localhost/no-such-router:0 is not present and the pull policy is never",
		runtime.PullMissing: "router image localhost/no-such-router:0 is not present and could not be pulled",
	} {
		r, _ := New(Options{Endpoint: base.opts.Endpoint, Image: "localhost/no-such-router:0", Pull: policy})
		_, err := r.Ensure(context.Background(), s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", policy, err)
		}
		r.Close()
	}
}

func TestEngineDown(t *testing.T) {
	r, err := New(Options{Endpoint: "unix://" + filepath.Join(t.TempDir(), "docker.sock")})
	if err != nil {
		t.Fatal(err)
	}
	runtimetest.EngineDown(t, r)
}

// TestEngineSilent: an engine that accepts and never answers costs a call
// its deadline (the client's requests carry the caller's context).
func TestEngineSilent(t *testing.T) {
	r, err := New(Options{Endpoint: "unix://" + runtimetest.SilentEngine(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	runtimetest.EngineSilent(t, r)
}

// TestConcurrentFirstCalls: the first calls of a new runtime, made at
// once (the sweep's List beside a pass's Ensure and State), do not race
// inside the Docker client's API version negotiation (run with -race).
func TestConcurrentFirstCalls(t *testing.T) {
	ep := runtimetest.Endpoint(t, "SITE_CONTROLLER_TEST_DOCKER", "Docker engine")
	for range 5 {
		r, err := New(Options{Endpoint: ep})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					if _, err := r.List(context.Background()); err != nil {
						t.Error(err)
					}
				} else if _, err := r.State(context.Background(), "none", t.TempDir()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		r.Close()
	}
}
