package dump

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/routerconfig"
	rt "github.com/site-controller/site-controller/pkg/runtime"
)

// entityTypes are the router entities the dump reads over management:
// what skstat -g, -c, -l, -n, -a and -m show, and the configuration
// entities the controller manages.
var entityTypes = []string{
	"router", "routerMetrics", "site", "connection", "router.link", "router.node", "router.address",
	"allocator", "listener", "connector", "listenerAddress", "tcpListener", "tcpConnector", "tcpConnection",
	"sslProfile", "address", "log",
}

// engineSet is the engines found, and why the others were not.
type engineSet struct {
	found   map[string]string
	missing map[string]error
}

// connectEngines finds, for docker and podman, the first endpoint that
// answers as that engine, and adds its /version.
func connectEngines(ctx context.Context, a *archive, o Options) (found map[string]string, missing map[string]error) {
	found, missing = map[string]string{}, map[string]error{}
	for _, platform := range []string{"docker", "podman"} {
		var tried []string
		for _, ep := range o.Endpoints[platform] {
			var engine string
			err := withTimeout(ctx, o, func(ctx context.Context) (err error) {
				engine, err = rt.Ping(ctx, ep)
				return err
			})
			if err != nil || engine != platform {
				tried = append(tried, ep)
				continue
			}
			found[platform] = ep
			var version []byte
			err = withTimeout(ctx, o, func(ctx context.Context) (err error) {
				version, err = engineGet(ctx, ep, "/version")
				return err
			})
			info := EngineInfo{Endpoint: ep}
			if err != nil {
				a.problem(platform+" /version", err)
			} else {
				a.add("engines/"+platform+"-version.json", RedactJSON(version))
				var v struct{ Version, APIVersion string }
				if json.Unmarshal(version, &v) == nil {
					info.Version, info.APIVersion = v.Version, v.APIVersion
				}
			}
			a.summary.Engines[platform] = info
			break
		}
		if found[platform] == "" {
			missing[platform] = fmt.Errorf("no %s engine answers at %s", platform, strings.Join(append(tried, "(no endpoint to try)")[:max(len(tried), 1)], ", "))
		}
	}
	linux := EngineInfo{}
	if out, err := command(ctx, o, "systemctl", "--version"); err == nil {
		linux.Version, _, _ = strings.Cut(string(out), "\n")
	}
	if o.RouterBinary != "" {
		if out, err := command(ctx, o, o.RouterBinary, "--version"); err == nil {
			linux.Router = strings.TrimSpace(string(out))
		} else {
			a.problem("skrouterd --version", err)
		}
	}
	if linux != (EngineInfo{}) {
		a.summary.Engines["linux"] = linux
	}
	return found, missing
}

// engineGet asks an engine's API over its unix socket.
func engineGet(ctx context.Context, endpoint, path string) ([]byte, error) {
	sock, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok {
		return nil, fmt.Errorf("%s is not a unix socket", endpoint)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFile))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// demux turns an engine's multiplexed log stream (8-byte frame headers:
// stream, 0, 0, 0, size) into plain text; a stream that is not one is
// returned as it is.
func demux(data []byte) []byte {
	var out bytes.Buffer
	rest := data
	for len(rest) >= 8 {
		if rest[0] > 2 || rest[1] != 0 || rest[2] != 0 || rest[3] != 0 {
			return data
		}
		size := int(binary.BigEndian.Uint32(rest[4:8]))
		if 8+size > len(rest) {
			return data
		}
		out.Write(rest[8 : 8+size])
		rest = rest[8+size:]
	}
	if len(rest) != 0 {
		return data
	}
	return out.Bytes()
}

// collectRouter adds router/: what the running router says over
// management, and its container (inspect, logs) or unit (show, cat,
// journal).
func collectRouter(ctx context.Context, a *archive, o Options, dir namespace.Dir, ns *NamespaceOf, engines engineSet) {
	base := "namespaces/" + dir.Name + "/router/"
	collectEntities(ctx, a, o, dir, ns, base)
	switch ns.Platform {
	case "docker", "podman":
		ep := engines.found[ns.Platform]
		if ep == "" {
			a.problem(dir.Name+" router container", engines.missing[ns.Platform])
			return
		}
		name := url.PathEscape(rt.ContainerName(dir.Name))
		err := withTimeout(ctx, o, func(ctx context.Context) error {
			data, err := engineGet(ctx, ep, "/containers/"+name+"/json")
			if err != nil {
				return err
			}
			a.add(base+"container.json", RedactJSON(data))
			return nil
		})
		if err != nil {
			a.problem(dir.Name+" router container inspect", err)
			return
		}
		err = withTimeout(ctx, o, func(ctx context.Context) error {
			data, err := engineGet(ctx, ep, "/containers/"+name+"/logs?stdout=true&stderr=true&timestamps=true&tail=1000")
			if err != nil {
				return err
			}
			a.add(base+"log.txt", trimLines(demux(data), 1000))
			return nil
		})
		if err != nil {
			a.problem(dir.Name+" router container logs", err)
		}
	case "linux":
		unit := rt.UnitName(dir.Name)
		scope := "--" + o.SystemdScope
		var b bytes.Buffer
		for _, args := range [][]string{{scope, "show", "--no-pager", unit}, {scope, "cat", "--no-pager", unit}} {
			out, err := command(ctx, o, "systemctl", args...)
			fmt.Fprintf(&b, "$ systemctl %s\n%s\n", strings.Join(args, " "), out)
			if err != nil {
				a.problem(dir.Name+" systemctl "+args[1], err)
			}
		}
		a.add(base+"unit.txt", b.Bytes())
		out, err := command(ctx, o, "journalctl", scope, "-u", unit, "-n", "1000", "--no-pager", "-o", "short-iso")
		if err != nil {
			a.problem(dir.Name+" journal of "+unit, err)
		}
		a.add(base+"log.txt", trimLines(out, 1000))
	case "":
		// no router has run for it yet
	default:
		a.problem(dir.Name, fmt.Errorf("unknown platform %q", ns.Platform))
	}
}

// command runs a command with the call deadline and returns its output.
func command(ctx context.Context, o Options, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, o.CallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(trimLines(out, 3)))
	}
	return out, nil
}

// collectEntities reads the router's entities over its local management
// listener, with the controller's own client credential.
func collectEntities(ctx context.Context, a *archive, o Options, dir namespace.Dir, ns *NamespaceOf, base string) {
	data, err := os.ReadFile(dir.RouterConfig())
	if err != nil {
		a.problem(dir.Name+" router management", err)
		return
	}
	cfg, err := routerconfig.Parse(data)
	if err != nil {
		a.problem(dir.Name+" router management", err)
		return
	}
	port, ok := cfg.ManagementPort()
	if !ok {
		a.problem(dir.Name+" router management", fmt.Errorf("%s has no management listener", dir.RouterConfig()))
		return
	}
	tlsConfig, err := live.ManagementTLS(dir)
	if err != nil {
		a.problem(dir.Name+" router management", err)
		return
	}
	var client *management.Client
	err = withTimeout(ctx, o, func(ctx context.Context) (err error) {
		client, err = management.Dial(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), tlsConfig)
		return err
	})
	if err != nil {
		a.problem(dir.Name+" router management at 127.0.0.1:"+strconv.Itoa(port), err)
		return
	}
	defer client.Close()
	ns.Entities = map[string]int{}
	for _, typ := range entityTypes {
		var entities []map[string]any
		err := withTimeout(ctx, o, func(ctx context.Context) (err error) {
			entities, err = client.Query(ctx, management.TypeName(typ))
			return err
		})
		if err != nil {
			a.problem(dir.Name+" router "+typ, err)
			if client.Err() != nil {
				return
			}
			continue
		}
		ns.Entities[typ] = len(entities)
		out := make([]any, len(entities))
		for i, e := range entities {
			out[i] = RedactEntities(e)
		}
		a.addJSON(base+"entities/"+typ+".json", out)
		if typ == "router" && len(entities) == 1 {
			ns.RouterID, _ = entities[0]["id"].(string)
			ns.RouterMode, _ = entities[0]["mode"].(string)
		}
		if (typ == "router" || typ == "routerMetrics") && len(entities) == 1 && ns.RouterVersion == "" {
			ns.RouterVersion, _ = entities[0]["version"].(string)
			if ns.RouterVersion == "" { // skupper-router 3.5 names routerMetrics' version ""
				ns.RouterVersion, _ = entities[0][""].(string)
			}
		}
	}
}
