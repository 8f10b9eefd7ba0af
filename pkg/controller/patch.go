package controller

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"time"

	"github.com/site-controller/site-controller/pkg/lastgood"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/netview"
	"github.com/site-controller/site-controller/pkg/pass"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/site"
	"github.com/site-controller/site-controller/pkg/status"
)

// A pass told which files changed, when they hold Listeners and
// Connectors only, is a patch of the pass before it (patchPass): the
// changed files are read, their resources checked, rendered, sent to the
// router and their statuses written, with those of the resources of the
// same routing keys; nothing else of the namespace is looked at. Any
// other pass, and any change a patch cannot stand for, is a full pass
// over the namespace, which keeps what the next patch starts from
// (kept).

// kept is what a full pass leaves for patches: the namespace, the site
// and the result as that pass (or the patches since) left them.
type kept struct {
	ns       *resources.Namespace
	desired  *site.Desired
	res      Result
	platform string
	// view is the network view the statuses were worked out with
	view *netview.View
	// uid and gid own the router configuration
	uid, gid int
	// entities counts the router's listeners and connectors of every
	// kind, and limit is its open files limit (0: unknown)
	entities int
	limit    uint64
	// keys index the Listeners' and Connectors' documents by routing key
	keys *keyIndex
}

// keyIndex holds the Listener and Connector documents by routing key, and
// the keys that have a Listener (a MultiKeyListener's included) or a
// Connector rendered, as Statuses works them out.
type keyIndex struct {
	listeners, connectors       map[string][]*resources.Document
	mkl                         map[string]bool
	listenerKeys, connectorKeys map[string]bool
}

func indexKeys(ns *resources.Namespace) *keyIndex {
	k := &keyIndex{listeners: map[string][]*resources.Document{}, connectors: map[string][]*resources.Document{},
		mkl: map[string]bool{}, listenerKeys: map[string]bool{}, connectorKeys: map[string]bool{}}
	for _, l := range ns.Listeners {
		k.add(ns.DocumentOf(l))
	}
	for _, c := range ns.Connectors {
		k.add(ns.DocumentOf(c))
	}
	for _, m := range ns.MultiKeyListeners {
		for _, key := range routingKeys(m) {
			k.mkl[key], k.listenerKeys[key] = true, true
		}
	}
	return k
}

// routingKeys are the keys of a MultiKeyListener.
func routingKeys(m *resources.MultiKeyListener) []string {
	if p := m.Spec.Strategy.Priority; p != nil {
		return p.RoutingKeys
	}
	if w := m.Spec.Strategy.Weighted; w != nil {
		return slices.Sorted(maps.Keys(w.RoutingKeys))
	}
	return nil
}

func routingKeyOf(d *resources.Document) (string, bool) {
	switch o := d.Object.(type) {
	case *resources.Listener:
		return o.Spec.RoutingKey, true
	case *resources.Connector:
		return o.Spec.RoutingKey, false
	}
	return "", false
}

func (k *keyIndex) add(d *resources.Document) {
	key, listener := routingKeyOf(d)
	if listener {
		k.listeners[key] = append(k.listeners[key], d)
		k.listenerKeys[key] = true
	} else {
		k.connectors[key] = append(k.connectors[key], d)
		k.connectorKeys[key] = true
	}
}

func (k *keyIndex) remove(d *resources.Document) {
	key, listener := routingKeyOf(d)
	drop := func(m map[string][]*resources.Document, set map[string]bool, keep bool) {
		m[key] = slices.DeleteFunc(m[key], func(x *resources.Document) bool { return x == d })
		if len(m[key]) == 0 {
			delete(m, key)
			if !keep {
				delete(set, key)
			}
		}
	}
	if listener {
		drop(k.listeners, k.listenerKeys, k.mkl[key])
	} else {
		drop(k.connectors, k.connectorKeys, false)
	}
}

// keep records what the full pass s leaves for patches, or nothing when
// a patch could not follow it.
func (r *Reconciler) keep(s *siteState, platform string) {
	o, ns, res := s.owner, s.Namespace, s.Result
	o.kept = nil
	if ns.Site == nil || s.Desired == nil || res.Config == nil || len(s.Incomplete) > 0 || res.RouterErr != nil ||
		len(ns.Tokens) > 0 || len(ns.Grants) > 0 || len(ns.Bindings) > 0 || len(ns.Attached) > 0 ||
		len(s.Selections) > 0 || len(s.reads) > 0 || len(s.selects) > 0 || resources.HasErrors(ns.Problems) {
		return
	}
	if !res.RenderOnly && (res.Live == nil || res.LiveErr != nil || len(res.Live.Refused) > 0) {
		return
	}
	k := &kept{ns: ns, desired: s.Desired, res: *res, platform: platform, view: s.View, uid: s.uid, gid: s.gid, keys: indexKeys(ns)}
	k.res.Changed, k.res.Phases = nil, Phases{}
	if o.room != nil && res.Router != nil && res.Router.Running {
		k.entities, k.limit = o.room.entities, o.room.limit
	}
	o.kept = k
}

// patchPass runs the pass over namespace directory dir told that the
// files changed alone changed, as a patch of the last pass (kept); false,
// with the next pass left to be a full one, when it cannot stand for a
// full pass.
func (r *Reconciler) patchPass(ctx context.Context, o *owner, dir namespace.Dir, changed []string) (*Result, bool, error) {
	k := o.kept
	if k == nil || len(changed) == 0 || o.refresh.Load() {
		return nil, false, nil
	}
	// from here on what was kept is being changed: a refusal leaves a
	// full pass to build it all again
	o.kept = nil
	start := time.Now()
	res := k.res
	if !res.RenewAt.IsZero() && !r.opts.Now().Before(res.RenewAt) {
		return nil, false, nil // a certificate is due
	}
	if res.Upgrading != "" || res.UpgradePending != "" || o.refused || o.view() != k.view {
		return nil, false, nil
	}
	if !res.RenderOnly {
		if !r.opts.Live || o.ensured == nil || time.Since(o.ensured.at) >= ensureAfter || !o.session.Alive() {
			return nil, false, nil // the runtime is due to be asked
		}
	}
	if recorded, err := dir.Platform(); err != nil || cmpOr(recorded, r.opts.Platform) != k.platform {
		return nil, false, nil
	}
	files, ok := dir.ReadChanged(r.opts.MaxFileSize, &o.cache.files, changed)
	if !ok {
		return nil, false, nil
	}
	docs := make(map[string][]*resources.Document, len(files))
	for p, f := range files {
		if f == nil {
			docs[p] = []*resources.Document{}
			continue
		}
		if f.Broken != "" || f.Empty || len(f.Problems) > 0 {
			return nil, false, nil // last good content, or a file that holds nothing yet
		}
		docs[p] = f.Docs
	}
	ns, before, ok := k.ns.Patch(docs)
	if !ok {
		return nil, false, nil
	}
	var gone, added []resources.Object
	var goneDocs, addedDocs []*resources.Document
	for _, d := range before {
		gone, goneDocs = append(gone, d.Object), append(goneDocs, d)
	}
	for _, p := range slices.Sorted(maps.Keys(docs)) {
		for _, d := range docs[p] {
			added, addedDocs = append(added, d.Object), append(addedDocs, d)
		}
	}
	// what the router would now have to listen on and connect to
	entities := k.entities
	for _, o := range added {
		if l, ok := o.(*resources.Listener); ok && l.Spec.Port < 1024 {
			return nil, false, nil // a low port: the router may need restarting with the capability
		}
		entities++
	}
	entities -= len(gone)
	if k.limit > 0 && k.limit < uint64(1024+4*entities) {
		return nil, false, nil // the Site says so: a full pass
	}
	others, err := dir.ManagementPorts(&r.ports)
	if err != nil {
		return nil, false, nil
	}
	desired, ok, err := k.desired.Patch(k.ns, ns, gone, added, others)
	if err != nil || !ok {
		return nil, false, err
	}
	// the ports of the Listeners, in the data home's registry
	drop, claims := portChanges(gone, added)
	grants, portsChanged, ok, err := dir.ChangePorts(&r.ports, drop, claims)
	if err != nil || !ok {
		return nil, false, err
	}
	for _, g := range grants {
		if g.HeldBy != "" {
			return nil, false, nil // another namespace holds it: a full pass says so
		}
	}
	r.portsSettled(o, false, portsChanged)
	// what cannot be made again is kept: the files' content
	if !lastgood.Record(o.good, o.identity, dir, files) {
		return nil, false, nil
	}
	res.Namespace, res.Config, res.Changed, res.Phases = ns, desired.Config, nil, Phases{}
	res.Patched, res.Removed, res.Added = true, goneDocs, addedDocs
	res.Phases.Read = time.Since(start)
	phase := time.Now()
	res.ConfigChanged = !bytes.Equal(desired.ConfigJSON, k.desired.ConfigJSON)
	if res.ConfigChanged {
		if err := site.ReplaceConfig(dir, desired, k.uid, k.gid); err != nil {
			return nil, false, err
		}
		res.Changed = append(res.Changed, "runtime/router/skrouterd.json")
	}
	res.Phases.Render = time.Since(phase)
	phase = time.Now()
	if !res.RenderOnly {
		want, goneNames := liveDelta(added, gone, k.platform)
		port, _ := desired.Config.ManagementPort()
		live, taken, err := o.session.ApplyDelta(ctx, port, want, goneNames, r.opts.ManagementTimeout)
		if !taken {
			return nil, false, nil
		}
		res.Live, res.LiveErr, res.Recheck = live, err, 0
		liveRecheck(&res, o, res.Router.Started)
		if err == nil && live.Applied > 0 {
			r.nets.PokeNetwork(dir.Name, res.SiteID)
		}
	}
	res.Phases.Apply = time.Since(phase)
	phase = time.Now()

	// the statuses of what changed, and of the resources of its routing
	// keys (whether they are matched may have changed with it)
	for _, d := range goneDocs {
		k.keys.remove(d)
	}
	for _, d := range addedDocs {
		k.keys.add(d)
	}
	dirty := slices.Clone(addedDocs)
	seen := map[*resources.Document]bool{}
	for _, d := range addedDocs {
		seen[d] = true
	}
	for _, d := range append(slices.Clone(goneDocs), addedDocs...) {
		key, listener := routingKeyOf(d)
		peers := k.keys.listeners[key]
		if listener {
			peers = k.keys.connectors[key]
		}
		for _, p := range peers {
			if !seen[p] {
				seen[p] = true
				dirty = append(dirty, p)
			}
		}
	}
	ps := &pass.Pass{Namespace: ns, Dir: dir, Now: r.opts.Now(), Result: &res, Desired: desired, View: k.view, Memo: &o.cache.statuses}
	entries, ok := ps.StatusesOf(dirty, goneDocs, k.keys.listenerKeys, k.keys.connectorKeys)
	if !ok {
		return nil, false, nil
	}
	var goneIDs []string
	for _, d := range goneDocs {
		if _, still := seenID(addedDocs, d); !still {
			goneIDs = append(goneIDs, d.Kind+"/"+d.Name)
		}
	}
	w := status.Writer{Dir: dir, Now: r.opts.Now, Memo: &o.cache.status}
	written, err := w.Update(entries, goneIDs)
	res.Changed = append(res.Changed, written...)
	slices.Sort(res.Changed)
	res.Phases.Status = time.Since(phase)
	if err != nil {
		return &res, true, err
	}
	k.ns, k.desired, k.res, k.entities = ns, desired, res, entities
	k.res.Changed, k.res.Phases, k.res.Patched, k.res.Removed, k.res.Added = nil, Phases{}, false, nil, nil
	o.kept = k
	return &res, true, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// seenID tells whether a document of d's Kind/name is among docs.
func seenID(docs []*resources.Document, d *resources.Document) (*resources.Document, bool) {
	for _, x := range docs {
		if x.Kind == d.Kind && x.Name == d.Name {
			return x, true
		}
	}
	return nil, false
}

// portChanges are the claims of the Listeners gone to release and of those
// added to make: those whose address did not change are left alone.
func portChanges(gone, added []resources.Object) ([]string, []namespace.PortClaim) {
	before, after := map[string]namespace.PortClaim{}, map[string]namespace.PortClaim{}
	for _, o := range gone {
		if l, ok := o.(*resources.Listener); ok {
			c := site.ListenerClaim(l)
			before[c.Key] = c
		}
	}
	for _, o := range added {
		if l, ok := o.(*resources.Listener); ok {
			c := site.ListenerClaim(l)
			after[c.Key] = c
		}
	}
	var drop []string
	var claims []namespace.PortClaim
	for _, key := range slices.Sorted(maps.Keys(before)) {
		if a, ok := after[key]; !ok || a != before[key] {
			drop = append(drop, key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(after)) {
		if b, ok := before[key]; !ok || b != after[key] {
			claims = append(claims, after[key])
		}
	}
	return drop, claims
}

// liveDelta is what the router must change for the resources gone and
// added: their entities now (expanded as the runtime's router reads
// them), and the names of those gone.
func liveDelta(added, gone []resources.Object, platform string) (map[string]map[string]routerconfig.Entity, map[string][]string) {
	var cfg routerconfig.Config
	for _, o := range added {
		e, _ := routerconfig.SimpleEntity(o)
		cfg = append(cfg, e)
	}
	if platform != "linux" {
		cfg = cfg.Expand(map[string]string{"SSL_PROFILE_BASE_PATH": "/etc/skupper-router"})
	}
	names := map[string][]string{}
	for _, o := range gone {
		e, _ := routerconfig.SimpleEntity(o)
		names[e.Type] = append(names[e.Type], e.Name())
	}
	return cfg.Live(), names
}
