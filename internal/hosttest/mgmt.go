package hosttest

import (
	"context"
	"fmt"
	"strconv"

	"github.com/site-controller/site-controller/pkg/live"
	"github.com/site-controller/site-controller/pkg/management"
	"github.com/site-controller/site-controller/pkg/namespace"
)

// Query asks namespace ns's router on the host, over its local management
// listener (from the host's namespace, with the controller's client
// credential), for every entity of a type ("connector", "connection",
// "router.node", ...): what the router itself says, not a status.
func (h *Host) Query(ctx context.Context, ns, typ string) ([]map[string]any, error) {
	d, err := namespace.Open(h.Home, ns)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	port, ok := d.ReservedManagementPort()
	if !ok {
		return nil, fmt.Errorf("host %s: namespace %s has no management port yet", h.Name, ns)
	}
	cfg, err := live.ManagementTLS(d)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	var c *management.Client
	err = inNetns(netnsPath(h.NS), func() error {
		var err error
		c, err = management.Dial(ctx, "127.0.0.1:"+strconv.Itoa(port), cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	defer c.Close()
	es, err := c.Query(ctx, management.TypeName(typ))
	if err != nil {
		return nil, fmt.Errorf("host %s: querying %s: %w", h.Name, typ, err)
	}
	return es, nil
}
