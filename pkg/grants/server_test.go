package grants

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/site-controller/site-controller/pkg/certs"
)

// testServer runs a grant server on 127.0.0.1 with its state in dir.
func testServer(t *testing.T, dir string, now func() time.Time) *Server {
	t.Helper()
	s, err := New(Options{Addr: "127.0.0.1:0", Dir: dir, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// counter is a grant's durable count, as the controller keeps it.
type counter struct {
	mu sync.Mutex
	n  int
	// fail makes Record fail
	fail bool
}

func (c *counter) record(n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return errors.New("disk full")
	}
	c.n = n
	return nil
}

func grant(id string, allowed int, expires time.Time, c *counter) Grant {
	return Grant{Namespace: "ns", Name: "g", ID: id, Code: "the-right-code", Expires: expires, Allowed: allowed,
		Redemptions: c.n, Record: c.record,
		Issue: func(name, subject string) ([]byte, error) {
			return []byte("---\nkind: Secret # for " + name + " " + subject + "\n"), nil
		}}
}

// TestRedemptions: the right code gets the answer, with the headers passed
// to Issue; a wrong code 403; an unknown grant 404; an expired grant 404;
// used-up redemptions 404; an oversized body is refused; GET is refused;
// a failure to record the redemption answers nothing.
func TestRedemptions(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := testServer(t, t.TempDir(), clock)
	c := &counter{}
	s.Put(grant("abc", 2, now.Add(time.Hour), c))
	ctx := context.Background()

	answer, err := Redeem(ctx, s.URL("abc"), "the-right-code", s.CA(), "my-link", "site-b")
	if err != nil || !bytes.Contains(answer, []byte("for my-link site-b")) {
		t.Fatalf("right code: %q %v", answer, err)
	}
	if c.n != 1 {
		t.Errorf("recorded %d redemptions, want 1", c.n)
	}
	for _, tc := range []struct {
		what     string
		url      string
		code     string
		wantCode int
	}{
		{"wrong code", s.URL("abc"), "wrong", http.StatusForbidden},
		{"unknown grant", s.URL("nosuch"), "the-right-code", http.StatusNotFound},
	} {
		_, err := Redeem(ctx, tc.url, tc.code, s.CA(), "l", "s")
		var r *Refused
		if !errors.As(err, &r) || r.Code != tc.wantCode {
			t.Errorf("%s: %v, want refused %d", tc.what, err, tc.wantCode)
		}
	}
	// the second and last redemption, then used up
	if _, err := Redeem(ctx, s.URL("abc"), "the-right-code", s.CA(), "l", "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := Redeem(ctx, s.URL("abc"), "the-right-code", s.CA(), "l", "s"); !IsRefused(err) || !strings.Contains(err.Error(), "404") {
		t.Errorf("used up: %v", err)
	}
	// expired
	s.Put(grant("old", 5, now.Add(-time.Second), &counter{}))
	if _, err := Redeem(ctx, s.URL("old"), "the-right-code", s.CA(), "l", "s"); !IsRefused(err) || !strings.Contains(err.Error(), "404") {
		t.Errorf("expired: %v", err)
	}
	// an oversized body
	big := strings.Repeat("x", maxBody+1)
	s.Put(grant("big", 5, now.Add(time.Hour), &counter{}))
	if _, err := Redeem(ctx, s.URL("big"), big, s.CA(), "l", "s"); err == nil || IsRefused(err) || !strings.Contains(err.Error(), "413") {
		t.Errorf("oversized body: %v", err)
	}
	// a redemption that cannot be recorded is not answered
	failing := &counter{fail: true}
	s.Put(grant("disk", 5, now.Add(time.Hour), failing))
	if _, err := Redeem(ctx, s.URL("disk"), "the-right-code", s.CA(), "l", "s"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("unrecorded redemption: %v", err)
	}
	if n, _ := s.Redemptions("disk"); n != 0 {
		t.Errorf("an unrecorded redemption counted: %d", n)
	}
	// a certificate the token's CA did not sign
	other := testServer(t, t.TempDir(), clock)
	if _, err := Redeem(ctx, s.URL("abc"), "the-right-code", other.CA(), "l", "s"); err == nil || IsRefused(err) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a server the token's CA did not sign: %v", err)
	}
	// only POST
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(s.CA()))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(s.URL("abc"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET answered %d", resp.StatusCode)
	}
}

// TestConcurrentRedemptionsNeverExceed: 40 redeemers at once on a grant of
// 5 get 5 answers, and the count recorded is 5.
func TestConcurrentRedemptionsNeverExceed(t *testing.T) {
	s := testServer(t, t.TempDir(), nil)
	c := &counter{}
	s.Put(grant("many", 5, time.Now().Add(time.Hour), c))
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Redeem(context.Background(), s.URL("many"), "the-right-code", s.CA(), "l", "s"); err == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 || c.n != 5 {
		t.Errorf("%d redemptions answered, %d recorded; want 5 and 5", ok.Load(), c.n)
	}
}

// TestRestartKeepsCAAndCounts: a new server on the same directory has the
// same CA (tokens issued before still verify it), and a grant put back
// with its recorded count stays used up; a pass that put a stale count
// does not undo a redemption.
func TestRestartKeepsCAAndCounts(t *testing.T) {
	dir := t.TempDir()
	c := &counter{}
	first := testServer(t, dir, nil)
	first.Put(grant("once", 1, time.Now().Add(time.Hour), c))
	if _, err := Redeem(context.Background(), first.URL("once"), "the-right-code", first.CA(), "l", "s"); err != nil {
		t.Fatal(err)
	}
	// a stale put (count 0) keeps the count served
	stale := grant("once", 1, time.Now().Add(time.Hour), &counter{})
	first.Put(stale)
	if n, _ := first.Redemptions("once"); n != 1 {
		t.Errorf("a stale put reset the count to %d", n)
	}
	second := testServer(t, dir, nil)
	if second.CA() != first.CA() {
		t.Error("the grant server's CA changed across a restart")
	}
	second.Put(grant("once", 1, time.Now().Add(time.Hour), c)) // the recorded count: 1
	if _, err := Redeem(context.Background(), second.URL("once"), "the-right-code", first.CA(), "l", "s"); !IsRefused(err) {
		t.Errorf("a grant used up before the restart: %v", err)
	}
}

// BenchmarkRedemption measures the grant server's throughput: redemptions
// over TLS (a new connection each, as redeemers make them), each issuing
// a client certificate from a CA, as the controller's Issue does. Run with
// -cpu 1 for one core; redemptions/s is reported.
func BenchmarkRedemption(b *testing.B) {
	s, err := New(Options{Addr: "127.0.0.1:0", Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx)
	ca, _, err := certs.NewCA("bench-ca", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	c := &counter{}
	g := grant("bench", 1<<30, time.Now().Add(time.Hour), c)
	g.Issue = func(name, subject string) ([]byte, error) {
		f, err := ca.Issue(certs.Leaf{CommonName: subject, Client: true}, time.Now())
		return f.Cert, err
	}
	s.Put(g)
	start := time.Now()
	for b.Loop() {
		if _, err := Redeem(ctx, s.URL("bench"), "the-right-code", s.CA(), "l", "s"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.n)/time.Since(start).Seconds(), "redemptions/s")
}
