package enginetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/runtime/podman"
)

// Backends starts stand-in workloads (routertest.BackendImage: each
// answers a connection with its name) as labelled containers on a network
// the test creates, on the test's Docker engine or Podman service; the
// containers and the network are removed when the test ends.
type Backends struct {
	t        testing.TB
	platform string
	Network  string
	docker   *client.Client
	podman   context.Context
}

// NewBackends prepares backends on platform docker or podman (skipping
// without the engine): imports the image, creates the network.
func NewBackends(t testing.TB, platform string) *Backends {
	t.Helper()
	var suffix [4]byte
	rand.Read(suffix[:])
	b := &Backends{t: t, platform: platform, Network: "sc-test-" + hex.EncodeToString(suffix[:])}
	switch platform {
	case "docker":
		cli, err := client.NewClientWithOpts(client.WithHost(DockerEndpoint(t)), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		b.docker = cli
		routertest.ImportDockerImage(t, cli, routertest.BackendImage)
		if _, err := cli.NetworkCreate(context.Background(), b.Network, network.CreateOptions{}); err != nil {
			t.Fatalf("creating network %s: %v", b.Network, err)
		}
		t.Cleanup(func() { cli.NetworkRemove(context.Background(), b.Network) })
	case "podman":
		conn, err := bindings.NewConnection(context.Background(), PodmanEndpoint(t))
		if err != nil {
			t.Fatal(err)
		}
		b.podman = conn
		routertest.ImportPodmanImage(t, conn, routertest.BackendImage)
		if err := b.libpod(http.MethodPost, "/networks/create", nil, map[string]any{"name": b.Network}, nil); err != nil {
			t.Fatalf("creating network %s: %v", b.Network, err)
		}
		t.Cleanup(func() {
			b.libpod(http.MethodDelete, "/networks/%s", url.Values{"force": {"true"}}, nil, nil, b.Network)
		})
	default:
		t.Fatalf("no backends on platform %q", platform)
	}
	return b
}

// Backend is one container to start.
type Backend struct {
	Name   string
	Labels map[string]string
	// Health: "" for no health check, "pass" or "fail" for one that
	// passes or fails (docker runs it every half second; on podman, which
	// needs systemd timers for that, the test runs it with CheckHealth)
	Health string
}

// Start creates and starts a backend container; it answers with its name.
func (b *Backends) Start(c Backend) string {
	b.t.Helper()
	env := []string{"BACKEND_NAME=" + c.Name}
	if c.Health == "fail" {
		env = append(env, "BACKEND_HEALTHY=false")
	}
	check := []string{"CMD", "/backend", "-check"}
	var id string
	switch b.platform {
	case "docker":
		cfg := &container.Config{Image: routertest.BackendImage, Env: env, Labels: c.Labels}
		if c.Health != "" {
			cfg.Healthcheck = &container.HealthConfig{Test: check, Interval: 500 * time.Millisecond, Timeout: 2 * time.Second, Retries: 1}
		}
		created, err := b.docker.ContainerCreate(context.Background(), cfg, &container.HostConfig{NetworkMode: container.NetworkMode(b.Network)}, nil, nil, c.Name)
		if err != nil {
			b.t.Fatalf("creating backend %s: %v", c.Name, err)
		}
		b.t.Cleanup(func() { b.docker.ContainerRemove(context.Background(), c.Name, container.RemoveOptions{Force: true}) })
		if err := b.docker.ContainerStart(context.Background(), created.ID, container.StartOptions{}); err != nil {
			b.t.Fatalf("starting backend %s: %v", c.Name, err)
		}
		id = created.ID
	case "podman":
		envMap := map[string]string{}
		for _, e := range env {
			k, v, _ := bytes.Cut([]byte(e), []byte("="))
			envMap[string(k)] = string(v)
		}
		spec := map[string]any{"name": c.Name, "image": routertest.BackendImage, "env": envMap, "labels": c.Labels,
			"netns": map[string]string{"nsmode": "bridge"}, "Networks": map[string]any{b.Network: map[string]any{}}}
		if c.Health != "" {
			// no interval: podman would need systemd timers to run it
			spec["healthconfig"] = map[string]any{"Test": check, "Interval": 0, "Timeout": int64(2 * time.Second), "Retries": 1}
		}
		var created struct{ Id string }
		if err := b.libpod(http.MethodPost, "/containers/create", nil, spec, &created); err != nil {
			b.t.Fatalf("creating backend %s: %v", c.Name, err)
		}
		b.t.Cleanup(func() {
			b.libpod(http.MethodDelete, "/containers/%s", url.Values{"force": {"true"}, "timeout": {"0"}}, nil, nil, c.Name)
		})
		if err := b.libpod(http.MethodPost, "/containers/%s/start", nil, nil, nil, c.Name); err != nil {
			b.t.Fatalf("starting backend %s: %v", c.Name, err)
		}
		id = created.Id
	}
	return id
}

// CheckHealth runs a podman backend's health check once (docker runs its
// own); a no-op on docker.
func (b *Backends) CheckHealth(name string) {
	b.t.Helper()
	if b.platform == "podman" {
		b.libpod(http.MethodGet, "/containers/%s/healthcheck", nil, nil, nil, name)
	}
}

// Stop stops a backend container (it stays, stopped).
func (b *Backends) Stop(name string) {
	b.t.Helper()
	var err error
	switch b.platform {
	case "docker":
		timeout := 0
		err = b.docker.ContainerStop(context.Background(), name, container.StopOptions{Timeout: &timeout})
	case "podman":
		err = b.libpod(http.MethodPost, "/containers/%s/stop", url.Values{"timeout": {"0"}}, nil, nil, name)
	}
	if err != nil {
		b.t.Fatalf("stopping backend %s: %v", name, err)
	}
}

// Remove removes a backend container, running or not.
func (b *Backends) Remove(name string) {
	b.t.Helper()
	var err error
	switch b.platform {
	case "docker":
		err = b.docker.ContainerRemove(context.Background(), name, container.RemoveOptions{Force: true})
	case "podman":
		err = b.libpod(http.MethodDelete, "/containers/%s", url.Values{"force": {"true"}, "timeout": {"0"}}, nil, nil, name)
	}
	if err != nil {
		b.t.Fatalf("removing backend %s: %v", name, err)
	}
}

// libpod makes one call to the Podman service.
func (b *Backends) libpod(method, endpoint string, query url.Values, body, out any, path ...string) error {
	ctx, cancel := context.WithTimeout(b.podman, time.Minute)
	defer cancel()
	if err := podman.Call(ctx, method, endpoint, query, body, out, path...); err != nil {
		return fmt.Errorf("%s %s: %w", method, endpoint, err)
	}
	return nil
}
