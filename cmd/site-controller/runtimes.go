package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/spf13/cobra"

	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/runtime/docker"
	"github.com/site-controller/site-controller/pkg/runtime/podman"
	"github.com/site-controller/site-controller/pkg/runtime/systemd"
)

// runtimeFlags are the flags that choose and configure router runtimes.
type runtimeFlags struct {
	image, pull, endpoint, scope, binary string
}

func (f *runtimeFlags) register(cmd *cobra.Command) {
	image := os.Getenv("SKUPPER_ROUTER_IMAGE")
	if image == "" {
		image = runtime.DefaultImage
	}
	cmd.Flags().StringVar(&f.image, "router-image", image, "router image for podman and docker (env SKUPPER_ROUTER_IMAGE)")
	cmd.Flags().StringVar(&f.pull, "pull", "missing", "when to pull the router image: missing, always or never")
	cmd.Flags().StringVar(&f.endpoint, "container-endpoint", os.Getenv("CONTAINER_ENDPOINT"), "engine socket, unix://… (env CONTAINER_ENDPOINT)")
	cmd.Flags().StringVar(&f.scope, "systemd-scope", string(systemd.DefaultScope()), "systemd manager for the linux platform: system or user")
	cmd.Flags().StringVar(&f.binary, "router-binary", "", "skrouterd for the linux platform (default: skrouterd on PATH, or /usr/sbin/skrouterd)")
}

// build makes the runtimes of every platform and resolves --platform
// (auto detects, and says what it found in the log).
func (f *runtimeFlags) build(ctx context.Context, platform string, log *slog.Logger) (map[string]runtime.Runtime, string, error) {
	pull, err := runtime.ParsePullPolicy(f.pull)
	if err != nil {
		return nil, "", fmt.Errorf("--pull: %w", err)
	}
	scope, err := systemd.ParseScope(f.scope)
	if err != nil {
		return nil, "", fmt.Errorf("--systemd-scope: %w", err)
	}
	binary := runtime.RouterBinary(f.binary)
	if f.binary != "" && binary == "" {
		return nil, "", fmt.Errorf("--router-binary %s: not found or not executable", f.binary)
	}
	podmanEP, dockerEP := "", docker.DefaultEndpoint
	switch platform {
	case "podman":
		podmanEP = f.endpoint
	case "docker":
		if f.endpoint != "" {
			dockerEP = f.endpoint
		}
	case "linux", "none":
	case "auto":
		d := runtime.Detect(ctx, runtime.Candidates{
			ContainerEndpoint: f.endpoint,
			RootlessPodman:    rootlessOnly(podman.RootlessSocket()),
			RootPodman:        podman.RootSocket,
			Docker:            docker.DefaultEndpoint,
			RouterBinary:      binary,
			Systemd: func(ctx context.Context) bool {
				var c *sdbus.Conn
				var err error
				if scope == systemd.User {
					c, err = sdbus.NewUserConnectionContext(ctx)
				} else {
					c, err = sdbus.NewSystemConnectionContext(ctx)
				}
				if err != nil {
					return false
				}
				c.Close()
				return true
			},
		})
		log.Info("platform auto: "+d.Platform, "reason", d.Reason)
		platform = d.Platform
		switch d.Platform {
		case "podman":
			podmanEP = d.Endpoint
		case "docker":
			dockerEP = d.Endpoint
		}
	default:
		return nil, "", fmt.Errorf("--platform must be auto, podman, docker, linux or none, got %q", platform)
	}
	if platform == "none" {
		log.Info("platform none: rendering configuration and status only; no router is started for namespaces without internal/platform.yaml")
	}
	dk, err := docker.New(docker.Options{Endpoint: dockerEP, Image: f.image, Pull: pull})
	if err != nil {
		return nil, "", err
	}
	return map[string]runtime.Runtime{
		"podman": podman.New(podman.Options{Endpoint: podmanEP, Image: f.image, Pull: pull}),
		"docker": dk,
		"linux":  systemd.New(systemd.Options{Scope: scope, Binary: binary}),
	}, platform, nil
}

// rootlessOnly returns the rootless socket for a non-root user, "" for
// root (whose podman is the root one).
func rootlessOnly(ep string) string {
	if os.Getuid() == 0 {
		return ""
	}
	return ep
}
