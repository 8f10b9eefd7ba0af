package docker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/internal/sitetest"
	"github.com/site-controller/site-controller/internal/testfs"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// engine returns a runtime on the test Docker engine with the stand-in
// router image imported, or skips.
func engine(t *testing.T, opts Options) *Runtime {
	t.Helper()
	ep := os.Getenv("SITE_CONTROLLER_TEST_DOCKER")
	if ep == "" {
		t.Skip("no Docker engine for tests: run under scripts/with-engines.sh (sets SITE_CONTROLLER_TEST_DOCKER)")
	}
	opts.Endpoint = ep
	if opts.Image == "" {
		opts.Image = routertest.StandinImage
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	routertest.ImportDocker(t, r.cli)
	return r
}

func site(t *testing.T, home, ns, resources string) runtime.Site {
	return sitetest.Render(t, home, ns, "docker", resources)
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

func uniqueNS(t *testing.T) string {
	return fmt.Sprintf("dk%d", time.Now().UnixNano()%1e9)
}

func waitLog(t *testing.T, r *Runtime, ns, want string) string {
	return routertest.WaitLog(t, r.Logs, ns, want)
}

func TestRouterContainerLifecycle(t *testing.T) {
	r := engine(t, Options{})
	ctx := context.Background()
	home := t.TempDir()
	ns := uniqueNS(t)
	s := site(t, home, ns, fmt.Sprintf(siteAndListener, "east", 18081))
	t.Cleanup(func() { r.Remove(context.Background(), ns, s.Dir) })

	st, err := r.Ensure(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Exists {
		t.Fatalf("state after Ensure: %+v", st)
	}
	// everything about the container, as the engine reports it
	c, err := r.cli.ContainerInspect(ctx, runtime.ContainerName(ns))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "/"+ns+"-skupper-router" || c.Config.Image != routertest.StandinImage {
		t.Errorf("name %q image %q", c.Name, c.Config.Image)
	}
	for _, env := range []string{
		"QDROUTERD_CONF=/etc/skupper-router/config/skrouterd.json", "QDROUTERD_CONF_TYPE=json",
		"SKUPPER_SITE_ID=" + s.SiteID, "SSL_PROFILE_BASE_PATH=/etc/skupper-router",
	} {
		if !slices.Contains(c.Config.Env, env) {
			t.Errorf("env lacks %s: %v", env, c.Config.Env)
		}
	}
	wantBinds := []string{
		s.Dir + "/runtime/router:/etc/skupper-router/config:z",
		s.Dir + "/runtime/certs:/etc/skupper-router/runtime/certs:z",
	}
	if !slices.Equal(c.HostConfig.Binds, wantBinds) {
		t.Errorf("binds %v, want %v", c.HostConfig.Binds, wantBinds)
	}
	for k, v := range map[string]string{"application": "skupper-v2", "skupper.io/site-id": s.SiteID, "skupper.io/v2-component": "router", runtime.LabelNamespace: ns, runtime.LabelSiteDir: s.Dir} {
		if c.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Config.Labels[k], v)
		}
	}
	if c.HostConfig.NetworkMode != "host" || c.HostConfig.RestartPolicy.Name != "always" {
		t.Errorf("network %q restart %q", c.HostConfig.NetworkMode, c.HostConfig.RestartPolicy.Name)
	}
	if want := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()); c.Config.User != want {
		t.Errorf("user %q, want %q", c.Config.User, want)
	}
	// the stand-in read the configuration and every credential (keys 0600)
	logs := waitLog(t, r, ns, "standin: running")
	if !strings.Contains(logs, sitetest.ConfigSum(t, s)) || !strings.Contains(logs, "credentials=") || strings.Contains(logs, "credentials=0 ") {
		t.Errorf("the container did not see the rendered configuration and credentials:\n%s", logs)
	}

	// unchanged: adopted, not recreated — also by a new runtime, as after
	// a controller restart
	again, _ := New(Options{Endpoint: r.opts.Endpoint, Image: routertest.StandinImage})
	defer again.Close()
	if _, err := again.Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	c2, _ := r.cli.ContainerInspect(ctx, runtime.ContainerName(ns))
	if c2.ID != c.ID || c2.State.StartedAt != c.State.StartedAt {
		t.Error("an unchanged site's container was recreated or restarted")
	}
	if list, _ := r.List(ctx); !slices.Contains(list, runtime.Router{Namespace: ns, Dir: s.Dir}) {
		t.Errorf("List = %v, want %s once", list, ns)
	}

	// a configuration change restarts it, and it sees the new one
	s2 := site(t, home, ns, fmt.Sprintf(siteAndListener, "east", 18082))
	if s2.Hash == s.Hash {
		t.Fatal("input hash did not change")
	}
	if _, err := r.Ensure(ctx, s2); err != nil {
		t.Fatal(err)
	}
	c3, _ := r.cli.ContainerInspect(ctx, runtime.ContainerName(ns))
	if c3.ID == c.ID {
		t.Error("configuration change did not restart the router")
	}
	waitLog(t, r, ns, sitetest.ConfigSum(t, s2))

	// a container someone stopped is started again
	if err := r.cli.ContainerStop(ctx, c3.ID, containerStopNow()); err != nil {
		t.Fatal(err)
	}
	if st, err := r.Ensure(ctx, s2); err != nil || !st.Running {
		t.Errorf("stopped router not started: %+v %v", st, err)
	}

	// removal leaves input/ untouched
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
	if err := r.Remove(ctx, ns, s.Dir); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestCrashLoopIsReported(t *testing.T) {
	r := engine(t, Options{})
	ctx := context.Background()
	ns := uniqueNS(t)
	s := site(t, t.TempDir(), ns, fmt.Sprintf(siteAndListener, "crash", 18083))
	t.Cleanup(func() { r.Remove(context.Background(), ns, s.Dir) })
	r.Ensure(ctx, s)
	routertest.WaitState(t, r, ns, s.Dir, "crash loop reported", func(st runtime.State) bool {
		return !st.Running && st.Restarts > 0 && strings.Contains(st.Message, "crashing as the site name asks")
	})
}

func TestImageProblems(t *testing.T) {
	base := engine(t, Options{})
	s := site(t, t.TempDir(), uniqueNS(t), fmt.Sprintf(siteAndListener, "img", 18084))
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
	_, err = r.Ensure(context.Background(), runtime.Site{Namespace: "x", Dir: t.TempDir()})
	if !runtime.IsUnavailable(err) || !strings.Contains(err.Error(), "is not reachable") {
		t.Errorf("err = %v", err)
	}
}

func containerStopNow() container.StopOptions {
	zero := 0
	return container.StopOptions{Timeout: &zero}
}
