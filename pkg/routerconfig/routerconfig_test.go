package routerconfig_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/site-controller/site-controller/internal/skschema"
	"github.com/site-controller/site-controller/pkg/resources"
	. "github.com/site-controller/site-controller/pkg/routerconfig"
)

func namespace(t *testing.T, src string) *resources.Namespace {
	t.Helper()
	docs, probs := resources.Decode("r.yaml", []byte(src))
	ns := resources.Build("ns", docs, probs)
	if resources.HasErrors(ns.Problems) {
		t.Fatalf("fixture has problems: %v", ns.Problems)
	}
	return ns
}

func env() Environment {
	return Environment{
		SiteID: "0123456789abcdef", Platform: "docker", Version: "1.0", ManagementPort: 5672, CertBase: ContainerCertBase,
		Credentials: map[string]Credential{LocalServer: {CA: true, KeyPair: true}, "t": {CA: true, KeyPair: true}, "t-profile": {CA: true}},
	}
}

const site = "apiVersion: skupper.io/v2alpha1\nkind: Site\nmetadata: {name: s}\n"

func TestRenderIsDeterministicAndValid(t *testing.T) {
	var src strings.Builder
	src.WriteString(site)
	for i, n := range []string{"q", "b", "z", "a", "m"} {
		src.WriteString(fmt.Sprintf("---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: %s}\nspec: {routingKey: k%s, host: 127.0.0.1, port: %d}\n", n, n, 100+i))
	}
	src.WriteString("---\napiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata: {name: c}\nspec: {routingKey: \"quote\\\"d\", host: h, port: 9, tlsCredentials: t}\n")
	ns := namespace(t, src.String())
	var first []byte
	for i := 0; i < 20; i++ {
		cfg, err := Render(ns, env())
		if err != nil {
			t.Fatal(err)
		}
		data, err := cfg.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = data
			s, err := skschema.Load()
			if err != nil {
				t.Fatal(err)
			}
			for _, err := range s.Check(cfg) {
				t.Error(err)
			}
		} else if !bytes.Equal(data, first) {
			t.Fatal("render gave different bytes for the same input")
		}
	}
	// valid JSON that parses back to the same entities
	var raw any
	if err := json.Unmarshal(first, &raw); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	back, err := Parse(first)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Marshal()
	if !bytes.Equal(again, first) {
		t.Errorf("parse and marshal changed the bytes:\n%s\n---\n%s", again, first)
	}
	if m, ok := back.Metadata(); !ok || m.ID != "0123456789abcdef" || m.Platform != "docker" {
		t.Errorf("metadata %+v", m)
	}
	if p, ok := back.ManagementPort(); !ok || p != 5672 {
		t.Errorf("management port %d", p)
	}
	// listeners sorted by name
	var order []string
	for _, e := range back {
		if e.Type == "tcpListener" {
			order = append(order, e.Name())
		}
	}
	if strings.Join(order, ",") != "listener/a,listener/b,listener/m,listener/q,listener/z" {
		t.Errorf("tcpListener order %v", order)
	}
}

func TestRouterIDIsStable(t *testing.T) {
	if got := RouterID("west", "0a1b2c3d-4e5f"); got != "west-0a1b2c3d" {
		t.Errorf("router id %q", got)
	}
}

func TestLogging(t *testing.T) {
	for setting, want := range map[string]string{
		"":      `[{ROUTER_CORE error+}]`,
		"debug": `[{DEFAULT debug+}]`,
		"router_core:trace,TCP_ADAPTOR:info+, warning": `[{DEFAULT warning+} {ROUTER_CORE trace+} {TCP_ADAPTOR info+}]`,
	} {
		var got []struct{ M, E string }
		src := site
		if setting != "" {
			src += "spec: {settings: {router-logging: \"" + setting + "\"}}\n"
		}
		ns := namespace(t, src)
		cfg, err := Render(ns, env())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range cfg {
			if e.Type != "log" {
				continue
			}
			got = append(got, struct{ M, E string }{e.Attrs["module"].(string), e.Attrs["enable"].(string)})
		}
		var s []string
		for _, g := range got {
			s = append(s, "{"+g.M+" "+g.E+"}")
		}
		if "["+strings.Join(s, " ")+"]" != want {
			t.Errorf("%q: got %v, want %s", setting, s, want)
		}
	}
}

func TestMissingCredentialsAreAnError(t *testing.T) {
	ns := namespace(t, site+"---\napiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: l}\nspec: {routingKey: k, host: 127.0.0.1, port: 1, tlsCredentials: nope}\n")
	if _, err := Render(ns, env()); err == nil || err.Error() != `Listener/l: credentials "nope" are not prepared` {
		t.Errorf("err = %v", err)
	}
}

// TestRenderTargets: a Connector with a selector gets a tcpConnector per
// selected container, named after it, with the Connector's port, routing
// key and TLS; a bound AttachedConnector one per container with the
// binding's routing key; none selected renders none.
func TestRenderTargets(t *testing.T) {
	ns := namespace(t, site+
		"---\napiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata: {name: web}\nspec: {routingKey: web, selector: app=web, port: 8080, tlsCredentials: t}\n"+
		"---\napiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata: {name: idle}\nspec: {routingKey: idle, selector: app=idle, port: 80}\n")
	e := env()
	e.Targets = map[string][]Target{"web": {{Name: "web-1", ID: "a1", Host: "10.0.0.2"}, {Name: "web-2", ID: "b2", Host: "10.0.0.3"}}}
	e.Attached = []Attached{{Name: "db", Namespace: "team", RoutingKey: "db", Port: 5432, Targets: []Target{{Name: "pg", Host: "10.0.1.5"}}}}
	cfg, err := Render(ns, e)
	if err != nil {
		t.Fatal(err)
	}
	skschema.CheckConfig(t, cfg)
	got := map[string]map[string]any{}
	for _, en := range cfg {
		if en.Type == "tcpConnector" {
			got[en.Name()] = en.Attrs
		}
	}
	want := map[string]map[string]any{
		"connector/web@web-1":          {"name": "connector/web@web-1", "host": "10.0.0.2", "port": "8080", "address": "web", "sslProfile": "t-profile", "verifyHostname": true},
		"connector/web@web-2":          {"name": "connector/web@web-2", "host": "10.0.0.3", "port": "8080", "address": "web", "sslProfile": "t-profile", "verifyHostname": true},
		"attachedConnector/team/db@pg": {"name": "attachedConnector/team/db@pg", "host": "10.0.1.5", "port": "5432", "address": "db"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tcpConnectors:\n%v\nwant:\n%v", got, want)
	}
}

// TestRenderMemo: rendering with a memo, across changes (a resource
// changed, one gone, one new, TLS ones beside), gives byte for byte what
// rendering anew gives, and keeps the entities of unchanged resources.
func TestRenderMemo(t *testing.T) {
	doc := func(src string) []*resources.Document {
		docs, probs := resources.Decode("r.yaml", []byte(src))
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		return docs
	}
	siteDocs := doc(site)
	var docs []*resources.Document
	for i := range 6 {
		docs = append(docs, doc(fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: l%d}\nspec: {routingKey: k%d, host: 127.0.0.1, port: %d}\n", i, i, 100+i))...)
		docs = append(docs, doc(fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: Connector\nmetadata: {name: c%d}\nspec: {routingKey: k%d, host: h%d, port: 9}\n", i, i, i))...)
	}
	docs = append(docs, doc("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: tls}\nspec: {routingKey: t, host: 127.0.0.1, port: 99, tlsCredentials: t}\n")...)
	build := func(docs []*resources.Document) *resources.Namespace {
		return resources.Build("ns", append(slices.Clone(siteDocs), docs...), nil)
	}
	memo := &Memo{}
	render := func(ns *resources.Namespace, m *Memo) (Config, []byte) {
		e := env()
		e.Memo = m
		cfg, err := Render(ns, e)
		if err != nil {
			t.Fatal(err)
		}
		out, err := cfg.MarshalWith(m)
		if err != nil {
			t.Fatal(err)
		}
		return cfg, out
	}
	first, _ := render(build(docs), memo)
	// l1 changes, c2 goes, l9 comes
	next := slices.Clone(docs)
	next[2] = doc("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: l1}\nspec: {routingKey: k1, host: 127.0.0.1, port: 201}\n")[0]
	next = slices.Delete(next, 5, 6)
	next = append(next, doc("apiVersion: skupper.io/v2alpha1\nkind: Listener\nmetadata: {name: l9}\nspec: {routingKey: k9, host: 127.0.0.1, port: 109}\n")...)
	for round := range 2 {
		cfg, got := render(build(next), memo)
		_, want := render(build(next), nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: with the memo:\n%s\nanew:\n%s", round, got, want)
		}
		kept := 0
		for _, e := range cfg {
			for _, f := range first {
				if e.Type == "tcpListener" && e.Name() == f.Name() && fmt.Sprintf("%p", e.Attrs) == fmt.Sprintf("%p", f.Attrs) {
					kept++
				}
			}
		}
		if kept != 5 { // l0, l2..l5; not l1 (changed), not tls
			t.Errorf("round %d: %d unchanged Listeners' entities kept, want 5", round, kept)
		}
	}
}
