package console

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Headers are the security headers every answer carries: no script but
// the page's own file (no inline script), nothing fetched from elsewhere,
// never framed, no content type sniffing, no referrer.
var Headers = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
	"X-Frame-Options":              "DENY",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
}

// Secure adds Headers to every answer of h.
func Secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range Headers {
			w.Header().Set(k, v)
		}
		h.ServeHTTP(w, r)
	})
}

// Loopback tells whether the host of addr (host:port) is a loopback one:
// localhost, or an address in 127.0.0.0/8 or ::1. A wildcard ("",
// 0.0.0.0, ::) is not.
func Loopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback(), nil
}

// Users are the accounts of an htpasswd file, each with its bcrypt hash.
type Users struct {
	hashes map[string][]byte
	// ok remembers, by a hash of user and password, the pairs that
	// passed: bcrypt is slow on purpose, and a page makes several requests
	mu sync.Mutex
	ok map[[32]byte]time.Time
	// comparing is held during a bcrypt comparison: one at a time, so
	// that wrong passwords sent fast take one core at most
	comparing sync.Mutex
}

// okFor is how long a checked user and password are remembered.
const okFor = 5 * time.Minute

// dummy is compared against for an unknown user, so that an unknown user
// takes as long as a wrong password. Made when first needed: every
// command of the binary would pay for it at start.
var dummy = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)
	return h
})

// ReadUsers reads an htpasswd file of bcrypt hashes (htpasswd -B): one
// user:hash a line, # comments and blank lines ignored. Any other hash
// (MD5, SHA1, crypt) is refused: they are too weak to expose.
func ReadUsers(path string) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--http-auth: %w", err)
	}
	u := &Users{hashes: map[string][]byte{}, ok: map[[32]byte]time.Time{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("--http-auth %s:%d: not user:hash", path, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("--http-auth %s:%d: user %s: not a bcrypt hash (make it with htpasswd -B)", path, n, user)
		}
		u.hashes[user] = []byte(hash)
	}
	if len(u.hashes) == 0 {
		return nil, fmt.Errorf("--http-auth %s: no users", path)
	}
	return u, nil
}

// check tells whether user and password are one of the accounts.
func (u *Users) check(user, password string) bool {
	key := sha256.Sum256([]byte(user + "\x00" + password))
	u.mu.Lock()
	at, seen := u.ok[key]
	u.mu.Unlock()
	if seen && time.Since(at) < okFor {
		return true
	}
	hash, known := u.hashes[user]
	if !known {
		hash = dummy()
	}
	u.comparing.Lock()
	good := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && known
	u.comparing.Unlock()
	if good {
		u.mu.Lock()
		if len(u.ok) > 1000 {
			clear(u.ok)
		}
		u.ok[key] = time.Now()
		u.mu.Unlock()
	}
	return good
}

// Require answers 401 to a request without a user and password of users
// (HTTP basic authentication), except for the probes /healthz and
// /readyz, which say nothing of the sites.
func Require(users *Users, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			h.ServeHTTP(w, r)
			return
		}
		user, pass, ok := r.BasicAuth()
		if !ok || !users.check(user, pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="site-controller", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ErrOpen is the refusal to serve a non-loopback address without
// authentication.
var ErrOpen = errors.New("is not a loopback address: serving the console there needs --http-auth FILE (a bcrypt htpasswd file)")

// Handler is h with the security headers, behind authentication when
// users is not nil. A non-loopback address without users is refused.
func Handler(addr string, users *Users, h http.Handler) (http.Handler, error) {
	lo, err := Loopback(addr)
	if err != nil {
		return nil, fmt.Errorf("--http %q: %w", addr, err)
	}
	if !lo && users == nil {
		return nil, fmt.Errorf("--http %s %w", addr, ErrOpen)
	}
	if users != nil {
		h = Require(users, h)
	}
	return Secure(h), nil
}

// Serve serves h on addr (see Handler) until the returned server is shut
// down.
func Serve(addr string, users *Users, h http.Handler, log *slog.Logger) (*http.Server, error) {
	h, err := Handler(addr, users, h)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	log.Info("serving the console, /api/, /healthz, /readyz and /metrics", "address", l.Addr().String(), "auth", users != nil)
	return srv, nil
}
