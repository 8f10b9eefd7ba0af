// Package grants serves AccessGrants: the HTTPS side of Skupper's token
// protocol, where another site redeems an AccessToken (URL, code, CA) for
// the credentials of a link.
//
// The protocol is Skupper's (internal/kube/grants): the redeemer POSTs the
// code as the body to https://<host>:<port>/<grant id>, with the headers
// "name" (the link name it wants) and "subject" (its site); TLS is
// verified with the CA in the token. The answer is a YAML stream of a
// Secret and Link(s). An unknown grant answers 404; the code is checked
// (in constant time) before anything else about a grant is told: a wrong
// code answers 403, and only the right one learns that the grant expired
// or is used up (404). Ten wrong codes within a minute close the grant for
// a minute: 429, with Retry-After, whatever the code.
//
// One Server serves every grant of a data home. Its certificate comes from
// a CA of its own, generated once and kept in its directory, and is renewed
// while the server runs, when a handshake finds it due; grants are put
// and removed by the reconcile passes; what a redemption answers is made by
// the grant's Issue function, and each redemption is recorded durably
// before the answer is sent, so a restart never forgets one.
package grants

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/site-controller/site-controller/pkg/certs"
)

// Limits of a request.
const (
	maxBody   = 4 << 10 // a code is short
	maxHeader = 8 << 10
)

// Wrong codes: maxWrong of them within wrongWindow close a grant for
// closedFor.
const (
	maxWrong    = 10
	wrongWindow = time.Minute
	closedFor   = time.Minute
)

// renewRetry is how long the server waits after a failed renewal of its
// certificate before it tries again (it serves the old one meanwhile).
const renewRetry = time.Minute

// Grant is one AccessGrant as the server needs it.
type Grant struct {
	Namespace, Name string
	// ID is the grant's part of the URL: random, stable for the grant.
	ID   string
	Code string
	// Expires is when redemptions stop; Allowed how many there may be;
	// Redemptions how many there were (as recorded).
	Expires     time.Time
	Allowed     int
	Redemptions int
	// Issue answers a redemption for link name and site subject: the
	// Secret and Link(s), as YAML.
	Issue func(name, subject string) ([]byte, error)
	// Record stores a new count of redemptions durably.
	Record func(redemptions int) error
}

type entry struct {
	mu sync.Mutex // one redemption at a time
	g  Grant
	// wrong are the times of the recent wrong codes (at most maxWrong);
	// closedUntil is when the grant answers again after too many
	wrong       []time.Time
	closedUntil time.Time
}

// wrongCode counts a wrong code at now, and tells whether it closed the
// grant.
func (e *entry) wrongCode(now time.Time) bool {
	recent := e.wrong[:0]
	for _, t := range e.wrong {
		if now.Sub(t) < wrongWindow {
			recent = append(recent, t)
		}
	}
	e.wrong = append(recent, now)
	if len(e.wrong) < maxWrong {
		return false
	}
	e.wrong, e.closedUntil = e.wrong[:0], now.Add(closedFor)
	return true
}

// codeMatches compares a code sent with the grant's in constant time
// (hashed first: the time does not tell the length either).
func codeMatches(sent []byte, code string) bool {
	a, b := sha256.Sum256(sent), sha256.Sum256([]byte(code))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1 && code != ""
}

// Options configures a Server.
type Options struct {
	// Addr is where to listen (host:port; port 0 picks one).
	Addr string
	// Host is the host name in grant URLs (default: Addr's host unless it
	// is a wildcard, else this host's name).
	Host string
	// Dir keeps the server's CA and certificate (0700).
	Dir string
	Log *slog.Logger
	Now func() time.Time
}

// Server is a data home's grant server.
type Server struct {
	opts Options
	ca   *certs.CA
	// leaf is the server's certificate as issued into leafDir; cert is
	// the one served, renewed from renewAt on (not before retry, after a
	// failure)
	leaf    certs.Leaf
	leafDir string
	certMu  sync.Mutex
	cert    *tls.Certificate
	renewAt time.Time
	retry   time.Time
	ln      net.Listener
	host    string // host:port in URLs
	mu      sync.Mutex
	grants  map[string]*entry // by ID
	srv     *http.Server
}

// New makes the server's credentials (kept in opts.Dir) and listens; Serve
// answers.
func New(opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("grant server: %w", err)
	}
	if fi, err := os.Stat(opts.Dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// it holds the CA's key: whatever it was made with, it is private
		if err := os.Chmod(opts.Dir, fi.Mode().Perm()&0o700); err != nil {
			return nil, fmt.Errorf("grant server: %w", err)
		}
	}
	ca, _, err := certs.EnsureCA(filepath.Join(opts.Dir, "ca"), "site-controller-grant-server-ca", opts.Now())
	if err != nil {
		return nil, fmt.Errorf("grant server CA: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("grant server: %w", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	host := opts.Host
	if host == "" {
		h, _, _ := net.SplitHostPort(opts.Addr)
		if h != "" && h != "0.0.0.0" && h != "::" {
			host = h
		} else if name, err := os.Hostname(); err == nil {
			host = name
		} else {
			host = "localhost"
		}
	}
	hosts := []string{host}
	for _, h := range []string{"127.0.0.1", "localhost"} {
		if h != host {
			hosts = append(hosts, h)
		}
	}
	s := &Server{opts: opts, ca: ca, ln: ln, host: net.JoinHostPort(host, port), grants: map[string]*entry{},
		leaf: certs.Leaf{CommonName: host, Hosts: hosts, Server: true}, leafDir: filepath.Join(opts.Dir, "server")}
	if err := s.loadCert(opts.Now()); err != nil {
		ln.Close()
		return nil, err
	}
	s.srv = &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{GetCertificate: s.certificate, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          slog.NewLogLogger(opts.Log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Serve answers until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.srv.Shutdown(sctx)
	}()
	err := s.srv.ServeTLS(s.ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// loadCert makes the server's certificate current (issuing a new one when
// the one kept is due) and serves it. Called with certMu held, or before
// the server serves.
func (s *Server) loadCert(now time.Time) error {
	if _, err := certs.EnsureLeaf(s.leafDir, s.ca, s.leaf, now); err != nil {
		return fmt.Errorf("grant server certificate: %w", err)
	}
	certFile := filepath.Join(s.leafDir, certs.CertFile)
	cert, err := tls.LoadX509KeyPair(certFile, filepath.Join(s.leafDir, certs.KeyFile))
	if err != nil {
		return fmt.Errorf("grant server certificate: %w", err)
	}
	at, ok := certs.RenewAt(pemOf(cert.Certificate[0]))
	if !ok {
		return fmt.Errorf("grant server certificate: %s does not parse", certFile)
	}
	s.cert, s.renewAt, s.retry = &cert, at, time.Time{}
	if !now.Before(at) {
		s.retry = now.Add(renewRetry) // not renewable now: not at every handshake
	}
	return nil
}

// certificate serves the server's certificate, renewing it first when it
// is due: a server that runs for years never serves an expired one.
func (s *Server) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	now := s.opts.Now()
	if !now.Before(s.renewAt) && !now.Before(s.retry) {
		if err := s.loadCert(now); err != nil {
			s.opts.Log.Warn("renewing the grant server's certificate failed; serving the old one", "error", err)
			s.retry = now.Add(renewRetry)
		} else {
			s.opts.Log.Info("renewed the grant server's certificate", "renew_at", s.renewAt)
		}
	}
	return s.cert, nil
}

// URL is where grant id is redeemed.
func (s *Server) URL(id string) string { return "https://" + s.host + "/" + id }

// Host is the host name in grant URLs.
func (s *Server) Host() string {
	h, _, _ := net.SplitHostPort(s.host)
	return h
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// CA is the PEM of the CA a redeemer verifies the server with.
func (s *Server) CA() string { return string(s.ca.CertPEM) }

// Put serves g (replacing what was served under its ID). The count of
// redemptions never goes down: a pass that read the count before a
// redemption does not undo it.
func (s *Server) Put(g Grant) {
	s.mu.Lock()
	e := s.grants[g.ID]
	if e == nil {
		e = &entry{}
		s.grants[g.ID] = e
	}
	s.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.g.ID == g.ID && e.g.Redemptions > g.Redemptions {
		g.Redemptions = e.g.Redemptions
	}
	e.g = g
}

// Redemptions returns how many times grant id was redeemed, as served.
func (s *Server) Redemptions(id string) (int, bool) {
	s.mu.Lock()
	e := s.grants[id]
	s.mu.Unlock()
	if e == nil {
		return 0, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.g.Redemptions, true
}

// Keep stops serving the grants of namespace ns that are not in ids.
func (s *Server) Keep(ns string, ids map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range s.grants {
		e.mu.Lock()
		gone := e.g.Namespace == ns && !ids[id]
		e.mu.Unlock()
		if gone {
			delete(s.grants, id)
		}
	}
}

// ServeHTTP answers one redemption.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code, reason, ns, grant := s.redeem(w, r)
	// never the code, never a key
	s.opts.Log.Info("grant redemption", "status", code, "reason", reason, "namespace", ns, "grant", grant,
		"remote", r.RemoteAddr, "link", limit(r.Header.Get("name")), "subject", limit(r.Header.Get("subject")))
}

func limit(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func (s *Server) redeem(w http.ResponseWriter, r *http.Request) (int, string, string, string) {
	fail := func(code int, text, reason string) (int, string, string, string) {
		http.Error(w, text, code)
		return code, reason, "", ""
	}
	if r.Method != http.MethodPost {
		return fail(http.StatusMethodNotAllowed, "Only POST is supported", "method "+r.Method)
	}
	id := strings.Trim(r.URL.Path, "/")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return fail(http.StatusBadRequest, "Request body not valid", "reading the body: "+err.Error())
	}
	if len(body) > maxBody {
		return fail(http.StatusRequestEntityTooLarge, "Request body too large", "body over the limit")
	}
	s.mu.Lock()
	e := s.grants[id]
	s.mu.Unlock()
	if e == nil {
		codeMatches(body, id) // as long as a wrong code takes
		return fail(http.StatusNotFound, "No such claim", "unknown grant")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.g
	now := s.opts.Now()
	if now.Before(e.closedUntil) {
		wait := (e.closedUntil.Sub(now) + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.Itoa(int(wait)))
		http.Error(w, "Too many wrong codes: try again later", http.StatusTooManyRequests)
		return http.StatusTooManyRequests, "closed after too many wrong codes", g.Namespace, g.Name
	}
	// nothing about the grant is told before the code is right
	if !codeMatches(body, g.Code) {
		reason := "wrong code"
		if e.wrongCode(now) {
			reason = fmt.Sprintf("wrong code, the %dth within %s: closed for %s", maxWrong, wrongWindow, closedFor)
		}
		http.Error(w, "Redemption of access token refused", http.StatusForbidden)
		return http.StatusForbidden, reason, g.Namespace, g.Name
	}
	if !now.Before(g.Expires) {
		http.Error(w, "This access grant has expired", http.StatusNotFound)
		return http.StatusNotFound, "expired", g.Namespace, g.Name
	}
	if g.Redemptions >= g.Allowed {
		http.Error(w, "This access grant's redemptions are used up", http.StatusNotFound)
		return http.StatusNotFound, "redemptions used up", g.Namespace, g.Name
	}
	name := r.Header.Get("name")
	if name == "" {
		name = g.Name
	}
	subject := r.Header.Get("subject")
	if subject == "" {
		subject = name
	}
	answer, err := g.Issue(name, subject)
	if err != nil {
		http.Error(w, "Could not issue the link", http.StatusInternalServerError)
		return http.StatusInternalServerError, "issuing: " + err.Error(), g.Namespace, g.Name
	}
	// recorded before it is answered: a restart never forgets it
	if err := g.Record(g.Redemptions + 1); err != nil {
		http.Error(w, "Internal error", http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable, "recording: " + err.Error(), g.Namespace, g.Name
	}
	e.g.Redemptions++
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(answer)
	return http.StatusOK, "redeemed", g.Namespace, g.Name
}

// pemOf is a DER certificate as PEM.
func pemOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
