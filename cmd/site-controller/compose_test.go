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
	"github.com/site-controller/site-controller/pkg/status"
)

// TestComposeDeployment builds the controller's image with `make image`
// on the test Docker engine (FROM scratch, the static binary: nothing is
// pulled) and deploys it as contrib/compose says, with the docker-compose
// Debian and Ubuntu ship (1.29), which builds nothing: the controller
// container comes up, creates a router container on the host's engine with
// the real router image, and a Listener file dropped on the host reaches
// the router, traffic and all.
func TestComposeDeployment(t *testing.T) {
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		routertest.Missing(t, "no docker-compose (apt-get install docker-compose)")
	}
	rt := enginetest.RealDocker(t)
	routerImage := routertest.Image(t)
	endpoint := enginetest.DockerEndpoint(t)

	version := fmt.Sprintf("compose-test-%d", time.Now().UnixNano()%1e9)
	image := makeImage(t, "docker", endpoint, version)

	// the compose file as shipped
	composeFile := filepath.Join(t.TempDir(), "compose.yaml")
	data, err := os.ReadFile("../../contrib/compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "build:") {
		t.Error("contrib/compose/compose.yaml builds an image: it should run the one make image builds")
	}
	fixture.WriteFile(t, composeFile, string(data))

	home := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", routertest.FreePort(t))
	project := fmt.Sprintf("sc%d", time.Now().UnixNano()%1e9)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(compose, append([]string{"-f", composeFile, "-p", project}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+endpoint, "SKUPPER_DATA_HOME="+home,
			"CONTAINER_SOCKET="+strings.TrimPrefix(endpoint, "unix://"), "HTTP_ADDRESS="+httpAddr,
			"SKUPPER_ROUTER_IMAGE="+routerImage, "SITE_CONTROLLER_IMAGE="+image)
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
		run("down")
		rt.Remove(context.Background(), ns, fixture.NSDir(home, ns))
	})
	run("up", "-d")
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
	fixture.Eventually(t, "the Site Ready with its router running on docker", func() bool {
		s := fixture.StatusOf(home, ns, "Site", "composed")
		return s != nil && s.Status == status.Ready && strings.Contains(fmt.Sprint(s.Conditions), "router running on docker")
	})
	if _, err := os.Stat(filepath.Join(home, "namespaces", ns, "runtime", "router", "skrouterd.json")); err != nil {
		t.Error(err)
	}
}

// makeImage runs `make image` against the engine at endpoint with the
// given version, into a scratch dist directory, and checks what it made:
// the version label, an unprivileged default user, and a binary that runs
// and says its version. The image is removed when the test ends.
func makeImage(t *testing.T, engine, endpoint, version string) string {
	t.Helper()
	const repo = "localhost/site-controller-test"
	image := repo + ":" + version
	mk := exec.Command("make", "-C", "../..", "--no-print-directory", "image", "DIST="+t.TempDir(), "VERSION="+version,
		"IMAGE="+repo, "IMAGE_ENGINE="+engine, "IMAGE_ENDPOINT="+endpoint)
	out, err := mk.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	cli := func(args ...string) (string, error) {
		flag := map[string]string{"docker": "-H", "podman": "--url"}[engine]
		out, err := exec.Command(engine, append([]string{flag, endpoint}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	t.Cleanup(func() {
		if out, err := cli("rmi", image, repo+":latest"); err != nil {
			t.Logf("removing %s: %v %s", image, err, out)
		}
	})
	for format, want := range map[string]string{
		`{{index .Config.Labels "org.opencontainers.image.version"}}`: version,
		`{{.Config.User}}`:            "65532:65532",
		`{{json .Config.Entrypoint}}`: `["/usr/bin/site-controller"]`,
	} {
		if got, err := cli("image", "inspect", "-f", format, image); err != nil || got != want {
			t.Errorf("%s image %s: %q %v, want %q", engine, format, got, err, want)
		}
	}
	if size, err := cli("image", "inspect", "-f", "{{.Size}}", image); err == nil {
		t.Logf("%s image %s: %s bytes", engine, image, size)
	}
	if got, err := cli("run", "--rm", "--pull=never", "--network=none", image, "version"); err != nil || got != "site-controller "+version {
		t.Errorf("%s run %s version: %q %v", engine, image, got, err)
	}
	return image
}

// TestMakeImagePodman builds the controller's image with podman (make
// image IMAGE_ENGINE=podman) on the test Podman service: labelled with
// its version, unprivileged by default, and it runs.
func TestMakeImagePodman(t *testing.T) {
	makeImage(t, "podman", enginetest.PodmanEndpoint(t), fmt.Sprintf("podman-test-%d", time.Now().UnixNano()%1e9))
}
