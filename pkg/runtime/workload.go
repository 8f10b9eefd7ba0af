package runtime

import (
	"context"
	"sort"
)

// Workload is a container of an engine as a Connector's label selector
// sees it: the way Kubernetes selects pods, a selector on the docker and
// podman platforms selects containers.
type Workload struct {
	ID     string
	Name   string
	Labels map[string]string
	// Health is the container's health check result: "" when it has none,
	// else starting, healthy or unhealthy.
	Health string
	// Address is where the site's router (on the host network) reaches
	// it: its address on its network (the first by name that has one), or
	// 127.0.0.1 for a container on the host network; "" when it has none.
	Address string
	// Network is the network Address is on ("host" for the host network).
	Network string
}

// Ready tells whether the container may take traffic: it has no health
// check, or its check passes.
func (w Workload) Ready() bool { return w.Health == "" || w.Health == "healthy" }

// Router tells whether the container is a site's router (Skupper's or
// ours): selectors never pick one.
func (w Workload) Router() bool { return w.Labels[LabelComponent] != "" }

// Workloads is an engine's running containers, and their changes.
type Workloads interface {
	// RunningWorkloads lists the running containers.
	RunningWorkloads(ctx context.Context) ([]Workload, error)
	// RunningWorkload inspects one container: found is false when it is
	// gone or not running.
	RunningWorkload(ctx context.Context, id string) (w Workload, found bool, err error)
	// WatchWorkloads follows the engine's container events, calling
	// changed with the id of each container that started, stopped, died,
	// changed health or was renamed or removed, until ctx ends or the
	// stream fails (the error says why; nil when ctx ended).
	WatchWorkloads(ctx context.Context, changed func(id string)) error
}

// RunningOf inspects the containers a listing named, in order, and keeps
// those that are running: an engine's RunningWorkloads.
func RunningOf(ids []string, inspect func(id string) (Workload, bool, error)) ([]Workload, error) {
	out := make([]Workload, 0, len(ids))
	for _, id := range ids {
		w, running, err := inspect(id)
		if err != nil {
			return nil, err
		}
		if running {
			out = append(out, w)
		}
	}
	return out, nil
}

// HealthPolled is a Workloads whose event stream may not tell health
// changes (Podman 4.3 sends none for health checks): the containers that
// have a health check are inspected again every second.
type HealthPolled interface {
	HealthWithoutEvents() bool
}

// AddressOf picks a container's address from its networks (name → IP):
// 127.0.0.1 on the host network, else the first network by name that
// gives it one.
func AddressOf(networkMode string, networks map[string]string) (address, network string) {
	if networkMode == "host" {
		return "127.0.0.1", "host"
	}
	names := make([]string, 0, len(networks))
	for n, ip := range networks {
		if ip != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "", ""
	}
	sort.Strings(names)
	return networks[names[0]], names[0]
}
