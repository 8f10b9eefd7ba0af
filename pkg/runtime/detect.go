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
	Reason   string // what was found, for the log
}

// Candidates for auto detection, in order of preference.
type Candidates struct {
	// ContainerEndpoint (CONTAINER_ENDPOINT) is tried alone when set.
	ContainerEndpoint string
	RootlessPodman    string // unix://$XDG_RUNTIME_DIR/podman/podman.sock
	RootPodman        string // unix:///run/podman/podman.sock
	Docker            string // unix:///run/docker.sock
	// RouterBinary is skrouterd for the linux platform ("" when absent);
	// Systemd tells whether a systemd manager answers.
	RouterBinary string
	Systemd      func(context.Context) bool
}

// Detect picks the platform for --platform auto: the rootless Podman
// socket, the root Podman socket, the Docker socket, then skrouterd with
// systemd, then none. A socket counts only when an engine answers on it;
// which engine it is comes from its answer, not its path.
func Detect(ctx context.Context, c Candidates) Detection {
	if c.ContainerEndpoint != "" {
		if engine, err := Ping(ctx, c.ContainerEndpoint); err == nil {
			return Detection{engine, c.ContainerEndpoint, fmt.Sprintf("%s answers at CONTAINER_ENDPOINT %s", engine, c.ContainerEndpoint)}
		} else {
			return Detection{"none", "", fmt.Sprintf("CONTAINER_ENDPOINT %s does not answer (%v); rendering only", c.ContainerEndpoint, err)}
		}
	}
	var tried []string
	for _, ep := range []string{c.RootlessPodman, c.RootPodman, c.Docker} {
		if ep == "" {
			continue
		}
		engine, err := Ping(ctx, ep)
		if err == nil {
			return Detection{engine, ep, fmt.Sprintf("%s answers at %s", engine, ep)}
		}
		tried = append(tried, ep)
	}
	if c.RouterBinary != "" && c.Systemd != nil && c.Systemd(ctx) {
		return Detection{"linux", "", fmt.Sprintf("no container engine answers (tried %s); skrouterd is %s and systemd answers", strings.Join(tried, ", "), c.RouterBinary)}
	}
	why := "no skrouterd on PATH"
	if c.RouterBinary != "" {
		why = "skrouterd found but no systemd manager answers"
	}
	return Detection{"none", "", fmt.Sprintf("no container engine answers (tried %s) and %s: rendering configuration and status only", strings.Join(tried, ", "), why)}
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
