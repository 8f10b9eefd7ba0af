package podman

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containers/podman/v5/pkg/specgen"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/runtimetest"
	"github.com/site-controller/site-controller/internal/sitetest"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// engine returns a runtime on the test Podman service with the stand-in
// router image imported, or skips.
func engine(t *testing.T, opts Options) *Runtime {
	t.Helper()
	opts.Endpoint = runtimetest.Endpoint(t, "SITE_CONTROLLER_TEST_PODMAN", "Podman API service")
	opts.Image = cmp.Or(opts.Image, routertest.StandinImage)
	r := New(opts)
	c, cancel, err := r.connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	routertest.ImportPodman(t, c)
	return r
}

// contract is the podman runtime as the shared contract sees it.
func contract(t *testing.T, r *Runtime) runtimetest.Engine {
	conn := func() context.Context {
		c, cancel, err := r.connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cancel)
		return c
	}
	return runtimetest.Engine{
		Platform: "podman",
		Runtime:  r,
		Again:    func() runtime.Runtime { return New(Options{Endpoint: r.opts.Endpoint, Image: routertest.StandinImage}) },
		Logs:     r.Logs,
		Inspect: func(ns string) (runtimetest.Container, error) {
			data, err := inspectContainer(conn(), runtime.ContainerName(ns))
			if err != nil {
				return runtimetest.Container{}, err
			}
			out := runtimetest.Container{ID: data.ID, Name: data.Name, Image: data.ImageName, User: data.Config.User,
				Network: data.HostConfig.NetworkMode, Restart: data.HostConfig.RestartPolicy.Name, Started: data.State.StartedAt,
				Env: data.Config.Env, Labels: data.Config.Labels, Mounts: map[string]string{},
				CapDrop: data.HostConfig.CapDrop, CapAdd: data.HostConfig.CapAdd, SecurityOpt: data.HostConfig.SecurityOpt,
				ReadOnlyRoot: data.HostConfig.ReadonlyRootfs, Tmpfs: slices.Sorted(maps.Keys(data.HostConfig.Tmpfs))}
			for _, m := range data.Mounts {
				out.Mounts[m.Destination] = m.Source
				if m.RW && m.Type == "bind" {
					out.Writable = append(out.Writable, m.Destination)
				}
			}
			return out, nil
		},
		Stop: func(id string) error {
			return call(conn(), http.MethodPost, "/containers/%s/stop", url.Values{"timeout": {"0"}}, nil, nil, id)
		},
	}
}

// TestRouterContainerLifecycle: the shared contract. Podman applies the
// ":z" relabel option when it creates the container and does not report it
// back (here SELinux is off); the options sent are checked in
// TestSpecGenerator.
func TestRouterContainerLifecycle(t *testing.T) {
	runtimetest.Lifecycle(t, contract(t, engine(t, Options{})), 18091, nil)
}

func TestCrashLoopIsReported(t *testing.T) {
	runtimetest.CrashLoop(t, contract(t, engine(t, Options{})), 18093)
}

// TestSpecGenerator: the spec sent is what Podman's own SpecGenerator
// reads from it (the wire format the service decodes), rootless keep-id
// and the SELinux relabel option included.
func TestSpecGenerator(t *testing.T) {
	c := runtime.RouterContainer(runtime.Site{Namespace: "n", Dir: "/home/u/.local/share/skupper/namespaces/n"},
		runtime.ContainerOptions{Image: "img", Rootless: true, UID: 1000, GID: 1000})
	data, err := json.Marshal(SpecOf(c))
	if err != nil {
		t.Fatal(err)
	}
	var g specgen.SpecGenerator
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if g.Name != c.Name || g.Image != "img" || !maps.Equal(g.Env, c.Env) || !maps.Equal(g.Labels, c.Labels) {
		t.Errorf("name %q image %q env %v labels %v", g.Name, g.Image, g.Env, g.Labels)
	}
	if g.UserNS.NSMode != "keep-id" || g.User != "1000:1000" || g.NetNS.NSMode != "host" || g.RestartPolicy != "always" {
		t.Errorf("userns %q user %q netns %q restart %q", g.UserNS.NSMode, g.User, g.NetNS.NSMode, g.RestartPolicy)
	}
	if len(g.Mounts) != 3 || g.Mounts[0].Type != "bind" || g.Mounts[0].Source != c.Binds[0].Host || g.Mounts[0].Destination != c.Binds[0].Container ||
		!slices.Equal(g.Mounts[0].Options, []string{"rbind", "ro", "z"}) || g.Mounts[2].Type != "tmpfs" || g.Mounts[2].Destination != "/tmp" {
		t.Errorf("mounts %+v", g.Mounts)
	}
	if !slices.Equal(g.CapDrop, []string{"ALL"}) || len(g.CapAdd) != 0 || g.NoNewPrivileges == nil || !*g.NoNewPrivileges || g.ReadOnlyFilesystem == nil || !*g.ReadOnlyFilesystem {
		t.Errorf("confinement: cap-drop %v cap-add %v no-new-privileges %v read-only %v", g.CapDrop, g.CapAdd, g.NoNewPrivileges, g.ReadOnlyFilesystem)
	}
}

func TestEngineDown(t *testing.T) {
	runtimetest.EngineDown(t, New(Options{Endpoint: "unix://" + filepath.Join(t.TempDir(), "podman.sock")}))
}

// TestEngineSilent: a service that accepts and never answers costs a call
// its deadline, not a wait for ever under the runtime's lock (the
// connection's ping is bounded by the caller's context).
func TestEngineSilent(t *testing.T) {
	runtimetest.EngineSilent(t, New(Options{Endpoint: "unix://" + runtimetest.SilentEngine(t)}))
}

// TestRootlessRouter runs a router on a rootless Podman service (run by an
// unprivileged user, as a rootless controller would use it): the container
// keeps the user's uid inside (keep-id) and so reads the site's 0600 keys.
func TestRootlessRouter(t *testing.T) {
	ep, owner := os.Getenv("SITE_CONTROLLER_TEST_PODMAN_ROOTLESS"), os.Getenv("SITE_CONTROLLER_TEST_ROOTLESS_OWNER")
	if ep == "" || owner == "" {
		t.Skip("no rootless Podman service for tests: run under scripts/with-engines.sh (sets SITE_CONTROLLER_TEST_PODMAN_ROOTLESS)")
	}
	var uid, gid int
	if _, err := fmt.Sscanf(owner, "%d:%d", &uid, &gid); err != nil {
		t.Fatal(err)
	}
	r := New(Options{Endpoint: ep, Image: routertest.StandinImage, Owner: &Owner{UID: uid, GID: gid, Rootless: true}})
	ctx := context.Background()
	c, cancel, err := r.connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	routertest.ImportPodman(t, c)
	// the site belongs to the user, as a rootless controller writes it
	home, err := os.MkdirTemp(filepath.Dir(strings.TrimPrefix(ep, "unix://")), "home")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	ns := fixture.Namespace("pm")
	s := contract(t, r).Site(t, home, ns, fmt.Sprintf(runtimetest.SiteAndListener, "rootless", 18095))
	t.Cleanup(func() { r.Remove(context.Background(), ns, s.Dir) })
	filepath.Walk(home, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
	os.Chmod(home, 0o755)

	if _, err := r.Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	data, err := inspectContainer(c, runtime.ContainerName(ns))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d:%d", uid, gid); data.Config.User != want {
		t.Errorf("user %q, want %q", data.Config.User, want)
	}
	// keep-id: the user's uid inside maps to the user itself (0 in the
	// rootless user namespace); Podman 4.3 reports the mode as "private"
	if m := data.HostConfig.IDMappings; m == nil || !slices.Contains(m.UIDMap, fmt.Sprintf("%d:0:1", uid)) {
		t.Errorf("uid %d is not kept (userns %q, mappings %+v)", uid, data.HostConfig.UsernsMode, m)
	}
	logs := routertest.WaitLog(t, r.Logs, ns, "standin: running")
	if !strings.Contains(logs, fmt.Sprintf("uid=%d ", uid)) || strings.Contains(logs, "credentials=0 ") || !strings.Contains(logs, sitetest.ConfigSum(t, s)) {
		t.Errorf("the rootless router did not run as the user with the site's configuration and keys:\n%s", logs)
	}
}

// TestExitRace: Podman's answer to a forced removal of a container that
// stopped meanwhile is asked again; other failures are not.
func TestExitRace(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{"cannot remove container c375eb76 as it could not be stopped: sending SIGKILL to container c375eb76: container state improper: stopped", true},
		{"no container with name or ID \"x\" found: no such container", false},
		{"container c375eb76 could not be stopped: timed out", false},
	} {
		if got := exitRace(errors.New(c.msg)); got != c.want {
			t.Errorf("exitRace(%q) = %v, want %v", c.msg, got, c.want)
		}
	}
}
