package netview

import "sync"

// Traffic is what a routing key carries across the network: connections
// open now and bytes moved, summed over its flows. It is shown (console,
// API) and never written into a status file: it changes all the time.
type Traffic struct {
	Open     int    `json:"open"`
	BytesIn  uint64 `json:"bytesIn"`  // toward the connectors' servers
	BytesOut uint64 `json:"bytesOut"` // back to the listeners' clients
}

// watchers are called after any observer of a set stored a view that
// differs from its last (traffic included).
type watchers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(ns string)
}

// Watch calls fn(namespace), from the observer's goroutine, whenever the
// view of namespace's observer changed, until the returned cancel is
// called. fn must not block: it should only mark that something changed.
func (n *Set) Watch(fn func(ns string)) (cancel func()) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if n.w.fns == nil {
		n.w.fns = map[int]func(string){}
	}
	id := n.w.next
	n.w.next++
	n.w.fns[id] = fn
	return func() {
		n.w.mu.Lock()
		defer n.w.mu.Unlock()
		delete(n.w.fns, id)
	}
}

// notify calls the set's watchers for namespace ns.
func (n *Set) notify(ns string) {
	n.w.mu.Lock()
	fns := make([]func(string), 0, len(n.w.fns))
	for _, fn := range n.w.fns {
		fns = append(fns, fn)
	}
	n.w.mu.Unlock()
	for _, fn := range fns {
		fn(ns)
	}
}

// Views returns the latest view of every observed namespace (nil for one
// that has not looked yet), by namespace.
func (n *Set) Views() map[string]*View {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]*View, len(n.obs))
	for ns, o := range n.obs {
		out[ns] = o.view.Load()
	}
	return out
}
