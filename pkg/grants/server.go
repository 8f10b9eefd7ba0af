// Package grants serves AccessGrants: the HTTPS side of Skupper's token
// protocol, where another site redeems an AccessToken (URL, code, CA) for
// the credentials of a link.
//
// The protocol is Skupper's (internal/kube/grants): the redeemer POSTs the
// code as the body to https://<host>:<port>/<grant id>, with the headers
// "name" (the link name it wants) and "subject" (its site); TLS is
// verified with the CA in the token. The answer is a YAML stream of a
// Secret and Link(s). An unknown, expired or used-up grant answers 404, a
// wrong code 403.
//
// One Server serves every grant of a data home. Its certificate comes from
// a CA of its own, generated once and kept in its directory; grants are put
// and removed by the reconcile passes; what a redemption answers is made by
// the grant's Issue function, and each redemption is recorded durably
// before the answer is sent, so a restart never forgets one.
package grants

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	opts   Options
	ca     *certs.CA
	cert   tls.Certificate
	ln     net.Listener
	host   string // host:port in URLs
	mu     sync.Mutex
	grants map[string]*entry // by ID
	srv    *http.Server
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
	serverDir := filepath.Join(opts.Dir, "server")
	if _, err := certs.EnsureLeaf(serverDir, ca, certs.Leaf{CommonName: host, Hosts: hosts, Server: true}, opts.Now()); err != nil {
		ln.Close()
		return nil, fmt.Errorf("grant server certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(serverDir, certs.CertFile), filepath.Join(serverDir, certs.KeyFile))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("grant server certificate: %w", err)
	}
	s := &Server{opts: opts, ca: ca, cert: cert, ln: ln, host: net.JoinHostPort(host, port), grants: map[string]*entry{}}
	s.srv = &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
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
		return fail(http.StatusNotFound, "No such claim", "unknown grant")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.g
	if !s.opts.Now().Before(g.Expires) {
		http.Error(w, "No such claim", http.StatusNotFound)
		return http.StatusNotFound, "expired", g.Namespace, g.Name
	}
	if g.Redemptions >= g.Allowed {
		http.Error(w, "No such access granted", http.StatusNotFound)
		return http.StatusNotFound, "redemptions used up", g.Namespace, g.Name
	}
	if subtle.ConstantTimeCompare(body, []byte(g.Code)) != 1 {
		http.Error(w, "Redemption of access token refused", http.StatusForbidden)
		return http.StatusForbidden, "wrong code", g.Namespace, g.Name
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
