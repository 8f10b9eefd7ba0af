// Package enginetest gives tests router runtimes on the real engines that
// scripts/with-engines.sh starts (Docker, Podman, a systemd user manager),
// running the real router (its image, or skrouterd under systemd), or the
// stand-in router for what the real one cannot show (a crash loop); tests
// skip when the engines are absent.
package enginetest

import (
	"context"
	"os"
	"testing"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/docker/docker/client"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/runtime/docker"
	"github.com/site-controller/site-controller/pkg/runtime/podman"
	"github.com/site-controller/site-controller/pkg/runtime/systemd"
)

// DockerEndpoint returns the test Docker engine, or skips.
func DockerEndpoint(t testing.TB) string {
	ep := os.Getenv("SITE_CONTROLLER_TEST_DOCKER")
	if ep == "" {
		t.Skip("no Docker engine for tests: run under scripts/with-engines.sh (sets SITE_CONTROLLER_TEST_DOCKER)")
	}
	return ep
}

// PodmanEndpoint returns the test Podman API service, or skips.
func PodmanEndpoint(t testing.TB) string {
	ep := os.Getenv("SITE_CONTROLLER_TEST_PODMAN")
	if ep == "" {
		t.Skip("no Podman API service for tests: run under scripts/with-engines.sh (sets SITE_CONTROLLER_TEST_PODMAN)")
	}
	return ep
}

// RealDocker returns a docker runtime on the test engine that runs the
// real router image, or skips.
func RealDocker(t testing.TB) *docker.Runtime {
	t.Helper()
	return newDocker(t, docker.Options{Endpoint: DockerEndpoint(t), Image: routertest.Image(t), Pull: runtime.PullNever})
}

// RealDockerImage returns a docker runtime on the test engine that runs
// router image ref (one the test made from the real router's), or skips.
func RealDockerImage(t testing.TB, ref string) *docker.Runtime {
	t.Helper()
	return newDocker(t, docker.Options{Endpoint: DockerEndpoint(t), Image: ref, Pull: runtime.PullNever})
}

// newDocker makes a docker runtime that is closed when the test ends.
func newDocker(t testing.TB, opts docker.Options) *docker.Runtime {
	t.Helper()
	r, err := docker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// RealPodman returns a podman runtime on the test service that runs the
// real router image, or skips.
func RealPodman(t testing.TB) *podman.Runtime {
	t.Helper()
	return podman.New(podman.Options{Endpoint: PodmanEndpoint(t), Image: routertest.Image(t), Pull: runtime.PullNever})
}

// Real returns the test runtime of a platform running the real router:
// its image on docker and podman, skrouterd under systemd on linux.
func Real(t testing.TB, platform string) runtime.Runtime {
	t.Helper()
	switch platform {
	case "docker":
		return RealDocker(t)
	case "podman":
		return RealPodman(t)
	case "linux":
		return Systemd(t, routertest.Binary(t))
	}
	t.Fatalf("no test runtime for platform %q", platform)
	return nil
}

// Docker returns a docker runtime on the test engine that runs the
// stand-in router image (imported when missing).
func Docker(t testing.TB) *docker.Runtime {
	t.Helper()
	ep := DockerEndpoint(t)
	cli, err := client.NewClientWithOpts(client.WithHost(ep), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	routertest.ImportDocker(t, cli)
	return newDocker(t, docker.Options{Endpoint: ep, Image: routertest.StandinImage})
}

// Podman returns a podman runtime on the test service that runs the
// stand-in router image (imported when missing).
func Podman(t testing.TB) *podman.Runtime {
	t.Helper()
	ep := PodmanEndpoint(t)
	conn, err := bindings.NewConnection(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	routertest.ImportPodman(t, conn)
	return podman.New(podman.Options{Endpoint: ep, Image: routertest.StandinImage})
}

// Systemd returns a linux runtime on the test's systemd user manager,
// running binary (the stand-in when empty), or skips.
func Systemd(t testing.TB, binary string) *systemd.Runtime {
	t.Helper()
	return SystemdWith(t, systemd.Options{Binary: binary})
}

// SystemdWith is Systemd with options (Binary, NoFile) of the test's
// choosing; scope and unit directory are the test manager's.
func SystemdWith(t testing.TB, opts systemd.Options) *systemd.Runtime {
	t.Helper()
	binary := opts.Binary
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" || os.Getenv("XDG_CONFIG_HOME") == "" {
		t.Skip("no systemd user manager for tests: run under scripts/with-engines.sh")
	}
	if binary == "" {
		binary = routertest.Standin(t)
	}
	opts.Scope, opts.Binary = systemd.User, binary
	r := systemd.New(opts)
	t.Cleanup(r.Close)
	return r
}
