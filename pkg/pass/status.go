package pass

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/netview"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/site"
	"github.com/site-controller/site-controller/pkg/status"
	"github.com/site-controller/site-controller/pkg/tokens"
	"github.com/site-controller/site-controller/pkg/yamlstr"
)

// Statuses works out the status of every resource document of the pass
// (and of the RouterAccesses the site makes for itself), in the order of
// the documents.
func (s *Pass) Statuses() []status.Entry {
	ns := s.Namespace
	var failed map[resources.Object][]resources.Problem
	if s.Desired != nil {
		failed = s.Desired.Failed
	}
	listenerKeys := map[string]bool{}
	connectorKeys := map[string]bool{}
	for _, l := range ns.Listeners {
		if failed[l] == nil {
			listenerKeys[l.Spec.RoutingKey] = true
		}
	}
	for _, m := range ns.MultiKeyListeners {
		if failed[m] == nil {
			for _, k := range MultiKeys(m) {
				listenerKeys[k] = true
			}
		}
	}
	for _, c := range ns.Connectors {
		if failed[c] == nil {
			connectorKeys[c.Spec.RoutingKey] = true
		}
	}
	for _, b := range ns.Bindings {
		if v := s.Bindings[b.Metadata.Name]; v.Bound != nil && len(v.Bound.Targets) > 0 {
			connectorKeys[b.Spec.RoutingKey] = true
		}
	}
	// problems of duplicate definitions are shown on the first one
	type id struct{ kind, name string }
	firstDoc := make(map[id]*resources.Document, len(ns.Docs))
	extra := map[*resources.Document][]string{}
	for _, d := range ns.Docs {
		key := id{d.Kind, d.Name}
		if f, ok := firstDoc[key]; ok {
			extra[f] = append(extra[f], fmt.Sprintf("another definition at %s:%d is ignored", d.File, d.Line))
			continue
		}
		firstDoc[key] = d
	}

	memo := s.Memo.begin(s)
	defer memo.end()
	entries := make([]status.Entry, 0, len(ns.Docs)+1+len(ns.RouterAccess))
	for _, d := range ns.Docs {
		if firstDoc[id{d.Kind, d.Name}] != d {
			continue
		}
		entries = append(entries, s.entry(memo, d, failed, listenerKeys, connectorKeys, extra[d]))
	}
	if ns.Site != nil && s.Result.Config != nil {
		entries = append(entries, localAccessEntry(s))
		if s.Desired != nil {
			for _, a := range s.Desired.Accesses {
				if a.Resource == nil {
					entries = append(entries, s.linkAccessEntry(a))
				}
			}
		}
	}
	return entries
}

// entry is the status entry of document d (the first of its Kind/name;
// extra says where the others are), through memo when it has one.
func (s *Pass) entry(memo *Memo, d *resources.Document, failed map[resources.Object][]resources.Problem, listenerKeys, connectorKeys map[string]bool, extra []string) status.Entry {
	probs := s.Namespace.ProblemsOf(d)
	if d.Object != nil {
		probs = append(probs, failed[d.Object]...)
	}
	if len(probs) == 0 && len(extra) == 0 && memo != nil {
		if e, ok := s.memoized(memo, d, listenerKeys, connectorKeys); ok {
			return e
		}
	}
	st := s.resourceStatus(d, probs, listenerKeys, connectorKeys)
	if len(extra) > 0 {
		st.Message = JoinMessage(st.Message, strings.Join(extra, "; "))
	}
	if d.Kind == resources.KindSecret {
		// a Secret's status never echoes its data: status files are
		// readable by anyone
		echo, keys := secretEcho(d)
		if keys != "" {
			st.Message = JoinMessage(st.Message, "holds "+keys)
		}
		return status.Entry{Kind: d.Kind, Name: d.Name, Object: echo, Status: st}
	}
	// a grant's status and a token as read hold their code
	private := d.Kind == resources.KindAccessGrant || d.Kind == resources.KindAccessToken
	return status.Entry{Kind: d.Kind, Name: d.Name, Raw: d.Raw, Node: d.Node, Status: st, Private: private}
}

// StatusesOf works out the status entries of some documents of the pass
// (each the only one of its Kind/name), of its Site and of the
// RouterAccesses it makes for itself, through the memo,
// and forgets the documents in gone: what a pass that knows which
// resources changed writes. listenerKeys and connectorKeys are the
// routing keys that have a Listener and a Connector rendered. False when
// the memo cannot serve this pass (another context than its last pass's:
// Statuses then).
func (s *Pass) StatusesOf(docs, gone []*resources.Document, listenerKeys, connectorKeys map[string]bool) ([]status.Entry, bool) {
	m := s.Memo
	if m == nil || m.docs == nil || m.context(s) != m.ctx || m.ctx.refusals || !m.ctx.site {
		return nil, false
	}
	for _, d := range gone {
		delete(m.docs, d)
	}
	var failed map[resources.Object][]resources.Problem
	if s.Desired != nil {
		failed = s.Desired.Failed
	}
	out := make([]status.Entry, 0, len(docs)+1)
	out = append(out, s.entry(nil, s.Namespace.DocumentOf(s.Namespace.Site), failed, listenerKeys, connectorKeys, nil))
	for _, d := range docs {
		out = append(out, s.entry(m, d, failed, listenerKeys, connectorKeys, nil))
	}
	// the RouterAccesses the site makes for itself (their statuses show
	// the network)
	if s.Result.Config != nil {
		out = append(out, localAccessEntry(s))
		if s.Desired != nil {
			for _, a := range s.Desired.Accesses {
				if a.Resource == nil {
					out = append(out, s.linkAccessEntry(a))
				}
			}
		}
	}
	return out, true
}

// Memo keeps, from one pass over a namespace to the next, the status of
// each Listener and Connector (with a host) that has no problem: the
// status follows from its document, the pass's context and its facts, so
// a pass works out again only those whose document or facts changed
// (thousands stay as they were when one file changed). A pass with
// another context forgets it all.
type Memo struct {
	ctx  memoCtx
	docs map[*resources.Document]memoStatus
	pass uint64
}

type memoStatus struct {
	facts facts
	entry status.Entry
	pass  uint64
}

// memoCtx is what every memoized status follows from besides its own
// document and facts: whether the namespace has a Site, and what the pass
// knows of the router (why its statuses are only rendered, why its
// management did not answer, whether it refused anything).
type memoCtx struct {
	site           bool
	why, liveErr   string
	live, refusals bool
}

// begin starts a pass's use of the memo; nil when there is none or it
// cannot serve this pass (refusals name resources one by one).
func (m *Memo) begin(s *Pass) *Memo {
	if m == nil {
		return nil
	}
	ctx := m.context(s)
	if ctx != m.ctx || m.docs == nil || ctx.refusals || !ctx.site {
		m.docs = map[*resources.Document]memoStatus{}
	}
	m.ctx = ctx
	m.pass++
	if ctx.refusals || !ctx.site {
		return nil
	}
	return m
}

// context is the memo's context in pass s.
func (m *Memo) context(s *Pass) memoCtx {
	ctx := memoCtx{site: s.Namespace.Site != nil, live: s.Result.Live != nil}
	if st, ok := rendered(s.Result, 0, ""); ok {
		ctx.why = st.Message
	}
	if s.Result.LiveErr != nil {
		ctx.liveErr = s.Result.LiveErr.Error()
	}
	ctx.refusals = s.Result.Live != nil && len(s.Result.Live.Refused) > 0
	return ctx
}

// end forgets the documents this pass did not look at (gone).
func (m *Memo) end() {
	if m == nil {
		return
	}
	for d, e := range m.docs {
		if e.pass != m.pass {
			delete(m.docs, d)
		}
	}
}

// memoized returns the status entry of document d (without problems)
// from the memo, or works it out and keeps it; false when its status is
// not memoized (other kinds, Connectors that select).
func (s *Pass) memoized(m *Memo, d *resources.Document, listenerKeys, connectorKeys map[string]bool) (status.Entry, bool) {
	var f facts
	switch o := d.Object.(type) {
	case *resources.Listener:
		f = s.listenerFacts(o, connectorKeys)
	case *resources.Connector:
		if o.Spec.Host == "" {
			return status.Entry{}, false
		}
		f = s.connectorFacts([]string{routerconfig.ConnectorName(o)}, o.Spec.RoutingKey, listenerKeys)
	default:
		return status.Entry{}, false
	}
	if e, ok := m.docs[d]; ok && e.facts == f {
		e.pass = m.pass
		m.docs[d] = e
		e.entry.Known = true
		return e.entry, true
	}
	e := status.Entry{Kind: d.Kind, Name: d.Name, Raw: d.Raw, Node: d.Node, Status: s.resourceStatus(d, nil, listenerKeys, connectorKeys)}
	m.docs[d] = memoStatus{facts: f, entry: e, pass: m.pass}
	return e, true
}

// secretShape is what a Secret's status file shows of it: no data.
type secretShape struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   map[string]string `yaml:"metadata"`
	Type       string            `yaml:"type,omitempty"`
}

// secretEcho returns a Secret without its data, and the names of the keys
// it holds.
func secretEcho(d *resources.Document) (secretShape, string) {
	shape := secretShape{APIVersion: d.APIVersion, Kind: d.Kind, Metadata: map[string]string{"name": d.Name}}
	sec, ok := d.Object.(*resources.Secret)
	if !ok {
		return shape, ""
	}
	shape.Type = sec.Type
	if sec.Metadata.Namespace != "" {
		shape.Metadata["namespace"] = sec.Metadata.Namespace
	}
	var keys []string
	for k := range sec.Data {
		keys = append(keys, k)
	}
	for k := range sec.StringData {
		if _, dup := sec.Data[k]; !dup {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return shape, strings.Join(keys, ", ")
}

// JoinMessage joins two parts of a status message, either of which may
// be empty.
func JoinMessage(a, b string) string {
	if b == "" {
		return a
	}
	if a == "" || a == "OK" {
		return b
	}
	return a + "; " + b
}

func boolPtr(b bool) *bool { return &b }

// Cond is a condition of type typ, True when ok.
func Cond(typ string, ok bool, reason, msg string, gen int64) status.Condition {
	v := "False"
	if ok {
		v = "True"
	}
	return status.Condition{Type: typ, Status: v, Reason: reason, Message: msg, ObservedGeneration: gen}
}

// resourceStatus computes the status of one resource document.
func (s *Pass) resourceStatus(d *resources.Document, probs []resources.Problem, listenerKeys, connectorKeys map[string]bool) status.Status {
	ns := s.Namespace
	var gen int64
	if d.Object != nil {
		gen = resources.Generation(d.Object)
	}
	var warnings []string
	var errs []string
	for _, p := range probs {
		if p.Warning {
			warnings = append(warnings, p.Short())
		} else {
			errs = append(errs, p.Short())
		}
	}
	if len(errs) > 0 {
		msg := strings.Join(append(errs, warnings...), "; ")
		if d.Kind == resources.KindSite && s.Result.Router != nil && s.Result.Router.Running {
			msg += "; the router keeps running with the last good configuration"
		}
		return status.Status{
			Status:     status.Error,
			Message:    msg,
			Conditions: []status.Condition{Cond(status.Configured, false, "Error", msg, gen), Cond(status.ReadyCond, false, "Error", msg, gen)},
		}
	}
	warn := strings.Join(warnings, "; ")
	if ns.Site == nil && d.Kind != resources.KindSite && d.Kind != resources.KindSecret && d.Kind != resources.KindAttachedConnector {
		msg := JoinMessage("waiting for a Site: the namespace has no valid Site resource", warn)
		return status.Status{
			Status:     status.Pending,
			Message:    msg,
			Conditions: []status.Condition{Cond(status.Configured, false, "NoSite", msg, gen), Cond(status.ReadyCond, false, "NoSite", msg, gen)},
		}
	}
	configured := Cond(status.Configured, true, "Configured", "OK", gen)
	if err := refusalOf(s, d.Object); err != nil {
		msg := JoinMessage("the router refused it: "+err.Error()+"; retrying", warn)
		return status.Status{Status: status.Error, Message: msg, Conditions: []status.Condition{
			Cond(status.Configured, false, "Refused", msg, gen), Cond(status.ReadyCond, false, "Refused", msg, gen)}}
	}
	switch o := d.Object.(type) {
	case *resources.Site:
		st := siteStatus(s.Result, configured, gen, s.Now)
		s.networkStatus(&st)
		st.Message = JoinMessage(st.Message, warn)
		if n := fileProblems(ns); n != "" {
			st.Message = JoinMessage(st.Message, n)
		}
		return st
	case *resources.Listener:
		return s.listenerStatus(o, s.listenerFacts(o, connectorKeys), warn, gen)
	case *resources.Connector:
		var pods []status.SelectedPod
		if o.Spec.Host == "" {
			sel := s.Selections[o.Metadata.Name]
			if len(sel.Targets) == 0 {
				return noTargets(sel.None, warn, gen)
			}
			pods, warn = sel.Pods, JoinMessage(sel.Left, warn)
		}
		entities := connectorEntities(s, o)
		st := s.connectorStatus(s.connectorFacts(entities, o.Spec.RoutingKey, listenerKeys), o.Spec.RoutingKey, configured, warn, gen)
		st.SelectedPods = pods
		return st
	case *resources.AttachedConnectorBinding:
		v := s.Bindings[o.Metadata.Name]
		if v.Bound == nil {
			return notBound(v.Why, warn, gen)
		}
		if len(v.Bound.Targets) == 0 {
			return noTargets(v.Sel.None, warn, gen)
		}
		warn = JoinMessage(v.Sel.Left, warn)
		st := s.connectorStatus(s.connectorFacts(attachedEntities(*v.Bound), o.Spec.RoutingKey, listenerKeys), o.Spec.RoutingKey, configured, warn, gen)
		st.SelectedPods = v.Sel.Pods
		return st
	case *resources.AttachedConnector:
		v := s.Attached[o.Metadata.Name]
		switch {
		case v.Why != "":
			return notBound(v.Why, warn, gen)
		case len(v.Sel.Targets) == 0:
			return noTargets(v.Sel.None, warn, gen)
		}
		msg := JoinMessage(fmt.Sprintf("bound to the site of namespace %s with routing key %s", v.Site, v.RoutingKey), JoinMessage(v.Sel.Left, warn))
		return status.Status{Status: status.Ready, Message: msg, SelectedPods: v.Sel.Pods, Conditions: []status.Condition{
			Cond(status.Configured, true, "Bound", msg, gen), Cond(status.ReadyCond, true, "Ready", msg, gen)}}
	case *resources.RouterAccess:
		return s.accessStatus(s.Desired.Access(o), warn, gen)
	case *resources.Link:
		return s.linkStatus(o, warn, gen)
	case *resources.MultiKeyListener:
		return s.multiKeyStatus(o, connectorKeys, warn, gen)
	case *resources.Certificate:
		return certificateStatus(s, o, warn, gen)
	case *resources.AccessGrant:
		return grantStatus(s.Grants[o.Metadata.Name], s.Now, warn, gen)
	case *resources.AccessToken:
		return tokenStatus(s.Tokens[o.Metadata.Name], o, warn, gen)
	}
	return status.Status{Status: status.Ready, Message: JoinMessage("OK", warn), Conditions: []status.Condition{Cond(status.ReadyCond, true, "Ready", "OK", gen)}}
}

// facts are what the status of a Listener, or of the tcpConnectors of a
// Connector or bound AttachedConnector, follows from in a pass besides its
// document and the pass's context (memoCtx): whether it is matched and,
// with a live router, whether the router has it.
type facts struct{ matched, present bool }

// listenerFacts are Listener o's facts in this pass.
func (s *Pass) listenerFacts(o *resources.Listener, connectorKeys map[string]bool) facts {
	live := s.Result.Live
	if live == nil || s.Result.LiveErr != nil {
		return facts{matched: connectorKeys[o.Spec.RoutingKey], present: true}
	}
	name := routerconfig.ListenerName(o)
	present, up := live.ListenerUp(name)
	if view := s.View; view != nil && view.Taken.After(live.ListenersRead) {
		// the network observer read the router since: newer
		if v, ok := view.ListenerUp[name]; ok {
			up = v
		}
	}
	return facts{matched: up, present: present}
}

// listenerStatus is the status of Listener o with facts f.
func (s *Pass) listenerStatus(o *resources.Listener, f facts, warn string, gen int64) status.Status {
	return s.tcpStatus(f, Cond(status.Configured, true, "Configured", "OK", gen), "no matching connector for routing key "+o.Spec.RoutingKey,
		"no connector for routing key "+o.Spec.RoutingKey+" is reachable in the network", warn, gen,
		func(st *status.Status, m bool) { st.HasMatchingConnector = boolPtr(m) })
}

// tcpStatus is the status of a Listener's, a Connector's or a bound
// AttachedConnector's entities with facts f: unmatched says why they are
// not matched while no router confirms them, liveUnmatched while one does;
// set records in the status whether they are.
func (s *Pass) tcpStatus(f facts, configured status.Condition, unmatched, liveUnmatched, warn string, gen int64, set func(*status.Status, bool)) status.Status {
	if st, ok := liveStatus(s.Result, gen); ok {
		return st
	} else if st, ok := rendered(s.Result, gen, warn); ok {
		return st
	} else if s.Result.Live != nil {
		if !f.present {
			return notInRouter(gen, warn)
		}
		unmatched = liveUnmatched
		configured = Cond(status.Configured, true, "Configured", "in the router", gen)
	}
	return matchedStatus(configured, f.matched, unmatched, warn, gen, func(st *status.Status) { set(st, f.matched) })
}

// connectorFacts are the facts of tcpConnectors entities for routingKey
// in this pass.
func (s *Pass) connectorFacts(entities []string, routingKey string, listenerKeys map[string]bool) facts {
	view := s.View
	live := s.Result.Live
	if live == nil || s.Result.LiveErr != nil {
		return facts{matched: listenerKeys[routingKey] || (view != nil && view.Listeners[routingKey]), present: true}
	}
	for _, name := range entities {
		if _, present := live.Entities["tcpConnector"][name]; !present {
			return facts{}
		}
	}
	return facts{matched: live.HasListenerFor(routingKey) || (view != nil && view.Listeners[routingKey]), present: true}
}

// connectorStatus is the status of the tcpConnectors for routingKey (a
// Connector's, or a bound AttachedConnector's) with facts f.
func (s *Pass) connectorStatus(f facts, routingKey string, configured status.Condition, warn string, gen int64) status.Status {
	return s.tcpStatus(f, configured, "no matching listener for routing key "+routingKey, "no listener for routing key "+routingKey+" in the network",
		warn, gen, func(st *status.Status, m bool) { st.HasMatchingListener = boolPtr(m) })
}

// noTargets is the status of a selector that selects nothing.
func noTargets(why, warn string, gen int64) status.Status {
	msg := JoinMessage(why, warn)
	return status.Status{Status: status.Pending, Message: msg, Conditions: []status.Condition{
		Cond(status.Configured, false, "NoMatchingContainers", msg, gen), Cond(status.ReadyCond, false, "NoMatchingContainers", msg, gen)}}
}

// notBound is the status of an AttachedConnector or binding whose other
// side does not agree.
func notBound(why, warn string, gen int64) status.Status {
	msg := JoinMessage(why, warn)
	return status.Status{Status: status.Pending, Message: msg, Conditions: []status.Condition{
		Cond(status.Configured, false, "NotBound", msg, gen), Cond(status.ReadyCond, false, "NotBound", msg, gen)}}
}

// connectorEntities are the tcpConnectors of Connector c in this pass.
func connectorEntities(s *Pass, c *resources.Connector) []string {
	if c.Spec.Host != "" {
		return []string{routerconfig.ConnectorName(c)}
	}
	var out []string
	for _, t := range s.Selections[c.Metadata.Name].Targets {
		out = append(out, routerconfig.TargetConnectorName(c, t))
	}
	return out
}

// attachedEntities are the tcpConnectors of a bound AttachedConnector.
func attachedEntities(a routerconfig.Attached) []string {
	var out []string
	for _, t := range a.Targets {
		out = append(out, routerconfig.AttachedConnectorName(a, t))
	}
	return out
}

// liveStatus is the status of a Listener or Connector whose router runs
// but could not be reached over management: not confirmed.
func liveStatus(res *Result, gen int64) (status.Status, bool) {
	if res.LiveErr == nil {
		return status.Status{}, false
	}
	msg := "not confirmed by the router: its management is not reachable (" + res.LiveErr.Error() + "); retrying"
	return status.Status{Status: status.Pending, Message: msg, Conditions: []status.Condition{
		Cond(status.Configured, false, "RouterUnreachable", msg, gen), Cond(status.ReadyCond, false, "RouterUnreachable", msg, gen)}}, true
}

// rendered is the status of a Listener or Connector that no router
// confirms: it is in the rendered configuration, and that is all that is
// known; whether it is matched only a router can say.
func rendered(res *Result, gen int64, warn string) (status.Status, bool) {
	var why string
	switch {
	case res.Live != nil:
		return status.Status{}, false
	case res.RenderOnly:
		why = "no router: " + renderOnly(res)
	case res.RouterErr != nil:
		why = "no router: " + res.RouterErr.Error()
	case res.Router != nil && !res.Router.Running:
		why = "no router running: " + cmp.Or(res.Router.Message, "the router is "+res.Router.Status)
	case res.Router != nil:
		why = "not confirmed by the router: live management is off"
	default:
		why = "no router: its state is unknown"
	}
	msg := JoinMessage("rendered; "+why, warn)
	return status.Status{Status: status.Pending, Message: msg, Conditions: []status.Condition{
		Cond(status.Configured, true, "Rendered", "in the rendered router configuration", gen),
		Cond(status.ReadyCond, false, "NoRouter", why, gen)}}, true
}

// renderOnly says why a pass started no router.
func renderOnly(res *Result) string {
	if res.Platform == "none" {
		return "platform none renders configuration and status only"
	}
	return "rendered only (no runtime for platform " + res.Platform + " in this command)"
}

func notInRouter(gen int64, warn string) status.Status {
	msg := "not in the router: the last change was not applied"
	return status.Status{Status: status.Pending, Message: JoinMessage(msg, warn), Conditions: []status.Condition{
		Cond(status.Configured, false, "NotConfigured", msg, gen), Cond(status.ReadyCond, false, "NotConfigured", msg, gen)}}
}

// siteStatus is the status of a valid Site: whether its router runs.
// loadTime is how long after its start a router's management may still be
// busy loading its configuration (tens of seconds for thousands of
// entities).
const loadTime = 2 * time.Minute

func siteStatus(res *Result, configured status.Condition, gen int64, now time.Time) status.Status {
	var msg, reason string
	st := status.Status{Status: status.Pending}
	switch {
	case res.RenderOnly:
		msg, reason = "router not started: "+renderOnly(res), "RenderOnly"
	case res.RouterErr != nil:
		st.Status = status.Error
		msg, reason = "router on "+res.Platform+": "+res.RouterErr.Error(), "RuntimeError"
	case res.Router != nil && res.Router.Running && res.LiveErr != nil && res.Upgrading != "":
		msg, reason = "restarting the router for "+res.Upgrading+": its management is not reachable yet: "+res.LiveErr.Error(), "Upgrading"
	case res.Router != nil && res.Router.Running && res.LiveErr != nil && !res.Router.Started.IsZero() && now.Sub(res.Router.Started) < loadTime:
		// a router answers nothing until it has loaded its configuration
		msg, reason = fmt.Sprintf("router running on %s, loading %d entities (started %s ago); it answers once it has: %v",
			res.Platform, len(res.Config), now.Sub(res.Router.Started).Round(time.Second), res.LiveErr), "Loading"
	case res.Router != nil && res.Router.Running && res.LiveErr != nil:
		msg, reason = "router running on "+res.Platform+", but its management is not reachable yet: "+res.LiveErr.Error(), "ManagementUnreachable"
	case res.Router != nil && res.Router.Running:
		running := "router running on " + res.Platform
		if res.Live != nil {
			running += ", managed live"
		}
		if res.Restarted != "" {
			running += "; restarted because " + res.Restarted
		}
		st.Status = status.Ready
		st.Message = "OK"
		if res.Restarted != "" {
			st.Message = "OK; router restarted because " + res.Restarted
		}
		if res.UpgradePending != "" {
			st.Message += "; " + res.UpgradePending
			running += "; " + res.UpgradePending
		}
		st.Conditions = []status.Condition{configured,
			Cond(status.Running, true, "Running", running, gen),
			Cond(status.ReadyCond, true, "Ready", "OK", gen)}
		return st
	case res.Router != nil:
		msg, reason = res.Router.Message, "NotRunning"
		if msg == "" {
			msg = "router is " + res.Router.Status
		}
		if res.Upgrading != "" {
			msg, reason = "restarting the router for "+res.Upgrading+": "+msg, "Upgrading"
		}
	default:
		msg, reason = "router state unknown", "Unknown"
	}
	st.Message = msg
	st.Conditions = []status.Condition{configured, Cond(status.Running, false, reason, msg, gen), Cond(status.ReadyCond, false, reason, msg, gen)}
	return st
}

func matchedStatus(configured status.Condition, matched bool, unmatched, warn string, gen int64, set func(*status.Status)) status.Status {
	st := status.Status{}
	if matched {
		st.Status = status.Ready
		st.Message = JoinMessage("OK", warn)
		st.Conditions = []status.Condition{configured, Cond(status.Matched, true, "Matched", "OK", gen), Cond(status.ReadyCond, true, "Ready", "OK", gen)}
	} else {
		st.Status = status.Pending
		st.Message = JoinMessage(unmatched, warn)
		st.Conditions = []status.Condition{configured, Cond(status.Matched, false, "NoMatch", unmatched, gen), Cond(status.ReadyCond, false, "NoMatch", unmatched, gen)}
	}
	set(&st)
	return st
}

// fileProblems summarises problems that belong to no resource (broken
// files), for the Site's status.
func fileProblems(ns *resources.Namespace) string {
	var out []string
	for _, p := range ns.Problems {
		if p.ID == "" && p.File != "input/resources" {
			out = append(out, p.Short())
		}
	}
	if len(out) == 0 {
		return ""
	}
	return fmt.Sprintf("%d input problem(s) outside any resource: %s", len(out), strings.Join(out, "; "))
}

// localAccessEntry is the generated RouterAccess skupper-local that
// Skupper's CLI reads to find the local management port. Its document is
// written as text (what the YAML encoder gives for localAccessObject; a
// thousand namespaces' passes encoding it cost a restart 0.3 s), but for
// a namespace name that must be quoted: the encoder writes that one.
func localAccessEntry(s *Pass) status.Entry {
	port, _ := s.Result.Config.ManagementPort()
	e := status.Entry{
		Kind: resources.KindRouterAccess, Name: "skupper-local",
		Status: status.Status{Status: status.Ready, Message: "OK", Conditions: []status.Condition{Cond(status.ReadyCond, true, "Ready", "OK", 0)}},
	}
	if name := s.Namespace.Name; yamlstr.Plain(name) {
		e.Raw = localAccessText(name, port)
	} else {
		e.Object = localAccessObject(name, port)
	}
	return e
}

// localAccessText is the document of skupper-local, as the YAML encoder
// writes localAccessObject for a name that needs no quotes.
func localAccessText(name string, port int) []byte {
	b := make([]byte, 0, 320)
	b = append(b, "apiVersion: "+resources.APIVersion+"\nkind: "+resources.KindRouterAccess+"\nmetadata:\n  name: skupper-local\n  namespace: "...)
	b = append(b, name...)
	b = append(b, "\nspec:\n  bindHost: 127.0.0.1\n  issuer: "+routerconfig.LocalCA+"\n  roles:\n    - name: normal\n      port: "...)
	b = strconv.AppendInt(b, int64(port), 10)
	return append(b, "\n  tlsCredentials: "+routerconfig.LocalServer+"\n"...)
}

// localAccessObject is the document of skupper-local.
func localAccessObject(name string, port int) map[string]any {
	return map[string]any{
		"apiVersion": resources.APIVersion,
		"kind":       resources.KindRouterAccess,
		"metadata":   map[string]any{"name": "skupper-local", "namespace": name},
		"spec": map[string]any{
			"roles":          []map[string]any{{"name": "normal", "port": port}},
			"tlsCredentials": routerconfig.LocalServer,
			"issuer":         routerconfig.LocalCA,
			"bindHost":       "127.0.0.1",
		},
	}
}

// endpoints are where other sites link to a RouterAccess: each host it
// names, each role.
func endpoints(a *site.Access) []status.Endpoint {
	var out []status.Endpoint
	for _, h := range a.Hosts {
		for _, r := range a.Roles {
			out = append(out, status.Endpoint{Name: r.Role, Host: h, Port: strconv.Itoa(r.Port)})
		}
	}
	return out
}

// accessStatus is the status of a RouterAccess: its endpoints, once the
// router has its listeners.
func (s *Pass) accessStatus(a *site.Access, warn string, gen int64) status.Status {
	if a == nil {
		msg := "not rendered"
		return status.Status{Status: status.Pending, Message: msg, Conditions: []status.Condition{Cond(status.Configured, false, "NotRendered", msg, gen)}}
	}
	var notes []string
	if a.DefaultTLS {
		notes = append(notes, fmt.Sprintf("no spec.tlsCredentials: the router presents runtime/certs/%s, issued by %s, as Skupper's non-Kubernetes sites do", a.TLS, a.Issuer))
	}
	if len(a.Hosts) > 0 {
		notes = append(notes, fmt.Sprintf("link files for %s in runtime/links", strings.Join(a.Hosts, ", ")))
	}
	note := strings.Join(append(notes, warn), "; ")
	note = strings.TrimSuffix(note, "; ")
	if st, ok := liveStatus(s.Result, gen); ok {
		return st
	}
	if st, ok := rendered(s.Result, gen, note); ok {
		st.Endpoints = endpoints(a)
		return st
	}
	for _, role := range a.Roles {
		if _, ok := s.Result.Live.Entities["listener"][a.Name+"-"+role.Role]; !ok {
			return notInRouter(gen, note)
		}
	}
	st := status.Status{Status: status.Ready, Message: JoinMessage("OK", note), Endpoints: endpoints(a), Conditions: []status.Condition{
		Cond(status.Configured, true, "Configured", "in the router", gen), Cond(status.ReadyCond, true, "Ready", "OK", gen)}}
	return st
}

// linkStatus is the status of a Link: whether the router's connection to
// the peer is up, and to which site.
func (s *Pass) linkStatus(l *resources.Link, warn string, gen int64) status.Status {
	if st, ok := liveStatus(s.Result, gen); ok {
		return st
	}
	if st, ok := rendered(s.Result, gen, warn); ok {
		return st
	}
	if _, ok := s.Result.Live.Entities["connector"][l.Metadata.Name]; !ok {
		return notInRouter(gen, warn)
	}
	configured := Cond(status.Configured, true, "Configured", "in the router", gen)
	view := s.View
	var ls netview.LinkState
	known := false
	if view != nil {
		ls, known = view.Links[l.Metadata.Name]
	}
	switch {
	case !known:
		msg := JoinMessage("waiting for the router to report the link", warn)
		return status.Status{Status: status.Pending, Message: msg, Conditions: []status.Condition{configured,
			Cond(status.Operational, false, "Pending", msg, gen), Cond(status.ReadyCond, false, "Pending", msg, gen)}}
	case ls.Up:
		msg := JoinMessage("OK", warn)
		return status.Status{Status: status.Ready, Message: msg, RemoteSiteID: ls.RemoteSiteID, RemoteSiteName: ls.RemoteSiteName,
			Conditions: []status.Condition{configured,
				Cond(status.Operational, true, "Operational", "linked to site "+cmp.Or(ls.RemoteSiteName, "(unknown)"), gen),
				Cond(status.ReadyCond, true, "Ready", "OK", gen)}}
	}
	why := strings.TrimSpace(netview.ConnNumber.ReplaceAllString(ls.Message, ""))
	msg := JoinMessage("not linked: "+cmp.Or(why, "the router has not connected yet"), warn)
	return status.Status{Status: status.Pending, Message: msg, Conditions: []status.Condition{configured,
		Cond(status.Operational, false, "NotConnected", msg, gen), Cond(status.ReadyCond, false, "NotConnected", msg, gen)}}
}

// networkStatus adds to the Site's status its endpoints and the network
// its routers report.
func (s *Pass) networkStatus(st *status.Status) {
	if s.Desired != nil {
		for _, a := range s.Desired.Accesses {
			st.Endpoints = append(st.Endpoints, endpoints(a)...)
		}
	}
	view := s.View
	if view == nil || s.Result.Live == nil {
		return
	}
	n := len(view.Sites)
	st.SitesInNetwork = &n
	st.Network = view.Sites
	if len(view.Errs) > 0 {
		st.Message = JoinMessage(st.Message, "network view incomplete: "+strings.Join(view.Errs, "; "))
	}
}

// linkAccessEntry is the RouterAccess the Site's linkAccess gives it,
// written as Skupper's non-Kubernetes sites write it.
func (s *Pass) linkAccessEntry(a *site.Access) status.Entry {
	var roles []map[string]any
	for _, role := range a.Roles {
		roles = append(roles, map[string]any{"name": role.Role, "port": role.Port})
	}
	obj := map[string]any{
		"apiVersion": resources.APIVersion,
		"kind":       resources.KindRouterAccess,
		"metadata":   map[string]any{"name": a.Name, "namespace": s.Namespace.Name},
		"spec": map[string]any{
			"roles":                   roles,
			"tlsCredentials":          a.TLS,
			"issuer":                  a.Issuer,
			"subjectAlternativeNames": a.Hosts,
		},
	}
	st := s.accessStatus(a, "generated for the Site's linkAccess", 0)
	return status.Entry{Kind: resources.KindRouterAccess, Name: a.Name, Object: obj, Status: st}
}

// grantStatus is the status of an AccessGrant: where and how to redeem
// it, and whether it still can be.
func grantStatus(v Grant, now time.Time, warn string, gen int64) status.Status {
	st := status.Status{URL: v.URL, CA: v.CA, Code: v.Code}
	if !v.Expires.IsZero() {
		st.ExpirationTime = v.Expires.Format(time.RFC3339)
	}
	n := v.Redemptions
	st.Redemptions = &n
	var msg, reason string
	switch {
	case v.Problem != "":
		st.Status, msg, reason = status.Error, v.Problem, "NotServed"
	case !now.Before(v.Expires):
		st.Status, msg, reason = status.Error, "expired at "+st.ExpirationTime+": redeeming it answers 404; change the grant for a new one", "Expired"
	case n >= v.Allowed:
		st.Status, msg, reason = status.Error, fmt.Sprintf("all %d redemptions used: redeeming it answers 404", v.Allowed), "UsedUp"
	default:
		st.Status, msg, reason = status.Ready, fmt.Sprintf("OK: %d of %d redemptions left, until %s", v.Allowed-n, v.Allowed, st.ExpirationTime), "Ready"
	}
	st.Message = JoinMessage(msg, warn)
	st.Conditions = []status.Condition{Cond(status.ReadyCond, st.Status == status.Ready, reason, st.Message, gen)}
	return st
}

// tokenStatus is the status of an AccessToken: redeemed, refused, or
// being redeemed (with the last failure to reach the server).
func tokenStatus(v tokens.View, t *resources.AccessToken, warn string, gen int64) status.Status {
	var st status.Status
	var reason string
	switch {
	case !v.Redeemed.IsZero():
		yes := true
		st.Redeemed = &yes
		st.Status, st.Message, reason = status.Ready, "OK: redeemed at "+v.Redeemed.Format(time.RFC3339)+"; its Secret and Link are in runtime/tokens/"+t.Metadata.Name+".yaml", "Redeemed"
	case v.Refused != "":
		st.Status, st.Message, reason = status.Error, v.Refused+"; not retried: get a new token", "Refused"
	case v.LastErr != nil:
		st.Status, st.Message, reason = status.Pending, fmt.Sprintf("redeeming at %s failed: %v; retrying at %s", t.Spec.URL, v.LastErr, v.Next.UTC().Format(time.RFC3339)), "Retrying"
	default:
		st.Status, st.Message, reason = status.Pending, "redeeming at "+t.Spec.URL, "Redeeming"
	}
	st.Message = JoinMessage(st.Message, warn)
	st.Conditions = []status.Condition{Cond(status.ReadyCond, st.Status == status.Ready, reason, st.Message, gen)}
	return st
}

// MultiKeys are a MultiKeyListener's routing keys, in priority order or
// sorted.
func MultiKeys(m *resources.MultiKeyListener) []string {
	if p := m.Spec.Strategy.Priority; p != nil {
		return p.RoutingKeys
	}
	if w := m.Spec.Strategy.Weighted; w != nil {
		return slices.Sorted(maps.Keys(w.RoutingKeys))
	}
	return nil
}

// multiKeyStatus is the status of a MultiKeyListener: whether its
// tcpListener accepts connections (some key has a reachable connector,
// the router's word) and which keys have connectors in the network.
func (s *Pass) multiKeyStatus(m *resources.MultiKeyListener, connectorKeys map[string]bool, warn string, gen int64) status.Status {
	if st, ok := liveStatus(s.Result, gen); ok {
		return st
	}
	if st, ok := rendered(s.Result, gen, warn); ok {
		return st
	}
	name := routerconfig.MultiKeyListenerName(m)
	present, up := s.Result.Live.ListenerUp(name)
	if !present {
		return notInRouter(gen, warn)
	}
	view := s.View
	if view != nil && view.Taken.After(s.Result.Live.ListenersRead) {
		if v, ok := view.ListenerUp[name]; ok {
			up = v
		}
	}
	var reachable, not []string
	for _, k := range MultiKeys(m) {
		if connectorKeys[k] || (view != nil && view.Connectors[k]) {
			reachable = append(reachable, k)
		} else {
			not = append(not, k)
		}
	}
	configured := Cond(status.Configured, true, "Configured", "in the router", gen)
	msg := "no connector for any of its routing keys is reachable in the network"
	if up {
		msg = "OK"
	}
	if len(reachable) > 0 {
		msg += "; connectors for " + strings.Join(reachable, ", ")
	}
	if len(not) > 0 {
		msg += "; none for " + strings.Join(not, ", ")
	}
	st := matchedStatus(configured, up, msg, warn, gen, func(st *status.Status) { st.HasDestination = boolPtr(up) })
	if up {
		st.Message = JoinMessage(msg, warn)
	}
	return st
}

// certificateStatus says where a Certificate's credential is and until
// when it is valid.
func certificateStatus(s *Pass, c *resources.Certificate, warn string, gen int64) status.Status {
	name := c.Metadata.Name
	var f certs.Files
	var ok bool
	if s.Desired != nil {
		f, ok = s.Desired.Credentials[name]
	}
	var msg string
	switch {
	case s.Desired == nil:
		msg = "waiting for a valid Site"
	case c.Spec.Signing:
		msg = "a CA, kept in runtime/issuers/" + name
	case !ok:
		msg = "not issued"
	default:
		end, _ := certs.NotAfter(f.Cert)
		renew, _ := certs.RenewAt(f.Cert)
		msg = fmt.Sprintf("OK: runtime/certs/%s, issued by %s, valid until %s, renewed at %s", name, c.Spec.CA, end.UTC().Format(time.RFC3339), renew.UTC().Format(time.RFC3339))
	}
	msg = JoinMessage(msg, warn)
	return status.Status{Status: status.Ready, Message: msg, Conditions: []status.Condition{Cond(status.ReadyCond, true, "Ready", msg, gen)}}
}

// refusalOf is the router's refusal of an entity of resource o (or of a
// credential it uses), nil when there is none.
func refusalOf(s *Pass, o resources.Object) error {
	live := s.Result.Live
	if live == nil || len(live.Refused) == 0 {
		return nil
	}
	var entities [][2]string
	profile := func(name string) {
		if name != "" {
			entities = append(entities, [2]string{"sslProfile", name})
		}
	}
	switch o := o.(type) {
	case *resources.Listener:
		entities = append(entities, [2]string{"tcpListener", routerconfig.ListenerName(o)})
		profile(o.Spec.TLSCredentials)
	case *resources.Connector:
		for _, name := range connectorEntities(s, o) {
			entities = append(entities, [2]string{"tcpConnector", name})
		}
		if t := o.Spec.TLSCredentials; t != "" && !o.Spec.UseClientCert {
			t = routerconfig.ConnectorProfile(t)
			profile(t)
		} else {
			profile(t)
		}
	case *resources.MultiKeyListener:
		entities = append(entities, [2]string{"tcpListener", routerconfig.MultiKeyListenerName(o)})
		for _, k := range MultiKeys(o) {
			entities = append(entities, [2]string{"listenerAddress", o.Metadata.Name + "/" + k})
		}
		profile(o.Spec.TLSCredentials)
	case *resources.RouterAccess:
		for _, r := range o.Spec.Roles {
			entities = append(entities, [2]string{"listener", o.Metadata.Name + "-" + r.Name})
		}
		profile(cmp.Or(o.Spec.TLSCredentials, o.Metadata.Name))
	case *resources.AttachedConnectorBinding:
		if v := s.Bindings[o.Metadata.Name]; v.Bound != nil {
			for _, name := range attachedEntities(*v.Bound) {
				entities = append(entities, [2]string{"tcpConnector", name})
			}
		}
	case *resources.Link:
		entities = append(entities, [2]string{"connector", o.Metadata.Name})
		if o.Spec.TLSCredentials != "" {
			profile(routerconfig.LinkProfile(o.Spec.TLSCredentials))
		}
	}
	for _, e := range entities {
		if err := live.RefusalOf(e[0], e[1]); err != nil {
			return err
		}
	}
	return nil
}
