package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/runtime"
)

// recheckStarting is how soon a router that is not running yet is looked
// at again.
const recheckStarting = 3 * time.Second

// apply makes the namespace's runtime match the pass: the router runs with
// the rendered input while there is a valid Site, keeps its last good
// configuration while the Site is invalid, and is removed when there is no
// Site at all.
func (r *Reconciler) apply(ctx context.Context, s *siteState, platform, recorded string) {
	res := s.res
	rt := r.opts.Runtimes[platform]
	if rt == nil {
		res.RenderOnly = true
		return
	}
	name := s.dir.Name
	hasSite := false
	for _, d := range s.ns.Docs {
		hasSite = hasSite || d.Kind == resources.KindSite
	}
	switch {
	case s.ns.Site != nil && res.Config != nil:
		r.leaveOtherRuntimes(ctx, s.dir, platform)
		hash, err := runtime.InputHash(s.dir.Path)
		if err != nil {
			res.RouterErr = err
			return
		}
		st, err := rt.Ensure(ctx, runtime.Site{Namespace: name, SiteID: res.SiteID, Dir: s.dir.Path, Hash: hash})
		res.Router, res.RouterErr = &st, err
		if err == nil && recorded == "" {
			// the namespace now lives on this platform; moving it is an
			// explicit act (editing internal/platform.yaml)
			if err := s.dir.RecordPlatform(platform); err != nil {
				res.RouterErr = err
			}
		}
		if err == nil && !st.Running {
			res.Recheck = recheckStarting
		}
	case !hasSite:
		if err := rt.Remove(ctx, name); err != nil {
			res.RouterErr = err
			return
		}
		res.Router = &runtime.State{Status: "absent"}
	default:
		// an invalid Site: the router keeps the last good configuration
		st, err := rt.State(ctx, name)
		if err == nil {
			res.Router = &st
		}
	}
}

// leaveOtherRuntimes removes this namespace's router from the platforms
// it is not on any more: changing internal/platform.yaml moves a site.
// Only routers created for this very namespace directory are touched, and
// the check runs once per namespace and platform.
func (r *Reconciler) leaveOtherRuntimes(ctx context.Context, dir namespace.Dir, platform string) {
	r.mu.Lock()
	done := r.alone[dir.Name] == platform
	r.mu.Unlock()
	if done {
		return
	}
	clean := true
	for p, other := range r.opts.Runtimes {
		if p == platform {
			continue
		}
		routers, err := other.List(ctx)
		if err != nil {
			if !runtime.IsUnavailable(err) {
				clean = false
			}
			continue // an engine that is not there runs nothing of ours
		}
		for _, rt := range routers {
			if rt.Namespace == dir.Name && rt.Dir == dir.Path {
				if err := other.Remove(ctx, dir.Name); err != nil {
					clean = false
				}
			}
		}
	}
	if clean {
		r.mu.Lock()
		r.alone[dir.Name] = platform
		r.mu.Unlock()
	}
}

// removeEverywhere removes the routers of a namespace directory that is
// gone, on every platform.
func (r *Reconciler) removeEverywhere(ctx context.Context, dir namespace.Dir) error {
	r.mu.Lock()
	delete(r.alone, dir.Name)
	r.mu.Unlock()
	var errs []error
	for _, rt := range r.opts.Runtimes {
		routers, err := rt.List(ctx)
		if err != nil {
			if !runtime.IsUnavailable(err) {
				errs = append(errs, err)
			}
			continue
		}
		for _, router := range routers {
			if router.Namespace == dir.Name && router.Dir == dir.Path {
				if err := rt.Remove(ctx, dir.Name); err != nil {
					errs = append(errs, fmt.Errorf("removing the router of %s on %s: %w", dir.Name, rt.Platform(), err))
				}
			}
		}
	}
	return errors.Join(errs...)
}
