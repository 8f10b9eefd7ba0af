package namespace

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/site-controller/site-controller/pkg/fileio"
)

// ManagementPort returns the namespace's reserved local management port.
// When none is reserved yet it reserves one: what adopt returns when that is
// free of other namespaces' reservations (a port found in an existing
// router configuration), otherwise the lowest port from start up that no
// namespace under the same data home has reserved and that nothing listens
// on. Reservations are kept in namespaces/.management-ports and made under
// an exclusive lock on namespaces/.ports.lock, so two namespaces, even in
// two processes, never get the same port; a reservation of a namespace
// whose directory is gone is released.
//
// Ports in avoid (the namespace's own Listener ports) are not chosen for a
// new reservation; an existing one is kept whatever they are.
func (d Dir) ManagementPort(adopt func() int, start int, avoid map[int]bool) (int, error) {
	own := filepath.Join(d.Internal(), managementPortFile)
	if p, err := readPort(own); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	root := filepath.Dir(d.Path)
	unlock, err := fileio.Lock(filepath.Join(root, ".ports.lock"))
	if err != nil {
		return 0, err
	}
	defer unlock()
	reserved, err := readReservations(root)
	if err != nil {
		return 0, err
	}
	port, err := d.choosePort(reserved, adopt, start, avoid)
	if err != nil {
		return 0, err
	}
	reserved[d.Name] = port
	if err := writeReservations(root, reserved); err != nil {
		return 0, err
	}
	if _, err := fileio.WriteFile(own, []byte(strconv.Itoa(port)+"\n"), 0o644, 0o755, true); err != nil {
		return 0, fmt.Errorf("reserving management port: %w", err)
	}
	return port, nil
}

// PeekManagementPort returns the port ManagementPort would return, without
// reserving anything (validate writes nothing).
func (d Dir) PeekManagementPort(adopt func() int, start int, avoid map[int]bool) (int, error) {
	if p, err := readPort(filepath.Join(d.Internal(), managementPortFile)); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	reserved, err := readReservations(filepath.Dir(d.Path))
	if err != nil {
		return 0, err
	}
	return d.choosePort(reserved, adopt, start, avoid)
}

// choosePort picks the namespace's port: its reservation, else the adopted
// one when free of other reservations, else the lowest free port from
// start up that is neither reserved nor to be avoided.
func (d Dir) choosePort(reserved map[string]int, adopt func() int, start int, avoid map[int]bool) (int, error) {
	taken := map[int]bool{}
	for ns, p := range reserved {
		if ns != d.Name {
			taken[p] = true
		}
	}
	port := reserved[d.Name] // this namespace's, if its own file was lost
	if port == 0 {
		port = adopt()
	}
	if port >= 1 && port <= 65535 && !taken[port] {
		return port, nil
	}
	for p := start; p <= 65535; p++ {
		if !taken[p] && !avoid[p] && portFree(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free management port from %d up", start)
}

// ManagementPorts returns the management ports reserved by the other
// namespaces under the same data home, by port.
func (d Dir) ManagementPorts() (map[int]string, error) {
	reserved, err := readReservations(filepath.Dir(d.Path))
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for ns, p := range reserved {
		if ns != d.Name {
			out[p] = ns
		}
	}
	return out, nil
}

const reservationsFile = ".management-ports"

// readReservations returns the ports reserved by namespaces that still
// exist. Without a registry (first use) it is built from the namespaces'
// own files.
func readReservations(root string) (map[string]int, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	exists := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			exists[e.Name()] = true
		}
	}
	out := map[string]int{}
	data, err := os.ReadFile(filepath.Join(root, reservationsFile))
	if errors.Is(err, fs.ErrNotExist) {
		for ns := range exists {
			if p, err := readPort(filepath.Join(root, ns, "internal", managementPortFile)); err == nil {
				out[ns] = p
			}
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading management port reservations: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || !exists[f[1]] {
			continue
		}
		if p, err := strconv.Atoi(f[0]); err == nil && p > 0 && p <= 65535 {
			out[f[1]] = p
		}
	}
	return out, nil
}

func writeReservations(root string, reserved map[string]int) error {
	names := make([]string, 0, len(reserved))
	for ns := range reserved {
		names = append(names, ns)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("# management ports reserved by namespaces: port namespace\n")
	for _, ns := range names {
		fmt.Fprintf(&b, "%d %s\n", reserved[ns], ns)
	}
	if _, err := fileio.WriteFile(filepath.Join(root, reservationsFile), []byte(b.String()), 0o644, 0o755, true); err != nil {
		return fmt.Errorf("recording management port reservations: %w", err)
	}
	return nil
}

func readPort(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%s: not a port number", path)
	}
	return p, nil
}

// portFree tells whether nothing listens on the loopback port now.
func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
