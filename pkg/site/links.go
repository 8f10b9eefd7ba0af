package site

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/site-controller/site-controller/pkg/certs"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/resources"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	"github.com/site-controller/site-controller/pkg/yamlstr"
)

// SiteCA is the CA that issues the certificates of links: the server
// certificates of RouterAccesses and the client certificates in link
// files, as Skupper names it.
const SiteCA = "skupper-site-ca"

// Default ports of the roles of a RouterAccess that names none, as
// Skupper's non-Kubernetes sites choose them: the first free one up.
const (
	InterRouterPort = 55671
	EdgePort        = 45671
)

// Access is a RouterAccess of the site as rendered: from a RouterAccess
// resource, or the one the Site's linkAccess gives it.
type Access struct {
	Name string
	// Resource is the RouterAccess; nil for the Site's linkAccess.
	Resource *resources.RouterAccess
	BindHost string
	// TLS names the server credential (runtime/certs/<TLS>); DefaultTLS
	// is true when spec.tlsCredentials is empty and TLS is the name.
	TLS        string
	DefaultTLS bool
	Issuer     string
	SANs       []string
	// Roles are the roles with their ports (0 until resolved).
	Roles []AccessRole
	// Hosts are the hosts a peer can link to: those the server
	// certificate names, never a wildcard address. Set by Build.
	Hosts []string
	// serverCA is the CA a peer verifies the server certificate with.
	serverCA []byte
}

// AccessRole is a role of an Access and its port.
type AccessRole struct {
	Role string
	Port int
	// Auto is true when the resource names no port.
	Auto bool
}

// accesses returns the site's RouterAccesses: the valid resources, and the
// one linkAccess gives the site (named after it) unless a resource has
// that name.
func accesses(ns *resources.Namespace) []*Access {
	var out []*Access
	for _, ra := range ns.RouterAccess {
		a := &Access{Name: ra.Metadata.Name, Resource: ra, BindHost: ra.Spec.BindHost, TLS: ra.Spec.TLSCredentials,
			Issuer: ra.Spec.Issuer, SANs: ra.Spec.SubjectAlternativeNames}
		for _, r := range ra.Spec.Roles {
			a.Roles = append(a.Roles, AccessRole{Role: r.Name, Port: int(r.Port), Auto: r.Port == 0})
		}
		out = append(out, a)
	}
	if s := ns.Site; s != nil && !s.Spec.Edge && s.Spec.LinkAccess != "" && s.Spec.LinkAccess != "none" &&
		!slices.ContainsFunc(out, func(a *Access) bool { return a.Name == s.Metadata.Name }) {
		out = append(out, &Access{Name: s.Metadata.Name, TLS: s.Metadata.Name, Issuer: s.Spec.DefaultIssuer, Roles: []AccessRole{
			{Role: "inter-router", Auto: true}, {Role: "edge", Auto: true},
		}})
	}
	for _, a := range out {
		if a.TLS == "" {
			a.TLS, a.DefaultTLS = a.Name, true
		}
		if a.Issuer == "" {
			a.Issuer = SiteCA
		}
	}
	return out
}

// portKey names a port claim in namespaces/.ports.
func portKey(kind, name, role string) string {
	if role == "" {
		return kind + "/" + name
	}
	return kind + "/" + name + "/" + role
}

// ListenerClaim is the port claim of Listener l (PortClaims has it).
func ListenerClaim(l *resources.Listener) namespace.PortClaim {
	return namespace.PortClaim{Key: portKey(resources.KindListener, l.Metadata.Name, ""), Host: l.Spec.Host, Port: int(l.Spec.Port)}
}

// PortClaims lists the ports the namespace's router binds for others to
// reach: its Listeners and its RouterAccess roles.
func PortClaims(ns *resources.Namespace) []namespace.PortClaim {
	var out []namespace.PortClaim
	for _, l := range binders(ns) {
		out = append(out, namespace.PortClaim{Key: portKey(l.kind, l.name, ""), Host: l.host, Port: int(l.port)})
	}
	for _, a := range accesses(ns) {
		for _, r := range a.Roles {
			from := InterRouterPort
			if r.Role == "edge" {
				from = EdgePort
			}
			out = append(out, namespace.PortClaim{Key: portKey(resources.KindRouterAccess, a.Name, r.Role), Host: a.BindHost, Port: r.Port, From: from})
		}
	}
	return out
}

// wildcard tells whether a bind address is every address.
func wildcard(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }

// HostNames returns the names and non-loopback addresses of this host: a
// RouterAccess bound to every address is reachable at each.
func HostNames() []string {
	var out []string
	if h, err := os.Hostname(); err == nil && h != "" {
		out = append(out, strings.ToLower(h))
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			out = append(out, ipn.IP.String())
		}
	}
	return out
}

// routerAccesses prepares the site's RouterAccesses: ports from the
// registry, a server credential (user-provided, or issued by the site CA
// for every name a peer may use) and the client credential link files
// carry, and the link files.
func (b *builder) routerAccesses() error {
	ns := b.in.Namespace
	var fine []*Access
	for _, a := range accesses(ns) {
		failAt := func(field, msg string) {
			switch {
			case a.Resource != nil:
				b.fail(a.Resource, field, msg)
			case field == "spec.issuer":
				b.fail(ns.Site, "spec.defaultIssuer", msg)
			default:
				b.fail(ns.Site, "spec.linkAccess", msg)
			}
		}
		// what it presents to peers and what signs their certificates
		// never come from the site's own management or service
		// credentials (validation refuses the names already, but for the
		// Site's linkAccess, whose server credential is named after the
		// Site, and whose issuer is the Site's spec.defaultIssuer: a Site
		// refused whole would keep its last configuration, and with it
		// what the issuer signed)
		if msg := resources.AccessCredentialProblem(a.TLS); msg != "" {
			if a.Resource == nil {
				msg += ", as the server credential of the linkAccess, which is named after the Site: rename the Site, or give it a RouterAccess instead"
			} else {
				msg += ": choose another name"
			}
			failAt("spec.tlsCredentials", msg)
			continue
		}
		if msg := resources.IssuerProblem(a.Issuer); msg != "" {
			failAt("spec.issuer", msg)
			continue
		}
		ok := true
		for i, r := range a.Roles {
			g := b.in.Ports[portKey(resources.KindRouterAccess, a.Name, r.Role)]
			switch {
			case g.HeldBy != "":
				failAt(fmt.Sprintf("spec.roles[%d].port", i), fmt.Sprintf("port %d of role %s is held by %s", r.Port, r.Role, g.HeldBy))
				ok = false
			case g.Port == b.in.ManagementPort:
				failAt(fmt.Sprintf("spec.roles[%d].port", i), fmt.Sprintf("port %d is this site's local management port", g.Port))
				ok = false
			case g.Port == 0:
				failAt(fmt.Sprintf("spec.roles[%d].port", i), "no port could be reserved for role "+r.Role)
				ok = false
			}
			a.Roles[i].Port = g.Port
		}
		if !ok {
			continue
		}
		// the server credential: user-provided, or issued for every name
		var owner resources.Object = ns.Site
		if a.Resource != nil {
			owner = a.Resource
		}
		_, user := b.in.UserCerts[a.TLS]
		src := source{from: a.TLS, issuer: a.Issuer, firstUser: "RouterAccess/" + a.Name}
		if !user {
			src.from = ""
		}
		if !b.claim(owner, a.TLS, src) {
			continue
		}
		var hosts []string
		serverCA := []byte(nil) // what a peer verifies this site with
		if user {
			c, err := b.user(a.TLS, a.TLS, false)
			switch {
			case err != nil:
				failAt("spec.tlsCredentials", err.Error())
				continue
			case !c.KeyPair || !c.CA:
				failAt("spec.tlsCredentials", fmt.Sprintf("input/certs/%s needs ca.crt, tls.crt and tls.key: the router presents the certificate and verifies peers with the CA", a.TLS))
				continue
			}
			f := b.out.Credentials[a.TLS]
			serverCA = f.CA
			hosts, _ = certs.Hosts(f.Cert)
			// peers present client certificates the issuer signs (link
			// files): the router trusts it beside the user's CA
			ca, err := b.issuer(a.Issuer)
			if err == nil {
				err = b.refuseIssuer(a.Issuer, ca)
			}
			if err != nil {
				failAt("spec.issuer", err.Error())
				continue
			}
			if !bytes.Contains(f.CA, ca.Root) {
				f.CA = append(append(slices.Clip(f.CA), '\n'), ca.Root...)
				b.out.Credentials[a.TLS] = f
			}
		} else {
			hosts = slices.Clone(a.SANs)
			if wildcard(a.BindHost) {
				hosts = append(hosts, b.in.HostNames...)
				hosts = append(hosts, "127.0.0.1")
			} else {
				hosts = append(hosts, a.BindHost)
			}
			hosts = slices.DeleteFunc(hosts, wildcard)
			hosts = dedupe(hosts)
			if len(hosts) == 0 {
				failAt("spec.subjectAlternativeNames", "no host name for the server certificate: set spec.bindHost or spec.subjectAlternativeNames")
				continue
			}
			if _, done := b.creds[a.TLS]; !done {
				if err := b.leafOutside(a.TLS, a.Issuer, certs.Leaf{CommonName: a.Name, Hosts: hosts, Server: true}); err != nil {
					failAt("spec.issuer", err.Error())
					continue
				}
			}
			serverCA = b.out.Credentials[a.TLS].CA
		}
		a.serverCA = serverCA
		if err := b.leafOutside("client-"+a.TLS, a.Issuer, certs.Leaf{CommonName: "client-" + a.TLS, Client: true}); err != nil {
			failAt("spec.issuer", err.Error())
			continue
		}
		// link files for every host the certificate names, the bind
		// address first
		if !wildcard(a.BindHost) && slices.Contains(hosts, a.BindHost) {
			hosts = append([]string{a.BindHost}, hosts...)
		}
		a.Hosts = slices.DeleteFunc(dedupe(hosts), func(h string) bool { return wildcard(h) || strings.ContainsAny(h, "*/") })
		for _, r := range a.Roles {
			b.accessEntities = append(b.accessEntities, routerconfig.Access{
				Name: a.Name + "-" + r.Role, Role: r.Role, Host: hostOrAll(a.BindHost), Port: r.Port, Profile: a.TLS,
			})
		}
		fine = append(fine, a)
	}
	b.out.Accesses = fine
	b.out.LinkFiles = map[string][]byte{}
	internal := b.internal()
	for _, a := range fine {
		client := b.out.Credentials["client-"+a.TLS]
		if signer := internal.Signer(client.Cert); signer != "" {
			// never reached while the issuer is checked; a link file
			// must not carry such a certificate whatever the way there
			return fmt.Errorf("the client certificate of RouterAccess %s is signed by %s: refusing to write its link files", a.Name, signer)
		}
		for _, h := range a.Hosts {
			b.out.LinkFiles["link-"+a.Name+"-"+h+".yaml"] = LinkFile(a, h, certs.Files{CA: a.serverCA, Cert: client.Cert, Key: client.Key})
		}
	}
	return nil
}

func hostOrAll(h string) string {
	if wildcard(h) {
		return ""
	}
	return h
}

func dedupe(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// LinkFile is the file another site needs to link to access a at host: a
// Secret with the client credential and a Link with the endpoints, in the
// shape Skupper writes (runtime/links/link-<ra>-<host>.yaml), so either
// can use the other's.
func LinkFile(a *Access, host string, cred certs.Files) []byte {
	return LinkYAML("link-"+a.Name, host, a.Roles, cred)
}

// LinkYAML is a Secret named name holding cred and a Link of that name to
// the roles' endpoints at host, in the shape Skupper writes them. Every
// string is written so that a YAML 1.1 reader (Skupper's, through
// sigs.k8s.io/yaml) and a YAML 1.2 one read back exactly it: a host named
// yes, on or null stays that host (see package yamlstr).
func LinkYAML(name, host string, roles []AccessRole, cred certs.Files) []byte {
	var b bytes.Buffer
	q := yamlstr.Scalar
	b.WriteString("---\napiVersion: v1\ndata:\n")
	for _, kv := range []struct {
		k string
		v []byte
	}{{certs.CAFile, cred.CA}, {certs.CertFile, cred.Cert}, {certs.KeyFile, cred.Key}} {
		fmt.Fprintf(&b, "  %s: %s\n", kv.k, q(base64.StdEncoding.EncodeToString(kv.v)))
	}
	fmt.Fprintf(&b, "kind: Secret\nmetadata:\n  creationTimestamp: null\n  name: %s\ntype: kubernetes.io/tls\n", q(name))
	fmt.Fprintf(&b, "---\napiVersion: %s\nkind: Link\nmetadata:\n  creationTimestamp: null\n  name: %s\nspec:\n  cost: 1\n  endpoints:\n", resources.APIVersion, q(name))
	for _, role := range []string{"inter-router", "edge"} {
		for _, r := range roles {
			if r.Role == role {
				fmt.Fprintf(&b, "  - host: %s\n    name: %s\n    port: %s\n", q(host), role, yamlstr.Quote(strconv.Itoa(r.Port)))
			}
		}
	}
	fmt.Fprintf(&b, "  tlsCredentials: %s\nstatus: {}\n", q(name))
	return b.Bytes()
}

// ServerCA is the CA a peer verifies the RouterAccess's server
// certificate with.
func (a *Access) ServerCA() []byte { return a.serverCA }

// localHosts are the names under which a peer could reach this very site.
func (b *builder) localHosts() []string {
	out := []string{"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}
	out = append(out, b.in.HostNames...)
	for _, a := range b.out.Accesses {
		out = append(out, a.BindHost)
	}
	return out
}

// links prepares a router connector for every Link: the endpoint of the
// site's role, and the client credential from its Secret (in
// input/resources) or input/certs/<name>.
func (b *builder) links() {
	ns := b.in.Namespace
	role := "inter-router"
	if ns.Site.Spec.Edge {
		role = "edge"
	}
	secrets := map[string]*resources.Secret{}
	for _, s := range ns.Secrets {
		secrets[s.Metadata.Name] = s
	}
	own := map[string]string{} // port → RouterAccess, of this site
	for _, a := range b.out.Accesses {
		for _, r := range a.Roles {
			own[strconv.Itoa(r.Port)] = a.Name
		}
	}
	local := b.localHosts()
	for _, l := range ns.Links {
		i := slices.IndexFunc(l.Spec.Endpoints, func(e resources.Endpoint) bool { return e.Name == role })
		if i < 0 {
			var have []string
			for _, e := range l.Spec.Endpoints {
				have = append(have, e.Name)
			}
			b.fail(l, "spec.endpoints", fmt.Sprintf("no %s endpoint (this is an %s site; the Link has %s)", role, map[bool]string{true: "edge", false: "interior"}[role == "edge"], strings.Join(have, ", ")))
			continue
		}
		ep := l.Spec.Endpoints[i]
		if ra, ok := own[ep.Port]; ok && slices.Contains(local, ep.Host) {
			b.fail(l, fmt.Sprintf("spec.endpoints[%d]", i), fmt.Sprintf("%s:%s is this site's own RouterAccess/%s: a site cannot link to itself", ep.Host, ep.Port, ra))
			continue
		}
		tls := l.Spec.TLSCredentials
		if tls == "" {
			b.fail(l, "spec.tlsCredentials", "required: the name of the Secret (or input/certs/<name>/) with the client certificate, its key and the peer's CA")
			continue
		}
		as := routerconfig.LinkProfile(tls)
		var files certs.Files
		var from string
		if s, ok := secrets[tls]; ok {
			files, from = secretFiles(s), "Secret/"+tls
		} else if _, ok := b.in.UserCerts[tls]; ok {
			u := b.in.UserCerts[tls]
			if u.Err != nil {
				b.fail(l, "spec.tlsCredentials", u.Err.Error())
				continue
			}
			files, from = u.Files, tls
		} else {
			b.fail(l, "spec.tlsCredentials", fmt.Sprintf("Secret %q not found: put the Secret in input/resources (a link file carries it) or its ca.crt, tls.crt and tls.key in input/certs/%s/", tls, tls))
			continue
		}
		where := "input/certs/" + tls
		if strings.HasPrefix(from, "Secret/") {
			where = "Secret " + tls
		}
		if err := certs.Check(files); err != nil {
			b.fail(l, "spec.tlsCredentials", fmt.Sprintf("%s: %v", where, err))
			continue
		}
		if files.CA == nil || files.Cert == nil {
			b.fail(l, "spec.tlsCredentials", fmt.Sprintf("%s needs ca.crt, tls.crt and tls.key", where))
			continue
		}
		if err := b.internal().RefuseCredential(where, files); err != nil {
			b.fail(l, "spec.tlsCredentials", err.Error())
			continue
		}
		if !b.claim(l, as, source{from: from, firstUser: "Link/" + l.Metadata.Name}) {
			continue
		}
		if _, done := b.creds[as]; !done {
			b.out.Credentials[as] = certs.Files{CA: files.CA, Cert: files.Cert, Key: files.Key}
			b.creds[as] = routerconfig.Credential{CA: true, KeyPair: true}
		}
		cost := l.Spec.Cost
		if cost < 1 {
			cost = 1
		}
		b.linkEntities = append(b.linkEntities, routerconfig.Link{Name: l.Metadata.Name, Role: role, Host: ep.Host, Port: ep.Port, Cost: cost, Profile: as})
	}
}

// secretFiles reads a link Secret's credential: data (base64) or
// stringData.
func secretFiles(s *resources.Secret) certs.Files {
	get := func(k string) []byte {
		if v, ok := s.Data[k]; ok {
			d, err := base64.StdEncoding.DecodeString(v)
			if err == nil {
				return d
			}
		}
		if v, ok := s.StringData[k]; ok {
			return []byte(v)
		}
		return nil
	}
	return certs.Files{CA: get(certs.CAFile), Cert: get(certs.CertFile), Key: get(certs.KeyFile)}
}
