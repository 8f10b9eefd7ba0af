package controller

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/answertest"
	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/status"
	"github.com/site-controller/site-controller/pkg/tokens"
)

// tokenHome is a data home with a grant server on 127.0.0.1 and a
// reconciler (rendering only) that serves its grants and redeems tokens.
type tokenHome struct {
	home     string
	srv      *grants.Server
	r        *Reconciler
	requeued chan string
}

func newTokenHome(t *testing.T) *tokenHome {
	t.Helper()
	home := t.TempDir()
	srv, err := grants.New(grants.Options{Addr: "127.0.0.1:0", Host: "127.0.0.1", Dir: filepath.Join(home, "grant-server")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	h := &tokenHome{home: home, srv: srv, requeued: make(chan string, 100)}
	h.r = New(Options{DataHome: home, Platform: "none", Version: "test", Grants: srv, RedeemTimeout: 5 * time.Second,
		HostNames: func() []string { return testHostNames },
		Requeue:   func(ns string) { h.requeued <- ns }})
	t.Cleanup(func() { h.r.Close(); cancel(); <-done })
	return h
}

func (h *tokenHome) write(t *testing.T, ns, file, content string) {
	t.Helper()
	fixture.WriteFile(t, filepath.Join(fixture.NSDir(h.home, ns), "input", "resources", file), content)
}

func (h *tokenHome) pass(t *testing.T, ns string) *Result {
	t.Helper()
	res, err := h.r.Reconcile(context.Background(), ns)
	if err != nil {
		t.Fatalf("pass over %s: %v", ns, err)
	}
	return res
}

// redeem runs passes over ns until its AccessToken name is no longer
// being redeemed, and returns its status.
func (h *tokenHome) redeem(t *testing.T, ns, name string) *status.Status {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		h.pass(t, ns)
		if st := fixture.StatusOf(h.home, ns, resources.KindAccessToken, name); st != nil && st.Status != status.Pending {
			return st
		}
		select {
		case <-h.requeued:
		case <-deadline:
			t.Fatalf("%s: AccessToken/%s still being redeemed: %+v", ns, name, fixture.StatusOf(h.home, ns, resources.KindAccessToken, name))
		}
	}
}

// accepting makes namespace ns a site that accepts links on 127.0.0.1.
func (h *tokenHome) accepting(t *testing.T, ns string) {
	t.Helper()
	h.write(t, ns, "site.yaml", fixture.SiteYAML(ns)+
		"---\napiVersion: skupper.io/v2alpha1\nkind: RouterAccess\nmetadata:\n  name: access\nspec:\n  bindHost: 127.0.0.1\n  roles:\n  - name: inter-router\n  - name: edge\n")
	h.pass(t, ns)
}

func accessTokenYAML(name, url, code, ca string) string {
	return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: AccessToken\nmetadata:\n  name: %s\nspec:\n  url: %s\n  code: %s\n  ca: |\n    %s\n",
		name, url, code, strings.ReplaceAll(strings.TrimSpace(ca), "\n", "\n    "))
}

// takeover is what a hostile grant server adds to a good answer: a
// Connector to this host's ssh, a Listener on every address and a Site
// that sorts before the victim's.
const takeover = `---
apiVersion: skupper.io/v2alpha1
kind: Connector
metadata:
  name: ssh
spec:
  routingKey: ssh
  host: 127.0.0.1
  port: 22
---
apiVersion: skupper.io/v2alpha1
kind: Listener
metadata:
  name: x
spec:
  routingKey: ssh
  host: 0.0.0.0
  port: 2222
---
apiVersion: skupper.io/v2alpha1
kind: Site
metadata:
  name: aaa-takeover
`

// TestTokenAnswerTaken: a real grant server answers AccessTokens. A good
// answer (a Secret and a Link) becomes a link, its Link's tlsCredentials
// forced to the Secret; an answer that holds anything else beside them is
// refused whole: the redeeming site's router configuration does not
// change (no tcpConnector to 127.0.0.1:22, no tcpListener on
// 0.0.0.0:2222, its own Site), nothing of the answer is stored, and the
// token's status names what the answer held.
func TestTokenAnswerTaken(t *testing.T) {
	h := newTokenHome(t)
	h.accepting(t, "accept")
	links, _ := filepath.Glob(filepath.Join(fixture.NSDir(h.home, "accept"), "runtime", "links", "link-access-127.0.0.1.yaml"))
	if len(links) != 1 {
		t.Fatal("no link file for 127.0.0.1")
	}
	linkFile, err := os.ReadFile(links[0])
	if err != nil {
		t.Fatal(err)
	}
	otherSecret := strings.Replace(string(linkFile), "tlsCredentials: link-access\n", "tlsCredentials: someone-elses\n", 1)
	cases := []struct {
		name string
		// answer is what the grant server answers; empty: the answer of
		// a real AccessGrant of namespace accept
		answer string
		// refused is the token's status message; empty: redeemed
		refused string
		// link is the Link that the answer becomes, and its Secret
		link, secret string
	}{
		{name: "grant", link: "grant", secret: "grant"},
		{name: "other-secret", answer: otherSecret, link: "link-access", secret: "link-access"},
		{name: "takeover", answer: string(linkFile) + takeover,
			refused: "the grant server's answer was refused: it held Connector/ssh, Listener/x, Site/aaa-takeover besides the Secret and Link(s); not retried: get a new token"},
		{name: "two-secrets", answer: string(linkFile) + strings.Replace(strings.SplitN(string(linkFile), "---\napiVersion: skupper.io", 2)[0], "name: link-access\n", "name: second\n", 1),
			refused: "the grant server's answer was refused: it held 2 Secrets (Secret/link-access, Secret/second); one is expected; not retried: get a new token"},
		{name: "no-link", answer: strings.SplitN(string(linkFile), "---\napiVersion: skupper.io", 2)[0],
			refused: "the grant server's answer was refused: it held no Link; not retried: get a new token"},
		{name: "not-yaml", answer: "{{{",
			refused: "the grant server's answer was refused: it could not be read: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := "victim-" + tc.name
			h.write(t, ns, "site.yaml", fixture.SiteYAML("victim")+"---\n"+fixture.ListenerYAML("web", 18080))
			h.pass(t, ns)
			dir, _ := namespace.Open(h.home, ns)
			before, err := os.ReadFile(dir.RouterConfig())
			if err != nil {
				t.Fatal(err)
			}
			var token string
			if tc.answer == "" {
				h.write(t, "accept", "grant.yaml", "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: "+tc.name+"\n")
				h.pass(t, "accept")
				g := fixture.StatusOf(h.home, "accept", resources.KindAccessGrant, tc.name)
				if g == nil || g.Status != status.Ready {
					t.Fatalf("grant: %+v", g)
				}
				token = accessTokenYAML(tc.name, g.URL, g.Code, g.CA)
			} else {
				answer := tc.answer
				h.srv.Put(grants.Grant{Namespace: "elsewhere", Name: tc.name, ID: "id-" + tc.name, Code: "code-" + tc.name,
					Expires: time.Now().Add(time.Hour), Allowed: 5,
					Issue:  func(string, string) ([]byte, error) { return []byte(answer), nil },
					Record: func(int) error { return nil }})
				token = accessTokenYAML(tc.name, h.srv.URL("id-"+tc.name), "code-"+tc.name, h.srv.CA())
			}
			h.write(t, ns, "token.yaml", token)
			st := h.redeem(t, ns, tc.name)
			cfg, err := os.ReadFile(dir.RouterConfig())
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := routerconfig.Parse(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range parsed {
				port := fmt.Sprint(e.Attrs["port"])
				switch {
				case e.Type == "tcpConnector" && port == "22", e.Type == "tcpListener" && port == "2222":
					t.Errorf("the answer's %s is in the router: %v", e.Type, e.Attrs)
				case e.Type == "site" && !strings.HasPrefix(fmt.Sprint(e.Attrs["name"]), "victim-"):
					t.Errorf("the site is %v", e.Attrs["name"])
				}
			}
			answerFile := filepath.Join(dir.Path, "runtime", "tokens", tc.name+".yaml")
			if tc.refused != "" {
				if st.Status != status.Error || !strings.HasPrefix(st.Message, tc.refused) {
					t.Errorf("status %s %q, want Error %q", st.Status, st.Message, tc.refused)
				}
				if string(cfg) != string(before) {
					t.Errorf("a refused answer changed the router configuration:\n%s", cfg)
				}
				if _, err := os.Stat(answerFile); err == nil {
					t.Error("a refused answer is stored")
				}
				for _, kind := range []string{resources.KindSite, resources.KindConnector, resources.KindListener} {
					if s := fixture.StatusOf(h.home, ns, kind, map[string]string{resources.KindSite: "aaa-takeover", resources.KindConnector: "ssh", resources.KindListener: "x"}[kind]); s != nil {
						t.Errorf("the answer's %s has a status: %+v", kind, s)
					}
				}
				return
			}
			if st.Status != status.Ready {
				t.Fatalf("status %s %q, want Ready", st.Status, st.Message)
			}
			if fi, err := os.Stat(answerFile); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("the stored answer: %v %v", fi, err)
			}
			stored, _ := os.ReadFile(answerFile)
			docs, probs := resources.Decode("stored", stored)
			if len(probs) > 0 || len(docs) != 2 || docs[0].Kind != resources.KindSecret || docs[0].Name != tc.secret || docs[1].Kind != resources.KindLink || docs[1].Name != tc.link {
				t.Fatalf("stored %v:\n%s", probs, stored)
			}
			if l := docs[1].Object.(*resources.Link); l.Spec.TLSCredentials != tc.secret {
				t.Errorf("the Link's tlsCredentials is %q, want %q", l.Spec.TLSCredentials, tc.secret)
			}
			var connector *routerconfig.Entity
			for i, e := range parsed {
				if e.Type == "connector" && e.Attrs["name"] == tc.link {
					connector = &parsed[i]
				}
			}
			if connector == nil || connector.Attrs["host"] != "127.0.0.1" || connector.Attrs["sslProfile"] != routerconfig.LinkProfile(tc.secret) {
				t.Errorf("the link's connector: %+v\n%s", connector, cfg)
			}
			if l := fixture.StatusOf(h.home, ns, resources.KindLink, tc.link); l == nil || l.Status == status.Error {
				t.Errorf("the Link's status: %+v", l)
			}
		})
	}
}

// TestStoredAnswerChecked: a pass uses of a stored answer only what
// tokens.TakeAnswer takes: an answer an older version stored whole brings in
// nothing, and an answer whose Secret has the name of a credential the
// input's Links use (or of an input Secret or Link) is not used.
func TestStoredAnswerChecked(t *testing.T) {
	secret, link := answertest.TokenAnswer(t, testNow)
	for _, tc := range []struct {
		what, input, stored string
		problem             string
		link                bool
	}{
		{what: "a good answer", stored: secret + link, link: true},
		{what: "an answer stored whole", stored: secret + link + takeover,
			problem: "runtime/tokens/tk.yaml: not used: the grant server's answer was refused: it held Connector/ssh, Listener/x, Site/aaa-takeover besides the Secret and Link(s)"},
		{what: "a Secret named as the credential of an input Link", stored: secret + link,
			input:   "---\napiVersion: skupper.io/v2alpha1\nkind: Link\nmetadata:\n  name: mine\nspec:\n  tlsCredentials: link-a\n  endpoints:\n  - name: inter-router\n    host: 10.0.0.1\n    port: \"55671\"\n",
			problem: "runtime/tokens/tk.yaml: not used: its Secret/link-a has the name of the tlsCredentials of Link/mine of input/resources/site.yaml"},
		{what: "a Link named as an input Link", stored: secret + strings.Replace(link, "name: link-a\n", "name: mine\n", 1),
			input:   "---\napiVersion: skupper.io/v2alpha1\nkind: Link\nmetadata:\n  name: mine\nspec:\n  tlsCredentials: own\n  endpoints:\n  - name: inter-router\n    host: 10.0.0.1\n    port: \"55671\"\n",
			problem: "runtime/tokens/tk.yaml: not used: its Link/mine has the name of Link/mine of input/resources/site.yaml"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			home := t.TempDir()
			dir, err := namespace.Open(home, "ns")
			if err != nil {
				t.Fatal(err)
			}
			tok := &resources.AccessToken{Spec: resources.AccessTokenSpec{URL: "https://127.0.0.1:1/x", Code: "c", CA: "ca"}}
			fixture.WriteFile(t, filepath.Join(dir.InputResources(), "site.yaml"), fixture.SiteYAML("s")+"---\n"+accessTokenYAML("tk", tok.Spec.URL, tok.Spec.Code, testCA(t))+tc.input)
			ns, err := dir.Load()
			if err != nil || len(ns.Tokens) != 1 {
				t.Fatalf("%v %v", err, ns.Problems)
			}
			if err := tokens.Save(dir, "tk", tokens.State{Hash: tokens.Hash(ns.Tokens[0]), Redeemed: testNow}); err != nil {
				t.Fatal(err)
			}
			fixture.WriteFile(t, filepath.Join(dir.Path, "runtime", "tokens", "tk.yaml"), tc.stored)
			r := New(Options{DataHome: home, Platform: "none", Now: func() time.Time { return testNow }, HostNames: func() []string { return testHostNames }})
			defer r.Close()
			res, err := r.Reconcile(context.Background(), "ns")
			if err != nil {
				t.Fatal(err)
			}
			var probs []string
			for _, p := range res.Problems {
				if strings.HasPrefix(p.File, "runtime/tokens/") {
					probs = append(probs, p.String())
				}
			}
			if want := []string{tc.problem}; tc.problem == "" && len(probs) > 0 || tc.problem != "" && !slices.Equal(probs, want) {
				t.Errorf("problems %q, want %q", probs, tc.problem)
			}
			for _, e := range res.Config {
				switch {
				case e.Type == "tcpConnector", e.Type == "tcpListener":
					t.Errorf("the answer's %s is in the router: %v", e.Type, e.Attrs)
				case e.Type == "site" && !strings.HasPrefix(fmt.Sprint(e.Attrs["name"]), "s-"):
					t.Errorf("the site is %v", e.Attrs["name"])
				case e.Type == "connector" && e.Attrs["host"] == "127.0.0.1" && !tc.link:
					t.Errorf("the answer's Link is in the router: %v", e.Attrs)
				}
			}
			if got := slices.ContainsFunc(res.Config, func(e routerconfig.Entity) bool { return e.Type == "connector" && e.Attrs["name"] == "link-a" }); got != tc.link {
				t.Errorf("the answer's link in the router: %v, want %v", got, tc.link)
			}
		})
	}
}

// testCA is a CA certificate's PEM.
func testCA(t *testing.T) string {
	t.Helper()
	ca, _, err := certs.NewCA("token-ca", testNow)
	if err != nil {
		t.Fatal(err)
	}
	return string(ca.CertPEM)
}

// TestGrantCodesPrivate: whatever modes runtime/ had before (0755 here,
// and runtime/resources too, with a status file 0644 from before), after a
// pass that serves an AccessGrant and redeems an AccessToken every file
// below the namespace directories that holds a code (input/ is the
// user's) is 0600 in directories 0700, and another user cannot read one.
func TestGrantCodesPrivate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it reads the files as another user (nobody)")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv to read the files as another user")
	}
	h := newTokenHome(t)
	// another user must be able to reach the namespace directories
	for d := h.home; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"accept", "redeem"} {
		for _, d := range []string{"", "runtime", "runtime/resources"} {
			if err := os.MkdirAll(filepath.Join(fixture.NSDir(h.home, ns), d), 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(filepath.Join(fixture.NSDir(h.home, ns), d), 0o755)
		}
	}
	old := filepath.Join(fixture.NSDir(h.home, "accept"), "runtime", "resources", "AccessGrant-g.yaml")
	if err := os.WriteFile(old, []byte("kind: AccessGrant\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.accepting(t, "accept")
	h.write(t, "accept", "grant.yaml", "apiVersion: skupper.io/v2alpha1\nkind: AccessGrant\nmetadata:\n  name: g\n")
	h.pass(t, "accept")
	g := fixture.StatusOf(h.home, "accept", resources.KindAccessGrant, "g")
	if g == nil || g.Code == "" {
		t.Fatalf("grant: %+v", g)
	}
	h.write(t, "redeem", "site.yaml", fixture.SiteYAML("redeem")+"---\n"+accessTokenYAML("g", g.URL, g.Code, g.CA))
	if st := h.redeem(t, "redeem", "g"); st.Status != status.Ready {
		t.Fatalf("token: %+v", st)
	}
	h.pass(t, "accept")

	// as nobody: reading a file of the user's input works, reading one
	// with the code does not
	asNobody := func(path string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", path).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := asNobody(filepath.Join(fixture.NSDir(h.home, "redeem"), "input", "resources", "site.yaml")); err != nil {
		t.Fatalf("another user cannot read what anyone may read: %v", err)
	}
	var found []string
	for _, ns := range []string{"accept", "redeem"} {
		nsDir := fixture.NSDir(h.home, ns)
		err := filepath.WalkDir(nsDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(nsDir, path)
			if rel == "input" {
				return filepath.SkipDir
			}
			if !d.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil || !bytes.Contains(data, []byte(g.Code)) {
				return err
			}
			found = append(found, ns+"/"+rel)
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Errorf("%s/%s holds the code and is %v", ns, rel, fi.Mode().Perm())
			}
			for dir := filepath.Dir(path); dir != nsDir; dir = filepath.Dir(dir) {
				if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
					d, _ := filepath.Rel(nsDir, dir)
					t.Errorf("%s/%s holds the code in %s, which is %v", ns, rel, d, fi.Mode().Perm())
				}
			}
			if err := asNobody(path); err == nil {
				t.Errorf("another user read the code in %s/%s", ns, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"accept/runtime/resources/AccessGrant-g.yaml", "accept/internal/grants/g.yaml", "redeem/runtime/resources/AccessToken-g.yaml"} {
		if !slices.Contains(found, want) {
			t.Errorf("the code is not in %s (it is in %q)", want, found)
		}
	}
}
