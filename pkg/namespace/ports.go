package namespace

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

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
func (d Dir) ManagementPort(memo *PortMemo, adopt func() int, start int, avoid map[int]bool) (int, error) {
	own := filepath.Join(d.Internal(), managementPortFile)
	if p, err := readPort(own); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	port, err := d.reserveManagementPort(memo, adopt, start, avoid)
	if err != nil {
		return 0, err
	}
	// after the lock: the registry holds the port for this namespace
	// already, and gives it again should this file be lost
	if _, err := d.Files().WriteFile(own, []byte(strconv.Itoa(port)+"\n"), 0o644, 0o700, true); err != nil {
		return 0, fmt.Errorf("reserving management port: %w", err)
	}
	return port, nil
}

// reserveManagementPort chooses the namespace's port and records it in
// the registry, under the registry's lock.
func (d Dir) reserveManagementPort(memo *PortMemo, adopt func() int, start int, avoid map[int]bool) (int, error) {
	root := filepath.Dir(d.Path)
	unlock, err := memo.lock(root)
	if err != nil {
		return 0, err
	}
	defer unlock()
	memo.Here(d)
	version := memo.versionNow()
	reserved, err := readReservations(memo, root)
	if err != nil {
		return 0, err
	}
	reserved = maps.Clone(reserved)
	port, err := d.choosePort(reserved, adopt, start, avoid)
	if err != nil {
		return 0, err
	}
	reserved[d.Name] = port
	if err := writeReservation(memo, root, d.Name, port, reserved, version); err != nil {
		return 0, err
	}
	return port, nil
}

// ReservedManagementPort is the management port the namespace holds, if
// it holds one.
func (d Dir) ReservedManagementPort() (int, bool) {
	p, err := readPort(filepath.Join(d.Internal(), managementPortFile))
	return p, err == nil
}

// PeekManagementPort returns the port ManagementPort would return, without
// reserving anything (validate writes nothing).
func (d Dir) PeekManagementPort(adopt func() int, start int, avoid map[int]bool) (int, error) {
	if p, err := readPort(filepath.Join(d.Internal(), managementPortFile)); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	reserved, err := readReservations(nil, filepath.Dir(d.Path))
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

// ManagementPorts returns the management ports reserved by the
// namespaces under the same data home, by port (this one's included: a
// site checks its own apart). The map is shared between passes: read it,
// never change it.
func (d Dir) ManagementPorts(memo *PortMemo) (map[int]string, error) {
	root := filepath.Dir(d.Path)
	if byPort, ok := memo.reservedByPort(filepath.Join(root, reservationsFile)); ok {
		return byPort, nil
	}
	reserved, err := readReservations(memo, root)
	if err != nil {
		return nil, err
	}
	out := make(map[int]string, len(reserved))
	for ns, p := range reserved {
		out[p] = ns
	}
	memo.keepByPort(filepath.Join(root, reservationsFile), out)
	return out, nil
}

const reservationsFile = ".management-ports"

// readReservations returns the ports reserved by namespaces that still
// exist. Without a registry (first use) it is built from the namespaces'
// own files. The map is shared between passes: read it, never change it.
func readReservations(memo *PortMemo, root string) (map[string]int, error) {
	path := filepath.Join(root, reservationsFile)
	if byNS, ok := memo.reservedByNS(path); ok {
		return byNS, nil
	}
	raw, ok := memo.reservations(path)
	if !ok {
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			entries, err := os.ReadDir(root)
			if err != nil {
				return nil, fmt.Errorf("listing namespaces: %w", err)
			}
			out := map[string]int{}
			for _, e := range entries {
				if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
					continue
				}
				if p, err := readPort(filepath.Join(root, e.Name(), "internal", managementPortFile)); err == nil {
					out[e.Name()] = p
				}
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading management port reservations: %w", err)
		}
		var lines int
		var clean bool
		raw, lines, clean = parseReservations(data)
		memo.putReservations(path, raw, lines, clean)
	}
	version := memo.versionNow()
	out := make(map[string]int, len(raw))
	for ns, p := range raw {
		if memo.exists(root, ns) {
			out[ns] = p
		}
	}
	memo.keepByNS(path, out, version)
	return out, nil
}

// parseReservations reads the management port registry: lines "port
// namespace", the last of a namespace's its port (a new reservation is
// appended); a last line without its newline is left out. It returns the
// ports by namespace, how many lines there are and whether the last is
// whole.
func parseReservations(data []byte) (map[string]int, int, bool) {
	raw := map[string]int{}
	clean := len(data) == 0 || data[len(data)-1] == '\n'
	text := string(data[:bytes.LastIndexByte(data, '\n')+1])
	lines := 0
	for line := range strings.SplitSeq(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || strings.HasPrefix(line, "#") {
			continue
		}
		lines++
		if p, err := strconv.Atoi(f[0]); err == nil && p > 0 && p <= 65535 {
			raw[f[1]] = p
		}
	}
	return raw, lines, clean
}

// writeReservation records namespace ns's reservation of port, reserved
// holding those of the namespaces that exist (as of version): a line appended to the
// registry as this process knows it, or the registry written whole (when
// it is not, or past twice the lines it holds), flushed to disk.
func writeReservation(memo *PortMemo, root, ns string, port int, reserved map[string]int, version int) error {
	path := filepath.Join(root, reservationsFile)
	r, known := memo.reservedFile(path)
	var err error
	raw, lines := maps.Clone(r.ports), r.lines+1
	if known && r.clean && lines <= 2*len(reserved)+64 {
		raw[ns] = port
		err = fileio.Tree{}.Append(path, []byte(strconv.Itoa(port)+" "+ns+"\n"), true)
	} else {
		raw, lines = maps.Clone(reserved), len(reserved)
		var b strings.Builder
		b.WriteString("# management ports reserved by namespaces: port namespace (the last line of a namespace holds)\n")
		for _, ns := range slices.Sorted(maps.Keys(reserved)) {
			fmt.Fprintf(&b, "%d %s\n", reserved[ns], ns)
		}
		_, err = fileio.WriteFile(path, []byte(b.String()), 0o644, 0o755, true)
	}
	if err != nil {
		memo.putReservations(path, nil, 0, false)
		return fmt.Errorf("recording management port reservations: %w", err)
	}
	memo.putReservations(path, raw, lines, true)
	memo.keepByNS(path, reserved, version) // the namespaces' that exist, this one's added
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

// PortClaim is a port a namespace's router binds: Port when the resource
// names one, else the lowest free one from From up (kept once reserved).
type PortClaim struct {
	// Key names the claim within its namespace, e.g.
	// "RouterAccess/west/inter-router".
	Key  string
	Host string // the bind address; "" (and 0.0.0.0, ::) is every address
	Port int
	From int
}

// PortGrant is the outcome of a claim: the port, or the namespace and
// resource that hold it already.
type PortGrant struct {
	Port   int
	HeldBy string
}

// The claims registry is two files. Ports the input names (a Listener's,
// a RouterAccess role's port) are in .ports, replaced atomically but not
// flushed to disk: after a crash that loses it, each namespace's next pass
// claims them again from its input. Ports the controller chose (a
// RouterAccess role without one, which link files other sites hold name)
// cannot be derived again: they are in .ports-chosen, flushed before it
// replaces the old one, and written only when one of them changes.
const (
	claimsFile = ".ports"
	chosenFile = ".ports-chosen"
)

// RegistryFiles are the files of the data home in which the namespaces'
// ports are kept: the claims, the ports chosen, the management port
// reservations (what a pass reads of the other namespaces').
func RegistryFiles(dataHome string) []string {
	root := Root(dataHome)
	return []string{filepath.Join(root, claimsFile), filepath.Join(root, chosenFile), filepath.Join(root, reservationsFile)}
}

// portHolder is one line of the claims registry.
type portHolder struct {
	port      int
	host, key string
	// chosen is true for a port the controller chose
	chosen bool
}

// ClaimPorts reserves the ports of a namespace's Listeners and
// RouterAccess roles across the data home, in namespaces/.ports, under the
// same lock as the management ports. A claim that names a port another
// namespace holds on an overlapping address (or its management port) is
// granted nothing, with the holder; a claim without a port keeps the port
// it reserved before, else gets the lowest from From up that no namespace
// holds or manages and that nothing listens on. The namespace's lines are
// replaced by what it holds now (released claims go); with write false
// nothing is written (validate), and nothing kept is used. It also tells
// whether the namespace's lines changed: a port it released may be one
// another namespace was refused.
func (d Dir) ClaimPorts(memo *PortMemo, claims []PortClaim, write bool) (map[string]PortGrant, bool, error) {
	root := filepath.Dir(d.Path)
	index := memo
	if write {
		unlock, err := memo.lock(root)
		if err != nil {
			return nil, false, err
		}
		defer unlock()
	} else {
		index = nil // the memo's index is read and changed under the lock
	}
	memo.Here(d)
	idx, err := readClaims(index, memo, root)
	if err != nil {
		return nil, false, err
	}
	mgmt, err := readReservations(memo, root)
	if err != nil {
		return nil, false, err
	}
	mgmtByPort, err := d.ManagementPorts(memo)
	if err != nil {
		return nil, false, err
	}
	mine := map[string]int{}
	for _, h := range idx.holders[d.Name] {
		mine[h.key] = h.port
	}
	heldBy := func(host string, port int) string { return idx.heldBy(mgmtByPort, d.Name, host, port) }
	out := map[string]PortGrant{}
	var now []portHolder
	explicit := map[int]bool{}
	for _, c := range claims {
		if c.Port > 0 {
			explicit[c.Port] = true
		}
	}
	for _, c := range claims {
		host := c.Host
		if wildHost(host) {
			host = "*"
		}
		if c.Port > 0 {
			if by := heldBy(host, c.Port); by != "" {
				out[c.Key] = PortGrant{HeldBy: by}
				continue
			}
			out[c.Key] = PortGrant{Port: c.Port}
			now = append(now, portHolder{c.Port, host, c.Key, false})
			continue
		}
		p := mine[c.Key]
		if p == 0 || heldBy(host, p) != "" || (explicit[p]) {
			p = 0
			for q := c.From; q <= 65535; q++ {
				taken := explicit[q] || heldBy(host, q) != "" || mgmt[d.Name] == q ||
					slices.ContainsFunc(now, func(h portHolder) bool { return h.port == q })
				if !taken && anyPortFree(q) {
					p = q
					break
				}
			}
			if p == 0 {
				return nil, false, fmt.Errorf("no free port from %d up for %s", c.From, c.Key)
			}
		}
		explicit[p] = true
		out[c.Key] = PortGrant{Port: p}
		now = append(now, portHolder{p, host, c.Key, true})
	}
	changed := !sameHolders(now, idx.holders[d.Name])
	if write && changed {
		if err := writeClaims(memo, root, idx, d.Name, now, nil); err != nil {
			return nil, false, err
		}
	}
	return out, changed, nil
}

// ChangePorts is ClaimPorts for a change of a namespace's claims named by
// their ports (a Listener's): the claims under the keys in drop are
// released and those in add claimed, the others left as they are, with
// no need to list them all. It grants what ClaimPorts would, and writes
// what changed of the namespace's lines; false when a claim names no port
// (ClaimPorts chooses those).
func (d Dir) ChangePorts(memo *PortMemo, drop []string, add []PortClaim) (map[string]PortGrant, bool, bool, error) {
	if slices.ContainsFunc(add, func(c PortClaim) bool { return c.Port <= 0 }) {
		return nil, false, false, nil
	}
	if len(drop) == 0 && len(add) == 0 {
		return map[string]PortGrant{}, false, true, nil
	}
	root := filepath.Dir(d.Path)
	unlock, err := memo.lock(root)
	if err != nil {
		return nil, false, false, err
	}
	defer unlock()
	memo.Here(d)
	idx, err := readClaims(memo, memo, root)
	if err != nil {
		return nil, false, false, err
	}
	mgmtByPort, err := d.ManagementPorts(memo)
	if err != nil {
		return nil, false, false, err
	}
	dropped := make(map[string]bool, len(drop))
	for _, k := range drop {
		dropped[k] = true
	}
	mine := idx.holders[d.Name]
	now := make([]portHolder, 0, len(mine)+len(add))
	for _, h := range mine {
		if !dropped[h.key] {
			now = append(now, h)
		}
	}
	out := map[string]PortGrant{}
	touched := slices.Clone(drop)
	for _, c := range add {
		touched = append(touched, c.Key)
		host := c.Host
		if wildHost(host) {
			host = "*"
		}
		if by := idx.heldBy(mgmtByPort, d.Name, host, c.Port); by != "" {
			out[c.Key] = PortGrant{HeldBy: by}
			continue
		}
		out[c.Key] = PortGrant{Port: c.Port}
		// in the order of the keys, as a pass lists the claims
		at := slices.IndexFunc(now, func(h portHolder) bool { return h.key > c.Key })
		if at < 0 {
			at = len(now)
		}
		now = slices.Insert(now, at, portHolder{c.Port, host, c.Key, false})
	}
	if err := writeClaims(memo, root, idx, d.Name, now, touched); err != nil {
		return nil, false, false, err
	}
	return out, true, true, nil
}

// ReleasePorts records that namespace directory d is gone and takes its
// lines out of the claims registry: its ports are free, and a directory
// made again under its name starts holding none (its next pass claims
// what its input names), as a new process reading the registry sees it.
// It tells whether the namespace held any.
func (d Dir) ReleasePorts(memo *PortMemo) (bool, error) {
	root := filepath.Dir(d.Path)
	unlock, err := memo.lock(root)
	if err != nil {
		return false, err
	}
	defer unlock()
	memo.Gone(d)
	idx, err := readClaims(memo, memo, root)
	if err != nil {
		return false, err
	}
	if len(idx.holders[d.Name]) == 0 {
		return false, nil
	}
	if err := writeClaims(memo, root, idx, d.Name, nil, nil); err != nil {
		return false, err
	}
	return true, nil
}

// sameHolders tells whether two namespaces' lines hold the same, in any
// order.
func sameHolders(a, b []portHolder) bool {
	if len(a) != len(b) {
		return false
	}
	order := func(x, y portHolder) int {
		return cmp.Or(strings.Compare(x.key, y.key), x.port-y.port, strings.Compare(x.host, y.host))
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, order)
	slices.SortFunc(b, order)
	return slices.Equal(a, b)
}

// readClaims returns the claims registry, both files, by namespace (those
// gone included: heldBy looks whether a holder exists). index, when not
// nil, keeps it between calls (only under the registry's lock, which
// every change of it is made under); memo tells which namespaces exist.
func readClaims(index, memo *PortMemo, root string) (*claimsIndex, error) {
	paths := [2]string{filepath.Join(root, claimsFile), filepath.Join(root, chosenFile)}
	keys := registryKeys(root)
	if idx := index.claims(keys); idx != nil {
		return idx, nil
	}
	idx := &claimsIndex{keys: keys, holders: map[string][]portHolder{}, byPort: map[int][]heldPort{},
		exists: func(ns string) bool { return memo.exists(root, ns) }}
	for i, chosen := range []bool{false, true} {
		held, err := readClaimsFile(index, paths[i], chosen)
		if err != nil {
			return nil, err
		}
		for ns, hs := range held {
			idx.holders[ns] = append(idx.holders[ns], hs...)
			for _, h := range hs {
				idx.byPort[h.port] = append(idx.byPort[h.port], heldPort{ns, h})
			}
		}
	}
	index.keepClaims(idx)
	return idx, nil
}

// wildHost tells whether a bind address is every address.
func wildHost(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" || h == "*" }

// heldBy says which other namespace than ns, of those that exist, holds
// port on an address that overlaps host (a line of the registry, or its
// management port), the first by name; "" when none does.
func (idx *claimsIndex) heldBy(mgmtByPort map[int]string, ns, host string, port int) string {
	var by []string
	for _, h := range idx.byPort[port] {
		if h.ns != ns && (h.host == host || wildHost(h.host) || wildHost(host)) && idx.exists(h.ns) {
			by = append(by, fmt.Sprintf("namespace %s (%s)", h.ns, h.key))
		}
	}
	if other, ok := mgmtByPort[port]; ok && other != ns && (host == "127.0.0.1" || wildHost(host)) {
		by = append(by, fmt.Sprintf("namespace %s (its local management port)", other))
	}
	if len(by) == 0 {
		return ""
	}
	return slices.Min(by)
}

// replace makes namespace ns's lines now in the index: those of the keys
// in touched (every key when nil) looked at.
func (idx *claimsIndex) replace(ns string, now []portHolder, touched []string) {
	was := idx.holders[ns]
	if touched != nil {
		keys := make(map[string]bool, len(touched))
		for _, k := range touched {
			keys[k] = true
		}
		of := func(hs []portHolder) []portHolder {
			var out []portHolder
			for _, h := range hs {
				if keys[h.key] {
					out = append(out, h)
				}
			}
			return out
		}
		idx.lines(ns, of(was), of(now))
	} else {
		idx.lines(ns, was, now)
	}
	if len(now) == 0 {
		delete(idx.holders, ns)
	} else {
		idx.holders[ns] = now
	}
}

// lines takes namespace ns's lines was out of the index by port, and puts
// now in.
func (idx *claimsIndex) lines(ns string, was, now []portHolder) {
	for _, h := range was {
		held := slices.DeleteFunc(idx.byPort[h.port], func(x heldPort) bool { return x.ns == ns && x.key == h.key })
		if len(held) == 0 {
			delete(idx.byPort, h.port)
		} else {
			idx.byPort[h.port] = held
		}
	}
	for _, h := range now {
		idx.byPort[h.port] = append(idx.byPort[h.port], heldPort{ns, h})
	}
}

// claimsIndex is the registry: every namespace's lines (of those gone too
// until the files are written whole again), and every line by port.
type claimsIndex struct {
	keys    [2]fileKey // of the registry's files as read or written
	holders map[string][]portHolder
	byPort  map[int][]heldPort
	exists  func(ns string) bool
}

// heldPort is a line of the registry: a port a namespace holds.
type heldPort struct {
	ns string
	portHolder
}

// A registry file is a journal: a line "port host namespace resource"
// gives the resource its port (in place of the one it had), a line
// "- namespace resource" takes it away. A change appends what changed;
// past twice the lines it holds (and 64) the file is written whole again,
// without the namespaces that are gone. A last line without its newline
// (a write cut short) is left out, and the next write writes it whole.

// readClaimsFile returns one file of the registry by namespace (as this
// process last read or wrote it, when it is unchanged since).
func readClaimsFile(memo *PortMemo, path string, chosen bool) (map[string][]portHolder, error) {
	if held, ok := memo.get(path); ok {
		return held, nil
	}
	key, keyed := fileKeyOf(path)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]portHolder{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the port registry: %w", err)
	}
	w := parseClaims(data, chosen)
	if keyed && key != (fileKey{}) {
		// kept as read until the file changes
		memo.keep(path, key, w)
	}
	return maps.Clone(w.holders), nil
}

// parseClaims reads a registry file's journal.
func parseClaims(data []byte, chosen bool) writtenClaims {
	w := writtenClaims{holders: map[string][]portHolder{}, clean: len(data) == 0 || data[len(data)-1] == '\n'}
	text := string(data)
	if !w.clean {
		text = text[:strings.LastIndexByte(text, '\n')+1] // the cut line left out
	}
	at := map[[2]string]int{} // a line's place among its namespace's, by namespace and key
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		w.lines++
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "-":
			if i, ok := at[[2]string{f[1], f[2]}]; ok {
				w.holders[f[1]][i].port = 0 // left out below
				delete(at, [2]string{f[1], f[2]})
			}
		case len(f) == 4:
			p, err := strconv.Atoi(f[0])
			if err != nil || p < 1 || p > 65535 {
				continue
			}
			h := portHolder{p, f[1], f[3], chosen}
			if i, ok := at[[2]string{f[2], h.key}]; ok {
				w.holders[f[2]][i] = h
			} else {
				at[[2]string{f[2], h.key}] = len(w.holders[f[2]])
				w.holders[f[2]] = append(w.holders[f[2]], h)
			}
		}
	}
	for ns, hs := range w.holders {
		if hs = slices.DeleteFunc(hs, func(h portHolder) bool { return h.port == 0 }); len(hs) == 0 {
			delete(w.holders, ns)
		} else {
			w.holders[ns] = hs
		}
	}
	for _, hs := range w.holders {
		w.live += len(hs)
	}
	return w
}

// writeClaims records namespace ns's lines now in the registry's files and
// in idx: it appends to each file the lines of ns that changed (those of
// the keys in touched, every key when touched is nil), or writes the file
// whole when this process does not know it as it is, or it grew past
// twice its lines. The chosen ports' file is flushed to disk, the named
// ones' not.
func writeClaims(memo *PortMemo, root string, idx *claimsIndex, ns string, now []portHolder, touched []string) error {
	for _, f := range []struct {
		name, header string
		chosen       bool
	}{
		{claimsFile, "# ports the namespaces' Listeners and RouterAccesses name: port host namespace resource; - namespace resource: released", false},
		{chosenFile, "# ports the controller chose for RouterAccess roles: port host namespace resource; - namespace resource: released", true},
	} {
		path := filepath.Join(root, f.name)
		of := func(hs []portHolder) []portHolder {
			switch {
			case !slices.ContainsFunc(hs, func(h portHolder) bool { return h.chosen == f.chosen }):
				return nil
			case !slices.ContainsFunc(hs, func(h portHolder) bool { return h.chosen != f.chosen }):
				return hs // lines are replaced, never changed in place
			}
			return slices.DeleteFunc(slices.Clone(hs), func(h portHolder) bool { return h.chosen != f.chosen })
		}
		mine := of(now)
		prev, known := memo.written(path)
		var was []portHolder
		if known {
			was = prev.holders[ns]
		} else {
			was = of(idx.holders[ns])
		}
		journal := changedLines(ns, was, mine, touched)
		if len(journal) == 0 {
			continue // the file says this already
		}
		next := writtenClaims{holders: map[string][]portHolder{}, clean: true}
		if known {
			next.holders = maps.Clone(prev.holders)
		} else {
			for other, hs := range idx.holders {
				if hs := of(hs); len(hs) > 0 {
					next.holders[other] = hs
				}
			}
		}
		if len(mine) == 0 {
			delete(next.holders, ns)
		} else {
			next.holders[ns] = mine
		}
		next.live = prev.live - len(was) + len(mine)
		next.lines = prev.lines + bytes.Count(journal, []byte{'\n'})
		var err error
		if known && prev.clean && next.lines <= 2*next.live+64 {
			err = fileio.Tree{}.Append(path, journal, f.chosen)
		} else {
			next.lines, next.live = 0, 0
			data := []byte(f.header + "\n")
			for _, other := range slices.Sorted(maps.Keys(next.holders)) {
				if !idx.exists(other) {
					delete(next.holders, other) // a namespace gone: its ports are free
					continue
				}
				for _, h := range next.holders[other] {
					data = appendClaim(data, other, h)
					next.lines++
					next.live++
				}
			}
			err = fileio.Replace(path, data, 0o644, 0o755, f.chosen)
		}
		if err != nil {
			memo.forget(path)
			memo.keepClaims(nil)
			return fmt.Errorf("recording the port registry: %w", err)
		}
		memo.put(path, next)
	}
	idx.replace(ns, now, touched)
	idx.keys = registryKeys(root)
	memo.keepClaims(idx)
	return nil
}

// registryKeys are the keys of the registry's files (a file that is not
// there has the zero key); none when one cannot be looked at, or neither
// is there.
func registryKeys(root string) [2]fileKey {
	var keys [2]fileKey
	for i, name := range [2]string{claimsFile, chosenFile} {
		k, there := fileKeyOf(filepath.Join(root, name))
		if there && k == (fileKey{}) {
			return [2]fileKey{} // cannot be looked at: read every time
		}
		keys[i] = k
	}
	return keys
}

// changedLines is the journal of namespace ns's lines from was to now,
// looking at the keys in touched (every key when nil): a line for each
// port given or moved, "- ns key" for each taken away, by key.
func changedLines(ns string, was, now []portHolder, touched []string) []byte {
	if touched == nil {
		for _, h := range was {
			touched = append(touched, h.key)
		}
		for _, h := range now {
			touched = append(touched, h.key)
		}
	}
	slices.Sort(touched)
	touched = slices.Compact(touched)
	lookup := func(hs []portHolder) func(string) (portHolder, bool) {
		if len(touched) <= 8 { // a patch's few: no index
			return func(key string) (portHolder, bool) {
				if i := slices.IndexFunc(hs, func(h portHolder) bool { return h.key == key }); i >= 0 {
					return hs[i], true
				}
				return portHolder{}, false
			}
		}
		m := make(map[string]portHolder, len(hs))
		for _, h := range hs {
			m[h.key] = h
		}
		return func(key string) (portHolder, bool) { h, ok := m[key]; return h, ok }
	}
	inWas, inNow := lookup(was), lookup(now)
	var b []byte
	for _, key := range touched {
		old, had := inWas(key)
		h, has := inNow(key)
		switch {
		case has && (!had || old != h):
			b = appendClaim(b, ns, h)
		case had && !has:
			b = append(b, "- "+ns+" "+key+"\n"...)
		}
	}
	return b
}

// appendClaim appends the registry's line of namespace ns's holder h.
func appendClaim(b []byte, ns string, h portHolder) []byte {
	b = strconv.AppendInt(b, int64(h.port), 10)
	b = append(b, ' ')
	b = append(b, h.host...)
	b = append(b, ' ')
	b = append(b, ns...)
	b = append(b, ' ')
	b = append(b, h.key...)
	return append(b, '\n')
}

// PortMemo keeps the port registry's files as a controller last wrote
// them, with their stat then: a pass of a large data home (thousands of
// ports) reads and parses a file again only when someone else changed it,
// and appends only the lines that changed (the files are journals). Only one
// controller writes a data home's registry (its lock), and every write of
// it goes through its memo. A nil *PortMemo keeps nothing: the files are
// read every time.
//
// It also keeps which namespace directories exist, each looked at once and
// then told by the passes (Here: a namespace's own pass; Gone: the pass
// that found it removed), and the management port reservations as last
// read or written: a pass looks at no other namespace's directory.
type PortMemo struct {
	// registry is held with the registry's file lock (lock)
	registry sync.Mutex
	mu       sync.Mutex
	byPath   map[string]writtenClaims
	// there is, by namespace directory, whether it exists; version
	// counts its changes
	there    map[string]bool
	version  int
	reserved map[string]reservedPorts
	index    *claimsIndex
}

// lock takes the registry's lock under root: the file's, which other
// processes take too, and within this process the memo's (what the memo
// keeps of the registry is read and changed under it, and the race
// detector knows nothing of file locks).
func (c *PortMemo) lock(root string) (func(), error) {
	if c != nil {
		c.registry.Lock()
	}
	unlock, err := fileio.Lock(filepath.Join(root, ".ports.lock"))
	if err != nil {
		if c != nil {
			c.registry.Unlock()
		}
		return nil, err
	}
	return func() {
		unlock()
		if c != nil {
			c.registry.Unlock()
		}
	}, nil
}

// claims returns the registry as last indexed, when its files are as
// they were (keys).
func (c *PortMemo) claims(keys [2]fileKey) *claimsIndex {
	if c == nil || keys == ([2]fileKey{}) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.index == nil || c.index.keys != keys {
		return nil
	}
	return c.index
}

// keepClaims records the registry as indexed (nil: unknown).
func (c *PortMemo) keepClaims(idx *claimsIndex) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if idx != nil && idx.keys == ([2]fileKey{}) {
		idx = nil
	}
	c.index = idx
}

// reservedPorts is the management port registry as read or written.
type reservedPorts struct {
	key   fileKey
	ports map[string]int // by namespace, those gone included
	// lines is how many the file has; clean that the last is whole
	lines int
	clean bool
	// of the namespaces that exist as of version: by namespace, by port
	version int
	byNS    map[string]int
	byPort  map[int]string
}

// Here records that namespace directory d exists (its pass runs).
func (c *PortMemo) Here(d Dir) { c.tell(d, true) }

// Gone records that namespace directory d is gone: the ports it held are
// free.
func (c *PortMemo) Gone(d Dir) { c.tell(d, false) }

func (c *PortMemo) tell(d Dir, there bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(filepath.Clean(d.Path), there)
}

// set records whether the namespace directory at path exists (c.mu held).
func (c *PortMemo) set(path string, there bool) {
	if c.there == nil {
		c.there = map[string]bool{}
	}
	if was, ok := c.there[path]; !ok || was != there {
		c.there[path] = there
		c.version++
		// the reservations of the namespaces that exist follow
		root, ns := filepath.Dir(path), filepath.Base(path)
		for reg, r := range c.reserved {
			if r.version != c.version-1 || r.byNS == nil || filepath.Dir(reg) != root {
				continue
			}
			r.version = c.version
			if p, held := r.ports[ns]; held && (r.byNS[ns] == p) != there {
				r.byNS, r.byPort = maps.Clone(r.byNS), nil // shared: replaced, never changed
				if there {
					r.byNS[ns] = p
				} else {
					delete(r.byNS, ns)
				}
			}
			c.reserved[reg] = r
		}
	}
}

// exists tells whether namespace ns's directory under root exists: as
// told, or looked at once.
func (c *PortMemo) exists(root, ns string) bool {
	path := filepath.Join(root, ns)
	if c != nil {
		c.mu.Lock()
		there, ok := c.there[path]
		c.mu.Unlock()
		if ok {
			return there
		}
	}
	st, err := os.Stat(path)
	there := err == nil && st.IsDir()
	if c != nil {
		c.mu.Lock()
		if _, told := c.there[path]; !told {
			c.set(path, there)
		}
		c.mu.Unlock()
	}
	return there
}

// reservations returns the management port registry at path as last read
// or written, when nobody changed it since.
func (c *PortMemo) reservations(path string) (map[string]int, bool) {
	r, ok := c.reservedFile(path)
	return r.ports, ok // replaced, never changed in place
}

// reservedFile is the management port registry at path as last read or
// written, when nobody changed it since.
func (c *PortMemo) reservedFile(path string) (reservedPorts, bool) {
	key, ok := c.keyOf(path)
	if !ok {
		return reservedPorts{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.reserved[path]
	if !ok || r.key != key {
		return reservedPorts{}, false
	}
	return r, true
}

// reservedByNS returns the reservations of the namespaces that exist, as
// last worked out, when neither the registry at path nor what is known of
// the namespaces changed since.
func (c *PortMemo) reservedByNS(path string) (map[string]int, bool) {
	r, ok := c.current(path)
	return r.byNS, ok && r.byNS != nil
}

// reservedByPort is reservedByNS by port.
func (c *PortMemo) reservedByPort(path string) (map[int]string, bool) {
	r, ok := c.current(path)
	return r.byPort, ok && r.byPort != nil
}

func (c *PortMemo) current(path string) (reservedPorts, bool) {
	key, ok := c.keyOf(path)
	if !ok {
		return reservedPorts{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.reserved[path]
	return r, ok && r.key == key && r.version == c.version
}

// keepByNS records the reservations of the namespaces that exist, as
// worked out when what was known of them was version: nothing when a
// namespace came or went since.
func (c *PortMemo) keepByNS(path string, byNS map[string]int, version int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.reserved[path]; ok && c.version == version {
		r.version, r.byNS, r.byPort = c.version, byNS, nil
		c.reserved[path] = r
	}
}

// versionNow is the version of what is known of the namespaces.
func (c *PortMemo) versionNow() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// keepByPort records the same by port.
func (c *PortMemo) keepByPort(path string, byPort map[int]string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.reserved[path]; ok && r.version == c.version {
		r.byPort = byPort
		c.reserved[path] = r
	}
}

// putReservations records the registry at path as read or written (nil:
// unknown).
func (c *PortMemo) putReservations(path string, ports map[string]int, lines int, clean bool) {
	if c == nil {
		return
	}
	key, ok := fileKeyOf(path)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reserved == nil {
		c.reserved = map[string]reservedPorts{}
	}
	if !ok || ports == nil {
		delete(c.reserved, path)
		return
	}
	c.reserved[path] = reservedPorts{key: key, ports: ports, lines: lines, clean: clean}
}

// writtenClaims is one file of the registry as this process last read or
// wrote it: its lines by namespace (of namespaces gone too).
type writtenClaims struct {
	key     fileKey
	holders map[string][]portHolder
	// lines is how many the file has, live how many of them hold a port
	// now; clean that its last line is whole
	lines, live int
	clean       bool
}

// get returns the lines of the registry file at path, by namespace, when
// the file is as this process wrote it.
func (c *PortMemo) get(path string) (map[string][]portHolder, bool) {
	w, ok := c.written(path)
	if !ok {
		return nil, false
	}
	return maps.Clone(w.holders), true // lines are replaced, never changed in place
}

// written returns the file at path as this process wrote it, when nobody
// changed it since.
func (c *PortMemo) written(path string) (writtenClaims, bool) {
	key, ok := c.keyOf(path)
	if !ok {
		return writtenClaims{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.byPath[path]
	if !ok || w.key != key {
		return writtenClaims{}, false
	}
	return w, true
}

func (c *PortMemo) put(path string, w writtenClaims) {
	if c == nil {
		return
	}
	key, ok := fileKeyOf(path)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byPath == nil {
		c.byPath = map[string]writtenClaims{}
	}
	if !ok {
		delete(c.byPath, path)
		return
	}
	w.key = key
	c.byPath[path] = w
}

// keyOf is the key of the file at path, when there is a memo and a file.
func (c *PortMemo) keyOf(path string) (fileKey, bool) {
	if c == nil {
		return fileKey{}, false
	}
	key, ok := fileKeyOf(path)
	return key, ok && key != (fileKey{})
}

// keep records the file at path as read when its key was key.
func (c *PortMemo) keep(path string, key fileKey, w writtenClaims) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byPath == nil {
		c.byPath = map[string]writtenClaims{}
	}
	w.key = key
	c.byPath[path] = w
}

func (c *PortMemo) forget(path string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.byPath, path)
	c.mu.Unlock()
}

// anyPortFree tells whether nothing listens on the port on any address.
func anyPortFree(p int) bool {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
