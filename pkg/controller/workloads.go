package controller

import (
	"context"
	"strings"

	"github.com/site-controller/site-controller/pkg/follow"
	"github.com/site-controller/site-controller/pkg/pass"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/runtime"
	"github.com/site-controller/site-controller/pkg/selector"
	"github.com/site-controller/site-controller/pkg/status"
)

// containerSnapshot is an engine's running containers as a pass saw them.
type containerSnapshot struct {
	all    []runtime.Workload
	listed bool
	err    error
}

// selectOn selects the containers of the site's platform that text (a
// valid selector) matches: running, not a router, with an address, and
// ready unless includeNotReady.
func (r *Reconciler) selectOn(ctx context.Context, s *siteState, platform, text string, includeNotReady bool) pass.Selection {
	switch platform {
	case "linux":
		return pass.Selection{Problem: noContainersOnLinux}
	case "docker", "podman":
	default:
		return pass.Selection{None: "platform " + platform + " runs no containers: nothing is selected"}
	}
	s.owner.selecting(platform) // before the follower is asked: it is kept for this namespace
	set := r.follower(platform)
	if set == nil {
		return pass.Selection{None: "no " + platform + " engine in this command to select containers from"}
	}
	sel, err := selector.Parse(text)
	if err != nil { // validation reported it
		return pass.Selection{Problem: "invalid label selector: " + err.Error()}
	}
	snap, ok := s.containers[platform]
	if !ok { // one look at the engine's containers per pass
		snap.all, snap.listed, snap.err = set.Snapshot(ctx)
		if s.containers == nil {
			s.containers = map[string]containerSnapshot{}
		}
		s.containers[platform] = snap
	}
	all, listed, engineErr := snap.all, snap.listed, snap.err
	var notReady, noAddress []string
	var out pass.Selection
	for _, w := range all {
		if w.Router() || !sel.Matches(w.Labels) {
			continue
		}
		switch {
		case w.Address == "":
			noAddress = append(noAddress, w.Name)
			continue
		case !w.Ready() && !includeNotReady:
			notReady = append(notReady, w.Name+" ("+w.Health+")")
			continue
		}
		out.Targets = append(out.Targets, routerconfig.Target{Name: w.Name, ID: w.ID, Host: w.Address})
		out.Pods = append(out.Pods, status.SelectedPod{Name: w.Name, IP: w.Address, ID: shortID(w.ID)})
	}
	if len(out.Targets) > 0 {
		if engineErr != nil {
			out.Left = "the containers as last listed (" + engineErr.Error() + ")"
		}
		if len(notReady) > 0 {
			out.Left = pass.JoinMessage(out.Left, "not ready, left out: "+strings.Join(notReady, ", ")+" (spec.includeNotReadyPods: true selects them)")
		}
		if len(noAddress) > 0 {
			out.Left = pass.JoinMessage(out.Left, "without an address on any network, left out: "+strings.Join(noAddress, ", "))
		}
		return out
	}
	switch {
	case !listed && engineErr != nil:
		out.None = "the containers of " + platform + " cannot be listed: " + engineErr.Error()
	case !listed:
		out.None = "the containers of " + platform + " are not listed yet"
	default:
		out.None = "no running container matches " + text
		if len(notReady) > 0 {
			out.None += "; not ready: " + strings.Join(notReady, ", ") + " (spec.includeNotReadyPods: true selects them)"
		}
		if len(noAddress) > 0 {
			out.None += "; without an address on any network: " + strings.Join(noAddress, ", ")
		}
	}
	return out
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// containersChanged asks for a pass of every namespace that selects
// containers on platform.
func (r *Reconciler) containersChanged(platform string) {
	var again []string
	r.eachOwner(func(o *owner) {
		o.mu.Lock()
		if o.selects[platform] {
			again = append(again, o.name)
		}
		o.mu.Unlock()
	})
	if r.opts.Requeue == nil {
		return
	}
	for _, ns := range again {
		r.opts.Requeue(ns)
	}
}

// selectConnectors selects the containers of every Connector that has a
// selector and no host.
func (r *Reconciler) selectConnectors(ctx context.Context, s *siteState, platform string) {
	s.Selections = map[string]pass.Selection{}
	for _, c := range s.Namespace.Connectors {
		if c.Spec.Host != "" || c.Spec.Selector == "" {
			continue
		}
		sel := r.selectOn(ctx, s, platform, c.Spec.Selector, c.Spec.IncludeNotReadyPods)
		if sel.Problem != "" && platform == "linux" {
			sel.Problem += useHostInstead // as validate says it (selectorProblems)
		}
		s.Selections[c.Metadata.Name] = sel
		s.selects[platform] = true
	}
}

// follower returns the follower of platform's containers (a new one when
// none runs), nil when no engine of that platform is there.
func (r *Reconciler) follower(platform string) *follow.Engine {
	r.mu.Lock()
	defer r.mu.Unlock()
	src := r.sources[platform]
	if src == nil {
		return nil
	}
	f := r.workloads[platform]
	if f == nil {
		f = follow.New(platform, src, r.containersChanged)
		r.workloads[platform] = f
	}
	return f
}

// releaseFollowers ends the followers of the engines on which no
// namespace selects containers any more.
func (r *Reconciler) releaseFollowers() {
	r.mu.Lock()
	var ended []*follow.Engine
	for platform, f := range r.workloads {
		used := false
		for _, o := range r.owners {
			o.mu.Lock()
			used = used || o.selects[platform]
			o.mu.Unlock()
		}
		if !used {
			ended = append(ended, f)
			delete(r.workloads, platform)
		}
	}
	r.mu.Unlock()
	for _, f := range ended {
		f.Stop()
	}
}
