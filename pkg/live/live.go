// Package live keeps one namespace's router in step with its rendered
// configuration over the router's management listener (AMQP 1.0, mutual
// TLS with the site's generated client credential): a Session per
// namespace diffs the desired entities against what the router has and
// sends only the differences, so that connections through unchanged
// entities stay up.
//
// It never restarts a router and never writes a file.
package live

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/routerconfig"
)

// Live is what the running router reports after a live apply.
type Live struct {
	// Entities of the live types as the router has them, by type and name.
	Entities map[string]map[string]routerconfig.Entity
	// Applied counts the management operations this pass sent.
	Applied int
	// ListenersRead is when the router's tcpListeners (their operStatus)
	// were last read.
	ListenersRead time.Time
	// Refused are the changes the router refused, by "type/name", with
	// its answer: those entities' resources say so; the rest was applied.
	Refused map[string]error
	// VerifyDue is true when the router is due a full read, which this
	// pass left to the next one so as not to hold up its changes.
	VerifyDue bool
	// OpsTime is how long the router took over the operations sent.
	OpsTime time.Duration

	// addresses are the tcpListeners' addresses, worked out once
	addresses     map[string]bool
	addressesOnce sync.Once
	// counts, when set, are the session's counts of the tcpListeners
	// (kept up to date as it changes them): no need to work them out
	counts *listenerCounts
}

// listenerCounts are, of one map of tcpListeners, how many have each
// address and how many are not up.
type listenerCounts struct {
	of        map[string]routerconfig.Entity
	addresses map[string]int
	down      int
}

func countListeners(m map[string]routerconfig.Entity) *listenerCounts {
	c := &listenerCounts{of: m, addresses: map[string]int{}}
	for _, e := range m {
		c.note(e, 1)
	}
	return c
}

// note counts e in (by 1) or out (by -1).
func (c *listenerCounts) note(e routerconfig.Entity, by int) {
	if a, ok := e.Attrs["address"].(string); ok {
		c.addresses[a] += by
		if c.addresses[a] == 0 {
			delete(c.addresses, a)
		}
	}
	if e.Attrs["operStatus"] != "up" {
		c.down += by
	}
}

// RefusalOf returns the router's refusal of entity typ/name, or nil.
func (l *Live) RefusalOf(typ, name string) error {
	if l == nil {
		return nil
	}
	return l.Refused[typ+"/"+name]
}

// ListenerUp tells whether the router has the tcpListener and it accepts
// connections (some connector for its address is reachable).
func (l *Live) ListenerUp(name string) (present, up bool) {
	e, ok := l.Entities["tcpListener"][name]
	return ok, ok && e.Attrs["operStatus"] == "up"
}

// HasListenerFor tells whether the router has a tcpListener for address.
func (l *Live) HasListenerFor(address string) bool {
	if l.counts != nil {
		return l.counts.addresses[address] > 0
	}
	l.addressesOnce.Do(func() {
		l.addresses = make(map[string]bool, len(l.Entities["tcpListener"]))
		for _, e := range l.Entities["tcpListener"] {
			if a, ok := e.Attrs["address"].(string); ok {
				l.addresses[a] = true
			}
		}
	})
	return l.addresses[address]
}

// Unmatched tells whether some tcpListener waits for a connector.
func (l *Live) Unmatched() bool {
	if l.counts != nil {
		return l.counts.down > 0
	}
	for _, e := range l.Entities["tcpListener"] {
		if e.Attrs["operStatus"] != "up" {
			return true
		}
	}
	return false
}

// Session is the management connection to one namespace's router, and
// what it knows of the router between passes. It serves that namespace
// alone, one pass at a time (Apply); Alive, Reverify and Close may be
// called from anywhere. After Close it connects no more.
type Session struct {
	dir namespace.Dir

	mu       sync.Mutex
	closed   bool
	client   *management.Client
	port     int
	failures int // consecutive failures to reach the router
	// loaded is, per sslProfile, the content hash of the credential files
	// the router was last told to load.
	loaded map[string]string
	// known is the router's live entities as last read or changed by this
	// session, and when they were last read in full. Only this controller
	// changes the router, so a pass diffs against it; it is read again in
	// full when older than verifyAfter, to repair what others changed.
	known    map[string]map[string]routerconfig.Entity
	verified time.Time
	stale    atomic.Bool
	// listenersRead is when the tcpListeners were last read.
	listenersRead time.Time
	// fresh is true until the connection's first apply
	fresh bool
	// counts are known's tcpListeners counted
	counts *listenerCounts
}

// NewSession returns the session of the router of namespace directory
// dir; it connects on the first Apply.
func NewSession(dir namespace.Dir) *Session { return &Session{dir: dir} }

// Reverify makes the next Apply read the router in full (SIGHUP: repair
// whatever others changed).
func (s *Session) Reverify() { s.stale.Store(true) }

// Alive tells whether the management connection is up: the router runs.
func (s *Session) Alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client != nil && s.client.Err() == nil
}

// Drop closes the connection (the router restarts); the next Apply
// connects again.
func (s *Session) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked()
}

func (s *Session) dropLocked() {
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
}

// Close ends the session for good: the connection is closed and no Apply
// connects again.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.dropLocked()
}

// Failed counts a failure to reach the router and returns the delay
// before the next try: 250ms doubling to 10s.
func (s *Session) Failed() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	return min(10*time.Second, 250*time.Millisecond<<min(s.failures-1, 10))
}

// connect returns the connection, dialling the router when there is none
// (or the old one broke, or the port changed).
func (s *Session) connect(ctx context.Context, port int) (*management.Client, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	if s.client != nil && s.port == port && s.client.Err() == nil {
		c := s.client
		s.mu.Unlock()
		return c, nil
	}
	s.dropLocked()
	s.mu.Unlock()
	cfg, err := ManagementTLS(s.dir)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := management.Dial(dctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed { // closed while dialling
		c.Close()
		return nil, errClosed
	}
	s.client, s.port, s.failures = c, port, 0
	s.loaded, s.known, s.fresh = map[string]string{}, nil, true
	return c, nil
}

var errClosed = errors.New("the namespace's session is closed")

// Desired is what Apply brings the router to.
type Desired struct {
	// Config is the rendered configuration; Platform the one it runs on
	// (off linux, credential paths arrive expanded as the image's launch
	// script expands them in the file).
	Config   routerconfig.Config
	Platform string
	// CredentialHash is the content hash of a credential's files, for
	// the credentials the site generates or takes from its input.
	CredentialHash func(name string) string
	HasCredential  func(name string) bool
	// RouterStarted is when the router started (zero: unknown).
	RouterStarted time.Time
	// Observed says that an observer of the router's network reads
	// whether its tcpListeners accept connections: Apply need not.
	Observed bool
}

// loadedAtStart records as loaded the credentials whose files are older
// than the router: it read them when it started, and telling it to load
// them again (a new profile ordinal) would be a change for nothing, on
// every profile of every router, each time the controller starts.
func (s *Session) loadedAtStart(d Desired, profiles map[string]routerconfig.Entity) {
	if d.RouterStarted.IsZero() {
		return
	}
	for name := range profiles {
		if !d.HasCredential(name) {
			continue
		}
		newest, ok := newestFile(filepath.Join(s.dir.RuntimeCerts(), name))
		if ok && newest.Before(d.RouterStarted) {
			s.loaded[name] = d.CredentialHash(name)
		}
	}
}

// newestFile returns when the newest file of a credential directory last
// changed; false when one cannot be looked at.
func newestFile(dir string) (time.Time, bool) {
	var newest time.Time
	for _, f := range []string{certs.CAFile, certs.CertFile, certs.KeyFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return time.Time{}, false
		}
		if st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	return newest, !newest.IsZero()
}

// verifyAfter is how old the known router state may get before a pass
// reads it again in full.
const verifyAfter = 10 * time.Second

// ManagementTLS is the client side of the local management listener's
// mutual TLS: the generated client credential, trusting the local CA.
func ManagementTLS(dir namespace.Dir) (*tls.Config, error) {
	cdir := filepath.Join(dir.RuntimeCerts(), routerconfig.LocalClient)
	pair, err := tls.LoadX509KeyPair(filepath.Join(cdir, certs.CertFile), filepath.Join(cdir, certs.KeyFile))
	if err != nil {
		return nil, fmt.Errorf("management client credential: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(cdir, certs.CAFile))
	if err != nil {
		return nil, fmt.Errorf("management client credential: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}, nil
}

// Apply brings the running router to d over management, within timeout:
// it reads what the router has (in full when due), sends only the
// differences, tells the router to load again the TLS credentials whose
// files changed, and returns the router's state for the statuses.
func (s *Session) Apply(ctx context.Context, d Desired, timeout time.Duration) (*Live, error) {
	// a paused or hung router costs its namespace a retry, never a worker
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	live, err := s.apply(ctx, d)
	return live, within(ctx, timeout, err)
}

// within says of an error that came when ctx's deadline passed that the
// router did not answer within timeout.
func within(ctx context.Context, timeout time.Duration, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("the router did not answer within %s (stopped, or overloaded?): %w", timeout, err)
	}
	return err
}

// answered records that the router answered: the next failure counts
// from one.
func (s *Session) answered() {
	s.mu.Lock()
	s.failures = 0
	s.mu.Unlock()
}

func (s *Session) apply(ctx context.Context, d Desired) (*Live, error) {
	cfg := d.Config
	port, ok := cfg.ManagementPort()
	if !ok {
		return nil, fmt.Errorf("the router configuration has no management listener")
	}
	client, err := s.connect(ctx, port)
	if err != nil {
		return nil, err
	}
	sess := s
	fail := func(err error) (*Live, error) {
		if client.Err() != nil {
			s.Drop()
		}
		return nil, err
	}
	desired := cfg
	if d.Platform != "linux" {
		// the router image's launch script expands this in the file; over
		// management the paths must arrive expanded
		desired = cfg.Expand(map[string]string{"SSL_PROFILE_BASE_PATH": "/etc/skupper-router"})
	}
	read := func() error {
		actual, err := queryLive(ctx, client)
		if err != nil {
			return err
		}
		sess.known, sess.verified, sess.listenersRead = actual.Live(), time.Now(), time.Now()
		return nil
	}
	if sess.stale.Swap(false) || sess.known == nil {
		if err := read(); err != nil {
			return fail(err)
		}
	}
	want := desired.Live()
	have := sess.known
	changes := routerconfig.DiffLive(want, have)
	verifyDue := time.Since(sess.verified) > verifyAfter
	if verifyDue && len(changes) == 0 {
		// the periodic full read, when no change waits for it: reading
		// thousands of entities costs a large router a good while
		if err := read(); err != nil {
			return fail(err)
		}
		have, verifyDue = sess.known, false
		changes = routerconfig.DiffLive(want, have)
	}
	if sess.fresh {
		sess.fresh = false
		s.loadedAtStart(d, want["sslProfile"])
	}
	// credentials whose files changed under unchanged paths: a new ordinal
	// makes the router load them again for new connections
	current := map[string]string{}
	for name := range want["sslProfile"] {
		current[name] = d.CredentialHash(name)
		created := slices.ContainsFunc(changes, func(c routerconfig.Change) bool {
			return c.Type == "sslProfile" && c.Name == name && c.Op == "CREATE"
		})
		if !created && sess.loaded[name] != current[name] {
			ordinal := int64(1)
			if e, ok := have["sslProfile"][name]; ok {
				if n, ok := e.Attrs["ordinal"].(int64); ok {
					ordinal = n + 1
				}
			}
			changes = append([]routerconfig.Change{{Op: "UPDATE", Type: "sslProfile", Name: name, Attrs: map[string]any{"ordinal": ordinal}}}, changes...)
		}
	}
	// what the router has after this pass: the types changed are copied,
	// the others shared with what the session knew
	known := maps.Clone(have)
	for _, t := range routerconfig.LiveTypes {
		if slices.ContainsFunc(changes, func(c routerconfig.Change) bool { return c.Type == t }) {
			known[t] = maps.Clone(have[t])
			if known[t] == nil {
				known[t] = map[string]routerconfig.Entity{}
			}
		}
	}
	opsStart := time.Now()
	refused, err := send(ctx, client, changes, known, nil)
	if err != nil {
		sess.known = nil // read it all again next time
		return fail(err)
	}
	if len(refused) > 0 {
		sess.known = nil // read it all again next time
	}
	sess.loaded = current
	for k := range refused {
		// not loaded: a profile that was refused is tried again
		if strings.HasPrefix(k, "sslProfile/") {
			delete(sess.loaded, strings.TrimPrefix(k, "sslProfile/"))
		}
	}
	live := &Live{Applied: len(changes) - len(refused), Entities: known, Refused: refused, VerifyDue: verifyDue, OpsTime: time.Since(opsStart)}
	live.counts = sess.countsOf(known)
	if len(changes) == 0 && live.Unmatched() && !d.Observed {
		// a listener's operStatus follows connectors anywhere in the
		// network: while some listener waits and no observer reads
		// them, read them back (a pass
		// that changed something leaves this to the recheck it asks for,
		// so that changes reach the router without waiting for it)
		entities, err := client.Query(ctx, management.TypeName("tcpListener"))
		if err != nil {
			return fail(err)
		}
		sess.listenersRead = time.Now()
		known["tcpListener"] = map[string]routerconfig.Entity{}
		for _, attrs := range entities {
			e := routerconfig.Entity{Type: "tcpListener", Attrs: attrs}
			known["tcpListener"][e.Name()] = e
		}
	}
	live.counts = sess.countsOf(known)
	if len(refused) == 0 {
		sess.known = known
		s.answered()
	}
	live.ListenersRead = sess.listenersRead
	return live, nil
}

// send sends changes over client, and records in known the router's
// state of each entity changed (the maps of the types changed are the
// caller's to change) and in counts, when set, its tcpListeners; refused
// are the changes the router said no to, by "type/name".
func send(ctx context.Context, client *management.Client, changes []routerconfig.Change, known map[string]map[string]routerconfig.Entity, counts *listenerCounts) (map[string]error, error) {
	refused := map[string]error{}
	for _, c := range changes {
		typ := management.TypeName(c.Type)
		var attrs map[string]any
		var err error
		switch c.Op {
		case "CREATE":
			attrs, err = client.Create(ctx, typ, c.Name, c.Attrs)
		case "UPDATE":
			attrs, err = client.Update(ctx, typ, c.Name, c.Attrs)
		case "DELETE":
			err = client.Delete(ctx, typ, c.Name)
		}
		var refusal *management.StatusError
		if errors.As(err, &refusal) && client.Err() == nil {
			// the router said no to this one: its resource says so, the
			// others are applied
			refused[c.Type+"/"+c.Name] = err
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("applying to the router: %w", err)
		}
		// the router's reply is its state of the entity
		if old, ok := known[c.Type][c.Name]; ok && counts != nil && c.Type == "tcpListener" {
			counts.note(old, -1)
		}
		if c.Op == "DELETE" {
			delete(known[c.Type], c.Name)
			continue
		}
		e := routerconfig.Entity{Type: c.Type, Attrs: attrs}
		known[c.Type][c.Name] = e
		if counts != nil && c.Type == "tcpListener" {
			counts.note(e, 1)
		}
	}
	return refused, nil
}

// countsOf returns the counts of known's tcpListeners: kept while known
// holds the same map of them, worked out again for another.
func (s *Session) countsOf(known map[string]map[string]routerconfig.Entity) *listenerCounts {
	m := known["tcpListener"]
	if c := s.counts; c != nil && sameMap(c.of, m) {
		return c
	}
	s.counts = countListeners(m)
	return s.counts
}

func sameMap(a, b map[string]routerconfig.Entity) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// ApplyDelta brings the running router to a configuration that differs
// from the one the session last applied in some entities only: want holds,
// by type and name, each changed entity of a live type as it is now
// (expanded), gone the names, by type, of those that are no more. What
// the session knows of the router stands for the rest: nothing else is
// read, diffed or sent. False, with nothing done, when it cannot stand for
// an Apply: it knows nothing yet, a full read is due or asked for, or the
// connection is new; then Apply does it.
func (s *Session) ApplyDelta(ctx context.Context, port int, want map[string]map[string]routerconfig.Entity, gone map[string][]string, timeout time.Duration) (*Live, bool, error) {
	if s.known == nil || s.fresh || s.stale.Load() || time.Since(s.verified) > verifyAfter {
		return nil, false, nil
	}
	s.mu.Lock()
	client := s.client
	if client != nil && (client.Err() != nil || s.port != port) {
		client = nil
	}
	s.mu.Unlock()
	if client == nil {
		return nil, false, nil // Apply connects
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	have := map[string]map[string]routerconfig.Entity{}
	for _, t := range routerconfig.LiveTypes {
		have[t] = map[string]routerconfig.Entity{}
		if want[t] == nil {
			want[t] = map[string]routerconfig.Entity{}
		}
		for name := range want[t] {
			if e, ok := s.known[t][name]; ok {
				have[t][name] = e
			}
		}
		for _, name := range gone[t] {
			if e, ok := s.known[t][name]; ok {
				have[t][name] = e
			}
		}
	}
	changes := routerconfig.DiffLive(want, have)
	for _, c := range changes {
		if c.Type == "sslProfile" {
			return nil, false, nil // profiles are Apply's: it tells the router to load them again
		}
	}
	known := s.known
	for _, c := range changes {
		if known[c.Type] == nil {
			known[c.Type] = map[string]routerconfig.Entity{}
		}
	}
	counts := s.countsOf(known)
	opsStart := time.Now()
	refused, err := send(ctx, client, changes, known, counts)
	if err != nil {
		s.known = nil // read it all again next time
		if client.Err() != nil {
			s.Drop()
		}
		return nil, true, within(ctx, timeout, err)
	}
	live := &Live{Applied: len(changes) - len(refused), Entities: known, Refused: refused, OpsTime: time.Since(opsStart),
		ListenersRead: s.listenersRead, counts: counts}
	if len(refused) > 0 {
		s.known = nil // read it all again next time
	} else {
		s.answered()
	}
	return live, true, nil
}

// queryLive reads the live entity types from the router.
func queryLive(ctx context.Context, c *management.Client) (routerconfig.Config, error) {
	var out routerconfig.Config
	for _, t := range routerconfig.LiveTypes {
		entities, err := c.Query(ctx, management.TypeName(t))
		if err != nil {
			return nil, fmt.Errorf("reading the router's %s entities: %w", t, err)
		}
		for _, attrs := range entities {
			out = append(out, routerconfig.Entity{Type: t, Attrs: attrs})
		}
	}
	return out, nil
}

// RouterVersion asks the router of namespace directory dir, at its local
// management port, for its version (skupper-router 3.5 reports it in
// routerMetrics, under the attribute name "").
func RouterVersion(ctx context.Context, dir namespace.Dir, port int) (string, error) {
	cfg, err := ManagementTLS(dir)
	if err != nil {
		return "", err
	}
	c, err := management.Dial(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	metrics, err := c.Query(ctx, management.TypeName("routerMetrics"))
	if err != nil {
		return "", err
	}
	for _, m := range metrics {
		for _, key := range []string{"version", ""} {
			if v, ok := m[key].(string); ok && v != "" {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("the router reports no version")
}
