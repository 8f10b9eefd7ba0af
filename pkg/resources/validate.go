package resources

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/site-controller/site-controller/pkg/selector"
)

// Namespace is the validated content of one namespace's input/resources.
type Namespace struct {
	Name string
	// Docs holds every document that names a kind, in file order, including
	// invalid ones, so that each can get a status.
	Docs []*Document
	// Problems holds every problem found, sorted; file-level ones (broken
	// YAML) have no ID.
	Problems []Problem

	// The valid resources, each sorted by name. Site is nil when there is
	// no valid Site.
	Site              *Site
	Listeners         []*Listener
	Connectors        []*Connector
	RouterAccess      []*RouterAccess
	Links             []*Link
	Secrets           []*Secret
	MultiKeyListeners []*MultiKeyListener
	Certificates      []*Certificate
	Grants            []*AccessGrant
	Tokens            []*AccessToken
	Bindings          []*AttachedConnectorBinding
	// Attached are the AttachedConnectors of this namespace directory,
	// for the sites of other namespaces.
	Attached      []*AttachedConnector
	documentOf    map[Object]*Document
	problemsOfDoc map[*Document][]Problem
	// defined is the first document of each "Kind/name"; ports the
	// Listeners by port, once Patch asked
	defined map[string]*Document
	ports   map[int64][]*Listener
}

// DocumentOf returns the document a valid resource was read from.
func (ns *Namespace) DocumentOf(o Object) *Document { return ns.documentOf[o] }

// ProblemsOf returns the problems of one document.
func (ns *Namespace) ProblemsOf(d *Document) []Problem { return ns.problemsOfDoc[d] }

// HasErrors tells whether any problem is an error rather than a warning.
func HasErrors(ps []Problem) bool {
	return slices.ContainsFunc(ps, func(p Problem) bool { return !p.Warning })
}

// isLabel tells whether s matches [a-z0-9]([-a-z0-9]*[a-z0-9])?, the
// lowercase RFC 1123 label (without its length limit).
func isLabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isHostname tells whether s is dot-separated lowercase labels.
func isHostname(s string) bool {
	for _, label := range strings.Split(s, ".") {
		if !isLabel(label) || len(label) > 63 {
			return false
		}
	}
	return true
}

// ValidName reports why name is not a lowercase RFC 1123 label, or "".
func ValidName(name string) string {
	switch {
	case name == "":
		return "required"
	case len(name) > 63:
		return fmt.Sprintf("%q is longer than 63 characters", name)
	case !isLabel(name):
		return fmt.Sprintf("%q is not a lowercase RFC 1123 name: use a-z, 0-9 and '-', starting and ending with a letter or digit", name)
	}
	return ""
}

// validHost reports why host is neither an IP address nor a lowercase
// hostname, or "".
func validHost(host string) string {
	if net.ParseIP(host) != nil {
		return ""
	}
	if len(host) > 253 || !isHostname(host) {
		return fmt.Sprintf("%q is not an IP address or a lowercase hostname", host)
	}
	return ""
}

// Build validates the decoded documents of a namespace named ns (the
// directory name) and sorts the valid resources out. fileProblems are the
// problems Decode returned for whole files.
func Build(ns string, docs []*Document, fileProblems []Problem) *Namespace {
	n := &Namespace{Name: ns, documentOf: map[Object]*Document{}, problemsOfDoc: map[*Document][]Problem{}}
	n.Problems = append(n.Problems, fileProblems...)
	// first definition of each Kind/name, for duplicates
	first := map[string]*Document{}
	n.defined = first
	var sites []*Document
	for _, d := range docs {
		if d.Kind == "" {
			// not a resource: what is wrong with it concerns the file
			for _, p := range d.problems {
				p.ID = ""
				n.Problems = append(n.Problems, p)
			}
			continue
		}
		n.Docs = append(n.Docs, d)
		v := validator{doc: d, ns: ns, probs: slices.Clip(d.problems)}
		if d.Object != nil && !HasErrors(d.problems) {
			v.probs = d.check(ns)
		}
		if d.Name != "" {
			key := d.Kind + "/" + d.Name
			if f, ok := first[key]; ok {
				v.fail("metadata.name", fmt.Sprintf("%s is already defined at %s:%d", key, f.File, f.Line))
			} else {
				first[key] = d
			}
		}
		n.add(d, v.probs)
		if d.Object == nil || HasErrors(n.problemsOfDoc[d]) {
			continue
		}
		switch o := d.Object.(type) {
		case *Site:
			sites = append(sites, d)
		case *Listener:
			n.Listeners = append(n.Listeners, o)
		case *Connector:
			n.Connectors = append(n.Connectors, o)
		case *RouterAccess:
			n.RouterAccess = append(n.RouterAccess, o)
		case *Link:
			n.Links = append(n.Links, o)
		case *Secret:
			n.Secrets = append(n.Secrets, o)
		case *MultiKeyListener:
			n.MultiKeyListeners = append(n.MultiKeyListeners, o)
		case *Certificate:
			n.Certificates = append(n.Certificates, o)
		case *AccessGrant:
			n.Grants = append(n.Grants, o)
		case *AccessToken:
			n.Tokens = append(n.Tokens, o)
		case *AttachedConnectorBinding:
			n.Bindings = append(n.Bindings, o)
		case *AttachedConnector:
			n.Attached = append(n.Attached, o)
		}
		n.documentOf[d.Object] = d
	}
	byName := func(a, b Object) int { return strings.Compare(a.header().Metadata.Name, b.header().Metadata.Name) }
	slices.SortStableFunc(sites, func(a, b *Document) int { return byName(a.Object, b.Object) })
	sortByName(n.Listeners, byName)
	sortByName(n.Connectors, byName)
	sortByName(n.RouterAccess, byName)
	sortByName(n.Links, byName)
	sortByName(n.Secrets, byName)
	sortByName(n.MultiKeyListeners, byName)
	sortByName(n.Certificates, byName)
	sortByName(n.Grants, byName)
	sortByName(n.Tokens, byName)
	sortByName(n.Bindings, byName)
	sortByName(n.Attached, byName)

	switch {
	case len(sites) == 0 && !slices.ContainsFunc(n.Docs, func(d *Document) bool { return d.Kind == KindSite || d.Kind == KindAttachedConnector }):
		// (a directory of AttachedConnectors serves other namespaces' sites)
		n.Problems = append(n.Problems, Problem{File: "input/resources", Message: "no Site defined; a namespace needs exactly one Site"})
	case len(sites) > 0:
		n.Site = sites[0].Object.(*Site)
		for _, d := range sites[1:] {
			n.reject(d, "metadata.name", fmt.Sprintf("only one Site per namespace; Site/%s (%s:%d) is the site of %q", n.Site.Metadata.Name, sites[0].File, sites[0].Line, ns))
		}
	}
	if n.Site != nil && n.Site.Spec.Edge {
		n.RouterAccess = slices.DeleteFunc(n.RouterAccess, func(ra *RouterAccess) bool {
			n.reject(n.documentOf[ra], "spec.roles", "an edge site accepts no links; remove this RouterAccess or make the Site interior")
			return true
		})
	}
	n.checkListenerAddresses()
	n.checkRouterAccessPorts()
	SortProblems(n.Problems)
	return n
}

func sortByName[T Object](s []T, cmp func(a, b Object) int) {
	slices.SortStableFunc(s, func(a, b T) int { return cmp(a, b) })
}

func (n *Namespace) add(d *Document, ps []Problem) {
	n.problemsOfDoc[d] = append(n.problemsOfDoc[d], ps...)
	n.Problems = append(n.Problems, ps...)
}

// reject records an error against a resource that passed its own checks
// but conflicts with another one.
func (n *Namespace) reject(d *Document, field, msg string) {
	n.add(d, []Problem{{File: d.File, Line: d.LineOf(field), ID: d.ID(), Field: field, Message: msg}})
}

// listenerAddr is a bound address: 0.0.0.0 and :: overlap every address.
func overlaps(h1, h2 string) bool {
	wild := func(h string) bool { return h == "0.0.0.0" || h == "::" || h == "" }
	return h1 == h2 || wild(h1) || wild(h2)
}

// checkListenerAddresses rejects a Listener whose host:port overlaps one that
// sorts before it by name, so the outcome does not depend on file order.
func (n *Namespace) checkListenerAddresses() {
	var kept []*Listener
	byPort := map[int64][]*Listener{} // kept, by port
	for _, l := range n.Listeners {
		same := byPort[l.Spec.Port]
		clash := slices.IndexFunc(same, func(k *Listener) bool { return overlaps(k.Spec.Host, l.Spec.Host) })
		if clash < 0 {
			kept = append(kept, l)
			byPort[l.Spec.Port] = append(same, l)
			continue
		}
		k := same[clash]
		kd := n.documentOf[k]
		n.reject(n.documentOf[l], "spec.port", fmt.Sprintf("%s:%d overlaps %s:%d of Listener/%s (%s:%d)",
			l.Spec.Host, l.Spec.Port, k.Spec.Host, k.Spec.Port, k.Metadata.Name, kd.File, kd.LineOf("spec.port")))
	}
	n.Listeners = kept
	// a MultiKeyListener binds an address too: Listeners keep theirs
	var keptMKL []*MultiKeyListener
	for _, m := range n.MultiKeyListeners {
		at := func(host string, port int64) bool { return port == m.Spec.Port && overlaps(host, m.Spec.Host) }
		var other, file string
		var line int
		same := byPort[m.Spec.Port]
		if i := slices.IndexFunc(same, func(k *Listener) bool { return at(k.Spec.Host, k.Spec.Port) }); i >= 0 {
			k := same[i]
			d := n.documentOf[k]
			other, file, line = k.Spec.Host+":"+strconv.FormatInt(k.Spec.Port, 10)+" of Listener/"+k.Metadata.Name, d.File, d.LineOf("spec.port")
		} else if i := slices.IndexFunc(keptMKL, func(k *MultiKeyListener) bool { return at(k.Spec.Host, k.Spec.Port) }); i >= 0 {
			d := n.documentOf[keptMKL[i]]
			other, file, line = keptMKL[i].Spec.Host+":"+strconv.FormatInt(keptMKL[i].Spec.Port, 10)+" of MultiKeyListener/"+keptMKL[i].Metadata.Name, d.File, d.LineOf("spec.port")
		}
		if other == "" {
			keptMKL = append(keptMKL, m)
			continue
		}
		n.reject(n.documentOf[m], "spec.port", fmt.Sprintf("%s:%d overlaps %s (%s:%d)", m.Spec.Host, m.Spec.Port, other, file, line))
	}
	n.MultiKeyListeners = keptMKL
}

// checkRouterAccessPorts rejects RouterAccess ports already bound by another
// RouterAccess or a Listener.
func (n *Namespace) checkRouterAccessPorts() {
	used := map[int64]string{}
	for _, l := range n.Listeners {
		used[l.Spec.Port] = "Listener/" + l.Metadata.Name
	}
	for _, m := range n.MultiKeyListeners {
		used[m.Spec.Port] = "MultiKeyListener/" + m.Metadata.Name
	}
	var kept []*RouterAccess
	for _, ra := range n.RouterAccess {
		clash := ""
		for _, r := range ra.Spec.Roles {
			if other, ok := used[r.Port]; ok {
				clash = fmt.Sprintf("port %d of role %s is already used by %s", r.Port, r.Name, other)
				break
			}
		}
		if clash != "" {
			n.reject(n.documentOf[ra], "spec.roles", clash)
			continue
		}
		for _, r := range ra.Spec.Roles {
			used[r.Port] = "RouterAccess/" + ra.Metadata.Name
		}
		kept = append(kept, ra)
	}
	n.RouterAccess = kept
}

// check returns the problems of document d (decoded, without errors) and
// what its own checks in namespace ns find; a document read from a file
// unchanged since is not checked again.
func (d *Document) check(ns string) []Problem {
	if d.checked == nil || d.checked.ns != ns {
		v := validator{doc: d, ns: ns, probs: slices.Clip(d.problems)}
		v.check()
		d.checked = &checked{ns: ns, probs: slices.Clip(v.probs)}
	}
	return d.checked.probs
}

// validator checks one document on its own.
type validator struct {
	doc   *Document
	ns    string
	probs []Problem
}

func (v *validator) fail(field, msg string) {
	v.probs = append(v.probs, Problem{File: v.doc.File, Line: v.doc.LineOf(field), ID: v.doc.ID(), Field: field, Message: msg})
}

func (v *validator) warn(field, msg string) {
	v.probs = append(v.probs, Problem{File: v.doc.File, Line: v.doc.LineOf(field), ID: v.doc.ID(), Field: field, Message: msg, Warning: true})
}

func (v *validator) name(field, name string) {
	if msg := ValidName(name); msg != "" {
		v.fail(field, msg)
	}
}

// ReservedCredentials are the credentials a site generates for itself, by
// name, with what each one is. A Listener or Connector that names one in
// spec.tlsCredentials would share (or overwrite) the site's own key.
var ReservedCredentials = map[string]string{
	"skupper-local-ca":     "the CA of the local management connection",
	"skupper-local-server": "the local management listener's server certificate",
	"skupper-local-client": "the controller's management client certificate",
	"skupper-service-ca":   "the CA that issues generated Listener certificates",
	"skupper-site-ca":      "the site CA that issues link credentials",
	"skupper-site-server":  "the server certificate of the site's link listeners",
}

// InternalCAs are the CAs a site generates for itself alone, by name,
// with what each one is. What they sign stays inside the site: the router's
// local management listener accepts every client certificate
// skupper-local-ca signs, and clients of the site's Listeners trust every
// server certificate skupper-service-ca signs. Neither may sign anything
// that leaves the site (a RouterAccess's certificates, the client
// certificates of link files and grant answers, a Certificate).
var InternalCAs = map[string]string{
	"skupper-local-ca":   "the CA of the router's local management listener",
	"skupper-service-ca": "the CA of the site's generated Listener certificates",
}

// IssuerProblem says why the CA named name cannot issue credentials that
// leave the site, or "": it is one of the site's internal CAs, or a
// credential the site generates for itself that is no CA at all. The site
// CA (skupper-site-ca) is the CA of links, and may.
func IssuerProblem(name string) string {
	if what, ok := InternalCAs[name]; ok {
		return fmt.Sprintf("%s is %s; it cannot sign credentials that leave the site", name, what)
	}
	if what, ok := ReservedCredentials[name]; ok && name != "skupper-site-ca" {
		return fmt.Sprintf("%q is reserved: it is %s, not a CA; name a CA (a signing Certificate, input/issuers/<name>, or skupper-site-ca)", name, what)
	}
	return ""
}

// AccessCredentialProblem says why a RouterAccess cannot have name as its
// server credential, or "": the router would present a credential the
// site keeps for itself to peers and trust its CA for them. The name
// Skupper gives its sites' link listeners (skupper-site-server) is fine.
func AccessCredentialProblem(name string) string {
	if what, ok := ReservedCredentials[name]; ok && name != "skupper-site-server" {
		return fmt.Sprintf("%q is reserved: it is %s, which the site keeps for itself; the router would present it to peers and trust its CA for them", name, what)
	}
	return ""
}

// issuer checks a field that names the CA of credentials that leave the
// site.
func (v *validator) issuer(field, name string) {
	v.name(field, name)
	if msg := IssuerProblem(name); msg != "" {
		v.fail(field, msg)
	}
}

// credential checks a Listener's or Connector's spec.tlsCredentials.
func (v *validator) credential(field, name string) {
	v.name(field, name)
	if what, ok := ReservedCredentials[name]; ok {
		v.fail(field, fmt.Sprintf("%q is reserved: it is %s, which the site generates for itself; choose another name", name, what))
	}
}

func (v *validator) required(field, value string) bool {
	if value == "" {
		v.fail(field, "required")
		return false
	}
	return true
}

func (v *validator) host(field, host string, required bool) {
	if host == "" {
		if required {
			v.fail(field, "required")
		}
		return
	}
	if msg := validHost(host); msg != "" {
		v.fail(field, msg)
	}
}

func (v *validator) port(field string, port int64) {
	if _, set := v.doc.lines[field]; !set {
		v.fail(field, "required")
		return
	}
	if port < 1 || port > 65535 {
		v.fail(field, fmt.Sprintf("must be between 1 and 65535, got %d", port))
	}
}

func (v *validator) routingKey(field, key string) {
	if !v.required(field, key) {
		return
	}
	if strings.ContainsAny(key, " \t\r\n") {
		v.fail(field, fmt.Sprintf("%q must not contain white space", key))
	}
}

// selector checks a label selector.
func (v *validator) selector(field, text string) {
	if strings.TrimSpace(text) == "" {
		v.fail(field, "empty: it would select every container; name the labels of the servers (app=backend)")
		return
	}
	if _, err := selector.Parse(text); err != nil {
		v.fail(field, "invalid label selector: "+err.Error())
	}
}

func (v *validator) tcpType(field, t string) {
	if t != "" && t != "tcp" {
		v.fail(field, fmt.Sprintf("unsupported type %q; only tcp is supported", t))
	}
}

// settings warns about settings keys this controller does not act on.
func (v *validator) settings(field string, m map[string]string, known map[string]func(string) string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		check, ok := known[k]
		if !ok {
			v.warn(field+"."+k, "unknown setting, ignored")
			continue
		}
		if msg := check(m[k]); msg != "" {
			v.fail(field+"."+k, msg)
		}
	}
}

func oneOf(values ...string) func(string) string {
	return func(s string) string {
		if slices.Contains(values, s) {
			return ""
		}
		return fmt.Sprintf("%q is not one of %s", s, strings.Join(values, ", "))
	}
}

// ObserverValues are the protocol observers the router knows.
var ObserverValues = []string{"auto", "none", "http1", "http2"}

// LogLevels are the router log levels accepted by the router-logging setting.
var LogLevels = []string{"trace", "debug", "info", "notice", "warning", "error", "critical"}

func checkLogging(s string) string {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		level := part
		if i := strings.LastIndex(part, ":"); i >= 0 {
			level = part[i+1:]
			if part[:i] == "" {
				return fmt.Sprintf("%q: empty module name", part)
			}
		}
		level = strings.TrimSuffix(level, "+")
		if !slices.Contains(LogLevels, level) {
			return fmt.Sprintf("%q: level must be one of %s (optionally with a trailing +)", part, strings.Join(LogLevels, ", "))
		}
	}
	return ""
}

func checkCount(s string) string {
	if s == "auto" {
		return ""
	}
	if n, err := strconv.Atoi(s); err != nil || n < 1 {
		return fmt.Sprintf("%q must be auto or a positive integer", s)
	}
	return ""
}

// SiteSettings are the Site settings this controller maps to the router.
var siteSettings = map[string]func(string) string{
	"router-logging":               checkLogging,
	"router-data-connection-count": checkCount,
}

var listenerSettings = map[string]func(string) string{
	"observer": oneOf(ObserverValues...),
}

func (v *validator) check() {
	d := v.doc
	h := d.Object.header()
	v.name("metadata.name", h.Metadata.Name)
	if h.Metadata.Namespace != "" && h.Metadata.Namespace != v.ns {
		v.fail("metadata.namespace", fmt.Sprintf("%q does not match the namespace directory %q; leave it empty or set it to %q", h.Metadata.Namespace, v.ns, v.ns))
	}
	switch o := d.Object.(type) {
	case *Site:
		if o.Spec.Edge && o.Spec.HA {
			v.fail("spec.ha", "an edge site cannot be HA; set spec.edge or spec.ha, not both")
		} else if o.Spec.HA {
			v.warn("spec.ha", "ignored on this platform (HA runs a second router pod on Kubernetes)")
		}
		switch o.Spec.LinkAccess {
		case "", "none":
		case "default":
			if o.Spec.Edge {
				v.warn("spec.linkAccess", "ignored: an edge site accepts no links (it links to interior sites)")
			}
		default:
			v.fail("spec.linkAccess", fmt.Sprintf("%q is not supported on this platform; use default or none", o.Spec.LinkAccess))
		}
		if o.Spec.ServiceAccount != "" {
			v.warn("spec.serviceAccount", "ignored on this platform (Kubernetes only)")
		}
		if o.Spec.DefaultIssuer != "" {
			v.name("spec.defaultIssuer", o.Spec.DefaultIssuer)
		}
		v.settings("spec.settings", o.Spec.Settings, siteSettings)
	case *Listener:
		s := o.Spec
		v.routingKey("spec.routingKey", s.RoutingKey)
		v.host("spec.host", s.Host, true)
		v.port("spec.port", s.Port)
		v.tcpType("spec.type", s.Type)
		if s.TLSCredentials != "" {
			v.credential("spec.tlsCredentials", s.TLSCredentials)
		}
		if s.Observer != "" {
			if msg := oneOf(ObserverValues...)(s.Observer); msg != "" {
				v.fail("spec.observer", msg)
			}
		}
		if s.ExposePodsByName {
			v.warn("spec.exposePodsByName", "not supported on this platform (it exposes Kubernetes pods); ignored")
		}
		v.settings("spec.settings", s.Settings, listenerSettings)
	case *Connector:
		s := o.Spec
		v.routingKey("spec.routingKey", s.RoutingKey)
		switch {
		case s.Host == "" && s.Selector == "":
			v.fail("spec.host", "required: the server's host name or address (or spec.selector, to select containers on the docker and podman platforms)")
		case s.Host != "":
			v.host("spec.host", s.Host, true)
			if s.Selector != "" {
				v.warn("spec.selector", "ignored: spec.host is set, and the router connects to it")
			}
		default:
			v.selector("spec.selector", s.Selector)
		}
		v.port("spec.port", s.Port)
		v.tcpType("spec.type", s.Type)
		if s.TLSCredentials != "" {
			v.credential("spec.tlsCredentials", s.TLSCredentials)
		} else if s.UseClientCert {
			v.fail("spec.useClientCert", "requires spec.tlsCredentials")
		}
		if s.IncludeNotReadyPods && (s.Selector == "" || s.Host != "") {
			v.warn("spec.includeNotReadyPods", "ignored: it applies to the containers spec.selector selects")
		}
		if s.ExposePodsByName {
			v.warn("spec.exposePodsByName", "not supported on this platform (Kubernetes only); ignored")
		}
		v.settings("spec.settings", s.Settings, nil)
	case *AttachedConnector:
		s := o.Spec
		if v.required("spec.siteNamespace", s.SiteNamespace) {
			v.name("spec.siteNamespace", s.SiteNamespace)
			if s.SiteNamespace == v.ns {
				v.fail("spec.siteNamespace", "names this namespace; an AttachedConnector serves the site of another namespace directory (use a Connector with spec.selector here)")
			}
		}
		if v.required("spec.selector", s.Selector) {
			v.selector("spec.selector", s.Selector)
		}
		v.port("spec.port", s.Port)
		v.tcpType("spec.type", s.Type)
		if s.TLSCredentials != "" {
			v.fail("spec.tlsCredentials", "not supported yet for an AttachedConnector on this platform; use a Connector with spec.selector in the site's namespace for TLS to the server")
		} else if s.UseClientCert {
			v.fail("spec.useClientCert", "requires spec.tlsCredentials")
		}
		v.settings("spec.settings", s.Settings, nil)
	case *AttachedConnectorBinding:
		if v.required("spec.connectorNamespace", o.Spec.ConnectorNamespace) {
			v.name("spec.connectorNamespace", o.Spec.ConnectorNamespace)
			if o.Spec.ConnectorNamespace == v.ns {
				v.fail("spec.connectorNamespace", "names this namespace; it must name the namespace directory of the AttachedConnector")
			}
		}
		v.routingKey("spec.routingKey", o.Spec.RoutingKey)
		if o.Spec.ExposePodsByName {
			v.warn("spec.exposePodsByName", "not supported on this platform (Kubernetes only); ignored")
		}
		v.settings("spec.settings", o.Spec.Settings, nil)
	case *RouterAccess:
		s := o.Spec
		if len(s.Roles) == 0 {
			v.fail("spec.roles", "required; list at least one of inter-router, edge")
		}
		roles := map[string]bool{}
		for i, r := range s.Roles {
			f := fmt.Sprintf("spec.roles[%d]", i)
			switch {
			case r.Name != "inter-router" && r.Name != "edge":
				v.fail(f+".name", fmt.Sprintf("invalid role %q; valid roles are inter-router, edge", r.Name))
			case roles[r.Name]:
				v.fail(f+".name", fmt.Sprintf("role %q is listed twice", r.Name))
			}
			roles[r.Name] = true
			if _, set := d.lines[f+".port"]; set || r.Port != 0 {
				v.port(f+".port", r.Port) // without one, the controller chooses
			}
		}
		if s.TLSCredentials != "" {
			v.name("spec.tlsCredentials", s.TLSCredentials)
			if msg := AccessCredentialProblem(s.TLSCredentials); msg != "" {
				v.fail("spec.tlsCredentials", msg+": choose another name")
			}
		} else if msg := AccessCredentialProblem(h.Metadata.Name); msg != "" {
			v.fail("metadata.name", msg+", as the server credential named after a RouterAccess without spec.tlsCredentials: choose another name, or set spec.tlsCredentials")
		}
		if s.Issuer != "" {
			v.issuer("spec.issuer", s.Issuer)
		}
		v.host("spec.bindHost", s.BindHost, false)
		for i, san := range s.SubjectAlternativeNames {
			v.host(fmt.Sprintf("spec.subjectAlternativeNames[%d]", i), san, true)
		}
		if s.AccessType != "" && s.AccessType != "local" && s.AccessType != "default" {
			v.fail("spec.accessType", fmt.Sprintf("%q is not supported on this platform; use local or default", s.AccessType))
		}
	case *Link:
		s := o.Spec
		if len(s.Endpoints) == 0 {
			v.fail("spec.endpoints", "required; list the peer's inter-router and/or edge endpoint")
		}
		for i, e := range s.Endpoints {
			f := fmt.Sprintf("spec.endpoints[%d]", i)
			if e.Name != "inter-router" && e.Name != "edge" {
				v.fail(f+".name", fmt.Sprintf("invalid endpoint name %q; expected inter-router or edge", e.Name))
			}
			v.host(f+".host", e.Host, true)
			if p, err := strconv.Atoi(e.Port); err != nil || p < 1 || p > 65535 {
				v.fail(f+".port", fmt.Sprintf("must be a port between 1 and 65535, got %q", e.Port))
			}
		}
		if s.TLSCredentials != "" {
			v.credential("spec.tlsCredentials", s.TLSCredentials)
		}
		if _, set := d.lines["spec.cost"]; set && s.Cost < 1 {
			v.fail("spec.cost", fmt.Sprintf("must be 1 or more, got %d", s.Cost))
		}
	case *MultiKeyListener:
		s := o.Spec
		v.host("spec.host", s.Host, true)
		v.port("spec.port", s.Port)
		if s.TLSCredentials != "" {
			v.credential("spec.tlsCredentials", s.TLSCredentials)
		} else if s.RequireClientCert {
			v.fail("spec.requireClientCert", "requires spec.tlsCredentials")
		}
		if s.Observer != "" {
			if msg := oneOf(ObserverValues...)(s.Observer); msg != "" {
				v.fail("spec.observer", msg)
			}
		}
		st := s.Strategy
		switch {
		case st.Priority == nil && st.Weighted == nil:
			v.fail("spec.strategy", "required: priority (routing keys in order) or weighted (routing keys with weights)")
		case st.Priority != nil && st.Weighted != nil:
			v.fail("spec.strategy", "give one of priority and weighted, not both")
		case st.Priority != nil:
			keys := st.Priority.RoutingKeys
			if len(keys) == 0 || len(keys) > 256 {
				v.fail("spec.strategy.priority.routingKeys", fmt.Sprintf("list 1 to 256 routing keys, got %d", len(keys)))
			}
			for i, k := range keys {
				f := fmt.Sprintf("spec.strategy.priority.routingKeys[%d]", i)
				v.routingKey(f, k)
				if slices.Index(keys, k) < i {
					v.fail(f, fmt.Sprintf("%q is listed twice", k))
				}
			}
		default:
			keys := st.Weighted.RoutingKeys
			if len(keys) == 0 || len(keys) > 256 {
				v.fail("spec.strategy.weighted.routingKeys", fmt.Sprintf("map 1 to 256 routing keys to weights, got %d", len(keys)))
			}
			for _, k := range slices.Sorted(maps.Keys(keys)) {
				f := "spec.strategy.weighted.routingKeys." + k
				v.routingKey(f, k)
				if keys[k] < 1 {
					v.fail(f, fmt.Sprintf("weight must be 1 or more, got %d", keys[k]))
				}
			}
		}
		v.settings("spec.settings", s.Settings, listenerSettings)
	case *Certificate:
		s := o.Spec
		if what, ok := ReservedCredentials[h.Metadata.Name]; ok {
			v.fail("metadata.name", fmt.Sprintf("%q is reserved: it is %s, which the site generates for itself; choose another name", h.Metadata.Name, what))
		}
		v.required("spec.subject", s.Subject)
		switch {
		case s.Signing && (s.Client || s.Server):
			v.fail("spec.signing", "a CA is not also a client or server certificate: set signing, or client/server")
		case s.Signing && s.CA != "" && s.CA != h.Metadata.Name:
			// an intermediate CA, signed by the CA spec.ca names (its own
			// name, or none: a root)
			v.issuer("spec.ca", s.CA)
		case !s.Signing && s.CA == "":
			v.fail("spec.ca", "required: the CA that issues it (a signing Certificate, input/issuers/<name>, or skupper-site-ca)")
		case !s.Signing:
			v.issuer("spec.ca", s.CA)
			if !s.Client && !s.Server {
				v.fail("spec.server", "set server, client or both: what the certificate is for")
			}
		}
		for i, host := range s.Hosts {
			v.host(fmt.Sprintf("spec.hosts[%d]", i), host, true)
		}
	case *AccessGrant:
		s := o.Spec
		if s.RedemptionsAllowed < 0 {
			v.fail("spec.redemptionsAllowed", fmt.Sprintf("must be 0 (meaning 1) or more, got %d", s.RedemptionsAllowed))
		}
		if s.ExpirationWindow != "" {
			if d, err := time.ParseDuration(s.ExpirationWindow); err != nil || d <= 0 {
				v.fail("spec.expirationWindow", fmt.Sprintf("%q is not a positive duration such as 15m or 2h", s.ExpirationWindow))
			}
		}
		if s.Code != "" && len(s.Code) < 8 {
			v.fail("spec.code", "too short to guard a link: use at least 8 characters, or leave it out to have one generated")
		}
		if s.Issuer != "" {
			v.issuer("spec.issuer", s.Issuer)
		}
	case *AccessToken:
		s := o.Spec
		if v.required("spec.url", s.URL) {
			if u, err := url.Parse(s.URL); err != nil || u.Scheme != "https" || u.Host == "" {
				v.fail("spec.url", fmt.Sprintf("%q is not an https:// URL", s.URL))
			}
		}
		v.required("spec.code", s.Code)
		if v.required("spec.ca", s.CA) {
			if block, _ := pem.Decode([]byte(s.CA)); block == nil || block.Type != "CERTIFICATE" {
				v.fail("spec.ca", "not a PEM certificate")
			}
		}
		if s.LinkCost < 0 {
			v.fail("spec.linkCost", fmt.Sprintf("must be 0 (the default) or more, got %d", s.LinkCost))
		}
	case *Secret:
		for k, val := range o.Data {
			if _, err := base64.StdEncoding.DecodeString(val); err != nil {
				v.fail("data."+k, "not valid base64")
			}
		}
	}
}
