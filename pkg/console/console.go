// Package console serves the daemon's web console and its JSON API: the
// network this host's sites are part of (sites, links, services and their
// traffic), and every resource of this host's namespaces with its status.
// The page is one embedded HTML, script and style sheet; it is told of
// every change over server-sent events.
//
// It is read-only: it never writes a file nor asks a router, it only reads
// the network views the controller keeps and the status files the passes
// write. It never serves key material nor an AccessGrant's code.
package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/netview"
	"github.com/site-controller/site-controller/pkg/status"
)

//go:embed assets
var assets embed.FS

// Views is where the console reads the network from: the latest view
// of every observed namespace, and a call on every change (netview.Set).
type Views interface {
	Views() map[string]*netview.View
	Watch(fn func(ns string)) (cancel func())
}

// Options configures a Server.
type Options struct {
	DataHome string
	Network  Views
	// Pass returns what the last pass over a namespace found (nil when
	// none ran yet).
	Pass func(ns string) *Pass
	// Settle is how long a change waits for others before the page is
	// told (default 100ms): a pass changes many files at once.
	Settle time.Duration
}

// Server is the console of one data home.
type Server struct {
	opts   Options
	cancel func()

	mu   sync.Mutex
	wake chan struct{} // closed on a change, then replaced
	gen  int           // changes so far
	done chan struct{} // closed by Close

	build sync.Mutex // one snapshot built at a time
	mem   memory
	// reads keep, by namespace, the statuses read: a snapshot parses only
	// the status files replaced since the last
	reads map[string]*status.ReadCache
	// sent is the last snapshot encoded for the event streams, as of
	// change sentGen: every stream sends the same bytes
	sent    []byte
	sentGen int
}

// New returns the console of a data home; Close ends it.
func New(opts Options) *Server {
	if opts.Settle <= 0 {
		opts.Settle = 100 * time.Millisecond
	}
	if opts.Pass == nil {
		opts.Pass = func(string) *Pass { return nil }
	}
	s := &Server{opts: opts, wake: make(chan struct{}), done: make(chan struct{}), cancel: func() {}}
	if opts.Network != nil {
		s.cancel = opts.Network.Watch(s.Changed)
	}
	return s
}

// Changed tells the console that what it shows of namespace ns may have
// changed (a pass ended, its network view changed). It never blocks.
func (s *Server) Changed(string) {
	s.mu.Lock()
	close(s.wake)
	s.wake = make(chan struct{})
	s.gen++
	s.mu.Unlock()
}

// Close ends the event streams being served; the console serves none
// after.
func (s *Server) Close() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

func (s *Server) next() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

// Snapshot works out what the console shows now.
func (s *Server) Snapshot() (Snapshot, error) {
	names, err := namespace.List(s.opts.DataHome)
	if err != nil {
		return Snapshot{}, fmt.Errorf("listing namespaces: %w", err)
	}
	nss := make([]hostNamespace, 0, len(names))
	caches := s.readCaches(names)
	for _, name := range names {
		dir, err := namespace.Open(s.opts.DataHome, name)
		if err != nil {
			continue
		}
		rs, err := caches[name].ReadResources(dir)
		if err != nil {
			return Snapshot{}, fmt.Errorf("reading statuses of %s: %w", name, err)
		}
		id, _ := dir.PeekSiteID()
		nss = append(nss, hostNamespace{name: name, siteID: id, resources: rs, pass: s.opts.Pass(name)})
	}
	var views map[string]*netview.View
	if s.opts.Network != nil {
		views = s.opts.Network.Views()
	}
	s.build.Lock()
	defer s.build.Unlock()
	return build(views, nss, &s.mem), nil
}

// readCaches returns the read cache of each namespace of names, and
// forgets those of namespaces that are gone.
func (s *Server) readCaches(names []string) map[string]*status.ReadCache {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reads == nil {
		s.reads = map[string]*status.ReadCache{}
	}
	out := make(map[string]*status.ReadCache, len(names))
	for _, n := range names {
		if s.reads[n] == nil {
			s.reads[n] = &status.ReadCache{}
		}
		out[n] = s.reads[n]
	}
	for n := range s.reads {
		if out[n] == nil {
			delete(s.reads, n)
		}
	}
	return out
}

// encoded returns the snapshot as JSON for the event streams: built once
// per change, however many pages watch.
func (s *Server) encoded() ([]byte, error) {
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	s.build.Lock()
	if s.sent != nil && s.sentGen == gen {
		defer s.build.Unlock()
		return s.sent, nil
	}
	s.build.Unlock()
	snap, err := s.Snapshot()
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return nil, err
	}
	s.build.Lock()
	defer s.build.Unlock()
	if gen >= s.sentGen {
		s.sent, s.sentGen = data, gen
	}
	return data, nil
}

// Handler serves the page under / and the API under /api/: /api/ (the
// whole snapshot), /api/network, /api/services, /api/namespaces and
// /api/events (the snapshot again on every change, as server-sent
// events). Anything else under /api/ is 404.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /", files)
	part := func(pick func(Snapshot) any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			snap, err := s.Snapshot()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			enc.Encode(pick(snap))
		}
	}
	mux.Handle("GET /api/{$}", part(func(s Snapshot) any { return s }))
	mux.Handle("GET /api/network", part(func(s Snapshot) any { return s.Network }))
	mux.Handle("GET /api/services", part(func(s Snapshot) any { return s.Services }))
	mux.Handle("GET /api/namespaces", part(func(s Snapshot) any { return s.Namespaces }))
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("GET /api/", http.NotFound)
	return mux
}

// events streams the snapshot: at once, then each time it changed, a
// Settle after the change that made it.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	ctx := r.Context()
	var last []byte
	keepalive := time.NewTicker(25 * time.Second)
	defer keepalive.Stop()
	for {
		wake := s.next()
		data, err := s.encoded()
		switch {
		case err != nil:
			fmt.Fprintf(w, "event: problem\ndata: %s\n\n", strings.ReplaceAll(err.Error(), "\n", " "))
		case !bytes.Equal(data, last):
			fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", data)
			last = data
		}
		flusher.Flush()
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				return
			case <-keepalive.C:
				fmt.Fprint(w, ": keepalive\n\n")
				flusher.Flush()
			case <-wake:
				break wait
			}
		}
		// let the rest of a pass's changes arrive
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-time.After(s.opts.Settle):
		}
	}
}
