package controller

import (
	"cmp"
	"context"
	"os"
	"slices"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/pass"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/status"
)

// A namespace directory A (a team's own, perhaps without a Site) holds an
// AttachedConnector naming siteNamespace B; B holds an
// AttachedConnectorBinding of the same name naming connectorNamespace A
// and the routing key. Only when both agree does B's router connect to
// the containers A's selector selects. Each side's pass reads the other's
// resource files itself (through a file cache of its own), so that what
// it renders or reports is what is on disk; the daemon gives each a pass
// when the other's files change (Readers).

// peer is another namespace directory's resources as a pass read them.
type peer struct {
	ns     *resources.Namespace
	exists bool
	// incomplete is true when some file of it could not be read or parsed:
	// a resource missing from it may only be unreadable
	incomplete bool
	platform   string
}

// readPeer reads the resources of namespace directory name for the pass
// s of another namespace, and records that s's namespace reads it.
func (r *Reconciler) readPeer(s *siteState, name string) peer {
	s.reads[name] = true
	dir, err := namespace.Open(r.opts.DataHome, name)
	if err != nil {
		return peer{}
	}
	if st, err := os.Stat(dir.InputResources()); err != nil || !st.IsDir() {
		return peer{}
	}
	if s.cache.peers == nil {
		s.cache.peers = map[string]*namespace.FileCache{}
	}
	cache := s.cache.peers[name]
	if cache == nil {
		cache = &namespace.FileCache{}
		s.cache.peers[name] = cache
	}
	files, err := dir.ReadFilesCached(r.opts.MaxFileSize, cache, nil)
	if err != nil {
		return peer{exists: true, incomplete: true, ns: resources.Build(name, nil, nil)}
	}
	var docs []*resources.Document
	var probs []resources.Problem
	incomplete := false
	for _, f := range files {
		docs = append(docs, f.Docs...)
		probs = append(probs, f.Problems...)
		incomplete = incomplete || len(f.Problems) > 0
	}
	recorded, _ := dir.Platform()
	return peer{ns: resources.Build(name, docs, probs), exists: true, incomplete: incomplete, platform: cmp.Or(recorded, r.opts.Platform)}
}

// find returns the peer's valid resource kind/name, or, when it has such
// a document that is not valid, why ("" for none at all).
func (p peer) find(kind, name string) (resources.Object, string) {
	if p.ns == nil {
		return nil, ""
	}
	why := ""
	for _, d := range p.ns.Docs {
		if d.Kind != kind || d.Name != name {
			continue
		}
		i := slices.IndexFunc(p.ns.ProblemsOf(d), func(pr resources.Problem) bool { return !pr.Warning })
		if i < 0 && d.Object != nil {
			return d.Object, ""
		}
		if i >= 0 && why == "" {
			why = kind + " " + name + " in namespace " + p.ns.Name + " is not valid: " + p.ns.ProblemsOf(d)[i].Short()
		}
	}
	return nil, why
}

// bindAttached works out, for every AttachedConnectorBinding of the site
// s, the AttachedConnector it binds and the containers that selects on
// the site's platform.
func (r *Reconciler) bindAttached(ctx context.Context, s *siteState, platform string) {
	s.Bindings = map[string]pass.Binding{}
	bound := map[string]*routerconfig.Attached{}
	for _, b := range s.Namespace.Bindings {
		a, v := b.Spec.ConnectorNamespace, pass.Binding{}
		p := r.readPeer(s, a)
		found, invalid := p.find(resources.KindAttachedConnector, b.Metadata.Name)
		ac, _ := found.(*resources.AttachedConnector)
		switch {
		case !p.exists:
			v.Why = "no namespace directory " + a + " (spec.connectorNamespace) with input/resources"
		case invalid != "":
			v.Why = invalid
		case ac == nil && p.incomplete && s.cache.bound[b.Metadata.Name] != nil:
			// a file of a could not be read: keep what was bound
			prev := *s.cache.bound[b.Metadata.Name]
			v.Bound = &prev
			v.Sel = pass.Selection{Targets: prev.Targets, Left: "as last read: a file of namespace " + a + " cannot be read or parsed"}
			for _, t := range prev.Targets {
				v.Sel.Pods = append(v.Sel.Pods, status.SelectedPod{Name: t.Name, IP: t.Host, ID: shortID(t.ID)})
			}
		case ac == nil:
			v.Why = "no AttachedConnector " + b.Metadata.Name + " in namespace directory " + a
		case ac.Spec.SiteNamespace != s.Dir.Name:
			v.Why = "AttachedConnector " + b.Metadata.Name + " in namespace " + a + " is for the site of namespace " + ac.Spec.SiteNamespace + ", not this one"
		default:
			v.Sel = r.selectOn(ctx, s, platform, ac.Spec.Selector, ac.Spec.IncludeNotReadyPods)
			s.selects[platform] = true
			if v.Sel.Problem != "" {
				v.Why = v.Sel.Problem
				break
			}
			v.Bound = &routerconfig.Attached{Name: b.Metadata.Name, Namespace: a, RoutingKey: b.Spec.RoutingKey, Port: ac.Spec.Port, Targets: v.Sel.Targets}
		}
		if v.Bound != nil {
			bound[b.Metadata.Name] = v.Bound
		}
		s.Bindings[b.Metadata.Name] = v
	}
	s.cache.bound = bound
}

// attachedViews works out, for every AttachedConnector of s's namespace,
// whether the site it names binds it, and the containers it selects on
// that site's platform.
func (r *Reconciler) attachedViews(ctx context.Context, s *siteState) {
	s.Attached = map[string]pass.AttachedView{}
	for _, ac := range s.Namespace.Attached {
		b, v := ac.Spec.SiteNamespace, pass.AttachedView{Site: ac.Spec.SiteNamespace}
		p := r.readPeer(s, b)
		found, invalid := p.find(resources.KindAttachedConnectorBinding, ac.Metadata.Name)
		binding, _ := found.(*resources.AttachedConnectorBinding)
		switch {
		case !p.exists:
			v.Why = "no namespace directory " + b + " (spec.siteNamespace) with input/resources"
		case invalid != "":
			v.Why = invalid
		case binding == nil:
			v.Why = "no AttachedConnectorBinding " + ac.Metadata.Name + " in namespace " + b + " binds it"
		case binding.Spec.ConnectorNamespace != s.Dir.Name:
			v.Why = "AttachedConnectorBinding " + ac.Metadata.Name + " in namespace " + b + " binds the AttachedConnector of namespace " + binding.Spec.ConnectorNamespace + ", not this one"
		case p.ns.Site == nil:
			v.Why = "namespace " + b + " has no valid Site yet"
		default:
			v.RoutingKey = binding.Spec.RoutingKey
			v.Sel = r.selectOn(ctx, s, p.platform, ac.Spec.Selector, ac.Spec.IncludeNotReadyPods)
			s.selects[p.platform] = true
			if v.Sel.Problem != "" {
				v.Why = "the site of namespace " + b + " runs on " + p.platform + ": " + v.Sel.Problem
			}
		}
		s.Attached[ac.Metadata.Name] = v
	}
}

// Readers are the namespaces whose passes read namespace ns's resources
// (the peers of its AttachedConnectors and bindings): when ns's files
// change they need a pass too.
func (r *Reconciler) Readers(ns string) []string {
	var out []string
	r.eachOwner(func(o *owner) {
		o.mu.Lock()
		if o.reads[ns] && o.name != ns {
			out = append(out, o.name)
		}
		o.mu.Unlock()
	})
	slices.Sort(out)
	return out
}
