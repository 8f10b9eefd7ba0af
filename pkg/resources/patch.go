package resources

import (
	"maps"
	"slices"
	"strings"
)

// Patch returns the namespace as Build would make it with the documents of
// some files replaced: files holds, by path, each changed file's documents
// now (none: the file is gone). It is what a pass costs when one file of
// thousands changed: only the documents of those files are checked, and
// nothing else is looked at. It also returns the documents the changed
// files held before. It serves the changes whose effect is their
// own resources alone — Listeners and Connectors without problems, in a
// namespace that has a Site and no errors — and returns false for any
// other (a Build decides those).
//
// n is consumed: what it shares with the namespace returned is changed.
func (n *Namespace) Patch(files map[string][]*Document) (*Namespace, []*Document, bool) {
	if n.Site == nil || n.defined == nil || HasErrors(n.Problems) {
		return nil, nil, false
	}
	if len(files) == 0 {
		return n, nil, true
	}
	simple := func(d *Document) bool {
		return (d.Kind == KindListener || d.Kind == KindConnector) && d.Object != nil && d.Name != ""
	}
	paths := slices.Sorted(maps.Keys(files))
	// the documents each file held: together in Docs, in file order
	spans := make([][2]int, len(paths))
	gone := map[string]bool{} // Kind/name
	for i, p := range paths {
		lo, _ := slices.BinarySearchFunc(n.Docs, p, func(d *Document, p string) int { return strings.Compare(d.File, p) })
		hi := lo
		for hi < len(n.Docs) && n.Docs[hi].File == p {
			d := n.Docs[hi]
			if !simple(d) || n.documentOf[d.Object] != d || n.defined[d.Kind+"/"+d.Name] != d || len(n.problemsOfDoc[d]) > 0 {
				return nil, nil, false
			}
			gone[d.Kind+"/"+d.Name] = true
			hi++
		}
		spans[i] = [2]int{lo, hi}
	}
	removed := func(o Object) bool {
		_, changed := files[n.documentOf[o].File]
		return changed
	}
	var listeners []*Listener // added
	added := map[string]bool{}
	for _, p := range paths {
		for _, d := range files[p] {
			if !simple(d) || len(d.problems) > 0 {
				return nil, nil, false
			}
			id := d.Kind + "/" + d.Name
			if f := n.defined[id]; (f != nil && !gone[id]) || added[id] {
				return nil, nil, false // a duplicate: Build says which is first
			}
			added[id] = true
			if len(d.check(n.Name)) > 0 {
				return nil, nil, false
			}
			if d.File != p {
				return nil, nil, false
			}
			if l, ok := d.Object.(*Listener); ok {
				listeners = append(listeners, l)
			}
		}
	}
	// an address a new Listener binds must be free: of the Listeners
	// that stay, the others new, MultiKeyListeners and RouterAccesses
	for i, l := range listeners {
		clash := func(host string, port int64) bool { return port == l.Spec.Port && overlaps(host, l.Spec.Host) }
		for _, k := range listeners[:i] {
			if clash(k.Spec.Host, k.Spec.Port) {
				return nil, nil, false
			}
		}
		for _, k := range n.portsOf(l.Spec.Port) {
			if !removed(k) && clash(k.Spec.Host, k.Spec.Port) {
				return nil, nil, false
			}
		}
		for _, m := range n.MultiKeyListeners {
			if clash(m.Spec.Host, m.Spec.Port) {
				return nil, nil, false
			}
		}
		for _, ra := range n.RouterAccess {
			for _, r := range ra.Spec.Roles {
				if r.Port == l.Spec.Port {
					return nil, nil, false
				}
			}
		}
	}

	// nothing stands in the way: patch
	out := *n
	out.Docs = make([]*Document, 0, len(n.Docs)+len(added)-len(gone))
	out.Listeners, out.Connectors = slices.Clone(n.Listeners), slices.Clone(n.Connectors)
	at := 0
	for i, p := range paths {
		span := spans[i]
		out.Docs = append(out.Docs, n.Docs[at:span[0]]...)
		for _, d := range n.Docs[span[0]:span[1]] {
			delete(n.defined, d.Kind+"/"+d.Name)
			delete(n.documentOf, d.Object)
			switch o := d.Object.(type) {
			case *Listener:
				out.Listeners = deleteByName(out.Listeners, o)
				n.forgetPort(o)
			case *Connector:
				out.Connectors = deleteByName(out.Connectors, o)
			}
		}
		at = span[1]
		for _, d := range files[p] {
			out.Docs = append(out.Docs, d)
			n.defined[d.Kind+"/"+d.Name] = d
			n.documentOf[d.Object] = d
			switch o := d.Object.(type) {
			case *Listener:
				out.Listeners = insertByName(out.Listeners, o)
				n.notePort(o)
			case *Connector:
				out.Connectors = insertByName(out.Connectors, o)
			}
		}
	}
	out.Docs = append(out.Docs, n.Docs[at:]...)
	var before []*Document
	for _, span := range spans {
		before = append(before, n.Docs[span[0]:span[1]]...)
	}
	return &out, before, true
}

// insertByName and deleteByName keep a slice of resources sorted by name.
func insertByName[T Object](s []T, o T) []T {
	i, _ := slices.BinarySearchFunc(s, o.header().Metadata.Name, func(e T, name string) int { return strings.Compare(e.header().Metadata.Name, name) })
	return slices.Insert(s, i, o)
}

func deleteByName[T Object](s []T, o T) []T {
	i, found := slices.BinarySearchFunc(s, o.header().Metadata.Name, func(e T, name string) int { return strings.Compare(e.header().Metadata.Name, name) })
	for ; found && i < len(s); i++ {
		if Object(s[i]) == Object(o) {
			return slices.Delete(s, i, i+1)
		}
	}
	return s
}

// portsOf are the Listeners on port, indexed the first time they are
// asked for.
func (n *Namespace) portsOf(port int64) []*Listener {
	if n.ports == nil {
		n.ports = map[int64][]*Listener{}
		for _, l := range n.Listeners {
			n.ports[l.Spec.Port] = append(n.ports[l.Spec.Port], l)
		}
	}
	return n.ports[port]
}

func (n *Namespace) notePort(l *Listener) {
	if n.ports != nil {
		n.ports[l.Spec.Port] = append(n.ports[l.Spec.Port], l)
	}
}

func (n *Namespace) forgetPort(l *Listener) {
	if n.ports != nil {
		n.ports[l.Spec.Port] = slices.DeleteFunc(n.ports[l.Spec.Port], func(k *Listener) bool { return k == l })
	}
}
