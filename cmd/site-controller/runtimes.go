package main

import (
	"cmp"
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
	cmd.Flags().StringVar(&f.endpoint, "container-endpoint", "", "engine socket, unix:///path (default: env CONTAINER_ENDPOINT, then CONTAINER_HOST for Podman or DOCKER_HOST for Docker, then the usual sockets)")
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
	// each engine's own variable names its endpoint; the flag and
	// CONTAINER_ENDPOINT name the chosen platform's
	own := map[string]string{}
	for engine, name := range map[string]string{"podman": runtime.EnvContainerHost, "docker": runtime.EnvDockerHost} {
		if v := os.Getenv(name); v != "" {
			ep, err := runtime.ParseEndpoint(name, v)
			if err != nil {
				return nil, "", err
			}
			own[engine] = ep
		}
	}
	endpoints := map[string]string{"podman": own["podman"], "docker": cmp.Or(own["docker"], docker.DefaultEndpoint)}
	switch platform {
	case "podman", "docker":
		generic := runtime.Candidates{Flag: f.endpoint, Getenv: func(name string) string {
			if name == runtime.EnvContainerEndpoint {
				return os.Getenv(name)
			}
			return ""
		}}
		named, ok, err := generic.NamedEndpoint()
		switch {
		case err != nil:
			return nil, "", err
		case ok:
			endpoints[platform] = named.Endpoint
			log.Info("platform "+platform, "endpoint", named.Endpoint, "reason", "named by "+named.Source)
		case own[platform] != "":
			log.Info("platform "+platform, "endpoint", own[platform], "reason", "named by "+map[string]string{"podman": runtime.EnvContainerHost, "docker": runtime.EnvDockerHost}[platform])
		}
	case "linux", "none":
	case "auto":
		rootlessPodman, rootlessDocker := podman.RootlessSocket(), docker.RootlessSocket()
		if os.Getuid() == 0 { // root's engines are the root ones
			rootlessPodman, rootlessDocker = "", ""
		}
		d, err := runtime.Detect(ctx, runtime.Candidates{
			Flag:           f.endpoint,
			Getenv:         os.Getenv,
			RootlessPodman: rootlessPodman,
			RootlessDocker: rootlessDocker,
			RootPodman:     podman.RootSocket,
			RootDocker:     docker.DefaultEndpoint,
			RouterBinary:   binary,
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
		if err != nil {
			return nil, "", fmt.Errorf("--platform auto: %w", err)
		}
		log.Info("platform auto: "+d.Platform, "endpoint", d.Endpoint, "reason", d.Reason)
		platform = d.Platform
		if d.Endpoint != "" {
			endpoints[d.Platform] = d.Endpoint
		}
	default:
		return nil, "", fmt.Errorf("--platform must be auto, podman, docker, linux or none, got %q", platform)
	}
	if platform == "none" {
		log.Info("platform none: rendering configuration and status only; no router is started for namespaces without internal/platform.yaml")
	}
	dk, err := docker.New(docker.Options{Endpoint: endpoints["docker"], Image: f.image, Pull: pull})
	if err != nil {
		return nil, "", err
	}
	return map[string]runtime.Runtime{
		"podman": podman.New(podman.Options{Endpoint: endpoints["podman"], Image: f.image, Pull: pull}),
		"docker": dk,
		"linux":  systemd.New(systemd.Options{Scope: scope, Binary: binary}),
	}, platform, nil
}

// engineCandidates are the endpoints where each container engine may
// answer, in the order run looks at them: the flag and CONTAINER_ENDPOINT,
// the engine's own variable, its rootless socket (but for root), its root
// socket. Values that are not unix sockets are left out.
func engineCandidates(flag string) map[string][]string {
	named := func(source, v string) []string {
		if v == "" {
			return nil
		}
		ep, err := runtime.ParseEndpoint(source, v)
		if err != nil {
			return nil
		}
		return []string{ep}
	}
	generic := append(named("--container-endpoint", flag), named(runtime.EnvContainerEndpoint, os.Getenv(runtime.EnvContainerEndpoint))...)
	out := map[string][]string{
		"podman": append(append([]string{}, generic...), named(runtime.EnvContainerHost, os.Getenv(runtime.EnvContainerHost))...),
		"docker": append(append([]string{}, generic...), named(runtime.EnvDockerHost, os.Getenv(runtime.EnvDockerHost))...),
	}
	if os.Getuid() != 0 {
		out["podman"] = append(out["podman"], podman.RootlessSocket())
		out["docker"] = append(out["docker"], docker.RootlessSocket())
	}
	out["podman"] = append(out["podman"], podman.RootSocket)
	out["docker"] = append(out["docker"], docker.DefaultEndpoint, runtime.DockerDefaultSocket)
	return out
}
