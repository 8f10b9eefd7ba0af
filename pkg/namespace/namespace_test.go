package namespace

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/site-controller/site-controller/pkg/fileio"
)

// made opens namespace name under home and makes its directory: writes
// below a namespace never make it.
func made(t *testing.T, home, name string) Dir {
	t.Helper()
	d, err := Open(home, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d.InputResources(), 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSiteIDIsStableAndAdopted(t *testing.T) {
	home := t.TempDir()
	a := made(t, home, "a")
	id, err := a.SiteID(func() string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 36 || id[14] != '4' {
		t.Errorf("site id %q is not a version 4 UUID", id)
	}
	again, _ := a.SiteID(func() string { return "ignored" })
	if again != id {
		t.Errorf("site id changed from %s to %s", id, again)
	}
	b := made(t, home, "b")
	if got, _ := b.SiteID(func() string { return "from-skupper" }); got != "from-skupper" {
		t.Errorf("adopted id = %q", got)
	}
}

func TestManagementPortsAreReservedPerNamespace(t *testing.T) {
	home := t.TempDir()
	// something else holds the first port: it must be skipped
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	start := busy.Addr().(*net.TCPAddr).Port
	const n = 16
	ports := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := made(t, home, "ns"+strconv.Itoa(i))
			ports[i], errs[i] = d.ManagementPort(nil, func() int { return 0 }, start, nil)
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for i, p := range ports {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if p == start {
			t.Errorf("ns%d got the busy port %d", i, p)
		}
		if seen[p] {
			t.Errorf("port %d reserved twice", p)
		}
		seen[p] = true
	}
	// stable, and an adoption of a taken port is refused
	d0 := made(t, home, "ns0")
	if p, _ := d0.ManagementPort(nil, func() int { return 1 }, start, nil); p != ports[0] {
		t.Errorf("ns0 port moved from %d to %d", ports[0], p)
	}
	late := made(t, home, "late")
	if p, _ := late.ManagementPort(nil, func() int { return ports[3] }, start, nil); p == ports[3] {
		t.Errorf("adopted port %d that ns3 holds", p)
	}
	other := made(t, home, "other")
	if p, _ := other.ManagementPort(nil, func() int { return 40999 }, start, nil); p != 40999 {
		t.Errorf("free adopted port not kept: %d", p)
	}
}

func TestPlatform(t *testing.T) {
	d := made(t, t.TempDir(), "p")
	if p, err := d.Platform(); p != "" || err != nil {
		t.Errorf("no platform file: %q %v", p, err)
	}
	if err := d.SetPlatform("linux"); err != nil {
		t.Fatal(err)
	}
	if p, err := d.Platform(); p != "linux" || err != nil {
		t.Errorf("platform = %q %v", p, err)
	}
	os.WriteFile(filepath.Join(d.Internal(), "platform.yaml"), []byte("platform: kubernetes\n"), 0o644)
	if _, err := d.Platform(); err == nil || !strings.Contains(err.Error(), `platform "kubernetes" is not one of podman, docker, linux`) {
		t.Errorf("bad platform: %v", err)
	}
}

func TestFileNames(t *testing.T) {
	for name, want := range map[string]bool{
		"site.yaml": true, "a.yml": true, "b.JSON": true, "notes.txt": false,
		".site.yaml": false, "site.yaml~": false, ".site.yaml.swp": false, "4913": false,
		".#site.yaml": false, "..data": false,
	} {
		if got := IsResourceFile(name); got != want {
			t.Errorf("IsResourceFile(%q) = %v", name, got)
		}
	}
	if _, err := Open(t.TempDir(), "Bad_Name"); err == nil {
		t.Error("invalid namespace name accepted")
	}
}

func TestRecordPlatformNeverOverrides(t *testing.T) {
	d := made(t, t.TempDir(), "p")
	if err := d.RecordPlatform("docker"); err != nil {
		t.Fatal(err)
	}
	if err := d.RecordPlatform("podman"); err != nil {
		t.Fatal(err)
	}
	if p, _ := d.Platform(); p != "docker" {
		t.Errorf("platform %q, want the first one recorded", p)
	}
	entries, _ := os.ReadDir(d.Internal())
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestReservationsAreReleasedWithTheirNamespace(t *testing.T) {
	home := t.TempDir()
	start := 41000
	a := made(t, home, "a")
	b := made(t, home, "b")
	pa, _ := a.ManagementPort(nil, func() int { return 0 }, start, nil)
	pb, _ := b.ManagementPort(nil, func() int { return 0 }, start, nil)
	if pa == pb {
		t.Fatalf("a and b share port %d", pa)
	}
	// the registry survives the loss of a namespace's own file
	os.Remove(filepath.Join(b.Internal(), "management-port"))
	if p, _ := b.ManagementPort(nil, func() int { return 0 }, start, nil); p != pb {
		t.Errorf("b's port moved from %d to %d", pb, p)
	}
	// a removed namespace's port is free again
	os.RemoveAll(a.Path)
	c := made(t, home, "c")
	if p, _ := c.ManagementPort(nil, func() int { return 0 }, start, nil); p != pa {
		t.Errorf("c got %d, want a's released %d", p, pa)
	}
	// without the registry it is rebuilt from the namespaces' files
	os.Remove(filepath.Join(Root(home), ".management-ports"))
	d := made(t, home, "d")
	if p, _ := d.ManagementPort(nil, func() int { return 0 }, start, nil); p == pb || p == pa {
		t.Errorf("d got a reserved port %d", p)
	}
}

// TestManagementPortAvoidsListeners: a new reservation skips the ports the
// namespace's own Listeners bind; Peek says the same without reserving.
func TestManagementPortAvoidsListeners(t *testing.T) {
	home := t.TempDir()
	d := made(t, home, "ns")
	os.MkdirAll(d.Path, 0o755)
	start := 41100
	avoid := map[int]bool{start: true}
	peeked, err := d.PeekManagementPort(func() int { return 0 }, start, avoid)
	if err != nil || peeked == start || peeked < start {
		t.Fatalf("peeked %d %v", peeked, err)
	}
	if _, err := os.Stat(d.Internal()); !os.IsNotExist(err) {
		t.Error("Peek wrote")
	}
	if p, err := d.ManagementPort(nil, func() int { return 0 }, start, avoid); err != nil || p != peeked {
		t.Errorf("reserved %d %v, peeked %d", p, err, peeked)
	}
}

// TestClaimPorts: ports without a number are chosen once and kept; two
// namespaces never get the same one; a named port another namespace holds
// on an overlapping address is refused with the holder (on another
// address it is granted); a claim that goes, or a namespace that goes,
// frees its ports; a read-only claim writes nothing.
func TestClaimPorts(t *testing.T) {
	home := t.TempDir()
	dirs := map[string]Dir{}
	for _, name := range []string{"a", "b"} {
		d, err := Open(home, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(d.InputResources(), 0o755); err != nil {
			t.Fatal(err)
		}
		dirs[name] = d
	}
	// a port from 47100 up that something else listens on is skipped
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	from := busy.Addr().(*net.TCPAddr).Port
	auto := []PortClaim{{Key: "RouterAccess/x/inter-router", From: from}}
	ga, _, err := dirs["a"].ClaimPorts(testPorts, auto, true)
	if err != nil {
		t.Fatal(err)
	}
	pa := ga["RouterAccess/x/inter-router"].Port
	if pa == 0 || pa == from {
		t.Fatalf("a got port %d (from %d, which is in use)", pa, from)
	}
	gb, _, _ := dirs["b"].ClaimPorts(testPorts, auto, true)
	if pb := gb["RouterAccess/x/inter-router"].Port; pb == 0 || pb == pa {
		t.Fatalf("b got %d, a has %d", pb, pa)
	}
	if again, _, _ := dirs["a"].ClaimPorts(testPorts, auto, true); again["RouterAccess/x/inter-router"].Port != pa {
		t.Errorf("a's port moved from %d to %+v", pa, again)
	}
	// named ports: b's Listener on a's port is refused on every address
	// and on a's own; granted on another address when a's is specific
	named := []PortClaim{
		{Key: "Listener/l1", Host: "0.0.0.0", Port: pa},
		{Key: "Listener/l2", Host: "127.0.0.1", Port: 47001},
	}
	if _, _, err := dirs["a"].ClaimPorts(testPorts, append(auto, PortClaim{Key: "Listener/mine", Host: "127.0.0.2", Port: 47001}), true); err != nil {
		t.Fatal(err)
	}
	g, _, _ := dirs["b"].ClaimPorts(testPorts, named, false)
	if by := g["Listener/l1"].HeldBy; by != "namespace a (RouterAccess/x/inter-router)" {
		t.Errorf("l1 held by %q", by)
	}
	if g["Listener/l2"].Port != 47001 || g["Listener/l2"].HeldBy != "" {
		t.Errorf("l2 on another address: %+v", g["Listener/l2"])
	}
	before, _ := os.ReadFile(filepath.Join(Root(home), ".ports"))
	if strings.Contains(string(before), "Listener/l2") {
		t.Error("a read-only claim was recorded")
	}
	// a's RouterAccess goes: b may take its port
	if _, _, err := dirs["a"].ClaimPorts(testPorts, nil, true); err != nil {
		t.Fatal(err)
	}
	if g, _, _ := dirs["b"].ClaimPorts(testPorts, named, true); g["Listener/l1"].Port != pa {
		t.Errorf("a released port is still refused: %+v", g)
	}
	// b's namespace goes: its ports are free for a, looked at anew
	// without a memo, and with one once the pass that finds b removed
	// says so
	os.RemoveAll(dirs["b"].Path)
	if g, _, _ := dirs["a"].ClaimPorts(nil, []PortClaim{{Key: "Listener/l", Port: pa}}, false); g["Listener/l"].Port != pa {
		t.Errorf("the port of a namespace that is gone is still held: %+v", g)
	}
	if held, err := dirs["b"].ReleasePorts(testPorts); err != nil || !held {
		t.Fatalf("releasing b's ports: held %v, %v", held, err)
	}
	if g, _, _ := dirs["a"].ClaimPorts(testPorts, []PortClaim{{Key: "Listener/l", Port: pa}}, true); g["Listener/l"].Port != pa {
		t.Errorf("the port of a namespace that is gone is still held: %+v", g)
	}
	// b made again under its name holds nothing of the b that went, in
	// this process nor in a new one that reads the registry
	if err := os.MkdirAll(dirs["b"].InputResources(), 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(Root(home), claimsFile))
	if held := parseClaims(data, false).holders["b"]; len(held) > 0 {
		t.Errorf("the registry still gives b, gone, %v:\n%s", held, data)
	}
	if g, _, _ := dirs["a"].ClaimPorts(nil, []PortClaim{{Key: "Listener/l", Port: pa}}, false); g["Listener/l"].Port != pa {
		t.Errorf("a new process finds the port held by the namespace made again: %+v", g)
	}
	if held, err := dirs["b"].ReleasePorts(testPorts); err != nil || held {
		t.Errorf("releasing b's ports again: held %v, %v", held, err)
	}
}

// TestClaimsRegistryEditedByHand: the registry this process wrote is kept
// in memory, but a registry changed by anything else is read again.
func TestClaimsRegistryEditedByHand(t *testing.T) {
	home := t.TempDir()
	a := made(t, home, "a")
	b := made(t, home, "b")
	for _, d := range []Dir{a, b} {
		if err := os.MkdirAll(d.InputResources(), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	claim := []PortClaim{{Key: "Listener/l", Host: "127.0.0.1", Port: 40123}}
	if g, _, err := a.ClaimPorts(testPorts, claim, true); err != nil || g["Listener/l"].Port != 40123 {
		t.Fatalf("a: %v %v", g, err)
	}
	// someone gives the port to b by hand (a new file: another inode)
	registry := filepath.Join(Root(home), claimsFile)
	tmp := registry + ".edit"
	if err := os.WriteFile(tmp, []byte("40123 127.0.0.1 b Listener/m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, registry); err != nil {
		t.Fatal(err)
	}
	g, _, err := a.ClaimPorts(testPorts, claim, false)
	if err != nil {
		t.Fatal(err)
	}
	if g["Listener/l"].HeldBy == "" {
		t.Fatalf("the registry edited by hand was not read: %v", g)
	}
}

// TestChosenPortsKeptApart: the ports the controller chose are in a file
// of their own, which a change of named ports does not rewrite, and which
// keeps them when the named ports' file is lost (a crash before it reached
// the disk): the next claim gets the same port.
func TestChosenPortsKeptApart(t *testing.T) {
	home := t.TempDir()
	a := made(t, home, "a")
	os.MkdirAll(a.Path, 0o755)
	claims := func(listener int) []PortClaim {
		return []PortClaim{{Key: "RouterAccess/x/inter-router", From: 46100}, {Key: "Listener/l", Host: "127.0.0.1", Port: listener}}
	}
	g, _, err := a.ClaimPorts(testPorts, claims(47100), true)
	if err != nil {
		t.Fatal(err)
	}
	chosen := g["RouterAccess/x/inter-router"].Port
	named, _ := os.ReadFile(filepath.Join(Root(home), ".ports"))
	kept, _ := os.ReadFile(filepath.Join(Root(home), ".ports-chosen"))
	if !strings.Contains(string(named), "47100 127.0.0.1 a Listener/l\n") || strings.Contains(string(named), "RouterAccess/x") {
		t.Errorf(".ports:\n%s", named)
	}
	if !strings.Contains(string(kept), fmt.Sprintf("%d * a RouterAccess/x/inter-router\n", chosen)) || strings.Contains(string(kept), "Listener/l") {
		t.Errorf(".ports-chosen:\n%s", kept)
	}
	before, _ := os.Stat(filepath.Join(Root(home), ".ports-chosen"))
	if _, _, err := a.ClaimPorts(testPorts, claims(47101), true); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(filepath.Join(Root(home), ".ports-chosen"))
	if !os.SameFile(before, after) {
		t.Error("a named port's change replaced the chosen ports' file")
	}
	os.Remove(filepath.Join(Root(home), ".ports"))
	if g, _, _ := a.ClaimPorts(testPorts, claims(47101), true); g["RouterAccess/x/inter-router"].Port != chosen {
		t.Errorf("without .ports the chosen port moved from %d: %+v", chosen, g)
	}
}

// testPorts is the port registry's memo of this test process, as a
// controller keeps one.
var testPorts = &PortMemo{}

// TestChangePorts: claims changed by their keys (ChangePorts) grant what
// ClaimPorts grants with every claim listed, and leave the registry as it
// would: the same file, byte for byte.
func TestChangePorts(t *testing.T) {
	homes := [2]string{t.TempDir(), t.TempDir()}
	var dirs [2]map[string]Dir
	memos := [2]*PortMemo{{}, {}}
	for i, home := range homes {
		dirs[i] = map[string]Dir{"a": made(t, home, "a"), "b": made(t, home, "b")}
		// b holds 47010 on every address
		if _, _, err := dirs[i]["b"].ClaimPorts(memos[i], []PortClaim{{Key: "Listener/b", Host: "0.0.0.0", Port: 47010}}, true); err != nil {
			t.Fatal(err)
		}
	}
	claims := map[string]PortClaim{}
	list := func() []PortClaim { // as a pass lists them: by key
		var out []PortClaim
		for _, k := range slices.Sorted(maps.Keys(claims)) {
			out = append(out, claims[k])
		}
		return out
	}
	for step, change := range []struct {
		drop []string
		add  []PortClaim
	}{
		{nil, []PortClaim{{Key: "Listener/x", Host: "127.0.0.1", Port: 47001}, {Key: "Listener/y", Host: "0.0.0.0", Port: 47002}}},
		{[]string{"Listener/x"}, []PortClaim{{Key: "Listener/x", Host: "127.0.0.1", Port: 47003}}},
		{nil, []PortClaim{{Key: "Listener/z", Host: "127.0.0.1", Port: 47010}}}, // b's
		{[]string{"Listener/y", "Listener/z"}, nil},
		{nil, []PortClaim{{Key: "Listener/w", Host: "::", Port: 47004}}},
	} {
		for _, k := range change.drop {
			delete(claims, k)
		}
		for _, c := range change.add {
			claims[c.Key] = c
		}
		changed, changedOK, ok, err := dirs[0]["a"].ChangePorts(memos[0], change.drop, change.add)
		if err != nil || !ok || !changedOK {
			t.Fatalf("step %d: ChangePorts: %v (taken %v)", step, err, ok)
		}
		all, _, err := dirs[1]["a"].ClaimPorts(memos[1], list(), true)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range change.add {
			if changed[c.Key] != all[c.Key] {
				t.Errorf("step %d: %s granted %+v, ClaimPorts grants %+v", step, c.Key, changed[c.Key], all[c.Key])
			}
		}
		got, _ := os.ReadFile(filepath.Join(Root(homes[0]), claimsFile))
		want, _ := os.ReadFile(filepath.Join(Root(homes[1]), claimsFile))
		if string(got) != string(want) {
			t.Errorf("step %d: the registry says\n%s\nwant\n%s", step, got, want)
		}
	}
	// the same process, another namespace: what a holds now is held, what
	// it let go is free (the index kept after the write, not read again)
	g, _, err := dirs[0]["b"].ClaimPorts(memos[0], []PortClaim{{Key: "Listener/b", Host: "0.0.0.0", Port: 47010},
		{Key: "Listener/q", Host: "127.0.0.1", Port: 47003}, {Key: "Listener/r", Host: "127.0.0.1", Port: 47001}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if g["Listener/q"].HeldBy == "" || g["Listener/r"].Port != 47001 {
		t.Errorf("b is granted %+v: 47003 is a's, 47001 free", g)
	}
	if _, _, ok, _ := dirs[0]["a"].ChangePorts(memos[0], nil, []PortClaim{{Key: "RouterAccess/r/edge", From: 45671}}); ok {
		t.Error("a claim without a port was taken")
	}
}

// TestRegistryJournal: a change of one namespace's ports appends its
// lines to the registry (the same file, a few bytes longer); a new
// process reads the journal as the writer knew it; a journal past twice
// its lines is written whole again, without the namespaces that are gone;
// a cut last line is left out and the next write writes the file whole.
func TestRegistryJournal(t *testing.T) {
	home := t.TempDir()
	memo := &PortMemo{}
	a, b := made(t, home, "a"), made(t, home, "b")
	for _, d := range []Dir{a, b} {
		if err := os.MkdirAll(d.InputResources(), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	registry := filepath.Join(Root(home), claimsFile)
	var claims []PortClaim
	for i := range 50 {
		claims = append(claims, PortClaim{Key: fmt.Sprintf("Listener/l%02d", i), Host: "127.0.0.1", Port: 47200 + i})
	}
	if _, _, err := a.ClaimPorts(memo, claims, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.ClaimPorts(memo, []PortClaim{{Key: "Listener/b", Host: "0.0.0.0", Port: 47300}}, true); err != nil {
		t.Fatal(err)
	}
	// kept between passes, with no chosen ports' file: not read again
	kept := memo.index
	if kept == nil {
		t.Fatal("the registry's index was not kept")
	}
	before, _ := os.Stat(registry)
	// one port moves, one goes
	claims[3].Port = 47253
	if _, _, err := a.ClaimPorts(memo, slices.Delete(slices.Clone(claims), 7, 8), true); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(registry)
	data, _ := os.ReadFile(registry)
	if !os.SameFile(before, after) || !strings.HasSuffix(string(data), "47253 127.0.0.1 a Listener/l03\n- a Listener/l07\n") {
		t.Fatalf("a change was not appended (same file %v):\n%s", os.SameFile(before, after), data[max(0, len(data)-200):])
	}
	if memo.index != kept {
		t.Error("the registry's index was built again after a change")
	}
	// a new process reads it as this one knows it
	fresh := func() *claimsIndex {
		idx, err := readClaims(nil, nil, Root(home))
		if err != nil {
			t.Fatal(err)
		}
		return idx
	}
	idx := fresh()
	if got := idx.heldBy(nil, "b", "127.0.0.1", 47253); got != "namespace a (Listener/l03)" {
		t.Errorf("47253 held by %q", got)
	}
	if got := idx.heldBy(nil, "b", "127.0.0.1", 47203); got != "" {
		t.Errorf("47203, which a let go, held by %q", got)
	}
	if got := idx.heldBy(nil, "b", "127.0.0.1", 47207); got != "" {
		t.Errorf("47207, released, held by %q", got)
	}
	if len(idx.holders["a"]) != 49 || len(idx.holders["b"]) != 1 {
		t.Errorf("read again: a %d lines, b %d", len(idx.holders["a"]), len(idx.holders["b"]))
	}
	// b goes; many changes later the file is written whole, without b
	os.RemoveAll(b.Path)
	memo.Gone(b)
	for i := range 200 {
		claims[0].Port = 47400 + i
		if _, _, err := a.ClaimPorts(memo, claims, true); err != nil {
			t.Fatal(err)
		}
	}
	data, _ = os.ReadFile(registry)
	if lines := strings.Count(string(data), "\n"); lines > 2*50+64+1 {
		t.Errorf("the journal has %d lines for 50 ports", lines)
	}
	if strings.Contains(string(data), " b ") {
		t.Errorf("b, gone, is still in the registry after it was written whole:\n%s", data)
	}
	if got := fresh().holders["a"]; len(got) != 50 || !slices.ContainsFunc(got, func(h portHolder) bool { return h.key == "Listener/l00" && h.port == 47599 }) {
		t.Errorf("read again after the rewrites: %v", got)
	}
	// a write cut short: the cut line is left out, the next write is whole
	if err := os.WriteFile(registry, append(data, "47999 127.0.0.1 a Listener/l0"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := fresh().holders["a"]; len(got) != 50 || slices.ContainsFunc(got, func(h portHolder) bool { return h.port == 47999 }) {
		t.Errorf("with a cut line: %v", got)
	}
	claims[1].Port = 47998
	memo = &PortMemo{} // a new process (the crash)
	if _, _, err := a.ClaimPorts(memo, claims, true); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(registry)
	if strings.Contains(string(data), "47999") || !strings.HasPrefix(string(data), "#") || !strings.Contains(string(data), "47998 127.0.0.1 a Listener/l01\n") {
		t.Errorf("after a cut line the registry is:\n%s", data)
	}
}

// TestReservationsJournal: a new management port reservation appends a
// line; a new process reads the last line of each namespace; a cut last
// line is left out and the next reservation writes the file whole.
func TestReservationsJournal(t *testing.T) {
	home := t.TempDir()
	memo := &PortMemo{}
	path := filepath.Join(Root(home), reservationsFile)
	var dirs []Dir
	for i := range 5 {
		d := made(t, home, fmt.Sprintf("ns%d", i))
		if err := os.MkdirAll(d.Path, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	ports := map[string]int{}
	var first os.FileInfo
	for i, d := range dirs {
		p, err := d.ManagementPort(memo, func() int { return 0 }, 41300, nil)
		if err != nil {
			t.Fatal(err)
		}
		ports[d.Name] = p
		st, _ := os.Stat(path)
		if i == 0 {
			first = st
		} else if !os.SameFile(first, st) {
			t.Errorf("reservation %d replaced the registry", i)
		}
	}
	data, _ := os.ReadFile(path)
	raw, lines, clean := parseReservations(data)
	if !maps.Equal(raw, ports) || lines != 5 || !clean {
		t.Errorf("read again: %v (%d lines, whole %v), want %v", raw, lines, clean, ports)
	}
	if err := os.WriteFile(path, append(data, "4"...), 0o644); err != nil {
		t.Fatal(err)
	}
	d := made(t, home, "late")
	if err := os.MkdirAll(d.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	memo = &PortMemo{} // a new process (the crash)
	p, err := d.ManagementPort(memo, func() int { return 0 }, 41300, nil)
	if err != nil {
		t.Fatal(err)
	}
	ports["late"] = p
	data, _ = os.ReadFile(path)
	if raw, _, clean := parseReservations(data); !maps.Equal(raw, ports) || !clean || !strings.HasPrefix(string(data), "#") {
		t.Errorf("after a cut line: %v, want %v:\n%s", raw, ports, data)
	}
}

// TestManagementPortLineFlushed: a reservation appended to the registry
// reaches the disk (one flush of the registry) before the namespace's own
// file is written (two more: the file and its directory), and both hold
// the port.
func TestManagementPortLineFlushed(t *testing.T) {
	home := t.TempDir()
	memo := &PortMemo{}
	start := 41500
	first := made(t, home, "first")
	if _, err := first.ManagementPort(memo, func() int { return 0 }, start, nil); err != nil {
		t.Fatal(err)
	}
	// the memo knows the registry now: the next reservation appends
	second := made(t, home, "second")
	before := fileio.Flushes()
	port, err := second.ManagementPort(memo, func() int { return 0 }, start, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fileio.Flushes() - before; got != 3 {
		t.Errorf("an appended reservation made %d flushes, want 3 (the registry, the file, its directory)", got)
	}
	data, err := os.ReadFile(filepath.Join(home, "namespaces", ".management-ports"))
	if err != nil || !strings.Contains(string(data), strconv.Itoa(port)+" second\n") {
		t.Errorf("the registry holds %q (%v), not the line of second's port %d", data, err, port)
	}
	if p, ok := second.ReservedManagementPort(); !ok || p != port {
		t.Errorf("second's own file holds %d %v, want %d", p, ok, port)
	}
}
