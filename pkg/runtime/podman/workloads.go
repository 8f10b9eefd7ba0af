package podman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/containers/podman/v5/pkg/bindings"

	"github.com/site-controller/site-controller/pkg/runtime"
)

// workload is what inspecting a container says of it as a selector sees
// it (GET /containers/{id}/json).
type workload struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Running bool
		Paused  bool
		Health  *struct{ Status string }
		// Healthcheck is what Podman before 4.3 called Health.
		Healthcheck *struct{ Status string }
	}
	Config struct {
		Labels      map[string]string
		Healthcheck *struct{ Test []string }
	}
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress string }
	}
	HostConfig struct {
		NetworkMode string
	}
}

// RunningWorkloads implements runtime.Workloads.
func (r *Runtime) RunningWorkloads(ctx context.Context) ([]runtime.Workload, error) {
	c, cancel, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	var list []listed
	if err := call(c, http.MethodGet, "/containers/json", nil, nil, &list); err != nil {
		return nil, r.wrap("listing containers", err)
	}
	ids := make([]string, len(list))
	for i, l := range list {
		ids[i] = l.ID
	}
	return runtime.RunningOf(ids, func(id string) (runtime.Workload, bool, error) { return r.inspectWorkload(c, id) })
}

// RunningWorkload implements runtime.Workloads.
func (r *Runtime) RunningWorkload(ctx context.Context, id string) (runtime.Workload, bool, error) {
	c, cancel, err := r.connect(ctx)
	if err != nil {
		return runtime.Workload{}, false, err
	}
	defer cancel()
	return r.inspectWorkload(c, id)
}

func (r *Runtime) inspectWorkload(c context.Context, id string) (runtime.Workload, bool, error) {
	var in workload
	err := call(c, http.MethodGet, "/containers/%s/json", nil, nil, &in, id)
	if notFound(err) {
		return runtime.Workload{}, false, nil
	}
	if err != nil {
		return runtime.Workload{}, false, r.wrap("inspecting container "+id, err)
	}
	if !in.State.Running || in.State.Paused {
		return runtime.Workload{}, false, nil
	}
	w := runtime.Workload{ID: in.ID, Name: in.Name, Labels: in.Config.Labels}
	if h := in.State.Health; h != nil && h.Status != "" {
		w.Health = h.Status
	} else if h := in.State.Healthcheck; h != nil && h.Status != "" {
		w.Health = h.Status
	}
	if w.Health == "" && in.Config.Healthcheck != nil && len(in.Config.Healthcheck.Test) > 0 && in.Config.Healthcheck.Test[0] != "NONE" {
		w.Health = "starting" // a check that has not run yet
	}
	nets := map[string]string{}
	for name, n := range in.NetworkSettings.Networks {
		nets[name] = n.IPAddress
	}
	w.Address, w.Network = runtime.AddressOf(in.HostConfig.NetworkMode, nets)
	return w, true, nil
}

// HealthWithoutEvents implements runtime.HealthPolled: Podman before 4.6
// sends no event when a health check's result changes.
func (r *Runtime) HealthWithoutEvents() bool { return true }

// event is one entry of the service's event stream.
type event struct {
	Type   string
	Action string
	Actor  struct {
		ID         string
		Attributes map[string]string
	}
}

// WatchWorkloads implements runtime.Workloads.
func (r *Runtime) WatchWorkloads(ctx context.Context, changed func(id string)) error {
	c, cancel, err := r.connect(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	conn, err := bindings.GetClient(c)
	if err != nil {
		return err
	}
	filters, err := json.Marshal(map[string][]string{"type": {"container", "network"}})
	if err != nil {
		return err
	}
	resp, err := conn.DoRequest(c, nil, http.MethodGet, "/events", url.Values{"stream": {"true"}, "filters": {string(filters)}}, nil)
	if err != nil {
		return r.wrap("following container events", err)
	}
	defer resp.Body.Close()
	if !resp.IsSuccess() {
		return r.wrap("following container events", resp.Process(nil))
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var e event
		if err := dec.Decode(&e); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return r.wrap("following container events", fmt.Errorf("reading the stream: %w", err))
		}
		switch {
		case e.Type == "network" && e.Actor.Attributes["container"] != "":
			changed(e.Actor.Attributes["container"])
		case e.Type == "container" && workloadEvent(e.Action):
			changed(e.Actor.ID)
		}
	}
}

// workloadEvent tells whether a container event can change what a
// selector selects.
func workloadEvent(action string) bool {
	if strings.HasPrefix(action, "health_status") {
		return true
	}
	switch action {
	case "start", "restart", "stop", "died", "die", "kill", "pause", "unpause", "remove", "cleanup", "rename", "update":
		return true
	}
	return false
}
