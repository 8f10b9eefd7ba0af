// Package podman runs site routers as Podman containers through the
// Podman API service (the connection of
// github.com/containers/podman/v5/pkg/bindings; api.go), root or rootless. Build, vet and test it with the tags
// remote,exclude_graphdriver_btrfs,containers_image_openpgp.
//
// It only touches containers it can identify as routers: by name
// (<ns>-skupper-router) and labels. It never removes images.
package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/errorhandling"

	"github.com/site-controller/site-controller/pkg/runtime"
)

// Sockets where a Podman API service listens by default.
const RootSocket = "unix:///run/podman/podman.sock"

// RootlessSocket is the rootless service's socket of the current user.
func RootlessSocket() string {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = fmt.Sprintf("/run/user/%d", os.Getuid())
	}
	return "unix://" + filepath.Join(dir, "podman", "podman.sock")
}

// Options configures the runtime.
type Options struct {
	Endpoint string // RootSocket for root, RootlessSocket otherwise, when empty
	Image    string
	Pull     runtime.PullPolicy
	// Owner is the user the service runs as and the namespace files
	// belong to; nil means this process's user (rootless unless root).
	Owner *Owner
}

// Owner is the user a Podman service runs containers for.
type Owner struct {
	UID, GID int
	Rootless bool
}

// Runtime is the podman platform.
type Runtime struct {
	opts  Options
	owner Owner

	conn runtime.Shared[context.Context] // the bindings connection
}

// New returns a runtime for the service at opts.Endpoint. It connects on
// first use, and again after the service went away.
func New(opts Options) *Runtime {
	owner := Owner{UID: os.Getuid(), GID: os.Getgid(), Rootless: os.Getuid() != 0}
	if opts.Owner != nil {
		owner = *opts.Owner
	}
	if opts.Endpoint == "" {
		opts.Endpoint = RootSocket
		if owner.Rootless {
			opts.Endpoint = RootlessSocket()
		}
	}
	if opts.Image == "" {
		opts.Image = runtime.DefaultImage
	}
	if opts.Pull == "" {
		opts.Pull = runtime.PullMissing
	}
	return &Runtime{opts: opts, owner: owner}
}

// Platform implements runtime.Runtime.
func (r *Runtime) Platform() string { return "podman" }

// connect returns a context carrying the bindings connection, cancelled
// with ctx. The connection is shared by every namespace's calls and lives
// by a context of its own (runtime.Shared); ctx bounds only the wait for
// its making (the bindings ping the service): a service that accepts and
// never answers costs each call its own deadline.
func (r *Runtime) connect(ctx context.Context) (context.Context, context.CancelFunc, error) {
	conn, err := r.conn.Get(ctx, nil, func(life context.Context) (context.Context, error) {
		return bindings.NewConnection(life, r.opts.Endpoint)
	}, closeIdle)
	if err != nil {
		return nil, nil, &runtime.Unavailable{Platform: "podman", Endpoint: r.opts.Endpoint, Err: err}
	}
	c, cancel := context.WithCancel(conn)
	stop := context.AfterFunc(ctx, cancel)
	return c, func() { stop(); cancel() }, nil
}

// closeIdle closes what a bindings connection no one will use keeps open.
func closeIdle(conn context.Context) {
	if c, err := bindings.GetClient(conn); err == nil {
		c.Client.CloseIdleConnections()
	}
}

// wrap turns connection failures into runtime.Unavailable, and forgets
// the connection so that the next call connects again.
func (r *Runtime) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	var model *errorhandling.ErrorModel
	if !errors.As(err, &model) && (strings.Contains(err.Error(), "connect: ") || strings.Contains(err.Error(), "connection refused") || errors.Is(err, io.EOF)) {
		r.conn.Forget()
		return &runtime.Unavailable{Platform: "podman", Endpoint: r.opts.Endpoint, Err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Spec is the container this runtime creates for a site: rootless, the
// host user is kept as the same uid inside (keep-id), so that it can read
// its own 0600 keys.
func (r *Runtime) Spec(s runtime.Site) runtime.Container {
	uid, gid := r.RouterUser(s.LowPorts)
	return runtime.RouterContainer(s, runtime.ContainerOptions{Image: r.opts.Image, Rootless: r.owner.Rootless, UID: uid, GID: gid})
}

// RouterUser is the user a site's router runs as, who owns the files it
// reads (runtime.ContainerUser).
func (r *Runtime) RouterUser(lowPorts bool) (uid, gid int) {
	return runtime.ContainerUser("podman", r.owner.UID, r.owner.GID, r.owner.Rootless, lowPorts)
}

// SpecOf translates the engine-neutral container into Podman's.
func SpecOf(c runtime.Container) Spec {
	s := Spec{Name: c.Name, Image: c.Image, Env: c.Env, Labels: c.Labels, User: c.User,
		RestartPolicy: "always", NetNS: Namespace{NSMode: "host"},
		CapDrop: []string{"ALL"}, CapAdd: c.CapAdd, NoNewPrivileges: c.NoNewPrivileges, ReadOnlyFilesystem: c.ReadOnlyRoot}
	if c.KeepID {
		s.UserNS = &Namespace{NSMode: "keep-id"}
	}
	for _, b := range c.Binds {
		opts := []string{"rbind"}
		if b.ReadOnly {
			opts = append(opts, "ro")
		}
		if b.Relabel {
			opts = append(opts, "z")
		}
		s.Mounts = append(s.Mounts, Mount{Type: "bind", Source: b.Host, Destination: b.Container, Options: opts})
	}
	for _, p := range c.Tmpfs {
		s.Mounts = append(s.Mounts, Mount{Type: "tmpfs", Source: "tmpfs", Destination: p, Options: []string{"rw", "nosuid", "nodev", "noexec", "mode=1777"}})
	}
	return s
}

// Ensure implements runtime.Runtime.
func (r *Runtime) Ensure(ctx context.Context, s runtime.Site) (st runtime.State, err error) {
	var upgraded string
	defer func() {
		if upgraded != "" && err == nil {
			st.Upgrade, st.Upgraded = upgraded, true
		}
	}()
	c, cancel, err := r.connect(ctx)
	if err != nil {
		return runtime.State{}, err
	}
	defer cancel()
	want := r.Spec(s)
	if err := want.CheckPaths(); err != nil {
		return runtime.State{Message: err.Error()}, err
	}
	existing, err := inspectContainer(c, want.Name)
	if err == nil {
		if f := foreign(existing, s.Dir); f != nil {
			return runtime.State{Status: "foreign", Message: f.Error()}, f
		}
	}
	switch {
	case notFound(err):
	case err != nil:
		return runtime.State{}, r.wrap("inspecting "+want.Name, err)
	case existing.Config.Labels[runtime.LabelSpecHash] == want.Labels[runtime.LabelSpecHash]:
		upgrade := r.upgrade(c, existing)
		if upgrade == "" || !s.Upgrade {
			if !existing.State.Running && !existing.State.Restarting {
				if err := startContainer(c, existing.ID); err != nil {
					return r.state(c, s.Namespace, s.Dir), r.wrap("starting "+want.Name, err)
				}
			}
			st := r.state(c, s.Namespace, s.Dir)
			st.Upgrade = upgrade
			return st, nil
		}
		// another router image: the controller lets this one go now
		if err := remove(c, existing.ID); err != nil {
			return runtime.State{}, r.wrap("removing "+want.Name, err)
		}
		defer func() { upgraded = upgrade }()
	default:
		if err := remove(c, existing.ID); err != nil {
			return runtime.State{}, r.wrap("removing "+want.Name, err)
		}
	}
	if err := r.ensureImage(c); err != nil {
		return runtime.State{Message: err.Error()}, err
	}
	id, err := createContainer(c, SpecOf(want))
	if err != nil {
		return runtime.State{}, r.wrap("creating "+want.Name, err)
	}
	if err := startContainer(c, id); err != nil {
		return r.state(c, s.Namespace, s.Dir), r.wrap("starting "+want.Name, err)
	}
	return r.state(c, s.Namespace, s.Dir), nil
}

// upgrade says "A → B" when the container runs another image than the
// router image is now; "" when it is the same, or that cannot be told.
func (r *Runtime) upgrade(c context.Context, existing *container) string {
	id, err := imageID(c, r.opts.Image)
	if err != nil || id == "" || existing.Image == "" || id == existing.Image {
		return ""
	}
	return "image " + runtime.ShortImage(existing.ImageName, existing.Image) + " → " + runtime.ShortImage(r.opts.Image, id)
}

func (r *Runtime) ensureImage(c context.Context) error {
	present, err := imageExists(c, r.opts.Image)
	if err != nil {
		return r.wrap("looking up image "+r.opts.Image, err)
	}
	if present && r.opts.Pull != runtime.PullAlways {
		return nil
	}
	if r.opts.Pull == runtime.PullNever {
		return fmt.Errorf("router image %s is not present and the pull policy is never: load it (podman load -i …) or set SKUPPER_ROUTER_IMAGE", r.opts.Image)
	}
	if err := pullImage(c, r.opts.Image); err != nil {
		if present {
			return nil // pulling failed; the image there will do
		}
		return fmt.Errorf("router image %s is not present and could not be pulled: %v; load it (podman load -i …) or set SKUPPER_ROUTER_IMAGE to an image this host has", r.opts.Image, err)
	}
	return nil
}

// foreign tells whether a container is not this site's router.
func foreign(c *container, dir string) *runtime.Foreign {
	owner := c.Config.Labels[runtime.LabelSiteDir]
	if owner == dir {
		return nil
	}
	return &runtime.Foreign{Name: "container " + c.Name, Owner: owner, Remedy: "podman rm -f " + c.Name}
}

func (r *Runtime) state(c context.Context, ns, dir string) runtime.State {
	st, err := r.inspect(c, ns, dir)
	if err != nil {
		st.Message = err.Error()
	}
	return st
}

// State implements runtime.Runtime.
func (r *Runtime) State(ctx context.Context, ns, dir string) (runtime.State, error) {
	c, cancel, err := r.connect(ctx)
	if err != nil {
		return runtime.State{}, err
	}
	defer cancel()
	return r.inspect(c, ns, dir)
}

func (r *Runtime) inspect(c context.Context, ns, dir string) (runtime.State, error) {
	name := runtime.ContainerName(ns)
	data, err := inspectContainer(c, name)
	if notFound(err) {
		return runtime.State{Status: "absent", Message: "no router container"}, nil
	}
	if err != nil {
		return runtime.State{}, r.wrap("inspecting "+name, err)
	}
	if f := foreign(data, dir); f != nil {
		return runtime.State{Status: "foreign", Message: f.Error()}, f
	}
	st := runtime.State{Exists: true, Restarts: int(data.RestartCount),
		Running: data.State.Running && !data.State.Restarting, Status: data.State.Status,
		ExitCode: int(data.State.ExitCode), Pid: data.State.Pid, Started: data.State.StartedAt}
	if !st.Running {
		st.Message = fmt.Sprintf("router container %s is %s (exit code %d, %d restarts)%s", name, st.Status, st.ExitCode, st.Restarts, lastLine(r.logs(c, name, "3")))
	}
	return st, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return ": " + last
	}
	return ""
}

// logs collects a container's output ("" for all of it); failing to is
// not worth more than an empty message.
func (r *Runtime) logs(c context.Context, name, tail string) string {
	out, _ := containerLogs(c, name, tail)
	return strings.TrimRight(out, "\n")
}

// Logs returns what a router container printed (for tests and support).
func (r *Runtime) Logs(ctx context.Context, ns string) (string, error) {
	c, cancel, err := r.connect(ctx)
	if err != nil {
		return "", err
	}
	defer cancel()
	return r.logs(c, runtime.ContainerName(ns), ""), nil
}

// Remove implements runtime.Runtime: by the id of the container inspected,
// so that a container of that name created meanwhile is never the one
// removed.
func (r *Runtime) Remove(ctx context.Context, ns, dir string) error {
	c, cancel, err := r.connect(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	name := runtime.ContainerName(ns)
	data, err := inspectContainer(c, name)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return r.wrap("inspecting "+name, err)
	}
	if foreign(data, dir) != nil {
		return nil
	}
	if err := remove(c, data.ID); err != nil && !notFound(err) {
		return r.wrap("removing "+name, err)
	}
	return nil
}

// List implements runtime.Runtime: router containers by label.
func (r *Runtime) List(ctx context.Context) ([]runtime.Router, error) {
	c, cancel, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	list, err := listRouters(c, runtime.LabelApplication+"=skupper-v2", runtime.LabelComponent+"=router")
	if err != nil {
		return nil, r.wrap("listing routers", err)
	}
	var out []runtime.Router
	for _, lc := range list {
		ns := lc.Labels[runtime.LabelNamespace]
		if ns == "" {
			for _, n := range lc.Names {
				if strings.HasSuffix(n, "-skupper-router") {
					ns = strings.TrimSuffix(n, "-skupper-router")
				}
			}
		}
		if ns != "" {
			out = append(out, runtime.Router{Namespace: ns, Dir: lc.Labels[runtime.LabelSiteDir]})
		}
	}
	return out, nil
}
