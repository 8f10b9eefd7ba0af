package hosttest

import (
	"fmt"
	"strings"
	"time"
)

// Faults are nft rules in the table inet hosttest of a host's namespace:
// they touch only that namespace's traffic. Heal removes them all.

const nftBase = `add table inet hosttest
add chain inet hosttest input { type filter hook input priority 0; policy accept; }
add chain inet hosttest output { type filter hook output priority 0; policy accept; }
`

func (h *Host) addRules(rules ...string) error {
	var b strings.Builder
	b.WriteString(nftBase)
	for _, r := range rules {
		b.WriteString("add rule inet hosttest " + r + "\n")
	}
	if err := h.Nft(b.String()); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	return nil
}

// Partition drops every packet between the host and the peers, both ways.
func (h *Host) Partition(peers ...*Host) error {
	var rules []string
	for _, p := range peers {
		rules = append(rules, "input ip saddr "+p.Addr+" drop", "output ip daddr "+p.Addr+" drop")
	}
	return h.addRules(rules...)
}

// DropFrom drops every packet from the peer to the host: one-way loss, the
// host's packets still reach the peer.
func (h *Host) DropFrom(peer *Host) error {
	return h.addRules("input ip saddr " + peer.Addr + " drop")
}

// Reset answers every TCP segment between the host and the peer, both
// ways, with a reset (a firewall rejecting, a middlebox ending
// connections): established connections end at their next segment, new
// ones are refused.
func (h *Host) Reset(peer *Host) error {
	// resets pass: those the input rule sends the peer, and those the
	// output rule hands this host's own sockets (as from the peer)
	return h.addRules(
		"input ip saddr "+peer.Addr+" tcp flags & rst != rst reject with tcp reset",
		"output ip daddr "+peer.Addr+" tcp flags & rst != rst reject with tcp reset",
	)
}

// Isolate drops every packet on the host's cable, both ways: the host is
// off the network (a host that lost power says nothing to its peers).
func (h *Host) Isolate() error {
	return h.addRules(`input iifname "eth0" drop`, `output oifname "eth0" drop`)
}

// Heal removes every fault rule of the host.
func (h *Host) Heal() error {
	if err := h.Nft("add table inet hosttest\ndelete table inet hosttest\n"); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	return nil
}

// Reboot is a hard reboot: the host drops off the network, every process
// of it is killed (nothing it says in dying reaches anyone), it stays down
// for down, then boots: network back, its manager starts the routers it
// had enabled, its controller starts.
func (h *Host) Reboot(down time.Duration) error {
	if err := h.Isolate(); err != nil {
		return err
	}
	h.Crash()
	time.Sleep(down)
	if err := h.Heal(); err != nil {
		return err
	}
	return h.Boot()
}
