package status

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/site-controller/site-controller/pkg/namespace"
)

// Resource is one resource's status as read back from its status file:
// what `site-controller status -o json` prints and the console's API
// serves (the same type, so that the two cannot drift apart).
type Resource struct {
	Namespace string `json:"namespace" yaml:"namespace"`
	Kind      string `json:"kind" yaml:"kind"`
	Name      string `json:"name" yaml:"name"`
	// File and Line are where the resource is defined (relative to the
	// namespace directory), when the reader knows: the daemon's last pass
	// does, a status file does not.
	File   string `json:"file,omitempty" yaml:"file,omitempty"`
	Line   int    `json:"line,omitempty" yaml:"line,omitempty"`
	Status `json:"status" yaml:"status"`
	// Error says why the status file could not be read.
	Error string `json:"error,omitempty" yaml:"error,omitempty"`
}

// Problem tells whether the resource needs a look: its status file could
// not be read, or its status is not Ready.
func (r *Resource) Problem() bool {
	return r.Error != "" || r.Status.Status != Ready
}

// ReadResources reads the status files of a namespace, sorted by file
// name (kind, then name).
func ReadResources(dir namespace.Dir) ([]Resource, error) {
	return (*ReadCache)(nil).ReadResources(dir)
}

// ReadCache keeps the statuses read from status files, so that reading a
// namespace again parses only the files replaced since (a status file is
// always replaced whole, by rename: a new inode). The zero value is ready.
type ReadCache struct {
	mu    sync.Mutex
	files map[string]readFile
}

type readFile struct {
	ino   uint64
	size  int64
	mtime time.Time
	res   Resource
}

// ReadResources is ReadResources with c's memory of what was read; a nil
// c reads every file.
func (c *ReadCache) ReadResources(dir namespace.Dir) ([]Resource, error) {
	files, err := filepath.Glob(filepath.Join(dir.RuntimeResources(), "*.yaml"))
	if err != nil {
		return nil, err
	}
	out := make([]Resource, 0, len(files))
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		var key readFile
		if c != nil {
			seen[f] = true
			if fi, err := os.Stat(f); err == nil {
				key.size, key.mtime = fi.Size(), fi.ModTime()
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					key.ino = st.Ino
				}
				c.mu.Lock()
				old, ok := c.files[f]
				c.mu.Unlock()
				if ok && old.ino == key.ino && old.size == key.size && old.mtime.Equal(key.mtime) {
					out = append(out, old.res)
					continue
				}
			}
		}
		kind, name, _ := strings.Cut(strings.TrimSuffix(filepath.Base(f), ".yaml"), "-")
		r := Resource{Namespace: dir.Name, Kind: kind, Name: name}
		if st, err := Read(f); err != nil {
			r.Error = err.Error()
		} else {
			r.Status = *st
		}
		out = append(out, r)
		if c != nil && r.Error == "" && key.ino != 0 {
			key.res = r
			c.mu.Lock()
			if c.files == nil {
				c.files = map[string]readFile{}
			}
			c.files[f] = key
			c.mu.Unlock()
		}
	}
	if c != nil {
		// forget the files of this namespace that are gone
		prefix := dir.RuntimeResources() + string(filepath.Separator)
		c.mu.Lock()
		for f := range c.files {
			if strings.HasPrefix(f, prefix) && !seen[f] {
				delete(c.files, f)
			}
		}
		c.mu.Unlock()
	}
	return out, nil
}
