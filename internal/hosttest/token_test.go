package hosttest_test

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/hosttest"
	"github.com/site-controller/site-controller/pkg/status"
)

// TestHostsToken: two simulated hosts; A accepts links (RouterAccess bound
// to every address) and serves grants across the network (run
// --grant-server 0.0.0.0:8443). The link file A wrote for 127.0.0.1, used
// on B, names B's own loopback: B's Link says why it cannot link, in the
// router's words. Then a token A issues is redeemed by B's daemon across
// the network, the redemption started while A and B are partitioned (for
// 15 s): it fails and is tried again until the partition heals, then the
// link comes up, and the grant is spent exactly once.
func TestHostsToken(t *testing.T) {
	w := newWorld(t, []string{"a", "b"}, options{accept: []string{"a"}, args: map[string][]string{
		"a": {"--grant-server", "0.0.0.0:8443", "--grant-server-host", hosttest.Subnet + ".1"},
	}})
	a, b := w.hosts["a"], w.hosts["b"]

	// the wrong link file: A's for 127.0.0.1
	if err := b.Write(hosttest.NS, "link-a.yaml", string(w.linkFile("a", "127.0.0.1"))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wrong *status.Status
	eventually(t, 30*time.Second, "B's link with A's link file for 127.0.0.1 saying why it is down", func() bool {
		wrong = w.linkStatus("b", "a")
		return wrong != nil && wrong.Status == status.Pending && strings.Contains(wrong.Message, "Connection refused")
	})
	t.Logf("A's link file for 127.0.0.1 used on B: Link %s %q after %v", wrong.Status, wrong.Message, time.Since(start).Round(100*time.Millisecond))
	if !strings.Contains(wrong.Message, "Connection to 127.0.0.1:") {
		t.Errorf("B's link says %q: want the router's reason, naming 127.0.0.1", wrong.Message)
	}
	if err := b.Remove(hosttest.NS, "link-a.yaml"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	token := filepath.Join(t.TempDir(), "token.yaml")
	out, err := a.Run(ctx, "token", "issue", "--data-home", a.Home, hosttest.NS, token)
	if err != nil {
		t.Fatalf("token issue: %v", err)
	}
	grant := strings.Fields(out)[1] // "AccessGrant <name> ..."
	if g := a.Status(hosttest.NS, "AccessGrant", grant); g == nil || !strings.HasPrefix(g.URL, "https://"+a.Addr+":8443/") {
		t.Fatalf("the grant's URL is not at A's address: %+v", g)
	}

	if err := a.Partition(b); err != nil {
		t.Fatal(err)
	}
	mark := time.Now()
	if _, err := b.Run(ctx, "token", "redeem", "--data-home", b.Home, hosttest.NS, token); err != nil {
		t.Fatalf("token redeem: %v", err)
	}
	tokenProbe := probe{"b's token", func() string {
		s := b.Status(hosttest.NS, "AccessToken", grant)
		if s == nil {
			return "none"
		}
		return s.Status + ": " + s.Message
	}}
	grantProbe := probe{"a's grant redemptions", func() string {
		s := a.Status(hosttest.NS, "AccessGrant", grant)
		if s == nil || s.Redemptions == nil {
			return "none"
		}
		return strconv.Itoa(*s.Redemptions)
	}}
	linkProbe := probe{"b's link from the token", func() string {
		s := b.Status(hosttest.NS, "Link", grant)
		if s == nil {
			return "none"
		}
		return s.Status + ": " + s.Message
	}}
	wt := w.startWatch([]probe{tokenProbe, grantProbe, linkProbe}, [][2]string{{"b", "a"}})
	defer wt.stop()
	// longer than one try (the redeemer's HTTP client gives up after
	// 10 s), so that one fails for the partition
	time.Sleep(15 * time.Second)
	healed := time.Now()
	if err := a.Heal(); err != nil {
		t.Fatal(err)
	}
	var tk *status.Status
	eventually(t, time.Minute, "the token redeemed after the heal", func() bool {
		tk = b.Status(hosttest.NS, "AccessToken", grant)
		l := b.Status(hosttest.NS, "Link", grant)
		return tk != nil && tk.Redeemed != nil && *tk.Redeemed && l != nil && l.Status == status.Ready && l.RemoteSiteName == "a"
	})
	redeemed := time.Now()
	if _, err := b.RoundTrip(ctx, hosttest.Loopback(port("a")), 2*time.Second); err != nil {
		t.Fatalf("traffic B→A through the token's link: %v", err)
	}
	if _, err := a.RoundTrip(ctx, hosttest.Loopback(port("b")), 2*time.Second); err != nil {
		t.Fatalf("traffic A→B through the token's link: %v", err)
	}
	eventually(t, 30*time.Second, "the grant spent once", func() bool {
		g := a.Status(hosttest.NS, "AccessGrant", grant)
		return g != nil && g.Redemptions != nil && *g.Redemptions == 1
	})
	time.Sleep(time.Second)
	wt.stop()
	wt.log(t, mark, "token redeemed across a partition")
	if v := wt.values("a's grant redemptions", mark, time.Now()); slices.ContainsFunc(v, func(n string) bool { return n != "none" && n != "0" && n != "1" }) {
		t.Errorf("the grant's redemptions went %v: want one at most", v)
	}
	failed, why, _ := wt.first("b's token", mark, func(v string) bool { return strings.Contains(v, "failed") })
	if failed.IsZero() || failed.After(healed) {
		t.Errorf("B's token never said it could not be redeemed during the partition: %v", wt.values("b's token", mark, healed))
	}
	tokenReady, _, _ := wt.first("b's token", healed, func(v string) bool { return strings.HasPrefix(v, status.Ready) })
	linkReady, _, _ := wt.first("b's link from the token", healed, func(v string) bool { return strings.HasPrefix(v, status.Ready) })
	t.Logf("token redeemed across a partition: redeem at 0s, the token said %q at %s; healed at %s; after the heal: token redeemed %s, its link Ready %s, the remote site named in its status %s; grant redemptions 1",
		why, since(mark, failed), since(mark, healed), since(healed, tokenReady), since(healed, linkReady), since(healed, redeemed))
}
