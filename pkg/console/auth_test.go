package console

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// htpasswd writes an htpasswd file of bcrypt hashes (as htpasswd -B
// makes: $2y$), returning its path.
func htpasswd(t *testing.T, users map[string]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# made by the test\n\n")
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		// htpasswd -B writes $2y$, which is $2b$ under another name
		b.WriteString(u + ":" + strings.Replace(string(h), "$2a$", "$2y$", 1) + "\n")
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAddressNeedsAuth: a loopback address is served open; any other is
// refused without users, and served behind them with.
func TestAddressNeedsAuth(t *testing.T) {
	users, err := ReadUsers(htpasswd(t, map[string]string{"ann": "pw"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr    string
		users   *Users
		refused bool
	}{
		{"127.0.0.1:9090", nil, false},
		{"127.0.0.2:9090", nil, false},
		{"[::1]:9090", nil, false},
		{"localhost:9090", nil, false},
		{"0.0.0.0:9090", nil, true},
		{":9090", nil, true},
		{"[::]:9090", nil, true},
		{"192.0.2.1:9090", nil, true},
		{"example.com:9090", nil, true},
		{"0.0.0.0:9090", users, false},
		{"192.0.2.1:9090", users, false},
	} {
		_, err := Handler(tc.addr, tc.users, http.NotFoundHandler())
		if refused := err != nil; refused != tc.refused {
			t.Errorf("%s (users %v): %v", tc.addr, tc.users != nil, err)
		}
		if err != nil && !strings.Contains(err.Error(), "is not a loopback address: serving the console there needs --http-auth FILE") {
			t.Errorf("%s: %v", tc.addr, err)
		}
	}
}

// TestAuth: behind users, every path but the probes answers 401 without
// a user and password, with a wrong one or an unknown user, and serves
// the right ones; the security headers are there either way.
func TestAuth(t *testing.T) {
	users, err := ReadUsers(htpasswd(t, map[string]string{"ann": "correct horse", "bob": "battery staple"}))
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := newServer(t)
	mux := http.NewServeMux()
	mux.Handle("/", s.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	h, err := Handler("0.0.0.0:0", users, mux)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		name, path, user, pass string
		code                   int
	}{
		{"no credentials", "/", "", "", 401},
		{"no credentials, API", "/api/", "", "", 401},
		{"no credentials, events", "/api/events", "", "", 401},
		{"wrong password", "/api/", "ann", "battery staple", 401},
		{"unknown user", "/api/", "carl", "correct horse", 401},
		{"empty password", "/api/", "ann", "", 401},
		{"right password", "/api/", "ann", "correct horse", 200},
		{"right password again (remembered)", "/api/network", "ann", "correct horse", 200},
		{"wrong password after a right one", "/api/", "ann", "correct horsE", 401},
		{"another user", "/", "bob", "battery staple", 200},
		{"probe, open", "/healthz", "", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			if tc.path == "/api/events" {
				// a refused stream must not start
				req.Header.Set("Accept", "text/event-stream")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if tc.code == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without WWW-Authenticate: %v", resp.Header)
			}
			if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("no security headers: %v", resp.Header)
			}
		})
	}
}

// TestReadUsers: what an htpasswd file may hold.
func TestReadUsers(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, err string
	}{
		{"md5", "ann:$apr1$abcdefgh$0123456789abcdefghijkl\n", ":1: user ann: not a bcrypt hash"},
		{"sha1", "# c\nann:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", ":2: user ann: not a bcrypt hash"},
		{"plain", "ann:secret\n", "not a bcrypt hash"},
		{"no colon", "ann\n", ":1: not user:hash"},
		{"empty", "# nobody\n", "no users"},
	} {
		path := filepath.Join(dir, tc.name)
		os.WriteFile(path, []byte(tc.content), 0o600)
		if _, err := ReadUsers(path); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
}
