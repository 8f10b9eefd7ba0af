package hosttest

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// Serve runs handle on every connection to addr (IP literal and port; port
// 0 chooses one) in the host's namespace until the test ends, and returns
// the port.
func (h *Host) Serve(t testing.TB, addr string, handle func(net.Conn)) int {
	t.Helper()
	l, err := h.Listen(addr)
	if err != nil {
		t.Fatalf("host %s: %v", h.Name, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// EchoServer serves an echo on every address of the host (127.0.0.1 for
// its Connectors, its switch address for direct connections) until the
// test ends, and returns its port.
func (h *Host) EchoServer(t testing.TB) int {
	t.Helper()
	return h.Serve(t, "0.0.0.0:0", func(c net.Conn) { io.Copy(c, c) })
}

// Ping makes one new connection from the host to addr and expects a
// line echoed, within ctx.
func (h *Host) Ping(ctx context.Context, addr string) error {
	c, err := h.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	msg := "ping " + addr + "\n"
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// RoundTrip pings addr from the host, on a new connection each try (each
// bounded by try), until one is answered or ctx ends; it returns when the
// answered try started.
func (h *Host) RoundTrip(ctx context.Context, addr string, try time.Duration) (time.Time, error) {
	var last error
	for ctx.Err() == nil {
		at := time.Now()
		pctx, cancel := context.WithTimeout(ctx, try)
		last = h.Ping(pctx, addr)
		cancel()
		if last == nil {
			return at, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return time.Time{}, fmt.Errorf("host %s to %s: %w (last try: %v)", h.Name, addr, ctx.Err(), last)
}

// Loopback is 127.0.0.1:port, where a host's Listeners and Connectors are.
func Loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// SinkServer counts what each connection sends and, at its end (the
// sender's half-close), answers with the count as 8 bytes: the far end of
// a throughput measurement. It listens on every address of the host.
func (h *Host) SinkServer(t testing.TB) int {
	t.Helper()
	return h.Serve(t, "0.0.0.0:0", func(c net.Conn) {
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			return
		}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(n))
		c.Write(b[:])
	})
}

// Send sends size bytes from the host to a SinkServer at addr, on a new
// connection, and returns when the sink said it had them all.
func (h *Host) Send(ctx context.Context, addr string, size int64) error {
	c, err := h.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	buf := make([]byte, 64<<10)
	for sent := int64(0); sent < size; {
		n := min(int64(len(buf)), size-sent)
		if _, err := c.Write(buf[:n]); err != nil {
			return fmt.Errorf("sending: %w", err)
		}
		sent += n
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("half-closing: %w", err)
	}
	var b [8]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("reading the sink's count: %w", err)
	}
	if got := int64(binary.BigEndian.Uint64(b[:])); got != size {
		return fmt.Errorf("the sink got %d bytes of %d", got, size)
	}
	return nil
}
