// Package routerconfig turns a namespace's validated resources into the
// skupper-router configuration (skrouterd.json).
//
// Rendering is pure: no clock, no randomness, no file system, no globals.
// The same input always gives the same bytes. Everything that must be
// stable across renders (site id, management port, which credentials
// exist) is handed in by the caller.
package routerconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/site-controller/site-controller/pkg/resources"
)

// Names of the generated local management credentials and listener.
const (
	LocalCA           = "skupper-local-ca"
	LocalServer       = "skupper-local-server"
	LocalClient       = "skupper-local-client"
	ServiceCA         = "skupper-service-ca"
	LocalListenerName = "skupper-local-normal"
	// DefaultManagementPort is where the search for a free local management
	// port starts.
	DefaultManagementPort = 5671
	// ContainerCertBase is the base path of credentials inside the router
	// container; the router image's launch script expands it.
	ContainerCertBase = "${SSL_PROFILE_BASE_PATH}"
)

// Entity is one [type, attributes] pair of the router configuration.
type Entity struct {
	Type  string
	Attrs map[string]any
}

// Name returns the entity's name attribute, or "".
func (e Entity) Name() string {
	s, _ := e.Attrs["name"].(string)
	return s
}

// Config is a whole router configuration, in file order.
type Config []Entity

// Environment is what rendering needs beyond the resources.
type Environment struct {
	SiteID         string // stable per site, persisted by the caller
	Platform       string // podman, docker, linux (or none)
	Version        string // controller version, recorded in metadata
	ManagementPort int    // reserved local management port
	// CertBase is the directory that holds runtime/certs as the router
	// sees it: ContainerCertBase in containers, the namespace directory
	// for the linux platform.
	CertBase string
	// Credentials lists, by name, the credentials that exist under
	// runtime/certs (as prepared by the caller).
	Credentials map[string]Credential
	// Accesses are the router listeners other sites link to (from
	// RouterAccess resources and the Site's linkAccess), ports resolved.
	Accesses []Access
	// Links are the router connectors to other sites (from Link
	// resources), endpoints resolved for the site's role.
	Links []Link
	// Targets are, by Connector name, the containers each Connector with
	// a selector (and no host) selected: one tcpConnector each.
	Targets map[string][]Target
	// Attached are the AttachedConnectors bound to this site by its
	// AttachedConnectorBindings, with the containers they selected.
	Attached []Attached
	// Memo, when set, keeps the entities of one namespace's resources
	// from one Render to the next (see Memo).
	Memo *Memo
}

// Memo keeps, between the renders of one namespace, the entity of each
// Listener and Connector that depends on nothing but the resource itself
// (no TLS), keyed by the decoded resource: a resource read from an
// unchanged file is the same object, and its entity is not built again.
// Marshal reuses the text of an entity whose attributes are the very map
// it wrote before. The output is the same as without it, byte for byte.
type Memo struct {
	entities, used map[resources.Object]Entity
	text           map[string]memoText // by type and name
}

type memoText struct {
	attrs map[string]any
	text  []byte
}

// entity returns the kept entity of o, building it with build when there
// is none.
func (m *Memo) entity(o resources.Object, build func() Entity) Entity {
	if m == nil {
		return build()
	}
	e, ok := m.entities[o]
	if !ok {
		e = build()
	}
	if m.used == nil {
		m.used = map[resources.Object]Entity{}
	}
	m.used[o] = e
	return e
}

// done forgets the entities of resources this render did not have.
func (m *Memo) done() {
	if m != nil {
		m.entities, m.used = m.used, nil
	}
}

// Target is a container a selector selected.
type Target struct {
	Name string // the container's name: tcpConnector names end with it
	ID   string
	Host string // its address as the router reaches it
}

// Attached is an AttachedConnector of another namespace directory bound
// by the AttachedConnectorBinding of the same name.
type Attached struct {
	Name       string // of both
	Namespace  string // the AttachedConnector's
	RoutingKey string // the binding's
	Port       int64  // the AttachedConnector's
	Targets    []Target
}

// TargetConnectorName is the tcpConnector of Connector c for a container
// its selector selected: Skupper's Connector name, with the container's
// name after the "@" where Skupper puts a pod's address, so that it stays
// the same while the container is restarted and says which it is.
func TargetConnectorName(c *resources.Connector, t Target) string {
	return "connector/" + c.Metadata.Name + "@" + t.Name
}

// AttachedConnectorName is the tcpConnector of an attached connector for
// one container.
func AttachedConnectorName(a Attached, t Target) string {
	return "attachedConnector/" + a.Namespace + "/" + a.Name + "@" + t.Name
}

// Access is one router listener that accepts links: one role of a
// RouterAccess.
type Access struct {
	Name    string // <routeraccess>-<role>
	Role    string // inter-router or edge
	Host    string // "" for every address
	Port    int
	Profile string // sslProfile: server certificate and the CA clients must be issued by
}

// Link is one router connector to another site's RouterAccess.
type Link struct {
	Name    string // the Link's name
	Role    string // inter-router or edge
	Host    string
	Port    string
	Cost    int64
	Profile string // sslProfile: client certificate and the CA of the peer
}

// LinkProfile is the name of the sslProfile of a Link whose client
// credential is tlsCredentials, as Skupper names it.
func LinkProfile(tlsCredentials string) string { return tlsCredentials + "-profile" }

// Credential says which files of a credential directory exist.
type Credential struct {
	CA      bool // ca.crt
	KeyPair bool // tls.crt and tls.key
}

// ConnectorProfile is the name of the CA-only profile a Connector without
// useClientCert uses to verify its server.
func ConnectorProfile(tlsCredentials string) string { return tlsCredentials + "-profile" }

// RouterID is the stable router id of a site.
func RouterID(siteName, siteID string) string {
	id := siteID
	if len(id) > 8 {
		id = id[:8]
	}
	return siteName + "-" + id
}

// ConnectorName is the tcpConnector name Skupper uses for a Connector.
func ConnectorName(c *resources.Connector) string {
	return "connector/" + c.Metadata.Name + "@" + c.Spec.Host
}

// MultiKeyListenerName is the tcpListener name Skupper uses for a
// MultiKeyListener.
func MultiKeyListenerName(m *resources.MultiKeyListener) string {
	return "multiAddress/" + m.Metadata.Name
}

// ListenerName is the tcpListener name Skupper uses for a Listener.
func ListenerName(l *resources.Listener) string { return "listener/" + l.Metadata.Name }

// Render builds the router configuration of a namespace. ns must have a
// Site; resources whose credentials are missing from env.Credentials are
// an error (the caller leaves them out and reports them first).
func Render(ns *resources.Namespace, env Environment) (Config, error) {
	if ns.Site == nil {
		return nil, fmt.Errorf("namespace %s has no Site", ns.Name)
	}
	site := ns.Site
	mode := "interior"
	if site.Spec.Edge {
		mode = "edge"
	}
	meta, err := json.Marshal(struct {
		ID       string `json:"id"`
		Version  string `json:"version"`
		Platform string `json:"platform"`
	}{env.SiteID, env.Version, env.Platform})
	if err != nil {
		return nil, fmt.Errorf("router metadata: %w", err)
	}
	routerID := RouterID(site.Metadata.Name, env.SiteID)
	router := map[string]any{
		"id":                 routerID,
		"mode":               mode,
		"helloMaxAgeSeconds": 3,
		"metadata":           string(meta),
	}
	if n := site.Spec.Settings["router-data-connection-count"]; n != "" {
		router["dataConnectionCount"] = n
	}
	cfg := Config{
		{"router", router},
		{"site", map[string]any{
			"name":      routerID,
			"platform":  env.Platform,
			"namespace": ns.Name,
			"version":   env.Version,
		}},
	}

	profiles := map[string]map[string]any{}
	profile := func(name string, withKeyPair bool) error {
		c, ok := env.Credentials[name]
		if !ok {
			return fmt.Errorf("credentials %q are not prepared", name)
		}
		if withKeyPair && !c.KeyPair {
			return fmt.Errorf("credentials %q have no tls.crt and tls.key", name)
		}
		if !withKeyPair && !c.CA {
			return fmt.Errorf("credentials %q have no ca.crt", name)
		}
		p := map[string]any{"name": name}
		base := strings.TrimSuffix(env.CertBase, "/") + "/runtime/certs/" + name + "/"
		if c.CA {
			p["caCertFile"] = base + "ca.crt"
		}
		if withKeyPair {
			p["certFile"] = base + "tls.crt"
			p["privateKeyFile"] = base + "tls.key"
		}
		profiles[name] = p
		return nil
	}

	if err := profile(LocalServer, true); err != nil {
		return nil, fmt.Errorf("local management listener: %w", err)
	}
	listeners := []Entity{{"listener", map[string]any{
		"name":             LocalListenerName,
		"role":             "normal",
		"host":             "127.0.0.1",
		"port":             strconv.Itoa(env.ManagementPort),
		"sslProfile":       LocalServer,
		"saslMechanisms":   "EXTERNAL",
		"authenticatePeer": true,
	}}}

	for _, a := range env.Accesses {
		if err := profile(a.Profile, true); err != nil {
			return nil, fmt.Errorf("router access %s: %w", a.Name, err)
		}
		attrs := map[string]any{
			"name":             a.Name,
			"role":             a.Role,
			"port":             strconv.Itoa(a.Port),
			"sslProfile":       a.Profile,
			"saslMechanisms":   "EXTERNAL",
			"authenticatePeer": true,
		}
		if a.Host != "" {
			attrs["host"] = a.Host
		}
		listeners = append(listeners, Entity{"listener", attrs})
	}
	var connectors []Entity
	for _, l := range env.Links {
		if err := profile(l.Profile, true); err != nil {
			return nil, fmt.Errorf("Link/%s: %w", l.Name, err)
		}
		connectors = append(connectors, Entity{"connector", map[string]any{
			"name":       l.Name,
			"role":       l.Role,
			"host":       l.Host,
			"port":       l.Port,
			"cost":       max(l.Cost, 1),
			"sslProfile": l.Profile,
		}})
	}

	var tcp []Entity
	for _, l := range ns.Listeners {
		if e, ok := SimpleEntity(l); ok {
			tcp = append(tcp, env.Memo.entity(l, func() Entity { return e }))
			continue
		}
		a := listenerAttrs(l)
		if t := l.Spec.TLSCredentials; t != "" {
			if err := profile(t, true); err != nil {
				return nil, fmt.Errorf("Listener/%s: %w", l.Metadata.Name, err)
			}
			a["sslProfile"] = t
		}
		tcp = append(tcp, Entity{"tcpListener", a})
	}
	for _, m := range ns.MultiKeyListeners {
		name := MultiKeyListenerName(m)
		a := map[string]any{
			"name": name,
			"host": m.Spec.Host,
			"port": strconv.FormatInt(m.Spec.Port, 10),
		}
		if m.Spec.Observer != "" {
			a["observer"] = m.Spec.Observer
		} else if o := m.Spec.Settings["observer"]; o != "" {
			a["observer"] = o
		}
		if t := m.Spec.TLSCredentials; t != "" {
			if err := profile(t, true); err != nil {
				return nil, fmt.Errorf("MultiKeyListener/%s: %w", m.Metadata.Name, err)
			}
			a["sslProfile"] = t
			if m.Spec.RequireClientCert {
				a["authenticatePeer"] = true
			}
		}
		// the keys and their values: a priority's first key highest
		var keys []string
		values := map[string]int64{}
		if p := m.Spec.Strategy.Priority; p != nil {
			a["multiAddressStrategy"] = "priority"
			for i, k := range p.RoutingKeys {
				keys = append(keys, k)
				values[k] = int64(len(p.RoutingKeys) - 1 - i)
			}
		} else if w := m.Spec.Strategy.Weighted; w != nil {
			a["multiAddressStrategy"] = "weighted"
			keys = sortedKeys(w.RoutingKeys)
			values = w.RoutingKeys
		}
		tcp = append(tcp, Entity{"tcpListener", a})
		for _, k := range keys {
			tcp = append(tcp, Entity{"listenerAddress", map[string]any{
				"name":     m.Metadata.Name + "/" + k,
				"address":  k,
				"value":    values[k],
				"listener": name,
			}})
		}
	}
	for _, c := range ns.Connectors {
		if c.Spec.Host != "" && c.Spec.TLSCredentials == "" {
			tcp = append(tcp, env.Memo.entity(c, func() Entity { e, _ := SimpleEntity(c); return e }))
			continue
		}
		// a Connector with a host connects to it; one with a selector
		// connects to each container it selected
		targets := []Target{{Host: c.Spec.Host}}
		if c.Spec.Host == "" {
			targets = env.Targets[c.Metadata.Name]
		}
		for _, target := range targets {
			a := map[string]any{
				"name":    ConnectorName(c),
				"host":    target.Host,
				"port":    strconv.FormatInt(c.Spec.Port, 10),
				"address": c.Spec.RoutingKey,
			}
			if c.Spec.Host == "" {
				a["name"] = TargetConnectorName(c, target)
			}
			if t := c.Spec.TLSCredentials; t != "" {
				name := ConnectorProfile(t)
				if c.Spec.UseClientCert {
					name = t
				}
				if err := profile(name, c.Spec.UseClientCert); err != nil {
					return nil, fmt.Errorf("Connector/%s: %w", c.Metadata.Name, err)
				}
				a["sslProfile"] = name
				a["verifyHostname"] = c.Spec.VerifyHostname == nil || *c.Spec.VerifyHostname
			}
			tcp = append(tcp, Entity{"tcpConnector", a})
		}
	}
	for _, at := range env.Attached {
		for _, target := range at.Targets {
			tcp = append(tcp, Entity{"tcpConnector", map[string]any{
				"name":    AttachedConnectorName(at, target),
				"host":    target.Host,
				"port":    strconv.FormatInt(at.Port, 10),
				"address": at.RoutingKey,
			}})
		}
	}

	for _, name := range sortedKeys(profiles) {
		cfg = append(cfg, Entity{"sslProfile", profiles[name]})
	}
	cfg = append(cfg, listeners...)
	cfg = append(cfg, connectors...)
	cfg = append(cfg,
		Entity{"address", map[string]any{"prefix": "mc", "distribution": "multicast"}},
	)
	cfg = append(cfg, logEntities(site.Spec.Settings["router-logging"])...)
	cfg = append(cfg, tcp...)
	env.Memo.done()
	return cfg, nil
}

// SimpleEntity is the entity of a resource that renders to one entity
// from itself alone: a Listener without TLS, a Connector to a host
// without TLS. False for any other.
func SimpleEntity(o resources.Object) (Entity, bool) {
	switch o := o.(type) {
	case *resources.Listener:
		if o.Spec.TLSCredentials == "" {
			return Entity{"tcpListener", listenerAttrs(o)}, true
		}
	case *resources.Connector:
		if o.Spec.Host != "" && o.Spec.TLSCredentials == "" {
			return Entity{"tcpConnector", map[string]any{
				"name":    ConnectorName(o),
				"host":    o.Spec.Host,
				"port":    strconv.FormatInt(o.Spec.Port, 10),
				"address": o.Spec.RoutingKey,
			}}, true
		}
	}
	return Entity{}, false
}

// listenerAttrs are a Listener's tcpListener attributes but TLS.
func listenerAttrs(l *resources.Listener) map[string]any {
	a := map[string]any{
		"name":    ListenerName(l),
		"host":    l.Spec.Host,
		"port":    strconv.FormatInt(l.Spec.Port, 10),
		"address": l.Spec.RoutingKey,
	}
	if o := ListenerObserver(l); o != "" {
		a["observer"] = o
	}
	return a
}

// ListenerObserver is the protocol observer of a Listener: spec.observer,
// else settings.observer, else "" (the router's default, auto).
func ListenerObserver(l *resources.Listener) string {
	if l.Spec.Observer != "" {
		return l.Spec.Observer
	}
	return l.Spec.Settings["observer"]
}

// logEntities maps the router-logging setting ("info", or
// "ROUTER_CORE:debug,TCP_ADAPTOR:info+") to log entities. Without it the
// router core logs errors, as Skupper configures it.
func logEntities(setting string) []Entity {
	if setting == "" {
		return []Entity{{"log", map[string]any{"module": "ROUTER_CORE", "enable": "error+"}}}
	}
	levels := map[string]string{}
	for _, part := range strings.Split(setting, ",") {
		part = strings.TrimSpace(part)
		module, level := "DEFAULT", part
		if i := strings.LastIndex(part, ":"); i >= 0 {
			module, level = strings.ToUpper(part[:i]), part[i+1:]
		}
		if !strings.HasSuffix(level, "+") {
			level += "+"
		}
		levels[module] = level
	}
	var out []Entity
	for _, m := range sortedKeys(levels) {
		out = append(out, Entity{"log", map[string]any{"module": m, "enable": levels[m]}})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Marshal writes the configuration as skrouterd.json: a JSON array of
// [type, attributes] pairs, attributes sorted by name, indented by four.
// It is written by hand, not by encoding/json, because it is on the path
// of every reconcile and a site can have thousands of entities.
func (c Config) Marshal() ([]byte, error) { return c.MarshalWith(nil) }

// MarshalWith is Marshal that takes the text of an entity from memo when
// its attributes are the map memo wrote it from (and keeps what it writes
// there).
func (c Config) MarshalWith(memo *Memo) ([]byte, error) {
	t, err := c.MarshalText(memo)
	return t.JSON, err
}

// Text is a configuration's file (Marshal) with where the text of each of
// its entities starts, so that an entity can be put in, taken out or
// replaced without writing the others again.
type Text struct {
	JSON   []byte
	starts []int
}

// MarshalText is MarshalWith keeping where each entity's text starts.
func (c Config) MarshalText(memo *Memo) (Text, error) {
	b := make([]byte, 0, 256*len(c)+16)
	b = append(b, "[\n"...)
	starts := make([]int, len(c))
	keys := make([]string, 0, 16)
	var text map[string]memoText
	for i, e := range c {
		starts[i] = len(b)
		var key string
		if memo != nil && (e.Type == "tcpListener" || e.Type == "tcpConnector") {
			key = e.Type + "\x00" + e.Name()
			if t, ok := memo.text[key]; ok && sameMap(t.attrs, e.Attrs) {
				b = append(b, t.text...)
				if i < len(c)-1 {
					b = append(b, ',')
				}
				b = append(b, '\n')
				if text == nil {
					text = make(map[string]memoText, len(memo.text))
				}
				text[key] = t
				continue
			}
		}
		start := len(b)
		var err error
		if b, err = appendEntity(b, e, keys); err != nil {
			return Text{}, err
		}
		if key != "" {
			if text == nil {
				text = make(map[string]memoText, len(memo.text))
			}
			text[key] = memoText{attrs: e.Attrs, text: slices.Clip(b[start:len(b):len(b)])}
		}
		if i < len(c)-1 {
			b = append(b, ',')
		}
		b = append(b, '\n')
	}
	if memo != nil {
		memo.text = text
	}
	return Text{JSON: append(b, "]\n"...), starts: starts}, nil
}

// appendEntity appends the text of one entity (keys is room for its
// attribute names).
func appendEntity(b []byte, e Entity, keys []string) ([]byte, error) {
	b = append(b, "    [\n        "...)
	b = appendString(b, e.Type)
	b = append(b, ",\n        {"...)
	keys = keys[:0]
	for k := range e.Attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for j, k := range keys {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n            "...)
		b = appendString(b, k)
		b = append(b, ": "...)
		var err error
		if b, err = appendValue(b, e.Attrs[k]); err != nil {
			return nil, fmt.Errorf("marshal %s %q: attribute %s: %w", e.Type, e.Name(), k, err)
		}
	}
	if len(keys) > 0 {
		b = append(b, "\n        "...)
	}
	return append(b, "}\n    ]"...), nil
}

// end is where the text of entity i ends.
func (t *Text) end(i int) int {
	if i == len(t.starts)-1 {
		return len(t.JSON) - len("\n]\n")
	}
	return t.starts[i+1] - len(",\n")
}

// Put returns the text with entity i replaced by e (i < the number of
// entities), or e put in at i (i == the number of entities, or insert),
// as Marshal would write the configuration changed so. t is left as it
// was.
func (t Text) Put(i int, e Entity, insert bool) (Text, error) {
	text, err := appendEntity(nil, e, nil)
	if err != nil {
		return Text{}, err
	}
	n := len(t.starts)
	var out Text
	switch {
	case insert && i == n && n > 0:
		at := t.end(n - 1)
		out.JSON = concat(t.JSON[:at], ",\n", text, "", t.JSON[at:])
		out.starts = append(slices.Clone(t.starts), at+len(",\n"))
		return out, nil
	case insert && i < n:
		out.JSON = concat(t.JSON[:t.starts[i]], "", text, ",\n", t.JSON[t.starts[i]:])
		out.starts = slices.Insert(slices.Clone(t.starts), i, t.starts[i])
		shift(out.starts[i+1:], len(text)+len(",\n"))
		return out, nil
	case !insert && i < n:
		end := t.end(i)
		out.JSON = concat(t.JSON[:t.starts[i]], "", text, "", t.JSON[end:])
		out.starts = slices.Clone(t.starts)
		shift(out.starts[i+1:], len(text)-(end-t.starts[i]))
		return out, nil
	}
	return Text{}, fmt.Errorf("no entity %d of %d to put %s at", i, n, e.Type)
}

// Remove returns the text without entity i (not the only one).
func (t Text) Remove(i int) (Text, error) {
	n := len(t.starts)
	var out Text
	switch {
	case n < 2 || i < 0 || i >= n:
		return Text{}, fmt.Errorf("no entity %d of %d to remove", i, n)
	case i == n-1:
		out.JSON = concat(t.JSON[:t.end(i-1)], "", nil, "", t.JSON[t.end(i):])
		out.starts = slices.Clone(t.starts[:i])
	default:
		out.JSON = concat(t.JSON[:t.starts[i]], "", nil, "", t.JSON[t.starts[i+1]:])
		out.starts = slices.Delete(slices.Clone(t.starts), i, i+1)
		shift(out.starts[i:], -(t.starts[i+1] - t.starts[i]))
	}
	return out, nil
}

func concat(a []byte, sep1 string, mid []byte, sep2 string, z []byte) []byte {
	out := make([]byte, 0, len(a)+len(sep1)+len(mid)+len(sep2)+len(z))
	out = append(out, a...)
	out = append(out, sep1...)
	out = append(out, mid...)
	out = append(out, sep2...)
	return append(out, z...)
}

func shift(s []int, by int) {
	for i := range s {
		s[i] += by
	}
}

// sameMap tells whether a and b are the same map (not only equal).
func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case json.Number:
		return append(b, v...), nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, data...), nil
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Parse reads a skrouterd.json back, for adoption and diffs.
func Parse(data []byte) (Config, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse router config: %w", err)
	}
	cfg := make(Config, 0, len(raw))
	for i, r := range raw {
		var pair []json.RawMessage
		if err := json.Unmarshal(r, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("parse router config: entry %d is not a [type, attributes] pair", i)
		}
		var e Entity
		if err := json.Unmarshal(pair[0], &e.Type); err != nil {
			return nil, fmt.Errorf("parse router config: entry %d: type: %w", i, err)
		}
		d := json.NewDecoder(bytes.NewReader(pair[1]))
		d.UseNumber()
		if err := d.Decode(&e.Attrs); err != nil {
			return nil, fmt.Errorf("parse router config: entry %d (%s): %w", i, e.Type, err)
		}
		cfg = append(cfg, e)
	}
	return cfg, nil
}

// SiteMetadata is the content of the router's metadata attribute.
type SiteMetadata struct {
	ID       string `json:"id"`
	Version  string `json:"version"`
	Platform string `json:"platform"`
}

// Metadata returns the site metadata recorded in the router entity.
func (c Config) Metadata() (SiteMetadata, bool) {
	var m SiteMetadata
	for _, e := range c {
		if e.Type != "router" {
			continue
		}
		s, ok := e.Attrs["metadata"].(string)
		if !ok || json.Unmarshal([]byte(s), &m) != nil {
			return m, false
		}
		return m, true
	}
	return m, false
}

// ManagementPort returns the port of the local management listener.
func (c Config) ManagementPort() (int, bool) {
	for _, e := range c {
		if e.Type == "listener" && e.Name() == LocalListenerName {
			switch p := e.Attrs["port"].(type) {
			case string:
				n, err := strconv.Atoi(p)
				return n, err == nil
			case json.Number:
				n, err := strconv.Atoi(p.String())
				return n, err == nil
			}
		}
	}
	return 0, false
}

// LowPorts tells whether the router listens on a port below 1024, which
// takes the capability to bind one (CAP_NET_BIND_SERVICE).
func (c Config) LowPorts() bool {
	for _, e := range c {
		if e.Type != "listener" && e.Type != "tcpListener" {
			continue
		}
		var port int
		switch p := e.Attrs["port"].(type) {
		case string:
			port, _ = strconv.Atoi(p)
		case json.Number:
			port, _ = strconv.Atoi(p.String())
		case int:
			port = p
		case float64:
			port = int(p)
		}
		if port > 0 && port < 1024 {
			return true
		}
	}
	return false
}
