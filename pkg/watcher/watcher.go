// Package watcher turns file system events under <data-home>/namespaces
// into namespace names for the controller to reconcile.
//
// One fsnotify watcher (one inotify instance) serves every namespace. Events
// are hints only: the watcher never reads files or interprets their
// content, it only says which namespace may have changed, and asks for a
// full rescan whenever it may have missed something (queue overflow, any
// watcher error). It never writes anything.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/fsnotify/fsnotify"

	"github.com/site-controller/site-controller/pkg/resources"
)

// Handler receives what the watcher finds.
type Handler interface {
	// Changed is called for a namespace whose input may have changed, or
	// that appeared or disappeared. path is the file that changed,
	// relative to the namespace directory, or "" when the change may
	// concern more than one file (a directory appeared, went or moved).
	Changed(namespace, path string)
	// Rescan is called when events may have been lost: every namespace
	// must be looked at again.
	Rescan(reason string)
	// Event counts one file system event, for metrics.
	Event(op string)
}

// Watcher watches the namespaces directory of a data home.
type Watcher struct {
	root    string // <data-home>/namespaces
	fs      *fsnotify.Watcher
	handler Handler
	log     *slog.Logger

	mu      sync.Mutex
	watched map[string]bool // directories with a watch
	// byNS indexes watched by namespace ("" for the root): a namespace's
	// Sync looks at its own watches, not at every namespace's
	byNS        map[string]map[string]bool
	droppedDirs map[string]bool // watches just dropped by events
	// unwatched are directories whose watch could not be added (the
	// inotify watch limit, say), with why: changes there are only found by
	// rescans until a later Sync adds the watch.
	unwatched map[string]error
}

// New creates the watcher for root (<data-home>/namespaces), which is
// created if missing.
func New(root string, h Handler, log *slog.Logger) (*Watcher, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", root, err)
	}
	// a large buffer between the kernel queue and us: bursts of thousands
	// of events (a whole namespace copied in) do not overflow it
	w, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return nil, fmt.Errorf("creating file watcher: %w", err)
	}
	return &Watcher{root: root, fs: w, handler: h, log: log, watched: map[string]bool{}}, nil
}

// Close releases the inotify instance.
func (w *Watcher) Close() error { return w.fs.Close() }

// Watched returns the number of directories being watched.
func (w *Watcher) Watched() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.watched)
}

// IsWatched tells whether dir has a watch.
func (w *Watcher) IsWatched(dir string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.watched[dir]
}

// SyncAll (re)establishes the watches of the root and of every namespace.
func (w *Watcher) SyncAll() error {
	if err := w.add(w.root); err != nil {
		return err
	}
	entries, err := os.ReadDir(w.root)
	if err != nil {
		return fmt.Errorf("listing %s: %w", w.root, err)
	}
	var errs []error
	present := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() && resources.ValidName(e.Name()) == "" {
			present[e.Name()] = true
			errs = append(errs, w.Sync(e.Name()))
		}
	}
	// namespaces that went away while we were not looking
	w.mu.Lock()
	var stale []string
	for ns, dirs := range w.byNS {
		if ns != "" && !present[ns] {
			for dir := range dirs {
				stale = append(stale, dir)
			}
		}
	}
	w.mu.Unlock()
	for _, dir := range stale {
		w.remove(dir)
	}
	w.mu.Lock()
	for dir := range w.unwatched {
		if ns := w.namespaceOf(dir); ns != "" && !present[ns] {
			delete(w.unwatched, dir)
		}
	}
	w.mu.Unlock()
	return errors.Join(errs...)
}

// dirsOf lists the directories to watch for namespace ns: the namespace
// directory, input/, internal/, and every directory under input/resources,
// input/certs and input/issuers. Hidden directories are watched too:
// Kubernetes-style "..data" symlink swaps happen through them.
func (w *Watcher) dirsOf(ns string) []string {
	base := filepath.Join(w.root, ns)
	dirs := []string{base, filepath.Join(base, "input"), filepath.Join(base, "internal")}
	for _, sub := range []string{"resources", "certs", "issuers"} {
		top := filepath.Join(base, "input", sub)
		filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // gone or unreadable: nothing to watch
			}
			if d.IsDir() {
				dirs = append(dirs, path)
			} else if d.Type()&fs.ModeSymlink != 0 && path == top {
				dirs = append(dirs, path) // input/resources itself a link
			}
			return nil
		})
	}
	return dirs
}

// Sync makes the watches of one namespace match its directories.
func (w *Watcher) Sync(ns string) error {
	want := map[string]bool{}
	var errs []error
	// A directory created inside one after it was listed but before its
	// watch was added sends its event to no one: list again once the
	// watches are in place, until a listing finds nothing new (anything
	// created after that is seen by a watch).
	for range 16 {
		added := false
		for _, dir := range w.dirsOf(ns) {
			if want[dir] {
				continue
			}
			st, err := os.Stat(dir)
			if err != nil || !st.IsDir() {
				continue
			}
			want[dir], added = true, true
			errs = append(errs, w.add(dir))
		}
		if !added {
			break
		}
	}
	// watches, and failures to add one, of directories no longer there
	w.mu.Lock()
	var stale []string
	for dir := range w.byNS[ns] {
		if !want[dir] {
			stale = append(stale, dir)
		}
	}
	for dir := range w.unwatched {
		if !want[dir] && w.namespaceOf(dir) == ns {
			delete(w.unwatched, dir)
		}
	}
	w.mu.Unlock()
	for _, dir := range stale {
		w.remove(dir)
	}
	return errors.Join(errs...)
}

// add watches dir. It asks the kernel even when dir is watched already by
// our account: a directory removed and created again under the same name
// can still be on our books (its removal not yet handled) while the kernel
// dropped its watch; for a directory really watched the call is a no-op.
func (w *Watcher) add(dir string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.fs.Add(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			delete(w.unwatched, dir)
			return nil
		}
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w: the inotify watch limit is reached (raise fs.inotify.max_user_watches)", err)
		}
		if w.unwatched == nil {
			w.unwatched = map[string]error{}
		}
		w.unwatched[dir] = err
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	delete(w.unwatched, dir)
	w.watched[dir] = true
	ns := w.namespaceOf(dir)
	if w.byNS[ns] == nil {
		if w.byNS == nil {
			w.byNS = map[string]map[string]bool{}
		}
		w.byNS[ns] = map[string]bool{}
	}
	w.byNS[ns][dir] = true
	return nil
}

// Unwatched returns how many directories that should have a watch have
// none, and why one of them has not.
func (w *Watcher) Unwatched() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	dirs := make([]string, 0, len(w.unwatched))
	for d := range w.unwatched {
		dirs = append(dirs, d)
	}
	if len(dirs) == 0 {
		return 0, nil
	}
	slices.Sort(dirs)
	return len(dirs), fmt.Errorf("watching %s: %w", dirs[0], w.unwatched[dirs[0]])
}

func (w *Watcher) remove(dir string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watched[dir] {
		_ = w.fs.Remove(dir) // fails when the kernel already dropped it
		delete(w.watched, dir)
		ns := w.namespaceOf(dir)
		delete(w.byNS[ns], dir)
		if len(w.byNS[ns]) == 0 {
			delete(w.byNS, ns)
		}
		if w.droppedDirs == nil {
			w.droppedDirs = map[string]bool{}
		}
		w.droppedDirs[dir] = true
	}
}

// dropped tells, once, whether remove dropped the watch of dir.
func (w *Watcher) dropped(dir string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.droppedDirs[dir]
	delete(w.droppedDirs, dir)
	return d
}

// namespaceOf returns the namespace a path belongs to, or "" for the root.
func (w *Watcher) namespaceOf(path string) string {
	rel, err := filepath.Rel(w.root, path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return ""
	}
	ns, _, _ := strings.Cut(rel, string(filepath.Separator))
	return ns
}

// debris tells whether a file name is editor or tool debris whose events
// cannot change what the namespace holds: vim's 4913 probe and swap files,
// backups ending in ~, Emacs lock files, and dotfiles other than the
// "..name" entries of Kubernetes-style symlink swaps.
func debris(name string) bool {
	switch {
	case name == "4913", strings.HasSuffix(name, "~"),
		strings.HasSuffix(name, ".swp"), strings.HasSuffix(name, ".swx"),
		strings.HasPrefix(name, ".#"):
		return true
	case strings.HasPrefix(name, ".."):
		return false
	}
	return strings.HasPrefix(name, ".")
}

// Run handles events until ctx ends. The Errors channel is always
// drained: any error, overflow included, leads to a full rescan.
func (w *Watcher) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fs.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			w.handle(ev)
		case err, ok := <-w.fs.Errors:
			if !ok {
				return errors.New("file watcher closed")
			}
			reason := "watcher error"
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				reason = "overflow"
			}
			w.log.Warn("file watcher lost events; rescanning everything", "reason", reason, "err", err)
			w.handler.Rescan(reason)
		}
	}
}

func (w *Watcher) handle(ev fsnotify.Event) {
	w.handler.Event(opName(ev.Op))
	ns := w.namespaceOf(ev.Name)
	if ns == "" {
		return // the root itself
	}
	if resources.ValidName(ns) != "" {
		return // not a namespace: data-home files (.ports.lock), temporary names
	}
	base := filepath.Base(ev.Name)
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		// a watched directory that is deleted loses its watch in the
		// kernel; one that is moved keeps it at its new place: either way
		// it is no longer watched where we think, and a directory created
		// under the same name must get a watch of its own
		w.remove(ev.Name)
	}
	if filepath.Dir(ev.Name) == w.root {
		// a namespace directory appeared, went or was renamed
		if err := w.Sync(ns); err != nil {
			w.log.Warn("watching namespace", "namespace", ns, "err", err)
		}
		w.handler.Changed(ns, "")
		return
	}
	rel, _ := filepath.Rel(filepath.Join(w.root, ns), ev.Name)
	if strings.HasPrefix(rel, "runtime") {
		return // our own output
	}
	switch {
	case rel == "internal":
		// internal/ appeared or went: watch it; only a platform.yaml
		// already inside matters (the rest is our own state)
		if err := w.Sync(ns); err != nil {
			w.log.Warn("watching namespace", "namespace", ns, "err", err)
		}
		if _, err := os.Stat(filepath.Join(ev.Name, "platform.yaml")); err != nil {
			return
		}
	case strings.HasPrefix(rel, "internal"+string(filepath.Separator)) && base != "platform.yaml":
		return
	}
	if debris(base) {
		return
	}
	// a directory appeared, went or moved: bring the watches up to date
	// (cheap: only this namespace's directories are walked)
	if w.dirChanged(ev) {
		if err := w.Sync(ns); err != nil {
			w.log.Warn("watching namespace", "namespace", ns, "err", err)
		}
		rel = ""
	}
	if rel == "internal" {
		rel = "" // with what it holds
	}
	w.handler.Changed(ns, rel)
}

// dirChanged tells whether an event created, removed or moved a directory
// (or a link that may point to one): only then do watches need updating.
func (w *Watcher) dirChanged(ev fsnotify.Event) bool {
	switch {
	case ev.Has(fsnotify.Create):
		st, err := os.Stat(ev.Name)
		return err == nil && st.IsDir()
	case ev.Has(fsnotify.Remove), ev.Has(fsnotify.Rename):
		// cheap to ask the kernel: was it a directory we watched (the
		// watch was just dropped) or a ".." link of a symlink swap?
		return w.dropped(ev.Name) || strings.HasPrefix(filepath.Base(ev.Name), "..")
	}
	return false
}

func opName(op fsnotify.Op) string {
	switch {
	case op.Has(fsnotify.Create):
		return "create"
	case op.Has(fsnotify.Write):
		return "write"
	case op.Has(fsnotify.Remove):
		return "remove"
	case op.Has(fsnotify.Rename):
		return "rename"
	case op.Has(fsnotify.Chmod):
		return "chmod"
	}
	return "other"
}
