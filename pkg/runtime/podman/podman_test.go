package podman

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings/containers"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/sitetest"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// engine returns a runtime on the test Podman service with the stand-in
// router image imported, or skips.
func engine(t *testing.T, opts Options) *Runtime {
	t.Helper()
	ep := os.Getenv("SITE_CONTROLLER_TEST_PODMAN")
	if ep == "" {
		t.Skip("no Podman API service for tests: run under scripts/with-engines.sh (sets SITE_CONTROLLER_TEST_PODMAN)")
	}
	opts.Endpoint = ep
	if opts.Image == "" {
		opts.Image = routertest.StandinImage
	}
	r := New(opts)
	c, cancel, err := r.connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	routertest.ImportPodman(t, c)
	return r
}

func site(t *testing.T, home, ns, resources string) runtime.Site {
	return sitetest.Render(t, home, ns, "podman", resources)
}

const siteAndListener = `apiVersion: skupper.io/v2alpha1
kind: Site
metadata: {name: %s}
---
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata: {name: l}
spec: {routingKey: k, host: 127.0.0.1, port: %d, tlsCredentials: l-tls}
`

func uniqueNS() string { return fmt.Sprintf("pm%d", time.Now().UnixNano()%1e9) }

func waitLog(t *testing.T, r *Runtime, ns, want string) string {
	return routertest.WaitLog(t, r.Logs, ns, want)
}

func TestRouterContainerLifecycle(t *testing.T) {
	r := engine(t, Options{})
	ctx := context.Background()
	home := t.TempDir()
	ns := uniqueNS()
	s := site(t, home, ns, fmt.Sprintf(siteAndListener, "west", 18091))
	t.Cleanup(func() { r.Remove(context.Background(), ns, s.Dir) })

	if _, err := r.Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	c, cancel, _ := r.connect(ctx)
	defer cancel()
	data, err := containers.Inspect(c, runtime.ContainerName(ns), nil)
	if err != nil {
		t.Fatal(err)
	}
	if data.Name != ns+"-skupper-router" || data.ImageName != routertest.StandinImage {
		t.Errorf("name %q image %q", data.Name, data.ImageName)
	}
	for _, env := range []string{
		"QDROUTERD_CONF=/etc/skupper-router/config/skrouterd.json", "QDROUTERD_CONF_TYPE=json",
		"SKUPPER_SITE_ID=" + s.SiteID, "SSL_PROFILE_BASE_PATH=/etc/skupper-router",
	} {
		if !slices.Contains(data.Config.Env, env) {
			t.Errorf("env lacks %s: %v", env, data.Config.Env)
		}
	}
	mounts := map[string]string{}
	for _, m := range data.Mounts {
		mounts[m.Destination] = m.Source
	}
	for dst, src := range map[string]string{
		"/etc/skupper-router/config":        s.Dir + "/runtime/router",
		"/etc/skupper-router/runtime/certs": s.Dir + "/runtime/certs",
	} {
		if mounts[dst] != src {
			t.Errorf("mount %s from %q, want %q", dst, mounts[dst], src)
		}
	}
	// Podman applies the ":z" relabel option when it creates the container
	// and does not report it back (here SELinux is off); the options sent
	// are checked in TestSpecGenerator.
	for k, v := range map[string]string{"application": "skupper-v2", "skupper.io/site-id": s.SiteID, "skupper.io/v2-component": "router", runtime.LabelNamespace: ns} {
		if data.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, data.Config.Labels[k], v)
		}
	}
	if data.HostConfig.NetworkMode != "host" || data.HostConfig.RestartPolicy.Name != "always" {
		t.Errorf("network %q restart %q", data.HostConfig.NetworkMode, data.HostConfig.RestartPolicy.Name)
	}
	if want := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()); data.Config.User != want {
		t.Errorf("user %q, want %q", data.Config.User, want)
	}
	logs := waitLog(t, r, ns, "standin: running")
	if !strings.Contains(logs, sitetest.ConfigSum(t, s)) || strings.Contains(logs, "credentials=0 ") {
		t.Errorf("the container did not see the rendered configuration and credentials:\n%s", logs)
	}

	// adopted by a new runtime (controller restart), not recreated
	again := New(Options{Endpoint: r.opts.Endpoint, Image: routertest.StandinImage})
	if _, err := again.Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	data2, _ := containers.Inspect(c, runtime.ContainerName(ns), nil)
	if data2.ID != data.ID || !data2.State.StartedAt.Equal(data.State.StartedAt) {
		t.Error("an unchanged site's container was recreated or restarted")
	}

	// a configuration change restarts it with the new configuration
	s2 := site(t, home, ns, fmt.Sprintf(siteAndListener, "west", 18092))
	if _, err := r.Ensure(ctx, s2); err != nil {
		t.Fatal(err)
	}
	data3, _ := containers.Inspect(c, runtime.ContainerName(ns), nil)
	if data3.ID == data.ID {
		t.Error("configuration change did not restart the router")
	}
	waitLog(t, r, ns, sitetest.ConfigSum(t, s2))

	input := testfs.Fingerprint(t, filepath.Join(s.Dir, "input"))
	if err := r.Remove(ctx, ns, s.Dir); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.State(ctx, ns, s.Dir); st.Exists {
		t.Error("container still there after Remove")
	}
	if got := testfs.Fingerprint(t, filepath.Join(s.Dir, "input")); got != input {
		t.Error("input/ changed")
	}
}

func TestSpecGenerator(t *testing.T) {
	c := runtime.RouterContainer(runtime.Site{Namespace: "n", Dir: "/home/u/.local/share/skupper/namespaces/n"},
		runtime.ContainerOptions{Image: "img", Rootless: true, UID: 1000, GID: 1000})
	g := SpecGenerator(c)
	if g.UserNS.NSMode != "keep-id" || g.User != "1000:1000" || g.NetNS.NSMode != "host" || g.RestartPolicy != "always" {
		t.Errorf("userns %q user %q netns %q restart %q", g.UserNS.NSMode, g.User, g.NetNS.NSMode, g.RestartPolicy)
	}
	if len(g.Mounts) != 2 || !slices.Equal(g.Mounts[0].Options, []string{"rbind", "z"}) {
		t.Errorf("mounts %+v", g.Mounts)
	}
}

func TestEngineDown(t *testing.T) {
	r := New(Options{Endpoint: "unix://" + filepath.Join(t.TempDir(), "podman.sock")})
	_, err := r.Ensure(context.Background(), runtime.Site{Namespace: "x", Dir: t.TempDir()})
	if !runtime.IsUnavailable(err) || !strings.Contains(err.Error(), "is not reachable") {
		t.Errorf("err = %v", err)
	}
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
	ns := uniqueNS()
	s := site(t, home, ns, fmt.Sprintf(siteAndListener, "rootless", 18095))
	t.Cleanup(func() { r.Remove(context.Background(), ns, s.Dir) })
	filepath.Walk(home, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
	os.Chmod(home, 0o755)

	if _, err := r.Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	data, err := containers.Inspect(c, runtime.ContainerName(ns), nil)
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
	logs := waitLog(t, r, ns, "standin: running")
	if !strings.Contains(logs, fmt.Sprintf("uid=%d ", uid)) || strings.Contains(logs, "credentials=0 ") || !strings.Contains(logs, sitetest.ConfigSum(t, s)) {
		t.Errorf("the rootless router did not run as the user with the site's configuration and keys:\n%s", logs)
	}
}
