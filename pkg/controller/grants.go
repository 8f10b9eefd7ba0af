package controller

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/grants"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/pass"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/site"
)

// defaultGrantWindow is how long an AccessGrant without an
// expirationWindow can be redeemed, as Skupper has it.
const defaultGrantWindow = 10 * time.Minute

// grantState is what the controller keeps of an AccessGrant, in
// internal/grants/<name>.yaml (0600: it holds the code): made once for a
// spec, so that the URL, code and expiry stay, and the count of
// redemptions, so that a restart never forgets one.
type grantState struct {
	Spec        string    `yaml:"spec"` // hash of the spec it was made for
	ID          string    `yaml:"id"`
	Code        string    `yaml:"code"`
	Expires     time.Time `yaml:"expirationTime"`
	Redemptions int       `yaml:"redemptions"`
}

func loadGrant(dir namespace.Dir, name string) (grantState, error) {
	var st grantState
	return st, readState(dir.GrantState(name), &st)
}

func saveGrant(dir namespace.Dir, name string, st grantState) error {
	return writeState(dir, dir.GrantState(name), st, 0o600) // it holds the code
}

// readState reads a state file the controller keeps under internal/.
func readState(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(data, v)
}

// writeState writes a state file under internal/: atomically, and
// durably, because it cannot be worked out again.
func writeState(dir namespace.Dir, path string, v any, perm fs.FileMode) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = dir.Files().WriteFile(path, data, perm, 0o700, true)
	return err
}

// privateDirs are the directories of a namespace that hold codes and
// keys (or lead to them): whatever modes they had before, a pass makes
// them no looser than 0700.
func privateDirs(dir namespace.Dir) []string {
	return []string{dir.Runtime(), dir.RuntimeResources(), dir.TokenAnswers(),
		dir.Internal(), filepath.Dir(dir.GrantState("x")), filepath.Dir(dir.TokenState("x"))}
}

// securePrivateDirs makes runtime/ and internal/ (0700 when it makes them)
// and the directories below them that hold codes and keys private to
// their owner: a look at each, and a chmod of one found looser, never
// through a symbolic link.
func securePrivateDirs(dir namespace.Dir) error {
	tree := dir.Files()
	// each looked at with one lstat, and opened only to be mended (every
	// pass does this: most find nothing to do)
	for _, top := range []string{dir.Runtime(), dir.Internal()} {
		if tree.Settled(top, 0o700, true) {
			continue
		}
		// a namespace directory being removed meanwhile is left to go
		if err := tree.MkdirAll(top, 0o700); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for _, d := range privateDirs(dir) { // parents first
		if tree.Settled(d, 0o700, false) {
			continue
		}
		if err := tree.Tighten(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// randomCode is a code of n characters from an alphabet that survives
// copy and paste.
func randomCode(n int) (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b), nil
}

// serveGrants keeps the namespace's AccessGrants: their state under
// internal/grants, and served by the data home's grant server (when there
// is one) with what a redemption answers: a new client certificate from
// the CA of the RouterAccess the grant links to, and a Link to its
// endpoints.
func (r *Reconciler) serveGrants(s *siteState) {
	ns := s.Namespace
	s.Grants = map[string]pass.Grant{}
	served := map[string]bool{}
	defer func() {
		if r.opts.Grants != nil {
			r.opts.Grants.Keep(s.Dir.Name, served)
		}
	}()
	if ns.Site == nil || s.Desired == nil {
		return
	}
	for _, g := range ns.Grants {
		name := g.Metadata.Name
		spec, _ := yaml.Marshal(g.Spec)
		sum := sha256.Sum256(spec)
		hash := hex.EncodeToString(sum[:8])
		st, err := loadGrant(s.Dir, name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.Grants[name] = pass.Grant{Problem: "reading its state: " + err.Error()}
			continue
		}
		if err != nil || st.Spec != hash {
			// a new grant (or a changed one, which is a new grant)
			window := defaultGrantWindow
			if g.Spec.ExpirationWindow != "" {
				window, _ = time.ParseDuration(g.Spec.ExpirationWindow) // validated
			}
			id, err1 := randomCode(32)
			code, err2 := randomCode(24)
			if g.Spec.Code != "" {
				code = g.Spec.Code
			}
			if err := errors.Join(err1, err2); err != nil {
				s.Grants[name] = pass.Grant{Problem: err.Error()}
				continue
			}
			st = grantState{Spec: hash, ID: id, Code: code, Expires: s.Now.Add(window).UTC().Truncate(time.Second)}
			if err := saveGrant(s.Dir, name, st); err != nil {
				s.Grants[name] = pass.Grant{Problem: "keeping its state: " + err.Error()}
				continue
			}
		}
		allowed := int(max(g.Spec.RedemptionsAllowed, 1))
		v := pass.Grant{ID: st.ID, Code: st.Code, Expires: st.Expires, Redemptions: st.Redemptions, Allowed: allowed}
		a := grantAccess(s.Desired.Accesses, g.Spec.Issuer)
		switch {
		case ns.Site.Spec.Edge:
			v.Problem = "an edge site accepts no links: grants are served by interior sites"
		case a == nil && g.Spec.Issuer != "":
			v.Problem = fmt.Sprintf("no RouterAccess of this site is issued by %s", g.Spec.Issuer)
		case a == nil:
			v.Problem = "this site accepts no links: give its Site linkAccess: default, or add a RouterAccess"
		case r.opts.Grants == nil:
			v.Problem = "the grant server is off: run the daemon with --grant-server ADDR (and --grant-server-host NAME) to serve grants"
		}
		if v.Problem == "" {
			srv := r.opts.Grants
			if n, ok := srv.Redemptions(st.ID); ok && n > v.Redemptions {
				v.Redemptions = n
			}
			v.URL, v.CA = srv.URL(st.ID), srv.CA()
			dir, now := s.Dir, r.opts.Now
			host := linkHost(a, srv)
			srv.Put(grants.Grant{
				Namespace: dir.Name, Name: name, ID: st.ID, Code: st.Code, Expires: st.Expires,
				Allowed: allowed, Redemptions: v.Redemptions,
				Issue: func(link, subject string) ([]byte, error) {
					return issueLink(dir, a, host, link, subject, now())
				},
				Record: func(n int) error {
					cur, err := loadGrant(dir, name)
					if err != nil || cur.ID != st.ID {
						return fmt.Errorf("the grant changed meanwhile")
					}
					cur.Redemptions = n
					return saveGrant(dir, name, cur)
				},
			})
			served[st.ID] = true
		}
		s.Grants[name] = v
	}
}

// grantAccess is the RouterAccess a grant links to: the first issued by
// issuer, or the first of all.
func grantAccess(accesses []*site.Access, issuer string) *site.Access {
	for _, a := range accesses {
		if (issuer == "" || a.Issuer == issuer) && len(a.Hosts) > 0 {
			return a
		}
	}
	return nil
}

// linkHost is the host a redeemed Link goes to: the grant server's host
// when the RouterAccess's certificate names it (the operator named this
// host so), else the first host it names.
func linkHost(a *site.Access, srv *grants.Server) string {
	if slices.Contains(a.Hosts, srv.Host()) {
		return srv.Host()
	}
	return a.Hosts[0]
}

// issueLink answers a redemption: a client certificate for subject from
// the RouterAccess's CA, and a Link named link to its endpoints at host.
func issueLink(dir namespace.Dir, a *site.Access, host, link, subject string, now time.Time) ([]byte, error) {
	if resources.ValidName(link) != "" {
		return nil, fmt.Errorf("the link name %q is not a valid name", link)
	}
	var ca *certs.CA
	var err error
	for _, d := range []string{filepath.Join(dir.InputIssuers(), a.Issuer), filepath.Join(dir.RuntimeIssuers(), a.Issuer)} {
		if ca, err = certs.LoadCA(d); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("loading the CA %s: %w", a.Issuer, err)
	}
	// never a certificate of the site's internal CAs (the management
	// listener accepts what skupper-local-ca signs), by name or by key
	internal, err := site.LoadInternalCAs(dir)
	if err == nil {
		err = internal.RefuseIssuer(a.Issuer, ca.Cert)
	}
	if err != nil {
		return nil, err
	}
	f, err := ca.Issue(certs.Leaf{CommonName: subject, Client: true}, now)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(a.Hosts, host) {
		return nil, fmt.Errorf("no endpoint at %s", host)
	}
	return site.LinkYAML(link, host, a.Roles, certs.Files{CA: a.ServerCA(), Cert: f.Cert, Key: f.Key}), nil
}
