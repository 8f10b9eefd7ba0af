package hosttest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// SlowPath is a slow, narrow path between two hosts: new TCP connections
// from one host to a port of another are sent (by a DNAT rule in the
// first host's namespace) through a userspace relay on a bare host of the
// switch, which delays each direction by Latency and paces it to Rate.
// The hosts see their own addresses (TLS names stay right); connections
// made before the path was laid keep the direct one.
type SlowPath struct {
	Latency time.Duration // added to each direction (the round trip gets twice it)
	Rate    int64         // bits per second, each direction

	from     *Host
	l        net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

// queueChunks is how many reads of at most chunkSize bytes wait in one
// direction of the relay: with 4 KiB chunks, 64 KiB (half a second at
// 1 Mbit/s), a router's queue rather than an endless one.
const (
	queueChunks = 16
	chunkSize   = 4 << 10
)

// SlowPath lays a slow path from host from to port of host to, through a
// relay on the bare host relay (AddRelay), until the test ends or Close.
func (n *Network) SlowPath(t testing.TB, relay, from, to *Host, port int, latency time.Duration, rate int64) *SlowPath {
	t.Helper()
	l, err := relay.Listen(relay.Addr + ":0")
	if err != nil {
		t.Fatalf("slow path: %v", err)
	}
	s := &SlowPath{Latency: latency, Rate: rate, from: from, l: l, conns: map[net.Conn]bool{}}
	t.Cleanup(s.Close)
	rport := l.Addr().(*net.TCPAddr).Port
	rules := fmt.Sprintf(`add table ip hosttest-slow
add chain ip hosttest-slow output { type nat hook output priority -100; policy accept; }
add rule ip hosttest-slow output ip daddr %s tcp dport %d dnat to %s:%d
`, to.Addr, port, relay.Addr, rport)
	if err := from.Nft(rules); err != nil {
		t.Fatalf("slow path: %v", err)
	}
	target := net.JoinHostPort(to.Addr, strconv.Itoa(port))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.relay(relay, c, target) }()
		}
	}()
	return s
}

// Accepted is how many connections the relay took.
func (s *SlowPath) Accepted() int64 { return s.accepted.Load() }

// Close removes the path (the DNAT rule; connections through the relay
// end) and waits for the relay to stop.
func (s *SlowPath) Close() {
	s.from.Nft("add table ip hosttest-slow\ndelete table ip hosttest-slow\n")
	s.l.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.conns = nil // what the relay accepts from now on is closed at once
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *SlowPath) track(cs ...net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		return false
	}
	for _, c := range cs {
		s.conns[c] = true
	}
	return true
}

func (s *SlowPath) untrack(cs ...net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		delete(s.conns, c)
		c.Close()
	}
}

// relay carries one connection to target, shaped both ways.
func (s *SlowPath) relay(relay *Host, in net.Conn, target string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	out, err := relay.Dial(ctx, target)
	cancel()
	if err != nil {
		in.Close()
		return
	}
	if !s.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	defer s.untrack(in, out)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.shape(out, in) }()
	go func() { defer wg.Done(); s.shape(in, out) }()
	wg.Wait()
}

// shape copies src to dst as a link of the path's rate and latency would:
// each read occupies the wire for its length at Rate after the previous
// one left it, and arrives Latency later. At most queueChunks reads wait;
// beyond that src is not read (the sender's window fills). On src's end
// dst is half-closed; on an error both end.
func (s *SlowPath) shape(dst, src net.Conn) {
	type chunk struct {
		data []byte
		due  time.Time
	}
	queue := make(chan chunk, queueChunks)
	go func() {
		defer close(queue)
		var free time.Time // when the wire is free again
		for {
			buf := make([]byte, chunkSize)
			n, err := src.Read(buf)
			if n > 0 {
				start := time.Now()
				if free.After(start) {
					start = free
				}
				free = start.Add(time.Duration(float64(n) * 8 / float64(s.Rate) * float64(time.Second)))
				queue <- chunk{buf[:n], free.Add(s.Latency)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range queue {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.data); err != nil {
			src.Close()
			dst.Close()
			for range queue {
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}
