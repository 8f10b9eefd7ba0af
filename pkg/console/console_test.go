package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/netview"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/status"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// staticViews is a netview.Set stand-in holding views a test sets: the
// views are data (what an observer would hold), and Watch is called on
// set, as the Set calls it when an observer stores a new view.
type staticViews struct {
	mu    sync.Mutex
	views map[string]*netview.View
	fns   []func(string)
}

func (s *staticViews) Views() map[string]*netview.View {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]*netview.View{}
	for k, v := range s.views {
		out[k] = v
	}
	return out
}

func (s *staticViews) Watch(fn func(string)) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fns = append(s.fns, fn)
	return func() {}
}

func (s *staticViews) set(ns string, v *netview.View) {
	s.mu.Lock()
	if s.views == nil {
		s.views = map[string]*netview.View{}
	}
	s.views[ns] = v
	fns := s.fns
	s.mu.Unlock()
	for _, fn := range fns {
		fn(ns)
	}
}

const (
	eastID   = "11111111-1111-1111-1111-111111111111"
	middleID = "22222222-2222-2222-2222-222222222222"
	westID   = "33333333-3333-3333-3333-333333333333"
)

// chain is a data home with namespaces east and middle (west is a remote
// site): middle links to east (up) and west links to middle; statuses
// written by the real status writer, one of them an AccessGrant with a
// code.
func chain(t *testing.T) (home string, views *staticViews) {
	t.Helper()
	home = t.TempDir()
	write := func(ns, siteID string, entries ...status.Entry) {
		dir, err := namespace.Open(home, ns)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(dir.Input(), 0o755)
		os.MkdirAll(dir.Internal(), 0o700)
		os.WriteFile(filepath.Join(dir.Internal(), "site-id"), []byte(siteID+"\n"), 0o644)
		w := status.Writer{Dir: dir, Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }}
		if _, err := w.Write(entries); err != nil {
			t.Fatal(err)
		}
	}
	yes := true
	write("east", eastID,
		status.Entry{Kind: "Site", Name: "east", Raw: []byte("kind: Site\nmetadata:\n  name: east\n"), Status: status.Status{Status: status.Ready, Message: "OK"}},
		status.Entry{Kind: "Connector", Name: "backend", Raw: []byte("kind: Connector\nmetadata:\n  name: backend\n"), Status: status.Status{Status: status.Ready, Message: "OK", HasMatchingListener: &yes}},
		status.Entry{Kind: "AccessGrant", Name: "grant", Raw: []byte("kind: AccessGrant\nmetadata:\n  name: grant\n"), Private: true,
			Status: status.Status{Status: status.Ready, Message: "OK", URL: "https://127.0.0.1:8081/grant", Code: "s3cr3t-c0de-never-shown"}},
		status.Entry{Kind: "Listener", Name: "broken", Raw: []byte("kind: Listener\nmetadata:\n  name: broken\n"), Status: status.Status{Status: status.Error, Message: "spec.port: must be set"}},
	)
	write("middle", middleID,
		status.Entry{Kind: "Site", Name: "middle", Raw: []byte("kind: Site\nmetadata:\n  name: middle\n"), Status: status.Status{Status: status.Ready, Message: "OK"}},
		status.Entry{Kind: "Link", Name: "to-east", Raw: []byte("kind: Link\nmetadata:\n  name: to-east\n"), Status: status.Status{Status: status.Ready, Message: "OK", RemoteSiteName: "east"}},
	)
	sites := []status.SiteRecord{
		{ID: eastID, Name: "east", Namespace: "east", Platform: "linux", Version: "3.5.1",
			Services: []status.ServiceRecord{{RoutingKey: "backend", Connectors: []string{"backend"}}}},
		{ID: middleID, Name: "middle", Namespace: "middle", Platform: "linux", Version: "3.5.1",
			Links: []status.LinkRecord{{Name: "to-east", RemoteSiteID: eastID, RemoteSiteName: "east", Operational: true}}},
		{ID: westID, Name: "west", Namespace: "west", Platform: "podman", Version: "3.5.1",
			Links:    []status.LinkRecord{{Name: "to-middle", RemoteSiteID: middleID, RemoteSiteName: "middle", Operational: true}},
			Services: []status.ServiceRecord{{RoutingKey: "backend", Listeners: []string{"frontend"}}, {RoutingKey: "lonely", Listeners: []string{"lonely"}}}},
	}
	views = &staticViews{}
	views.set("east", &netview.View{Sites: sites, Links: map[string]netview.LinkState{}, RouterVersions: map[string]string{eastID: "3.5.1", middleID: "3.5.1"}})
	views.set("middle", &netview.View{Sites: sites, Links: map[string]netview.LinkState{
		"to-east": {Up: true, Message: "[C7] Connection Opened: dir=out host=127.0.0.1:45671 encrypted=TLSv1.3", RemoteSiteID: eastID, RemoteSiteName: "east"}}})
	return home, views
}

func newServer(t *testing.T) (*Server, *staticViews, string) {
	home, views := chain(t)
	passes := map[string]*Pass{"east": {
		Origin: func(id string) (Origin, bool) {
			o, ok := map[string]Origin{"Connector/backend": {File: "input/resources/backend.yaml", Line: 1}, "Listener/broken": {File: "input/resources/broken.yaml", Line: 3}}[id]
			return o, ok
		},
		Problems: []resources.Problem{{File: "input/resources/broken.yaml", Line: 7, ID: "Listener/broken", Field: "spec.port", Message: "must be set"}, {File: "input/resources/x.yaml", Line: 2, Message: "unknown field", Warning: true}},
	}}
	s := New(Options{DataHome: home, Network: views, Pass: func(ns string) *Pass { return passes[ns] }, Settle: time.Millisecond})
	t.Cleanup(s.Close)
	return s, views, home
}

// TestSnapshot: the snapshot of a chain, against its golden file: three
// sites (two of this host), two links, a matched and an unmatched
// service, namespaces with problems first and file:line, the grant's code
// redacted.
func TestSnapshot(t *testing.T) {
	s, _, _ := newServer(t)
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// transition times are the writer's clock: fixed
	got, _ := json.MarshalIndent(snap, "", "  ")
	golden := filepath.Join("testdata", "snapshot.golden")
	if *update {
		os.WriteFile(golden, append(got, '\n'), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("snapshot differs from %s (go test -update to accept):\n%s", golden, got)
	}
}

// TestBrokenLinkKeepsItsPeer: when the far site of a link goes away, the
// link stays, down, with the router's reason, pointing at the site it last
// reached, which is shown unreachable.
func TestBrokenLinkKeepsItsPeer(t *testing.T) {
	s, views, _ := newServer(t)
	if _, err := s.Snapshot(); err != nil { // sees the link up
		t.Fatal(err)
	}
	old := views.Views()["middle"]
	var sites []status.SiteRecord
	for _, r := range old.Sites {
		if r.ID == eastID {
			continue
		}
		if r.ID == middleID {
			r.Links = []status.LinkRecord{{Name: "to-east", Operational: false}}
		}
		sites = append(sites, r)
	}
	reason := "[C9] Connection to 127.0.0.1:45671 failed: proton:io Connection refused - disconnected 127.0.0.1:45671"
	views.set("middle", &netview.View{Sites: sites, Links: map[string]netview.LinkState{"to-east": {Up: false, Message: reason}}})
	views.set("east", nil)
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var link *Link
	for i, l := range snap.Network.Links {
		if l.Name == "to-east" {
			link = &snap.Network.Links[i]
		}
	}
	if link == nil || link.Up || link.To != eastID || link.ToName != "east" || link.Message != strings.TrimPrefix(reason, "[C9] ") {
		t.Fatalf("broken link: %+v", link)
	}
	var east *Site
	for i, st := range snap.Network.Sites {
		if st.ID == eastID {
			east = &snap.Network.Sites[i]
		}
	}
	if east == nil || east.Reachable || !east.Local || east.Platform != "linux" {
		t.Errorf("east, gone: %+v", east)
	}
	// once the link itself is gone, so is the memory of its peer
	views.set("middle", &netview.View{Sites: sites[:1], Links: map[string]netview.LinkState{}})
	if snap, _ = s.Snapshot(); len(snap.Network.Links) != 1 || len(s.mem.remotes) != 1 {
		t.Errorf("links after to-east removed: %+v (remembered %v)", snap.Network.Links, s.mem.remotes)
	}
}

// TestHandler: what each path answers, and the security headers on every
// answer.
func TestHandler(t *testing.T) {
	s, _, _ := newServer(t)
	h, err := Handler("127.0.0.1:0", nil, s.Handler())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		code         int
		ctype        string
		has          []string
		hasNot       []string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", []string{`<script src="console.js" defer></script>`, `<svg id="graph"`}, []string{"<script>", "http://", "https://"}},
		{"GET", "/console.js", 200, "text/javascript; charset=utf-8", []string{`new EventSource("api/events")`}, []string{"fetch(", "XMLHttpRequest", "setInterval", "setTimeout", "innerHTML", "import ", "https://"}},
		{"GET", "/console.css", 200, "text/css; charset=utf-8", []string{"svg line.link.down"}, []string{"@import", "url(http"}},
		{"GET", "/api/", 200, "application/json", []string{`"network"`, `"services"`, `"namespaces"`, `"routingKey": "backend"`}, []string{"s3cr3t-c0de-never-shown"}},
		{"GET", "/api/network", 200, "application/json", []string{`"name": "west"`, `"message": "Connection Opened: dir=out`}, nil},
		{"GET", "/api/services", 200, "application/json", []string{`"routingKey": "lonely"`, `"matched": false`}, nil},
		{"GET", "/api/namespaces", 200, "application/json", []string{`"code": "<redacted>"`, `"file": "input/resources/broken.yaml"`}, []string{"s3cr3t-c0de-never-shown"}},
		{"GET", "/api/nope", 404, "text/plain; charset=utf-8", nil, nil},
		{"GET", "/nope.js", 404, "text/plain; charset=utf-8", nil, nil},
		{"POST", "/api/", 405, "text/plain; charset=utf-8", nil, nil},
		{"DELETE", "/", 405, "text/plain; charset=utf-8", nil, nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.code, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tc.ctype {
				t.Errorf("Content-Type %q, want %q", ct, tc.ctype)
			}
			for k, v := range Headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			for _, s := range tc.has {
				if !strings.Contains(string(body), s) {
					t.Errorf("no %q in:\n%s", s, body)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(string(body), s) {
					t.Errorf("%q in:\n%s", s, body)
				}
			}
		})
	}
}

// TestPageWeight: the page and everything it loads stays under 300 KB
// (it loads nothing from elsewhere: the CSP above allows only 'self').
func TestPageWeight(t *testing.T) {
	total := 0
	for _, f := range []string{"index.html", "console.js", "console.css", "favicon.svg"} {
		data, err := assets.ReadFile("assets/" + f)
		if err != nil {
			t.Fatal(err)
		}
		total += len(data)
	}
	entries, _ := assets.ReadDir("assets")
	if len(entries) != 4 {
		t.Errorf("assets: %d files, the weight counts 4", len(entries))
	}
	if total > 300<<10 {
		t.Errorf("page weight %d bytes, over 300 KB", total)
	}
	t.Logf("page weight: %d bytes", total)
}

// sse reads server-sent events from body.
type sse struct{ r *bufio.Reader }

// next returns the next event's name and data.
func (s sse) next() (string, string, error) {
	var name, data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && (name != "" || data != ""):
			return name, data, nil
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		}
	}
}

// TestEvents: the event stream sends the snapshot at once, then again
// after a change (a view, a status file), and nothing when nothing changed;
// it ends when the console closes.
func TestEvents(t *testing.T) {
	s, views, home := newServer(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	ev := sse{bufio.NewReader(resp.Body)}
	snapshot := func() Snapshot {
		t.Helper()
		name, data, err := ev.next()
		if err != nil || name != "snapshot" {
			t.Fatalf("event %q %v", name, err)
		}
		var snap Snapshot
		if err := json.Unmarshal([]byte(data), &snap); err != nil {
			t.Fatal(err)
		}
		return snap
	}
	if first := snapshot(); len(first.Network.Sites) != 3 {
		t.Fatalf("first snapshot: %d sites", len(first.Network.Sites))
	}
	// a change that changes nothing sends nothing; a new connector in
	// east's view does
	s.Changed("east")
	v := *views.Views()["east"]
	v.Sites = append([]status.SiteRecord(nil), v.Sites...)
	v.Sites[0].Services = append(v.Sites[0].Services, status.ServiceRecord{RoutingKey: "new-key", Connectors: []string{"new"}})
	views.set("east", &v)
	got := snapshot()
	if len(got.Services) != 3 || got.Services[2].RoutingKey != "new-key" {
		t.Errorf("after a new connector: %+v", got.Services)
	}
	// a status file changed by a pass: the daemon calls Changed
	dir, _ := namespace.Open(home, "middle")
	w := status.Writer{Dir: dir, Now: time.Now, KeepStale: true}
	w.WriteOne(status.Entry{Kind: "Listener", Name: "added", Raw: []byte("kind: Listener\n"), Status: status.Status{Status: status.Pending, Message: "waiting"}})
	s.Changed("middle")
	got = snapshot()
	if rs := got.Namespaces[1].Resources; len(rs) != 3 || rs[0].Name != "added" {
		t.Errorf("middle after a pass: %+v", rs)
	}
	s.Close()
	if name, _, err := ev.next(); err == nil {
		t.Errorf("event %q after Close", name)
	}
}

// BenchmarkSnapshot: what one update costs the daemon: the synthetic
// network of 20 sites and 500 services (see synthetic) and this host's
// namespace with 1,000 resources (status files written by the status
// writer), read and encoded as the event streams send it.
func BenchmarkSnapshot(b *testing.B) {
	home := b.TempDir()
	dir, err := namespace.Open(home, "big")
	if err != nil {
		b.Fatal(err)
	}
	os.MkdirAll(dir.Input(), 0o755)
	var entries []status.Entry
	yes := true
	for i := range 500 {
		for _, kind := range []string{"Listener", "Connector"} {
			name := fmt.Sprintf("%s-%03d", strings.ToLower(kind), i)
			entries = append(entries, status.Entry{Kind: kind, Name: name, Raw: []byte("kind: " + kind + "\nmetadata:\n  name: " + name + "\n"),
				Status: status.Status{Status: status.Ready, Message: "OK", HasMatchingConnector: &yes,
					Conditions: []status.Condition{{Type: status.Configured, Status: "True", Reason: "Configured", Message: "in the router"}}}})
		}
	}
	if _, err := (status.Writer{Dir: dir, Now: time.Now}).Write(entries); err != nil {
		b.Fatal(err)
	}
	s := New(Options{DataHome: home, Network: synthetic(20, 500)})
	defer s.Close()
	var size int
	for b.Loop() {
		s.Changed("big")
		data, err := s.encoded()
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(size), "bytes")
}

// TestTraffic: with flow records in a view, every service has figures
// (zero for one nothing flowed through), the largest any view reports;
// without, none has.
func TestTraffic(t *testing.T) {
	s, views, _ := newServer(t)
	snap, _ := s.Snapshot()
	for _, sv := range snap.Services {
		if sv.Traffic != nil || snap.Network.Flows {
			t.Errorf("without flow records: %+v (flows %v)", sv, snap.Network.Flows)
		}
	}
	for ns, tr := range map[string]netview.Traffic{"east": {Open: 1, BytesIn: 100, BytesOut: 7}, "middle": {Open: 2, BytesIn: 90, BytesOut: 9}} {
		v := *views.Views()[ns]
		v.Traffic = map[string]netview.Traffic{"backend": tr}
		views.set(ns, &v)
	}
	snap, _ = s.Snapshot()
	want := map[string]netview.Traffic{"backend": {Open: 2, BytesIn: 100, BytesOut: 9}, "lonely": {}}
	for _, sv := range snap.Services {
		if sv.Traffic == nil || *sv.Traffic != want[sv.RoutingKey] {
			t.Errorf("%s: %+v, want %+v", sv.RoutingKey, sv.Traffic, want[sv.RoutingKey])
		}
	}
	if !snap.Network.Flows {
		t.Error("flows not set")
	}
}
