package grants

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// clock is a settable clock for the server's Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// post posts code to url as a redeemer does, trusting caPEM, and returns
// the status, the Retry-After header and the body.
func post(t *testing.T, url, code, caPEM string) (int, string, string) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(caPEM))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	resp, err := client.Post(url, "text/plain", strings.NewReader(code))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), strings.TrimSpace(string(body))
}

// TestCodeCheckedFirst: nothing about a grant is told before its code is
// right: an unknown grant answers 404, a known one with a wrong code 403
// whether it is live, expired or used up, and only the right code learns
// that it expired or is used up.
func TestCodeCheckedFirst(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := testServer(t, t.TempDir(), func() time.Time { return now })
	s.Put(grant("live", 1, now.Add(time.Hour), &counter{}))
	s.Put(grant("expired", 1, now.Add(-time.Second), &counter{}))
	s.Put(grant("used", 1, now.Add(time.Hour), &counter{n: 1}))
	for _, tc := range []struct {
		id, code string
		want     int
		body     string
	}{
		{"nosuch", "the-right-code", http.StatusNotFound, "No such claim"},
		{"nosuch", "wrong", http.StatusNotFound, "No such claim"},
		{"live", "wrong", http.StatusForbidden, "Redemption of access token refused"},
		{"expired", "wrong", http.StatusForbidden, "Redemption of access token refused"},
		{"used", "wrong", http.StatusForbidden, "Redemption of access token refused"},
		{"used", "the-right-code-and-more", http.StatusForbidden, "Redemption of access token refused"},
		{"used", "", http.StatusForbidden, "Redemption of access token refused"},
		{"expired", "the-right-code", http.StatusNotFound, "This access grant has expired"},
		{"used", "the-right-code", http.StatusNotFound, "This access grant's redemptions are used up"},
	} {
		code, _, body := post(t, s.URL(tc.id), tc.code, s.CA())
		if code != tc.want || body != tc.body {
			t.Errorf("grant %s, code %q: %d %q, want %d %q", tc.id, tc.code, code, body, tc.want, tc.body)
		}
	}
}

// TestWrongCodesClose: ten wrong codes within a minute close the grant
// for a minute: 429 with Retry-After, even to the right code, which the
// redeemer takes as worth a retry (not a refusal); other grants answer
// as ever; a minute later the right code redeems. Wrong codes spread over
// more than a minute do not close it.
func TestWrongCodesClose(t *testing.T) {
	c := &clock{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	s := testServer(t, t.TempDir(), c.Now)
	s.Put(grant("g", 5, c.Now().Add(time.Hour), &counter{}))
	s.Put(grant("other", 5, c.Now().Add(time.Hour), &counter{}))
	s.Put(grant("slow", 5, c.Now().Add(time.Hour), &counter{}))
	for i := range 10 {
		if code, _, _ := post(t, s.URL("g"), fmt.Sprintf("wrong-%d", i), s.CA()); code != http.StatusForbidden {
			t.Fatalf("wrong code %d: %d, want 403", i+1, code)
		}
		c.advance(time.Second)
	}
	// closed since the 10th, 1 s ago
	for _, tc := range []struct {
		what       string
		after      time.Duration
		code       string
		want       int
		retryAfter string
	}{
		{"a wrong code", 0, "wrong", http.StatusTooManyRequests, "59"},
		{"the right code", 0, "the-right-code", http.StatusTooManyRequests, "59"},
		{"the right code, later", 29500 * time.Millisecond, "the-right-code", http.StatusTooManyRequests, "30"},
		{"the right code, a minute after", 29500 * time.Millisecond, "the-right-code", http.StatusOK, ""},
	} {
		c.advance(tc.after)
		code, retry, _ := post(t, s.URL("g"), tc.code, s.CA())
		if code != tc.want || retry != tc.retryAfter {
			t.Errorf("%s: %d Retry-After %q, want %d %q", tc.what, code, retry, tc.want, tc.retryAfter)
		}
		if tc.what == "a wrong code" {
			// meanwhile: the redeemer retries, and other grants answer
			_, err := Redeem(context.Background(), s.URL("g"), "the-right-code", s.CA(), "l", "s")
			var busy *Busy
			if !errors.As(err, &busy) || IsRefused(err) || busy.RetryAfter != 59*time.Second {
				t.Errorf("the redeemer of a closed grant: %v", err)
			}
			if _, err := Redeem(context.Background(), s.URL("other"), "the-right-code", s.CA(), "l", "s"); err != nil {
				t.Errorf("another grant: %v", err)
			}
		}
	}
	for i := range 20 {
		if code, _, _ := post(t, s.URL("slow"), "wrong", s.CA()); code != http.StatusForbidden {
			t.Fatalf("slow wrong code %d: %d, want 403", i+1, code)
		}
		c.advance(7 * time.Second) // 9 within any minute
	}
}

// TestCertificateRenewed: the server renews its certificate while it runs,
// once a handshake finds it in the last third of its life, and serves the
// renewed one (kept for the next start) from then on.
func TestCertificateRenewed(t *testing.T) {
	c := &clock{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	s := testServer(t, dir, c.Now)
	handshake := func() *x509.Certificate {
		t.Helper()
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(s.CA()))
		conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Time: c.Now})
		if err != nil {
			t.Fatalf("handshake at %s: %v", c.Now(), err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	first := handshake()
	for _, tc := range []struct {
		what    string
		advance time.Duration
		renewed bool
	}{
		{"a year on", 365 * 24 * time.Hour, false},
		{"in the last third of its life", 150 * 24 * time.Hour, true},
		{"a day later", 24 * time.Hour, false},
	} {
		c.advance(tc.advance)
		got := handshake()
		if renewed := got.SerialNumber.Cmp(first.SerialNumber) != 0; renewed != tc.renewed {
			t.Errorf("%s: renewed %v, want %v (not after %s)", tc.what, renewed, tc.renewed, got.NotAfter)
		}
		if tc.renewed {
			if !got.NotAfter.After(first.NotAfter) {
				t.Errorf("%s: the renewed certificate expires at %s, the first at %s", tc.what, got.NotAfter, first.NotAfter)
			}
			kept, err := os.ReadFile(filepath.Join(dir, "server", certs.CertFile))
			if err != nil || !bytes.Equal(kept, pemOf(got.Raw)) {
				t.Errorf("%s: the renewed certificate is not kept: %v", tc.what, err)
			}
		}
		first = got
	}
}

// TestServerText: what a grant server says beside a refusal or a failure
// is cut to one line of printable characters, at most 200, before it
// goes anywhere; a 429's Retry-After is read (at most 5 minutes).
func TestServerText(t *testing.T) {
	for _, tc := range []struct {
		what       string
		status     int
		header     string
		body       string
		want       string
		retryAfter time.Duration
	}{
		{"lines", http.StatusForbidden, "", "no\n\nway\r\n", "the grant server refused: 403 Forbidden: no way", 0},
		{"control characters", http.StatusNotFound, "", "\x1b[31mgone\x1b[0m\x00\u202e!", "the grant server refused: 404 Not Found: [31mgone [0m !", 0},
		{"1 MiB", http.StatusForbidden, "", strings.Repeat("a", 1<<20), "the grant server refused: 403 Forbidden: " + strings.Repeat("a", 200) + "…", 0},
		{"a failure", http.StatusBadGateway, "", "bad\ngateway " + strings.Repeat("b", 300), "redeeming at HOST: 502 Bad Gateway: bad gateway " + strings.Repeat("b", 188) + "…", 0},
		{"busy", http.StatusTooManyRequests, "7", "slow down\n", "redeeming at HOST: 429 Too Many Requests: slow down (retry after 7s)", 7 * time.Second},
		{"busy for long", http.StatusTooManyRequests, "86400", "", "redeeming at HOST: 429 Too Many Requests (retry after 5m0s)", 5 * time.Minute},
		{"busy without a time", http.StatusTooManyRequests, "", "", "redeeming at HOST: 429 Too Many Requests", 0},
		{"busy with nonsense", http.StatusTooManyRequests, "soon", "", "redeeming at HOST: 429 Too Many Requests", 0},
	} {
		t.Run(tc.what, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
			_, err := Redeem(context.Background(), srv.URL+"/x", "code", ca, "l", "s")
			want := strings.ReplaceAll(tc.want, "HOST", strings.TrimPrefix(srv.URL, "https://"))
			if err == nil || err.Error() != want {
				t.Errorf("got  %v\nwant %s", err, want)
			}
			if got := RetryAfter(err); got != tc.retryAfter {
				t.Errorf("retry after %s, want %s", got, tc.retryAfter)
			}
			if IsRefused(err) != (tc.status == http.StatusForbidden || tc.status == http.StatusNotFound) {
				t.Errorf("refused: %v", IsRefused(err))
			}
		})
	}
}
