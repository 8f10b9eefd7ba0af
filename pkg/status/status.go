// Package status writes the status of every resource of a namespace to
// runtime/resources/<Kind>-<name>.yaml: the resource as read plus the
// .status the controller computed, in the shape Skupper's CLI reads.
//
// A status file is rewritten only when its content changes, and a
// condition's lastTransitionTime moves only when the condition changes. It
// never writes outside runtime/resources. Status files are 0644, those of
// an Entry that is Private (it holds a code) 0600; runtime/resources is
// made 0700.
package status

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/site-controller/site-controller/pkg/fileio"
	"github.com/site-controller/site-controller/pkg/namespace"
	"github.com/site-controller/site-controller/pkg/yamlstr"
)

// Values of Status.Status.
const (
	Pending = "Pending"
	Ready   = "Ready"
	Error   = "Error"
)

// Condition types.
const (
	Configured = "Configured"
	Running    = "Running"
	Matched    = "Matched"
	// Operational is a Link's: the router's connection to the peer is up.
	Operational = "Operational"
	ReadyCond   = "Ready"
)

// Status is the .status block of a resource.
type Status struct {
	Status               string      `json:"status" yaml:"status"`
	Message              string      `json:"message,omitempty" yaml:"message,omitempty"`
	Conditions           []Condition `json:"conditions,omitempty" yaml:"conditions,omitempty"`
	HasMatchingConnector *bool       `json:"hasMatchingConnector,omitempty" yaml:"hasMatchingConnector,omitempty"`
	HasMatchingListener  *bool       `json:"hasMatchingListener,omitempty" yaml:"hasMatchingListener,omitempty"`
	// HasDestination is a MultiKeyListener's: some routing key of it has a
	// reachable connector.
	HasDestination *bool `json:"hasDestination,omitempty" yaml:"hasDestination,omitempty"`
	SitesInNetwork *int  `json:"sitesInNetwork,omitempty" yaml:"sitesInNetwork,omitempty"`
	// Network is the Site's view of every site in its network.
	Network []SiteRecord `json:"network,omitempty" yaml:"network,omitempty"`
	// Endpoints are a RouterAccess's (and the Site's) link endpoints.
	Endpoints []Endpoint `json:"endpoints,omitempty" yaml:"endpoints,omitempty"`
	// RemoteSiteID and RemoteSiteName name the site a Link reaches.
	RemoteSiteID   string `json:"remoteSiteId,omitempty" yaml:"remoteSiteId,omitempty"`
	RemoteSiteName string `json:"remoteSiteName,omitempty" yaml:"remoteSiteName,omitempty"`
	// An AccessGrant's: where and with what to redeem it, until when, and
	// how often it was.
	URL            string `json:"url,omitempty" yaml:"url,omitempty"`
	Code           string `json:"code,omitempty" yaml:"code,omitempty"`
	CA             string `json:"ca,omitempty" yaml:"ca,omitempty"`
	ExpirationTime string `json:"expirationTime,omitempty" yaml:"expirationTime,omitempty"`
	Redemptions    *int   `json:"redemptions,omitempty" yaml:"redemptions,omitempty"`
	// An AccessToken's: whether it was redeemed.
	Redeemed *bool `json:"redeemed,omitempty" yaml:"redeemed,omitempty"`
	// SelectedPods are the containers a Connector's (or an
	// AttachedConnector's) selector selected: Skupper's field for pods.
	SelectedPods []SelectedPod `json:"selectedPods,omitempty" yaml:"selectedPods,omitempty"`
}

// SelectedPod is a container a selector selected (Skupper's name and ip,
// and the container's id).
type SelectedPod struct {
	Name string `json:"name" yaml:"name"`
	IP   string `json:"ip" yaml:"ip"`
	ID   string `json:"id,omitempty" yaml:"id,omitempty"`
}

// Endpoint is where other sites link to this one.
type Endpoint struct {
	Name  string `json:"name" yaml:"name"`
	Host  string `json:"host" yaml:"host"`
	Port  string `json:"port" yaml:"port"`
	Group string `json:"group,omitempty" yaml:"group,omitempty"`
}

// SiteRecord is one site of the network, as the Site's status shows it.
type SiteRecord struct {
	ID        string          `json:"id" yaml:"id"`
	Name      string          `json:"name" yaml:"name"`
	Namespace string          `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Platform  string          `json:"platform,omitempty" yaml:"platform,omitempty"`
	Version   string          `json:"version,omitempty" yaml:"version,omitempty"`
	Links     []LinkRecord    `json:"links,omitempty" yaml:"links,omitempty"`
	Services  []ServiceRecord `json:"services,omitempty" yaml:"services,omitempty"`
}

// LinkRecord is a link from one site of the network to another.
type LinkRecord struct {
	Name           string `json:"name" yaml:"name"`
	RemoteSiteID   string `json:"remoteSiteId" yaml:"remoteSiteId"`
	RemoteSiteName string `json:"remoteSiteName" yaml:"remoteSiteName"`
	Operational    bool   `json:"operational" yaml:"operational"`
}

// ServiceRecord is a routing key a site has listeners or connectors for.
type ServiceRecord struct {
	RoutingKey string   `json:"routingKey" yaml:"routingKey"`
	Connectors []string `json:"connectors,omitempty" yaml:"connectors,omitempty"`
	Listeners  []string `json:"listeners,omitempty" yaml:"listeners,omitempty"`
}

// Condition is one Kubernetes-style condition.
type Condition struct {
	Type               string `json:"type" yaml:"type"`
	Status             string `json:"status" yaml:"status"` // True, False, Unknown
	Reason             string `json:"reason" yaml:"reason"`
	Message            string `json:"message" yaml:"message"`
	LastTransitionTime string `json:"lastTransitionTime" yaml:"lastTransitionTime"`
	ObservedGeneration int64  `json:"observedGeneration" yaml:"observedGeneration"`
}

// Condition returns the condition of type t, or nil.
func (s *Status) Condition(t string) *Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// Entry is one status file to write.
type Entry struct {
	Kind, Name string
	// Raw is the resource document's text as read, without a status
	// field; the status is appended to it. When nil, Node (the document
	// as parsed, status field replaced) is written, and when that is nil
	// too, Object (generated resources).
	Raw    []byte
	Node   *yaml.Node
	Object any
	Status Status
	// Private is set for a resource whose file holds a secret (an
	// AccessGrant's or AccessToken's code): it is written 0600.
	Private bool
	// Known says that the entry is the one given to the last Write with
	// the same Memo, unchanged: it is written again only if that Write
	// did not write it.
	Known bool
}

// mode is the file mode of e's status file.
func (e *Entry) mode() fs.FileMode {
	if e.Private {
		return 0o600
	}
	return 0o644
}

// FileName is <Kind>-<name>.yaml.
func FileName(kind, name string) string { return kind + "-" + name + ".yaml" }

// safeName tells whether s matches ^[A-Za-z0-9][A-Za-z0-9._-]*$.
func safeName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// Writable tells whether kind and name make a safe file name.
func Writable(kind, name string) bool {
	return safeName(kind) && safeName(name) && len(kind)+len(name) < 240
}

// Writer writes the status files of one namespace.
type Writer struct {
	Dir namespace.Dir
	Now func() time.Time
	// KeepStale leaves the status files of resources that are not among
	// the entries: a pass that could not read every file does not know
	// they are gone.
	KeepStale bool
	// Memo, when set, remembers what was written, so that a later Write
	// with the same Memo neither reads nor rewrites the file of a resource
	// whose document and status are unchanged, and lists no directory.
	Memo *Memo
}

// Memo is what Writes wrote to one namespace's status files. Its files
// are trusted to hold what was written: a new Memo (a full pass) reads and
// repairs whatever else changed them.
type Memo struct {
	mu sync.Mutex
	// files are the status files written, by file name
	files map[string]memoFile
	// listed is true once a Write has listed the directory: every status
	// file there is in files, as long as the directory is the one listed
	// (dir; one removed and made again holds none)
	listed bool
	dir    namespace.Identity
	// disk is the digest of the status files (digest.go), loaded by the
	// first Write; diskDirty: changed since it was last saved
	disk      map[string]digestEntry
	diskDirty bool
}

type memoFile struct {
	doc       docID
	status    Status // as written, with its transition times
	generated bool   // its document is generated: compared by content
}

// docID tells whether two entries stand for the same resource document:
// a document read again from a file that did not change is the same one.
type docID struct {
	raw  *byte
	n    int
	node *yaml.Node
}

func docOf(e Entry) (docID, bool) {
	switch {
	case e.Raw != nil:
		return docID{raw: unsafe.SliceData(e.Raw), n: len(e.Raw)}, true
	case e.Node != nil:
		return docID{node: e.Node}, true
	}
	return docID{}, false // generated each time: compared by content
}

// unchanged tells whether file still holds e's status; it sets the
// transition times of e's conditions from what was written.
func (m *Memo) unchanged(file string, e *Entry) bool {
	if m == nil {
		return false
	}
	id, ok := docOf(*e)
	m.mu.Lock()
	old, had := m.files[file]
	m.mu.Unlock()
	if !ok || !had || old.generated || old.doc != id {
		return false
	}
	if e.Known {
		return true
	}
	for i := range e.Status.Conditions {
		c := &e.Status.Conditions[i]
		if j := slices.IndexFunc(old.status.Conditions, func(o Condition) bool { return o.Type == c.Type && o.Status == c.Status }); j >= 0 {
			c.LastTransitionTime = old.status.Conditions[j].LastTransitionTime
		}
	}
	return old.status.equal(&e.Status)
}

// equal tells whether two statuses are the same (reflect.DeepEqual is ten
// times slower, and a pass compares thousands).
func (s *Status) equal(o *Status) bool {
	boolEq := func(a, b *bool) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
	intEq := func(a, b *int) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
	if s.Status != o.Status || s.Message != o.Message || s.RemoteSiteID != o.RemoteSiteID || s.RemoteSiteName != o.RemoteSiteName ||
		s.URL != o.URL || s.Code != o.Code || s.CA != o.CA || s.ExpirationTime != o.ExpirationTime ||
		!slices.Equal(s.Conditions, o.Conditions) || !slices.Equal(s.Endpoints, o.Endpoints) || !slices.Equal(s.SelectedPods, o.SelectedPods) ||
		!boolEq(s.HasMatchingConnector, o.HasMatchingConnector) || !boolEq(s.HasMatchingListener, o.HasMatchingListener) ||
		!boolEq(s.HasDestination, o.HasDestination) || !boolEq(s.Redeemed, o.Redeemed) ||
		!intEq(s.SitesInNetwork, o.SitesInNetwork) || !intEq(s.Redemptions, o.Redemptions) {
		return false
	}
	if len(s.Network) == 0 && len(o.Network) == 0 {
		return true
	}
	return reflect.DeepEqual(s.Network, o.Network)
}

func (m *Memo) wrote(file string, e Entry) {
	if m == nil {
		return
	}
	id, ok := docOf(e)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.files == nil {
		m.files = map[string]memoFile{}
	}
	// one whose document is generated each time is kept too, to be
	// removed when it is gone; it is compared by reading the file
	m.files[file] = memoFile{doc: id, status: e.Status, generated: !ok}
}

func (m *Memo) forget(file string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.files, file)
	m.mu.Unlock()
	m.dropped(file)
}

// sameDir forgets what the memo holds when dir is not the directory it
// listed: removed (with the namespace's runtime/, say) and made again, its
// files are gone, and the memo must not stand for them. Told apart by
// device, inode and birth time: a file system reuses the inode at once.
func (m *Memo) sameDir(dir string) {
	if m == nil {
		return
	}
	id, err := namespace.IdentityOf(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.listed && (err != nil || id != m.dir) {
		m.files, m.listed = nil, false
	}
	m.dir = id
}

// Holds tells whether the memo stands for the status files in dir: a
// Write listed it, and it is the directory listed (a pass that writes only
// what changed needs the others to be there).
func (m *Memo) Holds(dir string) bool {
	if m == nil {
		return false
	}
	id, err := namespace.IdentityOf(dir)
	if err != nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.listed && m.dir == id
}

// unlist forgets file, which is written outside a Write, and makes the
// next Write list the directory: the file is then a status file no Write
// wrote, which it removes should no entry own it.
func (m *Memo) unlist(file string) {
	if m == nil {
		return
	}
	m.forget(file)
	m.mu.Lock()
	m.listed = false
	m.mu.Unlock()
}

// Write writes every entry, keeping lastTransitionTime of conditions that
// did not change, and removes status files of resources that are gone. It
// returns the paths it changed, relative to the namespace directory.
// Files are written in parallel: a namespace can have thousands.
func (w Writer) Write(entries []Entry) ([]string, error) {
	dir, tree := w.Dir.RuntimeResources(), w.Dir.Files()
	// a directory made now holds nothing to read or keep
	_, err := os.Lstat(dir)
	fresh := errors.Is(err, fs.ErrNotExist)
	if err := tree.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	w.Memo.sameDir(dir)
	w.Memo.loadDigest(w)
	// an error saving the digest costs the next process reads, nothing else
	defer func() { _ = w.Memo.saveDigest(w) }()
	now := w.Now().UTC().Format(time.RFC3339)
	keep := make(map[string]bool, len(entries))
	// the entries to write, by index (an Entry is large: thousands of
	// copies cost more than the rest of the work), and their file names
	todo := make([]int, 0, len(entries))
	files := make([]string, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		file := FileName(e.Kind, e.Name)
		if !Writable(e.Kind, e.Name) || keep[file] {
			continue // unsafe name, or a duplicate: the first one owns the file
		}
		keep[file] = true
		todo, files = append(todo, i), append(files, file)
	}
	changed := make([]bool, len(todo))
	errs := make([]error, len(todo))
	// the directory is walked once for the files to write, if any
	open := sync.OnceValues(func() (*fileio.Dir, error) { return tree.OpenDir(dir, 0o700) })
	defer func() {
		if d, err := open(); err == nil {
			d.Close()
		}
	}()
	write := func(i int) {
		changed[i], errs[i] = w.put(open, files[i], &entries[todo[i]], now, fresh)
	}
	if w.Memo != nil && w.Memo.listed {
		// most are unchanged: goroutines would cost more than they save
		for i := range todo {
			write(i)
		}
	} else {
		fileio.ForEach(len(todo), write)
	}
	var out []string
	for i := range todo {
		if changed[i] {
			out = append(out, filepath.Join("runtime", "resources", files[i]))
		}
	}
	if w.KeepStale {
		return out, errors.Join(errs...)
	}
	var stale []string
	if fresh {
		// what the directory holds is what was written now
		if w.Memo != nil {
			w.Memo.listed = true
		}
	} else if w.Memo != nil && w.Memo.listed {
		w.Memo.mu.Lock()
		for f := range w.Memo.files {
			if !keep[f] {
				stale = append(stale, f)
			}
		}
		w.Memo.mu.Unlock()
		slices.Sort(stale)
	} else {
		tree.RemoveTemps(dir) // left by a crash
		files, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s: %w", dir, err))
		}
		for _, f := range files {
			if f.IsDir() || keep[f.Name()] || !strings.HasSuffix(f.Name(), ".yaml") || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			stale = append(stale, f.Name())
		}
		if err == nil && w.Memo != nil {
			w.Memo.listed = true
		}
	}
	for _, f := range stale {
		if err := tree.Remove(filepath.Join(dir, f)); err != nil {
			errs = append(errs, fmt.Errorf("removing stale status: %w", err))
			continue
		}
		w.Memo.forget(f)
		out = append(out, filepath.Join("runtime", "resources", f))
	}
	return out, errors.Join(errs...)
}

// put writes e's status file (its directory as open gives it, fresh when
// made by this write) unless the memo says it holds e already, and tells
// the memo what it holds now; it says whether the file changed (a failed
// write may have).
func (w Writer) put(open func() (*fileio.Dir, error), file string, e *Entry, now string, fresh bool) (bool, error) {
	if w.Memo.unchanged(file, e) {
		return false, nil
	}
	d, err := open()
	if err != nil {
		w.Memo.forget(file)
		return false, err
	}
	var known *digestEntry
	if k, ok := w.Memo.known(file); ok {
		known = &k
	}
	changed, entry, ok, err := write(d, file, e, now, known, fresh)
	if err != nil {
		w.Memo.forget(file)
		return changed, err
	}
	w.Memo.wrote(file, *e)
	if ok {
		w.Memo.recorded(file, entry)
	} else {
		w.Memo.dropped(file)
	}
	return changed, nil
}

// Update writes the entries, as Write does, and removes the status files
// of the resources in gone ("Kind/name") that no entry stands for: a pass
// that knows what changed touches nothing else. It returns the paths it
// changed, relative to the namespace directory.
func (w Writer) Update(entries []Entry, gone []string) ([]string, error) {
	dir, tree := w.Dir.RuntimeResources(), w.Dir.Files()
	d, err := tree.OpenDir(dir, 0o700)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	now := w.Now().UTC().Format(time.RFC3339)
	written := map[string]bool{}
	var out []string
	var errs []error
	for i := range entries {
		e := &entries[i]
		file := FileName(e.Kind, e.Name)
		if !Writable(e.Kind, e.Name) || written[file] {
			continue
		}
		written[file] = true
		changed, err := w.put(func() (*fileio.Dir, error) { return d, nil }, file, e, now, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if changed {
			out = append(out, filepath.Join("runtime", "resources", file))
		}
	}
	for _, id := range gone {
		kind, name, _ := strings.Cut(id, "/")
		file := FileName(kind, name)
		if !Writable(kind, name) || written[file] {
			continue
		}
		err := tree.Remove(filepath.Join(dir, file))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing stale status: %w", err))
			continue
		}
		w.Memo.forget(file)
		if err == nil {
			out = append(out, filepath.Join("runtime", "resources", file))
		}
	}
	slices.Sort(out)
	return out, errors.Join(errs...)
}

// WriteOne writes the status file of one entry and touches no other.
func (w Writer) WriteOne(e Entry) error {
	if !Writable(e.Kind, e.Name) {
		return nil
	}
	now := w.Now().UTC().Format(time.RFC3339)
	file := FileName(e.Kind, e.Name)
	w.Memo.unlist(file)
	d, err := w.Dir.Files().OpenDir(w.Dir.RuntimeResources(), 0o700)
	if err != nil {
		return err
	}
	defer d.Close()
	_, _, _, err = write(d, file, &e, now, nil, false)
	return err
}

// write writes one status file unless it already holds the same status.
// buffers are reused across status files: a namespace can have thousands,
// and each write reads the old file and builds the new one.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func write(d *fileio.Dir, file string, e *Entry, now string, known *digestEntry, fresh bool) (bool, digestEntry, bool, error) {
	var (
		st      unix.Stat_t
		statErr error
		trusted bool
		times   map[string]string
		old     []byte
		mode    fs.FileMode
		exists  = true
	)
	if !fresh {
		// the file's stat before anything is read: a change after it
		// makes the stat recorded stale, never the content
		statErr = d.Stat(file, &st)
		trusted = known != nil && statErr == nil && namespace.StatKeyOf(&st) == known.key
	}
	switch {
	case fresh:
		exists = false // its directory was made by this write
	case trusted:
		times = known.timesOf() // the file holds what the digest says
	default:
		reads.Add(1)
		oldBuf := buffers.Get().(*bytes.Buffer)
		defer buffers.Put(oldBuf)
		oldBuf.Reset()
		var err error
		mode, err = d.ReadInto(file, oldBuf)
		exists = err == nil || !errors.Is(err, fs.ErrNotExist)
		if err == nil {
			old = oldBuf.Bytes()
		}
		times = readTransitions(old)
	}
	for i := range e.Status.Conditions {
		c := &e.Status.Conditions[i]
		c.LastTransitionTime = now
		if t, ok := times[c.Type+"="+c.Status]; ok {
			c.LastTransitionTime = t
		}
	}
	kept := timesWord(e.Status.Conditions)
	newBuf := buffers.Get().(*bytes.Buffer)
	defer buffers.Put(newBuf)
	newBuf.Reset()
	if err := marshal(newBuf, *e); err != nil {
		return false, digestEntry{}, false, fmt.Errorf("status of %s/%s: %w", e.Kind, e.Name, err)
	}
	data := newBuf.Bytes()
	sum := sumOf(data)
	switch {
	case trusted && sum == known.sum && fs.FileMode(known.key.Mode)&fs.ModePerm == e.mode():
		return false, *known, true, nil
	case !trusted && old != nil && mode == e.mode() && bytes.Equal(old, data):
		return false, digestEntry{key: namespace.StatKeyOf(&st), sum: sum, times: kept}, statErr == nil, nil
	}
	if !exists {
		// the stat of the file made, from the file
		if err := d.CreateStat(file, data, e.mode(), &st); err != nil {
			return true, digestEntry{}, false, err
		}
	} else if err := d.Replace(file, data, e.mode(), false); err != nil || d.Stat(file, &st) != nil {
		return true, digestEntry{}, false, err
	}
	return true, digestEntry{key: namespace.StatKeyOf(&st), sum: sum, times: kept}, true, nil
}

// Read returns the status stored in a status file.
func Read(path string) (*Status, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Status Status `json:"status" yaml:"status"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &doc.Status, nil
}

// readTransitions returns the lastTransitionTime of each condition of a
// status file, keyed "type=status". It reads the format appendStatus
// writes without a YAML parser, falling back to one for anything else.
func readTransitions(data []byte) map[string]string {
	if data == nil {
		return nil
	}
	out := map[string]string{}
	i := bytes.Index(data, []byte("\nstatus:\n"))
	if i >= 0 {
		var typ, st string
		rest := data[i+len("\nstatus:\n"):]
		for len(rest) > 0 {
			var line []byte
			line, rest, _ = bytes.Cut(rest, []byte("\n"))
			key, val, ok := bytes.Cut(bytes.TrimSpace(line), []byte(": "))
			if !ok {
				continue
			}
			switch string(bytes.TrimPrefix(key, []byte("- "))) {
			case "type":
				typ, st = unquote(string(val)), ""
			case "status":
				st = unquote(string(val))
			case "lastTransitionTime":
				if typ != "" && st != "" {
					out[typ+"="+st] = unquote(string(val))
				}
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	var doc struct {
		Status Status `json:"status" yaml:"status"`
	}
	if yaml.Unmarshal(data, &doc) != nil {
		return nil
	}
	for _, c := range doc.Status.Conditions {
		out[c.Type+"="+c.Status] = c.LastTransitionTime
	}
	return out
}

func unquote(s string) string {
	if strings.HasPrefix(s, `"`) {
		if v, err := strconv.Unquote(s); err == nil {
			return v
		}
	}
	return s
}

// quote writes s as a YAML double-quoted scalar that YAML 1.1 readers
// (Skupper's CLI, through sigs.k8s.io/yaml) and YAML 1.2 ones read back as
// s (see package yamlstr).
func quote(b *bytes.Buffer, s string) {
	b.Write(yamlstr.AppendQuoted(b.AvailableBuffer(), s))
}

// appendStatus writes the status block in a fixed shape, without the
// (slow) YAML encoder: every string quoted.
func appendStatus(b *bytes.Buffer, s Status) {
	// field writes "\n<indent><name>: <value quoted>"
	field := func(indent, name, v string) {
		b.WriteString("\n" + indent + name + ": ")
		quote(b, v)
	}
	// optional is field for a value that is left out when empty
	optional := func(indent, name, v string) {
		if v != "" {
			field(indent, name, v)
		}
	}
	list := func(indent, name string, n int) {
		if n > 0 {
			b.WriteString("\n" + indent + name + ":")
		}
	}
	b.WriteString("status:")
	field("  ", "status", s.Status)
	optional("  ", "message", s.Message)
	list("  ", "conditions", len(s.Conditions))
	for _, c := range s.Conditions {
		field("    - ", "type", c.Type)
		field("      ", "status", c.Status)
		field("      ", "reason", c.Reason)
		field("      ", "message", c.Message)
		field("      ", "lastTransitionTime", c.LastTransitionTime)
		b.WriteString("\n      observedGeneration: " + strconv.FormatInt(c.ObservedGeneration, 10))
	}
	for _, f := range []struct {
		name string
		v    *bool
	}{{"hasMatchingConnector", s.HasMatchingConnector}, {"hasMatchingListener", s.HasMatchingListener}, {"hasDestination", s.HasDestination}, {"redeemed", s.Redeemed}} {
		if f.v != nil {
			b.WriteString("\n  " + f.name + ": " + strconv.FormatBool(*f.v))
		}
	}
	list("  ", "selectedPods", len(s.SelectedPods))
	for _, p := range s.SelectedPods {
		field("    - ", "name", p.Name)
		field("      ", "ip", p.IP)
		optional("      ", "id", p.ID)
	}
	optional("  ", "remoteSiteId", s.RemoteSiteID)
	optional("  ", "remoteSiteName", s.RemoteSiteName)
	optional("  ", "url", s.URL)
	optional("  ", "code", s.Code)
	optional("  ", "ca", s.CA)
	optional("  ", "expirationTime", s.ExpirationTime)
	if s.Redemptions != nil {
		b.WriteString("\n  redemptions: " + strconv.Itoa(*s.Redemptions))
	}
	list("  ", "endpoints", len(s.Endpoints))
	for _, e := range s.Endpoints {
		field("    - ", "name", e.Name)
		field("      ", "host", e.Host)
		field("      ", "port", e.Port)
		optional("      ", "group", e.Group)
	}
	if s.SitesInNetwork != nil {
		b.WriteString("\n  sitesInNetwork: " + strconv.Itoa(*s.SitesInNetwork))
	}
	list("  ", "network", len(s.Network))
	for _, site := range s.Network {
		field("    - ", "id", site.ID)
		field("      ", "name", site.Name)
		optional("      ", "namespace", site.Namespace)
		optional("      ", "platform", site.Platform)
		optional("      ", "version", site.Version)
		list("      ", "links", len(site.Links))
		for _, l := range site.Links {
			field("        - ", "name", l.Name)
			field("          ", "remoteSiteId", l.RemoteSiteID)
			field("          ", "remoteSiteName", l.RemoteSiteName)
			b.WriteString("\n          operational: " + strconv.FormatBool(l.Operational))
		}
		list("      ", "services", len(site.Services))
		for _, sv := range site.Services {
			field("        - ", "routingKey", sv.RoutingKey)
			for _, names := range []struct {
				name string
				v    []string
			}{{"connectors", sv.Connectors}, {"listeners", sv.Listeners}} {
				list("          ", names.name, len(names.v))
				for _, n := range names.v {
					b.WriteString("\n            - ")
					quote(b, n)
				}
			}
		}
	}
	b.WriteString("\n" + Trailer)
}

// Trailer ends every status file: a file without it was cut short. Files
// are replaced atomically, so none ever is; readers that must be sure (a
// crash test, a tool copying the files) check with Complete.
const Trailer = "# end of status\n"

// Complete tells whether status file content ends as written.
func Complete(data []byte) bool { return bytes.HasSuffix(data, []byte("\n"+Trailer)) }

func marshal(b *bytes.Buffer, e Entry) error {
	if e.Raw != nil {
		b.Write(e.Raw)
		if len(e.Raw) > 0 && e.Raw[len(e.Raw)-1] != '\n' {
			b.WriteByte('\n')
		}
		appendStatus(b, e.Status)
		return nil
	}
	var root yaml.Node
	if e.Node != nil {
		root = *e.Node
		root.Style = 0
		root.Content = nil
		for i := 0; i+1 < len(e.Node.Content); i += 2 {
			if e.Node.Content[i].Value != "status" {
				root.Content = append(root.Content, blockStyle(e.Node.Content[i]), blockStyle(e.Node.Content[i+1]))
			}
		}
	} else if err := root.Encode(e.Object); err != nil {
		return err
	}
	enc := yaml.NewEncoder(b)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	appendStatus(b, e.Status)
	return nil
}

// blockStyle copies a node tree in plain block style, so that a resource
// read from JSON or flow YAML is written back as ordinary YAML. Literal and
// folded strings keep their style; a string that is not plainly a string
// to every YAML reader is double-quoted (the encoder quotes only what YAML
// 1.2 would read otherwise, not the yes, on or 012 of YAML 1.1).
func blockStyle(n *yaml.Node) *yaml.Node {
	c := *n
	c.Style &= yaml.LiteralStyle | yaml.FoldedStyle
	if c.Kind == yaml.ScalarNode && c.Style == 0 && c.ShortTag() == "!!str" && !strings.Contains(c.Value, "\n") && !yamlstr.Plain(c.Value) {
		c.Style = yaml.DoubleQuotedStyle
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		c = *blockStyle(n.Alias)
	}
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = blockStyle(child)
	}
	return &c
}
