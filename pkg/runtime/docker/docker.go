// Package docker runs site routers as Docker containers through the
// Docker Engine API (github.com/docker/docker/client, API version
// negotiated, so older engines work).
//
// It only touches containers it can identify as routers: by name
// (<ns>-skupper-router) and labels. It never removes images.
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/site-controller/site-controller/pkg/runtime"
)

// Options configures the runtime.
type Options struct {
	Endpoint string // unix:///run/docker.sock when empty
	Image    string
	Pull     runtime.PullPolicy
}

// Runtime is the docker platform.
type Runtime struct {
	cli  *client.Client
	opts Options
	// The client negotiates its API version on its first request, and its
	// calls read the version unguarded: the first negotiation happens alone,
	// before any other call (negotiate), one attempt at a time that each
	// call waits for within its own deadline.
	negotiation runtime.Shared[bool]
}

// negotiate settles the API version once, before the first call, so that
// no two calls race on it inside the client.
func (r *Runtime) negotiate(ctx context.Context) error {
	_, err := r.negotiation.Get(ctx, nil, func(life context.Context) (bool, error) {
		ping, err := r.cli.Ping(life)
		if err != nil {
			return false, err
		}
		r.cli.NegotiateAPIVersionPing(ping)
		return true, nil
	}, nil)
	return r.wrap("reaching the engine", err)
}

// DefaultEndpoint is the Docker socket.
const DefaultEndpoint = "unix:///run/docker.sock"

// RootlessSocket is the socket of the current user's rootless Docker
// (dockerd-rootless.sh): $XDG_RUNTIME_DIR/docker.sock.
func RootlessSocket() string {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = fmt.Sprintf("/run/user/%d", os.Getuid())
	}
	return "unix://" + filepath.Join(dir, "docker.sock")
}

// New returns a runtime for the engine at opts.Endpoint. It does not
// connect yet: an engine that is down is reported by each call.
func New(opts Options) (*Runtime, error) {
	if opts.Endpoint == "" {
		opts.Endpoint = DefaultEndpoint
	}
	if opts.Image == "" {
		opts.Image = runtime.DefaultImage
	}
	if opts.Pull == "" {
		opts.Pull = runtime.PullMissing
	}
	cli, err := client.NewClientWithOpts(client.WithHost(opts.Endpoint), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", opts.Endpoint, err)
	}
	return &Runtime{cli: cli, opts: opts}, nil
}

// Close releases the client.
func (r *Runtime) Close() error { return r.cli.Close() }

// Platform implements runtime.Runtime.
func (r *Runtime) Platform() string { return "docker" }

// wrap turns connection failures into runtime.Unavailable.
func (r *Runtime) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if client.IsErrConnectionFailed(err) || errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "connect: ") {
		return &runtime.Unavailable{Platform: "docker", Endpoint: r.opts.Endpoint, Err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Spec is the container this runtime creates for a site.
func (r *Runtime) Spec(s runtime.Site) runtime.Container {
	uid, gid := r.RouterUser(s.LowPorts)
	return runtime.RouterContainer(s, runtime.ContainerOptions{Image: r.opts.Image, UID: uid, GID: gid, NoFile: runtime.DefaultNoFile()})
}

// RouterUser is the user a site's router runs as, who owns the files it
// reads (runtime.ContainerUser).
func (r *Runtime) RouterUser(lowPorts bool) (uid, gid int) {
	return runtime.ContainerUser("docker", os.Getuid(), os.Getgid(), false, lowPorts)
}

// Ensure implements runtime.Runtime.
func (r *Runtime) Ensure(ctx context.Context, s runtime.Site) (st runtime.State, err error) {
	var upgraded string
	defer func() {
		if upgraded != "" && err == nil {
			st.Upgrade, st.Upgraded = upgraded, true
		}
	}()
	if err := r.negotiate(ctx); err != nil {
		return runtime.State{}, err
	}
	spec := r.Spec(s)
	if err := spec.CheckPaths(); err != nil {
		return runtime.State{Message: err.Error()}, err
	}
	existing, err := r.cli.ContainerInspect(ctx, spec.Name)
	if err == nil {
		if f := r.foreign(existing, s.Dir); f != nil {
			return runtime.State{Status: "foreign", Message: f.Error()}, f
		}
	}
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		return runtime.State{}, r.wrap("inspecting "+spec.Name, err)
	case existing.Config != nil && existing.Config.Labels[runtime.LabelSpecHash] == spec.Labels[runtime.LabelSpecHash]:
		upgrade := r.upgrade(ctx, existing)
		if upgrade == "" || !s.Upgrade {
			// adopted as it is; started if something stopped it
			if existing.State != nil && !existing.State.Running && !existing.State.Restarting {
				if err := r.cli.ContainerStart(ctx, existing.ID, container.StartOptions{}); err != nil {
					return r.state(ctx, s.Namespace, s.Dir), r.wrap("starting "+spec.Name, err)
				}
			}
			st := r.state(ctx, s.Namespace, s.Dir)
			st.Upgrade = upgrade
			return st, nil
		}
		// another router image: the controller lets this one go now
		if err := r.cli.ContainerRemove(ctx, existing.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return runtime.State{}, r.wrap("removing "+spec.Name, err)
		}
		defer func() { upgraded = upgrade }()
	default:
		// the configuration (or the container spec) changed: recreate
		if err := r.cli.ContainerRemove(ctx, existing.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return runtime.State{}, r.wrap("removing "+spec.Name, err)
		}
	}
	if err := r.ensureImage(ctx); err != nil {
		return runtime.State{Message: err.Error()}, err
	}
	var binds []string
	for _, b := range spec.Binds {
		binds = append(binds, b.String())
	}
	host := &container.HostConfig{
		Binds:          binds,
		NetworkMode:    "host",
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyAlways},
		CapDrop:        []string{"ALL"},
		CapAdd:         spec.CapAdd,
		ReadonlyRootfs: spec.ReadOnlyRoot,
		Tmpfs:          map[string]string{},
	}
	if spec.NoNewPrivileges {
		host.SecurityOpt = []string{"no-new-privileges"}
	}
	for _, p := range spec.Tmpfs {
		host.Tmpfs[p] = "rw,nosuid,nodev,noexec,mode=1777"
	}
	if spec.NoFile > 0 {
		n := int64(spec.NoFile)
		host.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: n, Hard: n}}
	}
	created, err := r.cli.ContainerCreate(ctx,
		&container.Config{Image: spec.Image, Env: spec.EnvList(), Labels: spec.Labels, User: spec.User},
		host, nil, nil, spec.Name)
	if err != nil {
		return runtime.State{}, r.wrap("creating "+spec.Name, err)
	}
	if err := r.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return r.state(ctx, s.Namespace, s.Dir), r.wrap("starting "+spec.Name, err)
	}
	return r.state(ctx, s.Namespace, s.Dir), nil
}

// upgrade says "A → B" when the container runs another image than the
// router image is now; "" when it is the same, or that cannot be told.
func (r *Runtime) upgrade(ctx context.Context, c container.InspectResponse) string {
	img, err := r.cli.ImageInspect(ctx, r.opts.Image)
	if err != nil || img.ID == "" || c.Image == "" || img.ID == c.Image {
		return ""
	}
	from := ""
	if c.Config != nil {
		from = c.Config.Image
	}
	return "image " + runtime.ShortImage(from, c.Image) + " → " + runtime.ShortImage(r.opts.Image, img.ID)
}

// ensureImage makes sure the router image is there, pulling it as the
// policy says.
func (r *Runtime) ensureImage(ctx context.Context) error {
	_, err := r.cli.ImageInspect(ctx, r.opts.Image)
	present := err == nil
	if err != nil && !cerrdefs.IsNotFound(err) {
		return r.wrap("inspecting image "+r.opts.Image, err)
	}
	if present && r.opts.Pull != runtime.PullAlways {
		return nil
	}
	if r.opts.Pull == runtime.PullNever {
		return fmt.Errorf("router image %s is not present and the pull policy is never: load it (docker load -i …) or set SKUPPER_ROUTER_IMAGE", r.opts.Image)
	}
	rc, err := r.cli.ImagePull(ctx, r.opts.Image, image.PullOptions{})
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
	}
	if err != nil {
		if present {
			return nil // pulling failed; the image there will do
		}
		return fmt.Errorf("router image %s is not present and could not be pulled: %v; load it (docker load -i …) or set SKUPPER_ROUTER_IMAGE to an image this host has", r.opts.Image, err)
	}
	return nil
}

// foreign tells whether a container is not this site's router.
func (r *Runtime) foreign(c container.InspectResponse, dir string) *runtime.Foreign {
	var owner string
	if c.Config != nil {
		owner = c.Config.Labels[runtime.LabelSiteDir]
	}
	if owner == dir {
		return nil
	}
	name := strings.TrimPrefix(c.Name, "/")
	return &runtime.Foreign{Name: "container " + name, Owner: owner, Remedy: "docker rm -f " + name}
}

// state inspects a site's container; problems become the state's message.
func (r *Runtime) state(ctx context.Context, ns, dir string) runtime.State {
	st, err := r.State(ctx, ns, dir)
	if err != nil {
		st.Message = err.Error()
	}
	return st
}

// State implements runtime.Runtime.
func (r *Runtime) State(ctx context.Context, ns, dir string) (runtime.State, error) {
	if err := r.negotiate(ctx); err != nil {
		return runtime.State{}, err
	}
	name := runtime.ContainerName(ns)
	c, err := r.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return runtime.State{Status: "absent", Message: "no router container"}, nil
	}
	if err != nil {
		return runtime.State{}, r.wrap("inspecting "+name, err)
	}
	if f := r.foreign(c, dir); f != nil {
		return runtime.State{Status: "foreign", Message: f.Error()}, f
	}
	st := runtime.State{Exists: true, Restarts: c.RestartCount}
	if c.State != nil {
		st.Running = c.State.Running && !c.State.Restarting
		st.Status = c.State.Status
		st.ExitCode = c.State.ExitCode
		st.Pid = c.State.Pid
		st.Started, _ = time.Parse(time.RFC3339Nano, c.State.StartedAt)
	}
	if !st.Running {
		st.Message = fmt.Sprintf("router container %s is %s (exit code %d, %d restarts)%s", name, st.Status, st.ExitCode, st.Restarts, r.lastLog(ctx, c.ID))
	}
	return st, nil
}

// lastLog returns the container's last log line, for messages.
func (r *Runtime) lastLog(ctx context.Context, id string) string {
	rc, err := r.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "3"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out, errOut strings.Builder
	stdcopy.StdCopy(&out, &errOut, io.LimitReader(rc, 8192))
	lines := strings.Split(strings.TrimSpace(out.String()+errOut.String()), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return ": " + last
	}
	return ""
}

// Logs returns what a router container printed (for tests and support).
func (r *Runtime) Logs(ctx context.Context, ns string) (string, error) {
	if err := r.negotiate(ctx); err != nil {
		return "", err
	}
	rc, err := r.cli.ContainerLogs(ctx, runtime.ContainerName(ns), container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", r.wrap("logs", err)
	}
	defer rc.Close()
	var out, errOut strings.Builder
	if _, err := stdcopy.StdCopy(&out, &errOut, rc); err != nil {
		return "", err
	}
	return out.String() + errOut.String(), nil
}

// Remove implements runtime.Runtime: by the id of the container inspected,
// so that a container of that name created meanwhile is never the one
// removed.
func (r *Runtime) Remove(ctx context.Context, ns, dir string) error {
	if err := r.negotiate(ctx); err != nil {
		return err
	}
	name := runtime.ContainerName(ns)
	c, err := r.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return r.wrap("inspecting "+name, err)
	}
	if r.foreign(c, dir) != nil {
		return nil
	}
	err = r.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	return r.wrap("removing "+name, err)
}

// List implements runtime.Runtime: router containers by label.
func (r *Runtime) List(ctx context.Context) ([]runtime.Router, error) {
	if err := r.negotiate(ctx); err != nil {
		return nil, err
	}
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", runtime.LabelApplication+"=skupper-v2"),
		filters.Arg("label", runtime.LabelComponent+"=router"),
	)})
	if err != nil {
		return nil, r.wrap("listing routers", err)
	}
	var out []runtime.Router
	for _, c := range list {
		ns := c.Labels[runtime.LabelNamespace]
		if ns == "" { // a router Skupper's own controller created
			for _, n := range c.Names {
				if n = strings.TrimPrefix(n, "/"); strings.HasSuffix(n, "-skupper-router") {
					ns = strings.TrimSuffix(n, "-skupper-router")
				}
			}
		}
		if ns != "" {
			out = append(out, runtime.Router{Namespace: ns, Dir: c.Labels[runtime.LabelSiteDir]})
		}
	}
	return out, nil
}
