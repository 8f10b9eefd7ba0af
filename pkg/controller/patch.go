package controller

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	// keys index the Listeners' and Connectors' documents by routing key;
	// others are the documents of every other kind (few: their statuses
	// follow the network view)
	keys   *keyIndex
	others []*resources.Document
}

// keyIndex holds the Listener and Connector documents by routing key, and
// the keys that have a Listener (a MultiKeyListener's included) or a
// Connector rendered, as Statuses works them out.
type keyIndex struct {
	listeners, connectors       map[string][]*resources.Document
	mkl                         map[string]bool
	listenerKeys, connectorKeys map[string]bool
	// byEntity are the Listeners' documents by tcpListener name
	byEntity map[string]*resources.Document
}

func indexKeys(ns *resources.Namespace) *keyIndex {
	k := &keyIndex{listeners: map[string][]*resources.Document{}, connectors: map[string][]*resources.Document{},
		mkl: map[string]bool{}, listenerKeys: map[string]bool{}, connectorKeys: map[string]bool{}, byEntity: map[string]*resources.Document{}}
	for _, l := range ns.Listeners {
		k.add(ns.DocumentOf(l))
	}
	for _, c := range ns.Connectors {
		k.add(ns.DocumentOf(c))
	}
	for _, m := range ns.MultiKeyListeners {
		for _, key := range pass.MultiKeys(m) {
			k.mkl[key], k.listenerKeys[key] = true, true
		}
	}
	return k
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
		k.byEntity[routerconfig.ListenerName(d.Object.(*resources.Listener))] = d
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
		if name := routerconfig.ListenerName(d.Object.(*resources.Listener)); k.byEntity[name] == d {
			delete(k.byEntity, name)
		}
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
	for _, d := range ns.Docs {
		if d.Kind != resources.KindListener && d.Kind != resources.KindConnector {
			k.others = append(k.others, d)
		}
	}
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
	if k == nil || changed == nil || o.refresh.Load() {
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
	if res.Upgrading != "" || res.UpgradePending != "" || o.refused {
		return nil, false, nil
	}
	if !o.cache.status.Holds(dir.RuntimeResources()) {
		return nil, false, nil // the status files were removed: a full pass writes them all
	}
	view := o.view()
	var listenersRead time.Time
	if res.Live != nil {
		listenersRead = res.Live.ListenersRead
	}
	viewDirty, ok := k.viewChanges(view, listenersRead)
	if !ok {
		return nil, false, nil
	}
	if !res.RenderOnly {
		if !r.opts.Live || o.ensured == nil || time.Since(o.ensured.at) >= ensureAfter || !o.session.Alive() {
			return nil, false, nil // the runtime is due to be asked
		}
	}
	if recorded, err := dir.Platform(); err != nil || cmp.Or(recorded, r.opts.Platform) != k.platform {
		return nil, false, nil
	}
	// the credentials the router reads are where the last pass wrote
	// them: one replaced (by a symbolic link, say) is a full pass's to
	// find and say
	for name := range k.desired.Credentials {
		if st, err := os.Lstat(filepath.Join(dir.RuntimeCerts(), name)); err != nil || !st.IsDir() {
			return nil, false, nil
		}
	}
	files := map[string]*namespace.File{}
	if len(changed) > 0 {
		// (told that no file changed, a pass follows the router and
		// the network alone)
		if files, ok = dir.ReadChanged(r.opts.MaxFileSize, &o.cache.files, changed); !ok {
			return nil, false, nil
		}
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
	r.portsSettled(o, false, portsChanged, 0)
	if !lastgood.Open(o.good, o.identity) {
		return nil, false, nil
	}
	if need := uint64(1024 + 4*entities); k.limit > 0 && (k.limit < need || k.limit < uint64(1024+4*k.entities)) {
		// the Site's warning of the router's open files limit says what
		// the site needs now
		desired, res.Problems = roomNow(desired, res.Problems, ns.Site, k.limit, need)
	}
	res.Namespace, res.Config, res.Changed, res.Phases = ns, desired.Config, nil, Phases{}
	res.Patched, res.Removed, res.Added = true, goneDocs, addedDocs
	res.Phases.Read = time.Since(start)
	// the router first: the files follow (a new process renders the
	// configuration again from the input)
	phase := time.Now()
	if !res.RenderOnly {
		want, goneNames := liveDelta(added, gone, k.platform)
		port, _ := desired.Config.ManagementPort()
		live, taken, err := o.session.ApplyDelta(ctx, port, want, goneNames, r.opts.ManagementTimeout)
		if !taken {
			return nil, false, nil
		}
		res.Live, res.LiveErr, res.Recheck = live, err, 0
		liveRecheck(&res, o, res.Router.Started)
		settling(&res, r.opts.Now())
		if err == nil && live.Applied > 0 {
			r.nets.PokeNetwork(dir.Name, res.SiteID)
		}
	}
	res.Phases.Apply = time.Since(phase)
	phase = time.Now()
	res.ConfigChanged = !bytes.Equal(desired.ConfigJSON, k.desired.ConfigJSON)
	if res.ConfigChanged {
		if err := site.ReplaceConfig(dir, desired, k.uid, k.gid); err != nil {
			return nil, false, err
		}
		res.Changed = append(res.Changed, "runtime/router/skrouterd.json")
	}
	// what cannot be made again is kept: the files' content
	lastgood.Record(o.good, o.identity, dir, files)
	res.Phases.Render = time.Since(phase)
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
	removed := map[*resources.Document]bool{}
	for _, d := range goneDocs {
		removed[d] = true
	}
	for _, d := range viewDirty {
		if !seen[d] && !removed[d] {
			seen[d] = true
			dirty = append(dirty, d)
		}
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
	ps := &pass.Pass{Namespace: ns, Dir: dir, Now: r.opts.Now(), Result: &res, Desired: desired, View: view, Memo: &o.cache.statuses}
	entries, ok := ps.StatusesOf(dirty, goneDocs, k.keys.listenerKeys, k.keys.connectorKeys)
	if !ok {
		return nil, false, nil
	}
	var goneIDs []string
	for _, d := range goneDocs {
		if !sameID(addedDocs, d) {
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
	k.ns, k.desired, k.res, k.entities, k.view = ns, desired, res, entities, view
	k.res.Changed, k.res.Phases, k.res.Patched, k.res.Removed, k.res.Added = nil, Phases{}, false, nil, nil
	o.kept = k
	return &res, true, nil
}

// sameID tells whether a document of d's Kind/name is among docs.
func sameID(docs []*resources.Document, d *resources.Document) bool {
	return slices.ContainsFunc(docs, func(x *resources.Document) bool { return x.Kind == d.Kind && x.Name == d.Name })
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

// viewChanges returns the documents whose status may differ between the
// network view the kept statuses follow and view: the Listeners whose
// tcpListener the views say is up in one and not the other, the
// Connectors of a routing key one view has a listener for and the other
// not, and every document of another kind (a Site's, a Link's status
// shows the network). It compares the two views' listeners, and looks at
// no status; false when a full pass must (a view newer than the router's
// listeners as read in one, older in the other, or none).
func (k *kept) viewChanges(view *netview.View, listenersRead time.Time) ([]*resources.Document, bool) {
	was := k.view
	if was == view {
		return nil, true
	}
	if was == nil || view == nil || was.Taken.After(listenersRead) != view.Taken.After(listenersRead) {
		return nil, false
	}
	out := slices.Clone(k.others)
	for name, up := range view.ListenerUp {
		if before, ok := was.ListenerUp[name]; !ok || before != up {
			if d := k.keys.byEntity[name]; d != nil {
				out = append(out, d)
			}
		}
	}
	for name := range was.ListenerUp {
		if _, ok := view.ListenerUp[name]; !ok {
			if d := k.keys.byEntity[name]; d != nil {
				out = append(out, d)
			}
		}
	}
	keys := map[string]bool{}
	for key, has := range view.Listeners {
		if was.Listeners[key] != has {
			keys[key] = true
		}
	}
	for key, had := range was.Listeners {
		if view.Listeners[key] != had {
			keys[key] = true
		}
	}
	for key := range keys {
		out = append(out, k.keys.connectors[key]...)
	}
	return out, true
}

// roomNow returns the site and the pass's problems with the Site's warning
// of the router's open files limit for what it needs now (none when the
// limit is enough).
func roomNow(d *site.Desired, problems []resources.Problem, s *resources.Site, limit, need uint64) (*site.Desired, []resources.Problem) {
	room := func(p resources.Problem) bool { return p.Warning && strings.HasPrefix(p.Message, roomWarning) }
	out := *d
	out.Failed = maps.Clone(d.Failed)
	if out.Failed == nil {
		out.Failed = map[resources.Object][]resources.Problem{}
	}
	out.Failed[s] = slices.DeleteFunc(slices.Clone(out.Failed[s]), room)
	problems = slices.DeleteFunc(slices.Clone(problems), room)
	if limit < need {
		p := roomProblem(s, limit, need)
		out.Failed[s] = append(out.Failed[s], p)
		problems = append(problems, p)
		resources.SortProblems(problems)
	}
	if len(out.Failed[s]) == 0 {
		delete(out.Failed, s)
	}
	return &out, problems
}
