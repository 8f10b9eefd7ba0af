package controller

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
}

// refused returns the router's refusal of entity typ/name, or nil.
func (l *Live) refused(typ, name string) error {
	if l == nil {
		return nil
	}
	return l.Refused[typ+"/"+name]
}

// listenerUp tells whether the router has the tcpListener and it accepts
// connections (some connector for its address is reachable).
func (l *Live) listenerUp(name string) (present, up bool) {
	e, ok := l.Entities["tcpListener"][name]
	return ok, ok && e.Attrs["operStatus"] == "up"
}

// hasListenerFor tells whether the router has a tcpListener for address.
func (l *Live) hasListenerFor(address string) bool {
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

// session is the management connection to one namespace's router.
type session struct {
	client *management.Client
	port   int
	// loaded is, per sslProfile, the content hash of the credential files
	// the router was last told to load.
	loaded map[string]string
	// known is the router's live entities as last read or changed by this
	// session, and when they were last read in full. Only this controller
	// changes the router, so a pass diffs against it; it is read again in
	// full when older than verifyAfter, to repair what others changed.
	// These belong to the namespace's pass (one at a time); anything else
	// that wants a full read sets stale instead.
	known    map[string]map[string]routerconfig.Entity
	verified time.Time
	stale    atomic.Bool
	// listenersRead is when the tcpListeners were last read.
	listenersRead time.Time
	// fresh is true until the session's first apply
	fresh bool
}

// loadedAtStart records as loaded the credentials whose files are older
// than the router: it read them when it started, and telling it to load
// them again (a new profile ordinal) would be a change for nothing, on
// every profile of every router, each time the controller starts.
func (r *Reconciler) loadedAtStart(s *siteState, sess *session, profiles map[string]routerconfig.Entity) {
	if s.res.Router == nil || s.res.Router.Started.IsZero() || s.desired == nil {
		return
	}
	for name := range profiles {
		if _, ok := s.desired.Credentials[name]; !ok {
			continue
		}
		newest, ok := newestFile(filepath.Join(s.dir.RuntimeCerts(), name))
		if ok && newest.Before(s.res.Router.Started) {
			sess.loaded[name] = s.desired.CredentialHash(name)
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

// liveSessions holds the sessions of all namespaces.
type liveSessions struct {
	mu       sync.Mutex
	sessions map[string]*session
	failures map[string]int // consecutive failures to reach a router
}

// reverify makes every session read its router in full on its next pass.
func (l *liveSessions) reverify() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.sessions {
		s.stale.Store(true)
	}
}

// alive tells whether ns's router has a management session that is up:
// the router runs.
func (l *liveSessions) alive(ns string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessions[ns]
	return s != nil && s.client.Err() == nil
}

func (l *liveSessions) drop(ns string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sessions[ns]; s != nil {
		s.client.Close()
		delete(l.sessions, ns)
	}
}

// failed counts a failure to reach ns's router and returns the delay
// before the next try: 250ms doubling to 10s.
func (l *liveSessions) failed(ns string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures[ns]++
	return min(10*time.Second, 250*time.Millisecond<<min(l.failures[ns]-1, 10))
}

// succeeded resets ns's backoff after a live apply the router took whole.
func (l *liveSessions) succeeded(ns string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, ns)
}

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

// connect returns the namespace's session, dialling the router when there
// is none (or the old one broke).
func (l *liveSessions) connect(ctx context.Context, dir namespace.Dir, port int) (*session, error) {
	l.mu.Lock()
	s := l.sessions[dir.Name]
	l.mu.Unlock()
	if s != nil && s.port == port && s.client.Err() == nil {
		return s, nil
	}
	if s != nil {
		l.drop(dir.Name)
	}
	cfg, err := ManagementTLS(dir)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := management.Dial(dctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cfg)
	if err != nil {
		return nil, err
	}
	s = &session{client: c, port: port, loaded: map[string]string{}, fresh: true}
	l.mu.Lock()
	l.sessions[dir.Name] = s
	delete(l.failures, dir.Name)
	l.mu.Unlock()
	return s, nil
}

// applyLive brings the running router to the rendered configuration over
// management: it reads what the router has, sends only the differences,
// tells the router to reload TLS credentials whose files changed, and
// reads back the state for statuses.
func (r *Reconciler) applyLive(ctx context.Context, s *siteState, platform string) (*Live, error) {
	// a paused or hung router costs its namespace a retry, never a worker
	ctx, cancel := context.WithTimeout(ctx, r.opts.ManagementTimeout)
	defer cancel()
	live, err := r.applyLiveCtx(ctx, s, platform)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("the router did not answer within %s (stopped, or overloaded?): %w", r.opts.ManagementTimeout, err)
	}
	return live, err
}

func (r *Reconciler) applyLiveCtx(ctx context.Context, s *siteState, platform string) (*Live, error) {
	cfg := s.res.Config
	port, ok := cfg.ManagementPort()
	if !ok {
		return nil, fmt.Errorf("the router configuration has no management listener")
	}
	sess, err := r.live.connect(ctx, s.dir, port)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Live, error) {
		if sess.client.Err() != nil {
			r.live.drop(s.dir.Name)
		}
		return nil, err
	}
	desired := cfg
	if platform != "linux" {
		// the router image's launch script expands this in the file; over
		// management the paths must arrive expanded
		desired = cfg.Expand(map[string]string{"SSL_PROFILE_BASE_PATH": "/etc/skupper-router"})
	}
	read := func() error {
		actual, err := queryLive(ctx, sess.client)
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
		r.loadedAtStart(s, sess, want["sslProfile"])
	}
	// credentials whose files changed under unchanged paths: a new ordinal
	// makes the router load them again for new connections
	current := map[string]string{}
	for name := range want["sslProfile"] {
		current[name] = s.desired.CredentialHash(name)
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
	refused := map[string]error{}
	opsStart := time.Now()
	for _, c := range changes {
		typ := management.TypeName(c.Type)
		var attrs map[string]any
		switch c.Op {
		case "CREATE":
			attrs, err = sess.client.Create(ctx, typ, c.Name, c.Attrs)
		case "UPDATE":
			attrs, err = sess.client.Update(ctx, typ, c.Name, c.Attrs)
		case "DELETE":
			err = sess.client.Delete(ctx, typ, c.Name)
		}
		var refusal *management.StatusError
		if errors.As(err, &refusal) && sess.client.Err() == nil {
			// the router said no to this one: its resource says so, the
			// others are applied; read it all again next time
			refused[c.Type+"/"+c.Name] = err
			sess.known = nil
			continue
		}
		if err != nil {
			sess.known = nil // read it all again next time
			return fail(fmt.Errorf("applying to the router: %w", err))
		}
		// the router's reply is its state of the entity
		if c.Op == "DELETE" {
			delete(known[c.Type], c.Name)
		} else {
			known[c.Type][c.Name] = routerconfig.Entity{Type: c.Type, Attrs: attrs}
		}
	}
	sess.loaded = current
	for k := range refused {
		// not loaded: a profile that was refused is tried again
		if strings.HasPrefix(k, "sslProfile/") {
			delete(sess.loaded, strings.TrimPrefix(k, "sslProfile/"))
		}
	}
	live := &Live{Applied: len(changes) - len(refused), Entities: known, Refused: refused, VerifyDue: verifyDue, OpsTime: time.Since(opsStart)}
	if len(changes) == 0 && live.unmatched() {
		// a listener's operStatus follows connectors anywhere in the
		// network: while some listener waits, read them back (a pass
		// that changed something leaves this to the recheck it asks for,
		// so that changes reach the router without waiting for it)
		entities, err := sess.client.Query(ctx, management.TypeName("tcpListener"))
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
	if len(refused) == 0 {
		sess.known = known
		r.live.succeeded(s.dir.Name)
	}
	live.ListenersRead = sess.listenersRead
	return live, nil
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
