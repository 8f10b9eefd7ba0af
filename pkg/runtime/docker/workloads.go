package docker

import (
	"context"
	"errors"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/site-controller/site-controller/pkg/runtime"
)

// RunningWorkloads implements runtime.Workloads: the running containers,
// each inspected (listing does not say how a container's health check
// goes on every engine version).
func (r *Runtime) RunningWorkloads(ctx context.Context) ([]runtime.Workload, error) {
	if err := r.negotiate(ctx); err != nil {
		return nil, err
	}
	list, err := r.cli.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		return nil, r.wrap("listing containers", err)
	}
	ids := make([]string, len(list))
	for i, c := range list {
		ids[i] = c.ID
	}
	return runtime.RunningOf(ids, func(id string) (runtime.Workload, bool, error) { return r.RunningWorkload(ctx, id) })
}

// RunningWorkload implements runtime.Workloads.
func (r *Runtime) RunningWorkload(ctx context.Context, id string) (runtime.Workload, bool, error) {
	if err := r.negotiate(ctx); err != nil {
		return runtime.Workload{}, false, err
	}
	c, err := r.cli.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return runtime.Workload{}, false, nil
	}
	if err != nil {
		return runtime.Workload{}, false, r.wrap("inspecting container "+id, err)
	}
	if c.State == nil || !c.State.Running || c.State.Paused || c.Config == nil {
		return runtime.Workload{}, false, nil
	}
	w := runtime.Workload{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), Labels: c.Config.Labels}
	if c.State.Health != nil && c.State.Health.Status != "none" {
		w.Health = c.State.Health.Status
	}
	nets := map[string]string{}
	if c.NetworkSettings != nil {
		for name, n := range c.NetworkSettings.Networks {
			if n != nil {
				nets[name] = n.IPAddress
			}
		}
	}
	mode := ""
	if c.HostConfig != nil {
		mode = string(c.HostConfig.NetworkMode)
	}
	w.Address, w.Network = runtime.AddressOf(mode, nets)
	return w, true, nil
}

// WatchWorkloads implements runtime.Workloads.
func (r *Runtime) WatchWorkloads(ctx context.Context, changed func(id string)) error {
	if err := r.negotiate(ctx); err != nil {
		return err
	}
	msgs, errs := r.cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)), filters.Arg("type", string(events.NetworkEventType)))})
	for {
		select {
		case m := <-msgs:
			switch {
			case m.Type == events.NetworkEventType && (m.Action == events.ActionConnect || m.Action == events.ActionDisconnect):
				// a container joined or left a network: its address
				if id := m.Actor.Attributes["container"]; id != "" {
					changed(id)
				}
			case m.Type == events.ContainerEventType && workloadEvent(string(m.Action)):
				changed(m.Actor.ID)
			}
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return r.wrap("following container events", err)
		}
	}
}

// workloadEvent tells whether a container event can change what a
// selector selects.
func workloadEvent(action string) bool {
	switch {
	case strings.HasPrefix(action, "health_status"):
		return true
	}
	switch action {
	case "start", "restart", "stop", "die", "kill", "pause", "unpause", "destroy", "rename", "update", "oom":
		return true
	}
	return false
}
