package daemon

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/site-controller/site-controller/internal/fixture"
	"github.com/site-controller/site-controller/internal/routertest"
	"github.com/site-controller/site-controller/pkg/status"
)

// nameServer answers every connection with its name and closes it.
func nameServer(t *testing.T, name string) int {
	t.Helper()
	return routertest.Serve(t, nil, func(c net.Conn) { fmt.Fprintln(c, name) })
}

// whoAnswers connects to 127.0.0.1:port and returns the server's name, ""
// when none answers.
func whoAnswers(port int) string {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func multiKeyYAML(port int, strategy string) string {
	return fmt.Sprintf("apiVersion: skupper.io/v2alpha1\nkind: MultiKeyListener\nmetadata:\n  name: mk\nspec:\n  host: 127.0.0.1\n  port: %d\n  strategy:\n%s", port, strategy)
}

// TestMultiKeyListener: a priority MultiKeyListener sends connections to
// its first routing key while that key has a connector and to the second
// when it goes (and back); made weighted, it spreads connections over
// both; every change reaches the running router live, without a restart.
func TestMultiKeyListener(t *testing.T) { eachPlatform(t, testMultiKeyListener) }

func testMultiKeyListener(t *testing.T, platform string) {
	l := startLiveSite(t, platform)
	pid := l.pid()
	first, second := nameServer(t, "first"), nameServer(t, "second")
	fixture.WriteFile(t, filepath.Join(l.res, "c1.yaml"), fixture.ConnectorYAML("c1", "k1", first))
	fixture.WriteFile(t, filepath.Join(l.res, "c2.yaml"), fixture.ConnectorYAML("c2", "k2", second))
	port := routertest.FreePort(t)
	mk := filepath.Join(l.res, "mk.yaml")
	fixture.WriteFile(t, mk, multiKeyYAML(port, "    priority:\n      routingKeys: [k1, k2]\n"))
	answers := func(want string) func() bool { return func() bool { return whoAnswers(port) == want } }
	fixture.Eventually(t, "the first key answers", answers("first"))
	fixture.Eventually(t, "status: has a destination", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "MultiKeyListener", "mk")
		return s != nil && s.Status == status.Ready && s.HasDestination != nil && *s.HasDestination && strings.Contains(s.Message, "connectors for k1, k2")
	})
	for range 5 {
		if got := whoAnswers(port); got != "first" {
			t.Fatalf("priority: %q answered while the first key has a connector", got)
		}
	}
	// the first key's connector goes: the second answers; it comes back
	os.Remove(filepath.Join(l.res, "c1.yaml"))
	fixture.Eventually(t, "the second key answers without the first", answers("second"))
	fixture.WriteFile(t, filepath.Join(l.res, "c1.yaml"), fixture.ConnectorYAML("c1", "k1", first))
	fixture.Eventually(t, "the first key answers again", answers("first"))

	// weighted, equal weights: both answer
	fixture.WriteFile(t, mk, multiKeyYAML(port, "    weighted:\n      routingKeys: {k1: 1, k2: 1}\n"))
	seen := map[string]int{}
	fixture.Eventually(t, "weighted: both keys answer", func() bool {
		seen[whoAnswers(port)]++
		return seen["first"] > 0 && seen["second"] > 0
	})
	if got := l.pid(); got != pid {
		t.Errorf("the router restarted (pid %d → %d) for a MultiKeyListener change", pid, got)
	}
	// no connector for any key: no destination
	os.Remove(filepath.Join(l.res, "c1.yaml"))
	os.Remove(filepath.Join(l.res, "c2.yaml"))
	fixture.Eventually(t, "status: no destination", func() bool {
		s := fixture.StatusOf(l.home, l.ns, "MultiKeyListener", "mk")
		return s != nil && s.Status == status.Pending && s.HasDestination != nil && !*s.HasDestination
	})
}
