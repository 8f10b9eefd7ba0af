package vanflow

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/live"
)

var update = flag.Bool("update", false, "capture vanflow messages from the real router into testdata/capture, and rewrite the golden files")

// TestCapture (with -update) records what the real router sends: two
// sites' routers linked (east listens for the link, west makes it), an
// edge site's (north) with a link to east, a
// tcpListener for "hello" in east, its tcpConnector in west to an echo
// server, and a few connections through them; every message a subscriber
// on east's management listener receives — beacons, then each source's
// records (after a FLUSH), flows and heartbeats — is written to
// testdata/capture as the AMQP message it was, in the order it came.
func TestCapture(t *testing.T) {
	if !*update {
		t.Skip("captures only with -update")
	}
	echo := routertest.EchoServer(t, nil)
	listen := routertest.FreePort(t)
	east := &routertest.Site{Name: "east", ID: "e0e0e0e0-1111-4222-8333-444444444444", InterRouter: routertest.FreePort(t),
		Listeners: map[string]int{"hello": listen}}
	routertest.StartSite(t, east)
	west := &routertest.Site{Name: "west", ID: "0a0a0a0a-5555-4666-8777-888888888888", Links: []int{east.InterRouter},
		Connectors: map[string]int{"hello": echo}}
	routertest.StartSite(t, west)
	north := &routertest.Site{Name: "north", ID: "d0d0d0d0-9999-4aaa-8bbb-cccccccccccc", Edge: true, Links: []int{east.InterRouter}}
	routertest.StartSite(t, north)

	cfg, err := live.ManagementTLS(east.Dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := amqp.Dial(ctx, "amqps://127.0.0.1:"+strconv.Itoa(east.Management), &amqp.ConnOptions{TLSConfig: cfg, SASLType: amqp.SASLTypeExternal("")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		msg  *amqp.Message
		data []byte
	}
	var mu sync.Mutex
	var all []got
	subscribe := func(addr string) {
		r, err := sess.NewReceiver(ctx, addr, &amqp.ReceiverOptions{Credit: 256})
		if err != nil {
			t.Errorf("receiver %s: %v", addr, err)
			return
		}
		go func() {
			for {
				m, err := r.Receive(ctx, nil)
				if err != nil {
					return
				}
				r.AcceptMessage(ctx, m)
				data, err := m.MarshalBinary()
				if err != nil {
					t.Errorf("marshal: %v", err)
					return
				}
				mu.Lock()
				all = append(all, got{m, data})
				mu.Unlock()
			}
		}()
	}
	subscribe(BeaconAddress)
	anon, err := sess.NewSender(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(sources) < 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		var beacons []Message
		for _, g := range all {
			if m, err := Decode(g.msg); err == nil && m.Subject == SubjectBeacon && !sources[m.ID] {
				beacons = append(beacons, m)
				sources[m.ID] = true
			}
		}
		mu.Unlock()
		for _, b := range beacons {
			subscribe(b.Address)
			subscribe(b.Address + FlowsSuffix)
			subscribe(b.Address + HeartbeatsSuffix)
			flush, _ := Message{Subject: SubjectFlush, To: b.Direct}.Encode()
			if err := anon.Send(ctx, flush, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(sources) < 3 {
		t.Fatalf("beacons from %d sources in 30 s, want 3", len(sources))
	}
	if err := routertest.RoundTrip(ctx, listen, nil); err != nil {
		t.Fatal(err)
	}
	// a connection that stays open, with bytes both ways
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(listen)))
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 10000)
	c.Write(payload)
	io.ReadFull(c, payload)
	time.Sleep(5 * time.Second)
	c.Close()
	time.Sleep(3 * time.Second)

	dir := filepath.Join("testdata", "capture")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, g := range all {
		subject := "NONE"
		if g.msg.Properties != nil && g.msg.Properties.Subject != nil {
			subject = *g.msg.Properties.Subject
		}
		name := filepath.Join(dir, fmt.Sprintf("%03d-%s.amqp", i, subject))
		if err := os.WriteFile(name, g.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("captured %d messages from %d sources", len(all), len(sources))
}
