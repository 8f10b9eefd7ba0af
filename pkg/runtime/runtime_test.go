package runtime

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRouterContainer(t *testing.T) {
	s := Site{Namespace: "west", SiteID: "id-1", Dir: "/var/lib/skupper/namespaces/west", Hash: "h1"}
	c := RouterContainer(s, ContainerOptions{Image: "img", UID: 0, GID: 0})
	if c.Name != "west-skupper-router" || c.User != "0:0" || c.KeepID {
		t.Errorf("%+v", c)
	}
	if got := c.EnvList(); strings.Join(got, " ") != "QDROUTERD_CONF=/etc/skupper-router/config/skrouterd.json QDROUTERD_CONF_TYPE=json SKUPPER_SITE_ID=id-1 SSL_PROFILE_BASE_PATH=/etc/skupper-router" {
		t.Errorf("env %v", got)
	}
	if c.Binds[0].String() != "/var/lib/skupper/namespaces/west/runtime/router:/etc/skupper-router/config:ro,z" ||
		c.Binds[1].String() != "/var/lib/skupper/namespaces/west/runtime/certs:/etc/skupper-router/runtime/certs:ro,z" {
		t.Errorf("binds %s %s", c.Binds[0], c.Binds[1])
	}
	// confined: no capability, no new privileges, nothing writable but /tmp
	if len(c.CapAdd) != 0 || !c.NoNewPrivileges || !c.ReadOnlyRoot || strings.Join(c.Tmpfs, " ") != "/tmp" {
		t.Errorf("confinement: cap-add %v no-new-privileges %v read-only %v tmpfs %v", c.CapAdd, c.NoNewPrivileges, c.ReadOnlyRoot, c.Tmpfs)
	}
	low := s
	low.LowPorts = true
	if lc := RouterContainer(low, ContainerOptions{Image: "img"}); strings.Join(lc.CapAdd, " ") != "NET_BIND_SERVICE" || lc.Labels[LabelSpecHash] == c.Labels[LabelSpecHash] {
		t.Errorf("a router on a port below 1024: cap-add %v, spec hash %s (was %s)", lc.CapAdd, lc.Labels[LabelSpecHash], c.Labels[LabelSpecHash])
	}
	// the spec hash follows the input and the spec but its image, and nothing else
	same := RouterContainer(s, ContainerOptions{Image: "img"})
	s.Hash = "h2"
	changedInput := RouterContainer(s, ContainerOptions{Image: "img"})
	s.Hash = "h1"
	changedImage := RouterContainer(s, ContainerOptions{Image: "img2"})
	h := func(c Container) string { return c.Labels[LabelSpecHash] }
	// another image is not another spec: it is an upgrade, which the
	// controller paces (Site.Upgrade)
	if h(c) != h(same) || h(c) == h(changedInput) || h(c) != h(changedImage) || h(c) == "" {
		t.Errorf("spec hashes %s %s %s %s", h(c), h(same), h(changedInput), h(changedImage))
	}
}

// TestContainerUser: root never runs a router as root, but where Docker
// would not grant it the capability for a low port.
func TestContainerUser(t *testing.T) {
	for _, tc := range []struct {
		engine             string
		uid, gid           int
		rootless, lowPorts bool
		wantUID, wantGID   int
	}{
		{"docker", 0, 0, false, false, RouterUID, RouterGID},
		{"podman", 0, 0, false, false, RouterUID, RouterGID},
		{"podman", 0, 0, false, true, RouterUID, RouterGID}, // podman raises added capabilities for any user
		{"docker", 0, 0, false, true, 0, 0},                 // docker grants them to root only
		{"podman", 1000, 1000, true, true, 1000, 1000},      // rootless: keep-id
		{"docker", 1000, 100, false, false, 1000, 100},      // a user in the docker group
	} {
		uid, gid := ContainerUser(tc.engine, tc.uid, tc.gid, tc.rootless, tc.lowPorts)
		if uid != tc.wantUID || gid != tc.wantGID {
			t.Errorf("%+v: %d:%d", tc, uid, gid)
		}
	}
}

// engineStub answers /_ping on a unix socket like podman or docker does.
// It is a fake engine, named as such: detection only reads the headers.
func engineStub(t *testing.T, podman bool) string {
	path := filepath.Join(t.TempDir(), "engine.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if podman {
			w.Header().Set("Libpod-Api-Version", "4.3.1")
		}
		w.Header().Set("Api-Version", "1.41")
		w.Write([]byte("OK"))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "unix://" + path
}

// TestDetect: --platform auto takes the flag, then CONTAINER_ENDPOINT,
// CONTAINER_HOST, DOCKER_HOST, then the usual sockets in order (rootless
// Podman, rootless Docker, root Podman, root Docker); an endpoint named
// by the flag or a variable must answer (an error naming it, never a fall
// through), and must be a unix socket; the reason names what was chosen.
func TestDetect(t *testing.T) {
	ctx := context.Background()
	missing := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	podman, docker := engineStub(t, true), engineStub(t, false)
	yes := func(context.Context) bool { return true }
	for _, tc := range []struct {
		name string
		flag string
		env  map[string]string
		c    Candidates
		want string // platform, or the error's text when wantErr
		// in the reason (or the error)
		because string
		wantErr bool
	}{
		{name: "the flag first", flag: docker, env: map[string]string{"CONTAINER_ENDPOINT": podman, "CONTAINER_HOST": podman},
			want: "docker", because: "named by --container-endpoint"},
		{name: "CONTAINER_ENDPOINT before CONTAINER_HOST", env: map[string]string{"CONTAINER_ENDPOINT": docker, "CONTAINER_HOST": podman, "DOCKER_HOST": podman},
			want: "docker", because: "named by CONTAINER_ENDPOINT (--container-endpoint not set)"},
		{name: "CONTAINER_HOST before DOCKER_HOST", env: map[string]string{"CONTAINER_HOST": podman, "DOCKER_HOST": docker}, c: Candidates{RootlessPodman: docker},
			want: "podman", because: "named by CONTAINER_HOST (--container-endpoint, CONTAINER_ENDPOINT not set)"},
		{name: "CONTAINER_HOST as Podman reads unix://path", env: map[string]string{"CONTAINER_HOST": "unix://" + strings.TrimPrefix(podman, "unix:///")},
			want: "podman", because: "answers at " + podman + ", named by CONTAINER_HOST"},
		{name: "DOCKER_HOST before the usual sockets", env: map[string]string{"DOCKER_HOST": docker}, c: Candidates{RootlessPodman: podman, RootPodman: podman},
			want: "docker", because: "named by DOCKER_HOST (--container-endpoint, CONTAINER_ENDPOINT, CONTAINER_HOST not set)"},
		{name: "the engine is told by its answer", env: map[string]string{"DOCKER_HOST": podman}, want: "podman", because: "podman answers at " + podman},
		{name: "an empty variable is not set", env: map[string]string{"CONTAINER_HOST": "", "DOCKER_HOST": ""}, c: Candidates{RootDocker: docker},
			want: "docker", because: "the root Docker socket"},

		{name: "a flag that does not answer", flag: missing, c: Candidates{RootlessPodman: podman},
			wantErr: true, because: "--container-endpoint names " + missing + ", which does not answer"},
		{name: "CONTAINER_ENDPOINT that does not answer", env: map[string]string{"CONTAINER_ENDPOINT": missing, "DOCKER_HOST": docker},
			wantErr: true, because: "CONTAINER_ENDPOINT names " + missing + ", which does not answer"},
		{name: "CONTAINER_HOST that does not answer: no fall through", env: map[string]string{"CONTAINER_HOST": missing}, c: Candidates{RootlessPodman: podman},
			wantErr: true, because: "unset CONTAINER_HOST to detect one"},
		{name: "DOCKER_HOST that does not answer", env: map[string]string{"DOCKER_HOST": missing}, c: Candidates{RootDocker: docker},
			wantErr: true, because: "DOCKER_HOST names " + missing},
		{name: "DOCKER_HOST over tcp", env: map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2375"}, c: Candidates{RootDocker: docker},
			wantErr: true, because: `DOCKER_HOST="tcp://127.0.0.1:2375": tcp:// endpoints are not supported: use a unix socket`},
		{name: "CONTAINER_HOST over ssh", env: map[string]string{"CONTAINER_HOST": "ssh://core@192.0.2.1:22/run/podman/podman.sock"},
			wantErr: true, because: "CONTAINER_HOST=\"ssh://core@192.0.2.1:22/run/podman/podman.sock\": ssh:// endpoints are not supported: use a unix socket"},
		{name: "a flag over tcp", flag: "tcp://127.0.0.1:2375", wantErr: true, because: "--container-endpoint=\"tcp://127.0.0.1:2375\": tcp:// endpoints are not supported"},

		{name: "rootless Podman first", c: Candidates{RootlessPodman: podman, RootlessDocker: docker, RootPodman: docker, RootDocker: docker},
			want: "podman", because: "the rootless Podman socket"},
		{name: "rootless Docker before root Podman", c: Candidates{RootlessPodman: missing, RootlessDocker: docker, RootPodman: podman, RootDocker: podman},
			want: "docker", because: "the rootless Docker socket; none of --container-endpoint, CONTAINER_ENDPOINT, CONTAINER_HOST, DOCKER_HOST is set; nothing answers at " + missing},
		{name: "root Podman before root Docker", c: Candidates{RootlessPodman: missing, RootlessDocker: missing, RootPodman: podman, RootDocker: docker},
			want: "podman", because: "the root Podman socket"},
		{name: "root Docker last", c: Candidates{RootlessPodman: missing, RootlessDocker: missing, RootPodman: missing, RootDocker: docker},
			want: "docker", because: "the root Docker socket"},
		{name: "linux", c: Candidates{RootDocker: missing, RouterBinary: "/usr/sbin/skrouterd", Systemd: yes}, want: "linux", because: "systemd answers"},
		{name: "none", c: Candidates{RootDocker: missing}, want: "none", because: "rendering configuration and status only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.Flag = tc.flag
			c.Getenv = func(name string) string { return tc.env[name] }
			got, err := Detect(ctx, c)
			switch {
			case tc.wantErr && (err == nil || !strings.Contains(err.Error(), tc.because)):
				t.Errorf("%+v %v, want an error saying %s", got, err, tc.because)
			case !tc.wantErr && (err != nil || got.Platform != tc.want || !strings.Contains(got.Reason, tc.because)):
				t.Errorf("%+v %v, want %s because %s", got, err, tc.want, tc.because)
			}
		})
	}
}

// TestParseEndpoint: the forms of DOCKER_HOST and CONTAINER_HOST that
// name a local socket, and the rest refused with why.
func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct{ source, value, want, err string }{
		{"DOCKER_HOST", "unix:///var/run/docker.sock", "unix:///var/run/docker.sock", ""},
		{"DOCKER_HOST", "unix://", "unix:///var/run/docker.sock", ""}, // Docker's default socket
		{"DOCKER_HOST", "unix:///run//docker.sock", "unix:///run/docker.sock", ""},
		{"DOCKER_HOST", "unix://docker.sock", "", `the socket path "docker.sock" is not absolute`},
		{"DOCKER_HOST", "/var/run/docker.sock", "", "not an endpoint: use a unix socket"},
		{"DOCKER_HOST", "tcp://192.0.2.1:2376", "", "tcp:// endpoints are not supported: use a unix socket"},
		{"DOCKER_HOST", "ssh://me@host", "", "ssh:// endpoints are not supported: use a unix socket"},
		{"DOCKER_HOST", "npipe:////./pipe/docker_engine", "", "npipe:// endpoints are not supported"},
		{"CONTAINER_HOST", "unix:///run/podman/podman.sock", "unix:///run/podman/podman.sock", ""},
		{"CONTAINER_HOST", "unix://run/podman/podman.sock", "unix:///run/podman/podman.sock", ""}, // Podman's reading
		{"CONTAINER_HOST", "unix://", "", "names no socket"},
		{"CONTAINER_HOST", "ssh://core@localhost:2222/run/user/1000/podman/podman.sock", "", "ssh:// endpoints are not supported"},
		{"CONTAINER_ENDPOINT", "unix:///tmp/e.sock", "unix:///tmp/e.sock", ""},
		{"CONTAINER_ENDPOINT", "unix://tmp/e.sock", "", "is not absolute"},
		{"CONTAINER_ENDPOINT", "http://localhost:8080", "", "http:// endpoints are not supported"},
		{"CONTAINER_ENDPOINT", "vsock://3:1024", "", "unknown scheme vsock://"},
	} {
		got, err := ParseEndpoint(tc.source, tc.value)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%s=%q: %q %v, want %q", tc.source, tc.value, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.source)):
			t.Errorf("%s=%q: %q %v, want an error naming %s and saying %s", tc.source, tc.value, got, err, tc.source, tc.err)
		}
	}
}

func TestRealEnginesAnswerPing(t *testing.T) {
	for _, env := range []string{"SITE_CONTROLLER_TEST_DOCKER", "SITE_CONTROLLER_TEST_PODMAN"} {
		ep := os.Getenv(env)
		if ep == "" {
			t.Logf("%s not set: skipping that engine", env)
			continue
		}
		engine, err := Ping(context.Background(), ep)
		want := map[string]string{"SITE_CONTROLLER_TEST_DOCKER": "docker", "SITE_CONTROLLER_TEST_PODMAN": "podman"}[env]
		if err != nil || engine != want {
			t.Errorf("%s: %s %v, want %s", ep, engine, err, want)
		}
	}
}

// TestOpenFilesLimit reads this process's limit as the kernel reports it.
func TestOpenFilesLimit(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	soft, hard, err := OpenFilesLimit(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if soft != lim.Cur || hard != lim.Max {
		t.Errorf("limit %d/%d, want %d/%d", soft, hard, lim.Cur, lim.Max)
	}
	if _, _, err := OpenFilesLimit(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

// TestAddressOf: where the router (on the host network) reaches a selected
// container: 127.0.0.1 on the host network, else its address on the first
// network by name that gives it one.
func TestAddressOf(t *testing.T) {
	for _, c := range []struct {
		mode                  string
		networks              map[string]string
		wantAddress, wantName string
	}{
		{"host", map[string]string{"host": ""}, "127.0.0.1", "host"},
		{"bridge", map[string]string{"bridge": "172.17.0.2"}, "172.17.0.2", "bridge"},
		{"app", map[string]string{"zeta": "10.0.9.2", "app": "10.0.1.2"}, "10.0.1.2", "app"},
		{"app", map[string]string{"app": "", "backend": "10.0.2.2"}, "10.0.2.2", "backend"},
		{"none", map[string]string{}, "", ""},
	} {
		address, name := AddressOf(c.mode, c.networks)
		if address != c.wantAddress || name != c.wantName {
			t.Errorf("AddressOf(%q, %v) = %q, %q; want %q, %q", c.mode, c.networks, address, name, c.wantAddress, c.wantName)
		}
	}
	ready := map[string]bool{"": true, "healthy": true, "starting": false, "unhealthy": false}
	for health, want := range ready {
		if got := (Workload{Health: health}).Ready(); got != want {
			t.Errorf("health %q: ready %t, want %t", health, got, want)
		}
	}
	if !(Workload{Labels: map[string]string{LabelComponent: "router"}}).Router() {
		t.Error("a container labelled as a router is not taken for one")
	}
}

// TestCheckPaths: what reaches an engine, a unit or a router is an
// absolute, clean path; anything else is refused, naming the path.
func TestCheckPaths(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want string // "" when accepted
	}{
		{"/var/lib/skupper/namespaces/west", ""},
		{"examples/namespaces/west", `"examples/namespaces/west" is not an absolute path`},
		{"./west", `"./west" is not an absolute path`},
		{"", `"" is not an absolute path`},
		{"/var/lib/skupper/../skupper/namespaces/west", `is not a clean path (it should be "/var/lib/skupper/namespaces/west")`},
		{"/var/lib/skupper/namespaces/west/", "is not a clean path"},
	} {
		s := Site{Namespace: "west", Dir: tc.dir}
		checks := map[string]error{"site": s.CheckPaths()}
		if !strings.Contains(tc.want, "clean") { // bind sources are joined, so clean
			checks["container"] = RouterContainer(s, ContainerOptions{Image: "img"}).CheckPaths()
		}
		for what, err := range checks {
			want := tc.want
			if what == "container" && want != "" {
				want = "bind source " + strconv.Quote(filepath.Join(tc.dir, "runtime", "router")) + " is not an absolute path"
			}
			switch {
			case want == "" && err != nil:
				t.Errorf("%s %q refused: %v", what, tc.dir, err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("%s %q: %v, want an error saying %s", what, tc.dir, err, want)
			}
		}
	}
}
