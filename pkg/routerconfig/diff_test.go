package routerconfig_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	. "github.com/site-controller/site-controller/pkg/routerconfig"
)

func e(typ string, attrs map[string]any) Entity { return Entity{typ, attrs} }

func changes(cs []Change) string {
	var out []string
	for _, c := range cs {
		s := c.Op + " " + c.Type + " " + c.Name
		if c.Attrs != nil {
			data, _ := json.Marshal(c.Attrs)
			s += " " + string(data)
		}
		out = append(out, s)
	}
	return strings.Join(out, "\n")
}

func TestDiff(t *testing.T) {
	listener := func(name, port string, extra ...any) Entity {
		a := map[string]any{"name": name, "host": "127.0.0.1", "port": port, "address": "k"}
		for i := 0; i+1 < len(extra); i += 2 {
			a[extra[i].(string)] = extra[i+1]
		}
		return e("tcpListener", a)
	}
	// what a router reports: every attribute, numbers as int64, defaults
	reported := func(name, port string, extra ...any) Entity {
		l := listener(name, port, extra...)
		l.Attrs["backlog"] = int64(0)
		l.Attrs["operStatus"] = "up"
		l.Attrs["identity"] = "tcpListener/x"
		if _, ok := l.Attrs["observer"]; !ok {
			l.Attrs["observer"] = "auto"
		}
		return l
	}
	profile := func(name, dir string) Entity {
		return e("sslProfile", map[string]any{"name": name, "certFile": dir + "/tls.crt", "privateKeyFile": dir + "/tls.key", "caCertFile": dir + "/ca.crt"})
	}
	for _, tc := range []struct {
		name            string
		desired, actual Config
		want            string
	}{
		{"nothing to do (router defaults and counters ignored)",
			Config{e("router", map[string]any{"id": "a"}), listener("listener/a", "80")},
			Config{reported("listener/a", "80")}, ""},
		{"create and delete",
			Config{listener("listener/new", "81")},
			Config{reported("listener/old", "80")},
			"DELETE tcpListener listener/old\nCREATE tcpListener listener/new {\"address\":\"k\",\"host\":\"127.0.0.1\",\"port\":\"81\"}"},
		{"observer updates in place",
			Config{listener("listener/a", "80", "observer", "http1")},
			Config{reported("listener/a", "80")},
			"UPDATE tcpListener listener/a {\"observer\":\"http1\"}"},
		{"observer back to the default",
			Config{listener("listener/a", "80")},
			Config{reported("listener/a", "80", "observer", "none")},
			"UPDATE tcpListener listener/a {\"observer\":\"auto\"}"},
		{"port change re-creates",
			Config{listener("listener/a", "81")},
			Config{reported("listener/a", "80")},
			"DELETE tcpListener listener/a\nCREATE tcpListener listener/a {\"address\":\"k\",\"host\":\"127.0.0.1\",\"port\":\"81\"}"},
		{"TLS added: profile first, then the listener",
			Config{profile("t", "/c/t"), listener("listener/a", "80", "sslProfile", "t")},
			Config{reported("listener/a", "80")},
			"CREATE sslProfile t {\"caCertFile\":\"/c/t/ca.crt\",\"certFile\":\"/c/t/tls.crt\",\"privateKeyFile\":\"/c/t/tls.key\"}\nDELETE tcpListener listener/a\nCREATE tcpListener listener/a {\"address\":\"k\",\"host\":\"127.0.0.1\",\"port\":\"80\",\"sslProfile\":\"t\"}"},
		{"TLS removed: the listener first, then the profile",
			Config{listener("listener/a", "80")},
			Config{profile("t", "/c/t"), reported("listener/a", "80", "sslProfile", "t")},
			"DELETE tcpListener listener/a\nCREATE tcpListener listener/a {\"address\":\"k\",\"host\":\"127.0.0.1\",\"port\":\"80\"}\nDELETE sslProfile t"},
		{"profile paths update in place",
			Config{profile("t", "/new")},
			Config{profile("t", "/old")},
			"UPDATE sslProfile t {\"caCertFile\":\"/new/ca.crt\",\"certFile\":\"/new/tls.crt\",\"privateKeyFile\":\"/new/tls.key\"}"},
		{"connector verifyHostname default",
			Config{e("tcpConnector", map[string]any{"name": "connector/c@h", "host": "h", "port": "1", "address": "k"})},
			Config{e("tcpConnector", map[string]any{"name": "connector/c@h", "host": "h", "port": "1", "address": "k", "verifyHostname": true, "sslProfile": nil})},
			""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := changes(Diff(tc.desired, tc.actual)); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestDiffScales(t *testing.T) {
	var desired, actual Config
	for i := range 3000 {
		desired = append(desired, e("tcpListener", map[string]any{"name": fmt.Sprintf("listener/l%d", i), "port": fmt.Sprint(10000 + i), "host": "h", "address": "k"}))
		actual = append(actual, e("tcpListener", map[string]any{"name": fmt.Sprintf("listener/l%d", i), "port": fmt.Sprint(10000 + i), "host": "h", "address": "k", "observer": "auto"}))
	}
	if cs := Diff(desired, actual); len(cs) != 0 {
		t.Errorf("%d changes for identical sets", len(cs))
	}
}

func TestExpandAndRestartKey(t *testing.T) {
	cfg := Config{
		e("router", map[string]any{"id": "r"}),
		e("sslProfile", map[string]any{"name": "t", "certFile": "${SSL_PROFILE_BASE_PATH}/runtime/certs/t/tls.crt"}),
		e("tcpListener", map[string]any{"name": "listener/a", "port": "1"}),
	}
	x := cfg.Expand(map[string]string{"SSL_PROFILE_BASE_PATH": "/etc/skupper-router"})
	if x[1].Attrs["certFile"] != "/etc/skupper-router/runtime/certs/t/tls.crt" || cfg[1].Attrs["certFile"] == x[1].Attrs["certFile"] {
		t.Errorf("expand: %v (original %v)", x[1].Attrs, cfg[1].Attrs)
	}
	other := Config{cfg[0], cfg[1], e("tcpListener", map[string]any{"name": "listener/b", "port": "2"})}
	if cfg.RestartKey() != other.RestartKey() {
		t.Error("a listener change changed the restart key")
	}
	edge := Config{e("router", map[string]any{"id": "r", "mode": "edge"}), cfg[1], cfg[2]}
	if cfg.RestartKey() == edge.RestartKey() {
		t.Error("a router mode change did not change the restart key")
	}
}
