package site

import (
	"slices"
	"strings"

	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
)

// layout is where a Build put the entities of the namespace's Listeners
// and Connectors in the configuration (one each, in the order of their
// names), so that Patch can find them; ok is false when it cannot (a
// Connector that selects renders to one entity per container, a resource
// that failed is left out).
type layout struct {
	ok                    bool
	listeners, connectors int // the index of the first of each
	text                  routerconfig.Text
	management            int
}

func layoutOf(cfg routerconfig.Config, ns *resources.Namespace, text routerconfig.Text, management int) layout {
	for _, c := range ns.Connectors {
		if c.Spec.Host == "" {
			return layout{}
		}
	}
	tcp := func(t string) bool { return t == "tcpListener" || t == "tcpConnector" || t == "listenerAddress" }
	start := len(cfg)
	for start > 0 && tcp(cfg[start-1].Type) {
		start--
	}
	conn := start + len(ns.Listeners)
	for conn < len(cfg) && cfg[conn].Type != "tcpConnector" {
		conn++
	}
	if conn+len(ns.Connectors) > len(cfg) {
		return layout{}
	}
	// the first and last of each where they are taken to be
	name := func(i int) string { return cfg[i].Name() }
	if n := len(ns.Listeners); n > 0 && (name(start) != routerconfig.ListenerName(ns.Listeners[0]) || name(start+n-1) != routerconfig.ListenerName(ns.Listeners[n-1])) {
		return layout{}
	}
	if n := len(ns.Connectors); n > 0 && (name(conn) != routerconfig.ConnectorName(ns.Connectors[0]) || name(conn+n-1) != routerconfig.ConnectorName(ns.Connectors[n-1])) {
		return layout{}
	}
	return layout{ok: true, listeners: start, connectors: conn, text: text, management: management}
}

// Patch returns the site d with the entities of the Listeners and
// Connectors in gone taken out and of those in added put in, as Build
// would render namespace now (which was before when d was built): only
// their entities are rendered, and the configuration's text is patched,
// not written again. otherPorts are the other namespaces' management
// ports. False when it cannot stand for a Build: d's layout is unknown, a
// resource renders to more than its own entity (TLS, a selector), or a new
// Listener would bind a management port (Build says so).
func (d *Desired) Patch(before, now *resources.Namespace, gone, added []resources.Object, otherPorts map[int]string) (*Desired, bool, error) {
	l := d.layout
	if !l.ok || len(d.Failed) > 0 && slices.ContainsFunc(append(slices.Clone(gone), added...), func(o resources.Object) bool { return d.Failed[o] != nil }) {
		return nil, false, nil
	}
	for o := range d.Failed {
		switch o.(type) {
		case *resources.Listener, *resources.Connector:
			return nil, false, nil // left out: not where the layout says
		}
	}
	for _, o := range append(slices.Clone(gone), added...) {
		if _, ok := routerconfig.SimpleEntity(o); !ok {
			return nil, false, nil
		}
	}
	if len(gone) == 0 && len(added) == 0 {
		return d, true, nil
	}
	for _, o := range added {
		if li, ok := o.(*resources.Listener); ok {
			switch li.Spec.Host {
			case "127.0.0.1", "localhost", "0.0.0.0", "::", "":
				if _, other := otherPorts[int(li.Spec.Port)]; other || int(li.Spec.Port) == l.management {
					return nil, false, nil
				}
			}
		}
	}
	listeners, connectors := slices.Clone(before.Listeners), slices.Clone(before.Connectors)
	cfg := slices.Clone(d.Config)
	text := l.text
	var err error
	// one changed under the same name keeps its place: its entity is
	// replaced
	name := func(o resources.Object) string {
		switch o := o.(type) {
		case *resources.Listener:
			return resources.KindListener + "/" + o.Metadata.Name
		case *resources.Connector:
			return resources.KindConnector + "/" + o.Metadata.Name
		}
		return ""
	}
	replaced := map[resources.Object]bool{}
	for _, g := range gone {
		for _, a := range added {
			if replaced[a] || name(g) != name(a) {
				continue
			}
			var at int
			switch g := g.(type) {
			case *resources.Listener:
				i := slices.Index(listeners, g)
				if i < 0 {
					return nil, false, nil
				}
				listeners[i], at = a.(*resources.Listener), l.listeners+i
			case *resources.Connector:
				i := slices.Index(connectors, g)
				if i < 0 {
					return nil, false, nil
				}
				connectors[i], at = a.(*resources.Connector), l.connectors+i
			}
			e, _ := routerconfig.SimpleEntity(a)
			cfg[at] = e
			if text, err = text.Put(at, e, false); err != nil {
				return nil, false, err
			}
			replaced[g], replaced[a] = true, true
			break
		}
	}
	for _, o := range gone {
		if replaced[o] {
			continue
		}
		var at int
		switch o := o.(type) {
		case *resources.Listener:
			i := slices.Index(listeners, o)
			if i < 0 {
				return nil, false, nil
			}
			listeners = slices.Delete(listeners, i, i+1)
			at = l.listeners + i
			l.connectors--
		case *resources.Connector:
			i := slices.Index(connectors, o)
			if i < 0 {
				return nil, false, nil
			}
			connectors = slices.Delete(connectors, i, i+1)
			at = l.connectors + i
		}
		cfg = slices.Delete(cfg, at, at+1)
		if text, err = text.Remove(at); err != nil {
			return nil, false, err
		}
	}
	for _, o := range added {
		if replaced[o] {
			continue
		}
		e, _ := routerconfig.SimpleEntity(o)
		var at int
		switch o := o.(type) {
		case *resources.Listener:
			i, _ := slices.BinarySearchFunc(listeners, o.Metadata.Name, func(x *resources.Listener, name string) int { return strings.Compare(x.Metadata.Name, name) })
			listeners = slices.Insert(listeners, i, o)
			at = l.listeners + i
			l.connectors++
		case *resources.Connector:
			i, _ := slices.BinarySearchFunc(connectors, o.Metadata.Name, func(x *resources.Connector, name string) int { return strings.Compare(x.Metadata.Name, name) })
			connectors = slices.Insert(connectors, i, o)
			at = l.connectors + i
		}
		cfg = slices.Insert(cfg, at, e)
		if text, err = text.Put(at, e, true); err != nil {
			return nil, false, err
		}
	}
	if !slices.Equal(listeners, now.Listeners) || !slices.Equal(connectors, now.Connectors) {
		return nil, false, nil
	}
	out := *d
	out.Config, out.ConfigJSON = cfg, text.JSON
	l.text = text
	out.layout = l
	return &out, true, nil
}
