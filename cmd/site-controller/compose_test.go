package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/enginetest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
)

// TestComposeDeployment deploys the controller as contrib/compose says,
// with the docker-compose Debian and Ubuntu ship (1.29), on the test Docker
// engine: the controller container comes up, creates a router container on
// the host's engine with the real router image, and a Listener file dropped
// on the host reaches the router, traffic and all.
func TestComposeDeployment(t *testing.T) {
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		routertest.Missing(t, "no docker-compose (apt-get install docker-compose)")
	}
	rt := enginetest.RealDocker(t)
	image := routertest.Image(t)
	endpoint := enginetest.DockerEndpoint(t)

	// the compose file and Containerfile as shipped, beside a static binary
	// where the build context expects it
	ctxDir := t.TempDir()
	for _, f := range []string{"compose.yaml", "Containerfile"} {
		data, err := os.ReadFile(filepath.Join("../../contrib/compose", f))
		if err != nil {
			t.Fatal(err)
		}
		fixture.WriteFile(t, filepath.Join(ctxDir, "contrib/compose", f), string(data))
	}
	build := exec.Command("go", "build", "-tags", "remote,exclude_graphdriver_btrfs,containers_image_openpgp",
		"-o", filepath.Join(ctxDir, "bin/site-controller"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the static binary: %v\n%s", err, out)
	}

	home := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", routertest.FreePort(t))
	project := fmt.Sprintf("sc%d", time.Now().UnixNano()%1e9)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(compose, append([]string{"-f", filepath.Join(ctxDir, "contrib/compose/compose.yaml"), "-p", project}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+endpoint, "SKUPPER_DATA_HOME="+home,
			"CONTAINER_SOCKET="+strings.TrimPrefix(endpoint, "unix://"), "HTTP_ADDRESS="+httpAddr,
			"SKUPPER_ROUTER_IMAGE="+image)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ns := fixture.Namespace("cmp")
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(run("logs", "--no-color"))
		}
		run("down", "--rmi", "all")
		rt.Remove(context.Background(), ns, fixture.NSDir(home, ns))
	})
	run("up", "-d", "--build")
	fixture.EventuallyWithin(t, time.Minute, "the controller container ready", func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	echo := routertest.EchoServer(t, nil)
	in := routertest.FreePort(t)
	fixture.WriteFile(t, filepath.Join(fixture.NSDir(home, ns), "input", "resources", "site.yaml"), routertest.EchoSite("composed", in, echo))
	fixture.EventuallyWithin(t, time.Minute, "a router container on the host's engine", func() bool {
		st, err := rt.State(context.Background(), ns, fixture.NSDir(home, ns))
		return err == nil && st.Running
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := routertest.RoundTrip(ctx, in, nil); err != nil {
		t.Fatalf("traffic from the Listener to the Connector: %v", err)
	}
	if s := fixture.StatusOf(home, ns, "Site", "composed"); s == nil || !strings.Contains(s.Message+fmt.Sprint(s.Conditions), "router running on docker") {
		t.Errorf("Site status %+v", s)
	}
	if _, err := os.Stat(filepath.Join(home, "namespaces", ns, "runtime", "router", "skrouterd.json")); err != nil {
		t.Error(err)
	}
}
