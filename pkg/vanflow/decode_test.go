package vanflow

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	amqp "github.com/Azure/go-amqp"
)

// readCapture reads the messages TestCapture recorded, in order.
func readCapture(t *testing.T) (names []string, msgs []*amqp.Message) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "capture", "*.amqp"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captured messages in testdata/capture (go test -run TestCapture -update): %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m amqp.Message
		if err := m.UnmarshalBinary(data); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		names = append(names, filepath.Base(f))
		msgs = append(msgs, &m)
	}
	return names, msgs
}

// format writes a decoded message as text, one record a line.
func format(m Message) string {
	var b strings.Builder
	switch m.Subject {
	case SubjectBeacon:
		fmt.Fprintf(&b, "BEACON to=%s v=%d id=%s type=%s address=%s direct=%s\n", m.To, m.Version, m.ID, m.SourceType, m.Address, m.Direct)
	case SubjectHeartbeat:
		fmt.Fprintf(&b, "HEARTBEAT to=%s v=%d id=%s now>0=%v\n", m.To, m.Version, m.ID, m.Now > 0)
	case SubjectFlush:
		fmt.Fprintf(&b, "FLUSH to=%s\n", m.To)
	case SubjectRecord:
		fmt.Fprintf(&b, "RECORD to=%s\n", m.To)
		for _, r := range m.Records {
			fmt.Fprintf(&b, "  %s\n", r.Format())
		}
	}
	return b.String()
}

// TestDecodeCaptured: every message captured from the real router
// decodes, and reads as testdata/capture.golden says.
func TestDecodeCaptured(t *testing.T) {
	names, msgs := readCapture(t)
	var out bytes.Buffer
	for i, am := range msgs {
		m, err := Decode(am)
		if err != nil {
			t.Errorf("%s: %v", names[i], err)
			continue
		}
		fmt.Fprintf(&out, "# %s\n%s", names[i], format(m))
	}
	golden := filepath.Join("testdata", "capture.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("decoded capture differs from %s (go test -run TestDecodeCaptured -update):\n%s", golden, out.String())
	}
}

// TestCapturedRecords: what the real router says of the captured network
// (east and west linked, north an edge of east, listener hello in east,
// its connector in west, connections between them), with every record
// merged by id as a reader keeps them.
func TestCapturedRecords(t *testing.T) {
	_, msgs := readCapture(t)
	recs := map[string]Record{}
	ended := map[string]Record{}
	for _, am := range msgs {
		m, err := Decode(am)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Records {
			if old, ok := recs[r.ID]; ok {
				r = old.Merge(r)
			}
			if r.Ended() {
				delete(recs, r.ID)
				ended[r.ID] = r
				continue
			}
			recs[r.ID] = r
		}
	}
	find := func(typ RecordType, pred func(Record) bool) (Record, bool) {
		for _, r := range recs {
			if r.Type == typ && pred(r) {
				return r, true
			}
		}
		return Record{}, false
	}
	const eastID, westID, northID = "e0e0e0e0-1111-4222-8333-444444444444", "0a0a0a0a-5555-4666-8777-888888888888", "d0d0d0d0-9999-4aaa-8bbb-cccccccccccc"
	routerOf := func(siteID string) string {
		r, _ := find(Router, func(r Record) bool { return r.String(AttrParent) == siteID })
		return r.ID
	}
	accessOf := func(routerID, role string) string {
		r, _ := find(RouterAccess, func(r Record) bool { return r.String(AttrParent) == routerID && r.String(AttrRole) == role })
		return r.ID
	}
	for _, c := range []struct {
		what string
		typ  RecordType
		pred func(Record) bool
	}{
		{"east's site, by its site id", Site, func(r Record) bool {
			return r.ID == eastID && r.String(AttrName) == "east-e0e0e0e0" && r.String(AttrPlatform) == "linux" && r.String(AttrNamespace) == "east" && r.String(AttrBuildVersion) == "test"
		}},
		{"west's site", Site, func(r Record) bool { return r.ID == westID && r.String(AttrName) == "west-0a0a0a0a" }},
		{"east's router: interior, its parent the site, the router's version", Router, func(r Record) bool {
			return r.String(AttrParent) == eastID && r.String(AttrMode) == "interior" && r.String(AttrName) == "0/east-e0e0e0e0" && r.String(AttrBuildVersion) == "3.5.1"
		}},
		{"north's router is an edge", Router, func(r Record) bool { return r.String(AttrParent) == northID && r.String(AttrMode) == "edge" }},
		{"east's inter-router access has a link", RouterAccess, func(r Record) bool {
			n, _ := r.Uint(AttrLinkCount)
			return r.ID == accessOf(routerOf(eastID), "inter-router") && n == 1
		}},
		{"west's link to east's inter-router access, up", Link, func(r Record) bool {
			return r.String(AttrParent) == routerOf(westID) && r.String(AttrName) != "" && r.String(AttrRole) == "inter-router" &&
				r.String(AttrOperStatus) == "up" && r.String(AttrPeer) == accessOf(routerOf(eastID), "inter-router")
		}},
		{"north's edge link to east's edge access, up", Link, func(r Record) bool {
			return r.String(AttrParent) == routerOf(northID) && r.String(AttrRole) == "edge" && r.String(AttrOperStatus) == "up" &&
				r.String(AttrPeer) == accessOf(routerOf(eastID), "edge")
		}},
		{"east's listener for hello", Listener, func(r Record) bool {
			return r.String(AttrParent) == routerOf(eastID) && r.String(AttrAddress) == "hello" && r.String(AttrName) == "listener/hello" && r.String(AttrProtocol) == "tcp"
		}},
		{"west's connector for hello", Connector, func(r Record) bool {
			return r.String(AttrParent) == routerOf(westID) && r.String(AttrAddress) == "hello" && r.String(AttrName) == "connector/hello@127.0.0.1" && r.String(AttrDestHost) == "127.0.0.1"
		}},
		{"an open connection through east's listener to west's connector, 10000 bytes each way", TransportBiflow, func(r Record) bool {
			l, _ := find(Listener, func(l Record) bool { return l.String(AttrAddress) == "hello" })
			c, _ := find(Connector, func(c Record) bool { return c.String(AttrAddress) == "hello" })
			in, _ := r.Uint(AttrOctets)
			out, _ := r.Uint(AttrOctetsReverse)
			return r.String(AttrParent) == l.ID && r.String(AttrConnector) == c.ID && in == 10000 && out == 10000
		}},
	} {
		if _, ok := find(c.typ, c.pred); !ok {
			t.Errorf("no record: %s", c.what)
		}
	}
	var closed bool
	for _, r := range ended {
		in, _ := r.Uint(AttrOctets)
		closed = closed || r.Type == TransportBiflow && in > 0
	}
	if !closed {
		t.Error("no connection that ended: the round trip's flow should end with an end time")
	}
}

// TestEncodeRoundTrip: every captured message encodes to one that decodes
// the same, through the AMQP encoding.
func TestEncodeRoundTrip(t *testing.T) {
	names, msgs := readCapture(t)
	msgs = append(msgs, nil)
	names = append(names, "a controller's beacon")
	for i, am := range msgs {
		var m Message
		if am == nil {
			m = Message{Subject: SubjectBeacon, To: BeaconAddress, Version: 1, ID: "x", SourceType: SourceController, Address: SourceAddress("x"), Direct: DirectAddress("x")}
		} else {
			var err error
			if m, err = Decode(am); err != nil {
				t.Fatal(err)
			}
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("%s: %v", names[i], err)
		}
		data, err := enc.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", names[i], err)
		}
		var back amqp.Message
		if err := back.UnmarshalBinary(data); err != nil {
			t.Fatalf("%s: %v", names[i], err)
		}
		got, err := Decode(&back)
		if err != nil {
			t.Fatalf("%s: %v", names[i], err)
		}
		if format(got) != format(m) {
			t.Errorf("%s: round trip\n%s\nwant\n%s", names[i], format(got), format(m))
		}
	}
}

// TestDecodeErrors: what is not a vanflow message says why.
func TestDecodeErrors(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, c := range []struct {
		name string
		msg  *amqp.Message
		want string
	}{
		{"no properties", &amqp.Message{}, "without a subject"},
		{"unknown subject", &amqp.Message{Properties: &amqp.MessageProperties{Subject: s("HELLO")}}, `unknown vanflow subject "HELLO"`},
		{"beacon without id", &amqp.Message{Properties: &amqp.MessageProperties{Subject: s("BEACON")}, ApplicationProperties: map[string]any{"v": uint32(1)}}, "BEACON without a source id"},
		{"record body not a list", &amqp.Message{Properties: &amqp.MessageProperties{Subject: s("RECORD")}, Value: "x"}, "RECORD body is string"},
		{"record not a map", &amqp.Message{Properties: &amqp.MessageProperties{Subject: s("RECORD")}, Value: []any{"x"}}, "RECORD 0: record is string"},
		{"record without type", &amqp.Message{Properties: &amqp.MessageProperties{Subject: s("RECORD")}, Value: []any{map[any]any{uint32(1): "a"}}}, "record without a type"},
		{"record without id", &amqp.Message{Properties: &amqp.MessageProperties{Subject: s("RECORD")}, Value: []any{map[any]any{uint32(0): uint32(4)}}}, "LISTENER record without an identity"},
	} {
		_, err := Decode(c.msg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}
