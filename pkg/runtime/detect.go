package runtime

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Detection is the outcome of --platform auto.
type Detection struct {
	Platform string // podman, docker, linux or none
	Endpoint string // the engine socket, for podman and docker
	Reason   string // what was chosen and why, for the log
}

// The variables that name an engine's socket, in the order they are
// looked at: ours, Podman's, Docker's.
const (
	EnvContainerEndpoint = "CONTAINER_ENDPOINT"
	EnvContainerHost     = "CONTAINER_HOST"
	EnvDockerHost        = "DOCKER_HOST"
)

// DockerDefaultSocket is the socket Docker's own client uses when
// DOCKER_HOST says unix:// without a path.
const DockerDefaultSocket = "unix:///var/run/docker.sock"

// Candidates for auto detection, in order of preference: the endpoint
// named by --container-endpoint, else by CONTAINER_ENDPOINT, else by
// CONTAINER_HOST (Podman's variable), else by DOCKER_HOST (Docker's) — an
// endpoint named so must answer, there is no falling through past it —,
// else the first of the usual sockets that answers: rootless Podman,
// rootless Docker, root Podman, root Docker.
type Candidates struct {
	// Flag is --container-endpoint ("" when not given).
	Flag string
	// Getenv reads the variables (os.Getenv; nil reads none).
	Getenv func(string) string
	// The usual sockets ("" skips one: a rootless socket for root).
	RootlessPodman string // unix://$XDG_RUNTIME_DIR/podman/podman.sock
	RootlessDocker string // unix://$XDG_RUNTIME_DIR/docker.sock
	RootPodman     string // unix:///run/podman/podman.sock
	RootDocker     string // unix:///run/docker.sock
	// RouterBinary is skrouterd for the linux platform ("" when absent);
	// Systemd tells whether a systemd manager answers.
	RouterBinary string
	Systemd      func(context.Context) bool
}

// Named is an engine endpoint someone named: by the flag or a variable.
type Named struct {
	Source   string // "--container-endpoint", CONTAINER_ENDPOINT, CONTAINER_HOST or DOCKER_HOST
	Endpoint string // unix:///absolute/path
}

// NamedEndpoint is the endpoint the flag or the first variable set names,
// in the order of Candidates, made a unix:///absolute/path. ok is false
// when none is set. A value that is not a local socket (tcp://, ssh://)
// is an error naming where it came from.
func (c Candidates) NamedEndpoint() (n Named, ok bool, err error) {
	getenv := c.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	for _, src := range []string{"--container-endpoint", EnvContainerEndpoint, EnvContainerHost, EnvDockerHost} {
		v := c.Flag
		if src != "--container-endpoint" {
			v = getenv(src)
		}
		if v == "" {
			continue
		}
		ep, err := ParseEndpoint(src, v)
		if err != nil {
			return Named{}, true, err
		}
		return Named{src, ep}, true, nil
	}
	return Named{}, false, nil
}

// ParseEndpoint checks an engine endpoint that source (a flag or a
// variable) names and returns it as unix:///absolute/path. Only local
// unix sockets are supported: the router containers bind host paths, so
// the engine must run on this host. DOCKER_HOST=unix:// is Docker's
// default socket; CONTAINER_HOST=unix://run/podman/podman.sock is read as
// Podman reads it (/run/podman/podman.sock).
func ParseEndpoint(source, value string) (string, error) {
	scheme, rest, found := strings.Cut(value, "://")
	if !found {
		return "", fmt.Errorf("%s=%q: not an endpoint: use a unix socket, unix:///path/to/engine.sock", source, value)
	}
	switch scheme {
	case "unix":
	case "tcp", "ssh", "http", "https", "npipe", "fd":
		return "", fmt.Errorf("%s=%q: %s:// endpoints are not supported: use a unix socket (unix:///path/to/engine.sock) of an engine on this host, "+
			"whose router containers can bind this host's paths", source, value, scheme)
	default:
		return "", fmt.Errorf("%s=%q: unknown scheme %s://: use a unix socket, unix:///path/to/engine.sock", source, value, scheme)
	}
	path := rest
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	switch {
	case path == "" && source == EnvDockerHost:
		return DockerDefaultSocket, nil
	case path == "":
		return "", fmt.Errorf("%s=%q: names no socket: use unix:///path/to/engine.sock", source, value)
	case !filepath.IsAbs(path) && source == EnvContainerHost:
		path = "/" + path // Podman's reading of unix://run/podman/podman.sock
	case !filepath.IsAbs(path):
		return "", fmt.Errorf("%s=%q: the socket path %q is not absolute: use unix:///absolute/path", source, value, path)
	}
	return "unix://" + filepath.Clean(path), nil
}

// Detect picks the platform for --platform auto (see Candidates for the
// order): an engine counts only when it answers, and which engine it is
// comes from its answer, not its path; then skrouterd with systemd, then
// none. An endpoint named by the flag or a variable that does not answer,
// or that is not a unix socket, is an error naming it.
func Detect(ctx context.Context, c Candidates) (Detection, error) {
	named, ok, err := c.NamedEndpoint()
	if err != nil {
		return Detection{}, err
	}
	if ok {
		engine, err := Ping(ctx, named.Endpoint)
		if err != nil {
			return Detection{}, fmt.Errorf("%s names %s, which does not answer: %w; start that engine, or unset %s to detect one",
				named.Source, named.Endpoint, err, named.Source)
		}
		why := fmt.Sprintf("%s answers at %s, named by %s", engine, named.Endpoint, named.Source)
		if unset := unsetBefore(named.Source); unset != "" {
			why += " (" + unset + " not set)"
		}
		return Detection{engine, named.Endpoint, why}, nil
	}
	none := fmt.Sprintf("none of --container-endpoint, %s, %s, %s is set", EnvContainerEndpoint, EnvContainerHost, EnvDockerHost)
	var tried []string
	for _, cand := range []struct{ what, ep string }{
		{"the rootless Podman socket", c.RootlessPodman},
		{"the rootless Docker socket", c.RootlessDocker},
		{"the root Podman socket", c.RootPodman},
		{"the root Docker socket", c.RootDocker},
	} {
		if cand.ep == "" {
			continue
		}
		engine, err := Ping(ctx, cand.ep)
		if err == nil {
			why := fmt.Sprintf("%s answers at %s, %s; %s", engine, cand.ep, cand.what, none)
			if len(tried) > 0 {
				why += "; nothing answers at " + strings.Join(tried, ", ")
			}
			return Detection{engine, cand.ep, why}, nil
		}
		tried = append(tried, cand.ep)
	}
	if c.RouterBinary != "" && c.Systemd != nil && c.Systemd(ctx) {
		return Detection{"linux", "", fmt.Sprintf("%s and no container engine answers (tried %s); skrouterd is %s and systemd answers", none, strings.Join(tried, ", "), c.RouterBinary)}, nil
	}
	why := "no skrouterd on PATH"
	if c.RouterBinary != "" {
		why = "skrouterd found but no systemd manager answers"
	}
	return Detection{"none", "", fmt.Sprintf("%s, no container engine answers (tried %s) and %s: rendering configuration and status only", none, strings.Join(tried, ", "), why)}, nil
}

// unsetBefore lists what comes before source in the order of Candidates.
func unsetBefore(source string) string {
	order := []string{"--container-endpoint", EnvContainerEndpoint, EnvContainerHost, EnvDockerHost}
	for i, s := range order {
		if s == source {
			return strings.Join(order[:i], ", ")
		}
	}
	return ""
}

// Ping asks the engine at a unix:// endpoint for /_ping and tells podman
// (which answers with a Libpod-API-Version header) from docker.
func Ping(ctx context.Context, endpoint string) (string, error) {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok {
		return "", fmt.Errorf("only unix:// endpoints are supported, got %q", endpoint)
	}
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	client := &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/_ping", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/_ping answered %s", resp.Status)
	}
	if resp.Header.Get("Libpod-Api-Version") != "" {
		return "podman", nil
	}
	return "docker", nil
}

// RouterBinary finds skrouterd: the given path, or skrouterd on PATH, or
// /usr/sbin/skrouterd. It returns "" when there is none.
func RouterBinary(path string) string {
	if path != "" {
		if p, err := exec.LookPath(path); err == nil {
			abs, _ := filepath.Abs(p)
			return abs
		}
		return ""
	}
	if p, err := exec.LookPath("skrouterd"); err == nil {
		abs, _ := filepath.Abs(p)
		return abs
	}
	if _, err := os.Stat("/usr/sbin/skrouterd"); err == nil {
		return "/usr/sbin/skrouterd"
	}
	return ""
}
