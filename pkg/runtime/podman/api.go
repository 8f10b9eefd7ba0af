package podman

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/errorhandling"
)

// The few libpod API calls this runtime makes, over the bindings'
// connection (bindings.Connection.DoRequest), with types that hold only
// the fields it reads and sends. The bindings' containers, images and
// specgen packages would link the whole of Podman's image and storage
// libraries (some 400 packages, half of the binary's build) for these
// eight calls.

// container is what inspecting a container reports, as far as used here
// (GET /containers/{name}/json).
type container struct {
	ID           string `json:"Id"`
	Name         string
	Image        string // its id
	ImageName    string
	RestartCount int32
	State        struct {
		Status     string
		Running    bool
		Restarting bool
		ExitCode   int32
		Pid        int
		StartedAt  time.Time
	}
	Config struct {
		Env    []string
		Labels map[string]string
		User   string
	}
	Mounts []struct {
		Type, Source, Destination string
		RW                        bool
	}
	HostConfig struct {
		NetworkMode    string
		RestartPolicy  struct{ Name string }
		UsernsMode     string
		IDMappings     *struct{ UIDMap, GIDMap []string }
		CapDrop        []string
		CapAdd         []string
		SecurityOpt    []string
		ReadonlyRootfs bool
		Tmpfs          map[string]string
	}
}

// Spec is the container to create, in the JSON of Podman's SpecGenerator
// (POST /containers/create).
type Spec struct {
	Name          string            `json:"name"`
	Image         string            `json:"image"`
	Env           map[string]string `json:"env,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	User          string            `json:"user,omitempty"`
	RestartPolicy string            `json:"restart_policy,omitempty"`
	NetNS         Namespace         `json:"netns"`
	UserNS        *Namespace        `json:"userns,omitempty"`
	Mounts        []Mount           `json:"mounts,omitempty"`
	// the router's confinement
	CapDrop            []string `json:"cap_drop,omitempty"`
	CapAdd             []string `json:"cap_add,omitempty"`
	NoNewPrivileges    bool     `json:"no_new_privileges,omitempty"`
	ReadOnlyFilesystem bool     `json:"read_only_filesystem,omitempty"`
}

// Namespace is a SpecGenerator namespace mode (host, keep-id, …).
type Namespace struct {
	NSMode string `json:"nsmode"`
}

// Mount is an OCI mount as SpecGenerator takes it.
type Mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Options     []string `json:"options,omitempty"`
}

// listed is a container as listing reports it (GET /containers/json).
type listed struct {
	ID     string `json:"Id"`
	Names  []string
	Labels map[string]string
}

// Call is one libpod API call over a bindings connection (c): body sent as
// JSON when not nil, a successful answer decoded into out when not nil.
// Tests use it for the containers and networks they start themselves.
func Call(c context.Context, method, endpoint string, query url.Values, body any, out any, path ...string) error {
	return call(c, method, endpoint, query, body, out, path...)
}

// call sends one request and decodes a successful answer into out (when
// not nil); an unsuccessful one is an *errorhandling.ErrorModel, as the
// bindings report it.
func call(c context.Context, method, endpoint string, query url.Values, body any, out any, path ...string) error {
	conn, err := bindings.GetClient(c)
	if err != nil {
		return err
	}
	var in io.Reader
	var headers http.Header
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		in, headers = bytes.NewReader(data), http.Header{"Content-Type": []string{"application/json"}}
	}
	resp, err := conn.DoRequest(c, in, method, endpoint, query, headers, path...)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return resp.Process(out)
}

func inspectContainer(c context.Context, name string) (*container, error) {
	var out container
	if err := call(c, http.MethodGet, "/containers/%s/json", nil, nil, &out, name); err != nil {
		return nil, err
	}
	return &out, nil
}

func createContainer(c context.Context, s Spec) (string, error) {
	var out struct {
		ID string `json:"Id"`
	}
	err := call(c, http.MethodPost, "/containers/create", nil, s, &out)
	return out.ID, err
}

func startContainer(c context.Context, nameOrID string) error {
	return call(c, http.MethodPost, "/containers/%s/start", nil, nil, nil, nameOrID)
}

// remove force-removes a container without a grace period, as Docker's
// forced removal does: the router keeps nothing it could lose, and Podman
// 4.3 restarts a restart-always container that exits on SIGTERM during
// the stop, so a grace period only ever ends in SIGKILL ten seconds later.
func remove(c context.Context, nameOrID string) error {
	q := url.Values{"force": {"true"}, "ignore": {"true"}, "timeout": {"0"}}
	err := call(c, http.MethodDelete, "/containers/%s", q, nil, nil, nameOrID)
	for try := 0; err != nil && exitRace(err) && try < 3; try++ {
		// Podman 4 kills a container that is exiting on its own, then
		// finds it stopped and gives up the removal: it is stopped now,
		// and the removal goes through when asked again
		select {
		case <-c.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
		err = call(c, http.MethodDelete, "/containers/%s", q, nil, nil, nameOrID)
	}
	return err
}

// exitRace tells Podman's answer to a forced removal of a container that
// stopped meanwhile.
func exitRace(err error) bool {
	return strings.Contains(err.Error(), "could not be stopped") && strings.Contains(err.Error(), "container state improper")
}

func listRouters(c context.Context, labels ...string) ([]listed, error) {
	filters, err := json.Marshal(map[string][]string{"label": labels})
	if err != nil {
		return nil, err
	}
	var out []listed
	err = call(c, http.MethodGet, "/containers/json", url.Values{"all": {"true"}, "filters": {string(filters)}}, nil, &out)
	return out, err
}

func imageExists(c context.Context, name string) (bool, error) {
	err := call(c, http.MethodGet, "/images/%s/exists", nil, nil, nil, name)
	if notFound(err) {
		return false, nil
	}
	return err == nil, err
}

// pullImage pulls an image; the service streams its progress as JSON
// lines, an error among them.
func pullImage(c context.Context, ref string) error {
	conn, err := bindings.GetClient(c)
	if err != nil {
		return err
	}
	resp, err := conn.DoRequest(c, nil, http.MethodPost, "/images/pull", url.Values{"reference": {ref}, "quiet": {"true"}}, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if !resp.IsSuccess() {
		return resp.Process(nil)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var line struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&line); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading the pull of %s: %w", ref, err)
		}
		if line.Error != "" {
			return errors.New(line.Error)
		}
	}
}

// containerLogs returns what a container printed, stdout and stderr
// interleaved as they came (tail "" for all of it).
func containerLogs(c context.Context, name, tail string) (string, error) {
	conn, err := bindings.GetClient(c)
	if err != nil {
		return "", err
	}
	q := url.Values{"stdout": {"true"}, "stderr": {"true"}, "follow": {"false"}}
	if tail != "" {
		q.Set("tail", tail)
	}
	resp, err := conn.DoRequest(c, nil, http.MethodGet, "/containers/%s/logs", q, nil, name)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if !resp.IsSuccess() {
		return "", resp.Process(nil)
	}
	// frames: 1 byte stream, 3 zero bytes, 4 bytes big-endian length
	var out strings.Builder
	r := bufio.NewReader(resp.Body)
	for {
		var header [8]byte
		if _, err := io.ReadFull(r, header[:]); errors.Is(err, io.EOF) {
			return out.String(), nil
		} else if err != nil {
			return out.String(), fmt.Errorf("reading logs of %s: %w", name, err)
		}
		n := binary.BigEndian.Uint32(header[4:])
		if _, err := io.CopyN(&out, r, int64(n)); err != nil {
			return out.String(), fmt.Errorf("reading logs of %s: %w", name, err)
		}
	}
}

func notFound(err error) bool {
	var model *errorhandling.ErrorModel
	return errors.As(err, &model) && model.ResponseCode == http.StatusNotFound
}

// imageID returns the id of image name, "" when it is not there.
func imageID(c context.Context, name string) (string, error) {
	var img struct {
		ID string `json:"Id"`
	}
	err := call(c, http.MethodGet, "/images/%s/json", nil, nil, &img, name)
	if notFound(err) {
		return "", nil
	}
	return img.ID, err
}
