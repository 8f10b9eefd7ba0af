// Command fsfloor measures the file system's floor under the render and
// cold start harnesses: the system calls that any implementation of the
// same files must make, made with no work between them — nothing decoded,
// validated, rendered or encoded, no locks, every file's content ready.
// What a harness measures above this floor is the controller's; the floor
// itself is the kernel's and the disk's.
//
//	go run ./internal/scale/fsfloor -dir /path/on/the/file/system -mode render
//	go run ./internal/scale/fsfloor -dir /path/on/the/file/system -mode coldstart
//
// render: the namespace of the render harness (1 Site, 2,500 Listeners,
// 2,500 Connectors), its runtime/ removed as `rm -rf runtime/` does, then
// the 5,001 inputs read (open, read, close) and the 5,001 status files,
// the router configuration and the issuer's three files written into a
// new runtime/, each file whole (an unnamed file linked in, as the
// controller writes); the issuer's files and their directory flushed.
//
// coldstart: 1,000 namespaces of 10 resources (the cold start harness's
// inputs), and for each, on -workers goroutines: its 10 inputs read, the
// 9 directories and 25 files of a first pass made, and flushed what
// cannot be made again — the issuer's key and certificate, the site id
// and the management port, and their two directories (6 fsyncs; the
// controller makes 10).
//
// Each run's phases are printed, then the medians.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/site-controller/site-controller/internal/scale"
)

func main() {
	dir := flag.String("dir", "", "directory on the file system to measure (made; what the runs write is removed)")
	mode := flag.String("mode", "render", "render or coldstart")
	runs := flag.Int("runs", 5, "runs")
	workers := flag.String("workers", "1,2,4", "goroutines, comma-separated: each count is measured, the fastest kept")
	settle := flag.Duration("settle", 2*time.Second, "pause after sync(2) before each run, as the harnesses' runs start on a quiet disk")
	namespaces := flag.Int("namespaces", 1000, "coldstart: namespaces")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "fsfloor: -dir is required")
		os.Exit(2)
	}
	var ws []int
	for _, f := range strings.Split(*workers, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "fsfloor: -workers: %q is not a count\n", f)
			os.Exit(2)
		}
		ws = append(ws, n)
	}
	m := measurer{dir: *dir, runs: *runs, workers: ws, settle: *settle, namespaces: *namespaces}
	var err error
	switch *mode {
	case "render":
		err = m.render()
	case "coldstart":
		err = m.coldstart()
	default:
		err = fmt.Errorf("-mode %q: render or coldstart", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsfloor:", err)
		os.Exit(1)
	}
}

type measurer struct {
	dir        string
	runs       int
	workers    []int
	settle     time.Duration
	namespaces int
}

// The sizes of what a first pass writes (a rendered namespace of the
// harnesses): a status file, the issuer's certificate and key, the site
// id, the management port, a credential's certificate and key.
var (
	statusFile = filled(718)
	certFile   = filled(570)
	keyFile    = filled(241)
	siteID     = filled(37)
	portFile   = filled(5)
	smallFile  = filled(2000)
)

func filled(n int) []byte { return []byte(strings.Repeat("x", n-1) + "\n") }

func (m measurer) quiet() {
	unix.Sync()
	time.Sleep(m.settle)
}

// render measures the render harness's floor after `rm -rf runtime/`.
func (m measurer) render() error {
	home := filepath.Join(m.dir, "fsfloor-render")
	if err := os.RemoveAll(home); err != nil {
		return err
	}
	defer os.RemoveAll(home)
	if err := scale.Generate(home, "scale", 2500, 2500); err != nil {
		return err
	}
	ns := filepath.Join(home, "namespaces", "scale")
	inputs, err := filepath.Glob(filepath.Join(ns, "input", "resources", "*.yaml"))
	if err != nil {
		return err
	}
	config := filled(1 << 20)
	for _, w := range m.workers {
		var reads, writes, totals []time.Duration
		for run := range m.runs {
			runtime := filepath.Join(ns, "runtime")
			if err := os.RemoveAll(runtime); err != nil {
				return err
			}
			if run == 0 {
				// a first runtime/ to remove, as the harness's renders have
				if err := m.renderWrite(runtime, len(inputs), config, w); err != nil {
					return err
				}
				if err := os.RemoveAll(runtime); err != nil {
					return err
				}
			}
			m.quiet()
			start := time.Now()
			if err := parallel(len(inputs), w, func(i int) error { return readWhole(inputs[i]) }); err != nil {
				return err
			}
			read := time.Since(start)
			if err := m.renderWrite(runtime, len(inputs), config, w); err != nil {
				return err
			}
			total := time.Since(start)
			reads, writes, totals = append(reads, read), append(writes, total-read), append(totals, total)
			fmt.Printf("render workers=%d run=%d read=%s write=%s total=%s\n", w, run+1, ms(read), ms(total-read), ms(total))
		}
		fmt.Printf("median render workers=%d: read %s, write %s, total %s (%d inputs read, %d files written)\n",
			w, ms(median(reads)), ms(median(writes)), ms(median(totals)), len(inputs), len(inputs)+4)
	}
	return nil
}

// renderWrite makes runtime/ as a render after its removal does: its
// directories, the issuer's three files (flushed, with their directory),
// the router's configuration and a status file per input.
func (m measurer) renderWrite(runtime string, n int, config []byte, workers int) error {
	resources := filepath.Join(runtime, "resources")
	issuer := filepath.Join(runtime, "issuers", "skupper-local-ca")
	router := filepath.Join(runtime, "router")
	for _, d := range []string{resources, issuer, router} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := writeFlushed(issuer, []file{{"tls.key", keyFile}, {"tls.crt", certFile}, {"ca.crt", certFile}}); err != nil {
		return err
	}
	if err := create(router, "skrouterd.json", config, false); err != nil {
		return err
	}
	return parallel(n, workers, func(i int) error {
		return create(resources, "Listener-l"+strconv.Itoa(i)+".yaml", statusFile, false)
	})
}

// coldstart measures the cold start harness's floor on a fresh data home.
func (m measurer) coldstart() error {
	for _, w := range m.workers {
		var totals []time.Duration
		for run := range m.runs {
			home := filepath.Join(m.dir, "fsfloor-coldstart")
			if err := os.RemoveAll(home); err != nil {
				return err
			}
			if err := scale.Namespaces(home, m.namespaces, 10); err != nil {
				return err
			}
			names, err := os.ReadDir(filepath.Join(home, "namespaces"))
			if err != nil {
				return err
			}
			m.quiet()
			start := time.Now()
			err = parallel(len(names), w, func(i int) error {
				return firstPass(filepath.Join(home, "namespaces", names[i].Name()))
			})
			total := time.Since(start)
			if err != nil {
				return err
			}
			totals = append(totals, total)
			fmt.Printf("coldstart workers=%d run=%d namespaces=%d total=%s\n", w, run+1, len(names), ms(total))
			if err := os.RemoveAll(home); err != nil {
				return err
			}
		}
		fmt.Printf("median coldstart workers=%d: %s\n", w, ms(median(totals)))
	}
	return nil
}

// firstPass makes what a namespace's first pass makes.
func firstPass(ns string) error {
	inputs, err := os.ReadDir(filepath.Join(ns, "input", "resources"))
	if err != nil {
		return err
	}
	for _, in := range inputs {
		if err := readWhole(filepath.Join(ns, "input", "resources", in.Name())); err != nil {
			return err
		}
	}
	internal := filepath.Join(ns, "internal")
	issuer := filepath.Join(ns, "runtime", "issuers", "skupper-local-ca")
	resources := filepath.Join(ns, "runtime", "resources")
	router := filepath.Join(ns, "runtime", "router")
	client := filepath.Join(ns, "runtime", "certs", "skupper-local-client")
	server := filepath.Join(ns, "runtime", "certs", "skupper-local-server")
	for _, d := range []string{internal, issuer, resources, router, client, server} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := writeFlushed(internal, []file{{"site-id", siteID}, {"management-port", portFile}}); err != nil {
		return err
	}
	if err := create(internal, "status-digest", smallFile, false); err != nil {
		return err
	}
	if err := create(internal, "last-good.log", smallFile, false); err != nil {
		return err
	}
	// the issuer's key and certificate (its ca.crt is the certificate again)
	if err := writeFlushed(issuer, []file{{"tls.key", keyFile}, {"tls.crt", certFile}}); err != nil {
		return err
	}
	if err := create(issuer, "ca.crt", certFile, false); err != nil {
		return err
	}
	for _, d := range []string{client, server} {
		for _, f := range []file{{"tls.key", keyFile}, {"tls.crt", certFile}, {"ca.crt", certFile}} {
			if err := create(d, f.name, f.data, false); err != nil {
				return err
			}
		}
	}
	if err := create(router, "skrouterd.json", smallFile, false); err != nil {
		return err
	}
	for i := range len(inputs) + 1 {
		if err := create(resources, "Resource-"+strconv.Itoa(i)+".yaml", statusFile, false); err != nil {
			return err
		}
	}
	return nil
}

type file struct {
	name string
	data []byte
}

// writeFlushed writes files into dir, each flushed, then flushes dir.
func writeFlushed(dir string, files []file) error {
	for _, f := range files {
		if err := create(dir, f.name, f.data, true); err != nil {
			return err
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// create writes a new file whole: an unnamed file in dir, filled (and
// flushed), linked in as name.
func create(dir, name string, data []byte, flush bool) error {
	d, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dir, err)
	}
	defer unix.Close(d)
	fd, err := unix.Openat(d, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating in %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, data); err != nil {
		return fmt.Errorf("writing in %s: %w", dir, err)
	}
	if flush {
		if err := unix.Fsync(fd); err != nil {
			return fmt.Errorf("flushing in %s: %w", dir, err)
		}
	}
	err = unix.Linkat(fd, "", d, name, unix.AT_EMPTY_PATH)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), d, name, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil {
		return fmt.Errorf("linking %s into %s: %w", name, dir, err)
	}
	return nil
}

// readWhole opens, reads and closes path.
func readWhole(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	defer unix.Close(fd)
	var buf [4096]byte
	for {
		n, err := unix.Read(fd, buf[:])
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if n == 0 {
			return nil
		}
	}
}

// parallel runs do(0..n-1) on workers goroutines; the first error wins.
func parallel(n, workers int, do func(int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
		errs []error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					next = n
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d.Microseconds())/1000) }
