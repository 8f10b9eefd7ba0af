// Package management is an AMQP 1.0 client for skupper-router's management
// node ($management): QUERY, READ, CREATE, UPDATE and DELETE of entities,
// over the site's local management listener (mutual TLS, SASL EXTERNAL).
//
// It knows the management protocol and nothing of resources or files.
package management

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	amqp "github.com/Azure/go-amqp"
)

// Prefix of the router's entity type names.
const Prefix = "io.skupper.router."

// TypeName is the management type of a configuration entity type:
// "tcpListener" → "io.skupper.router.tcpListener"; "address" is
// "router.config.address" there.
func TypeName(configType string) string {
	if configType == "address" {
		return Prefix + "router.config.address"
	}
	return Prefix + configType
}

// StatusError is a management reply other than success.
type StatusError struct {
	Operation, Type, Name string
	Code                  int
	Description           string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s %q: %d %s", e.Operation, e.Type, e.Name, e.Code, e.Description)
}

// IsNotFound tells whether err is a 404 reply.
func IsNotFound(err error) bool {
	var s *StatusError
	return errors.As(err, &s) && s.Code == 404
}

// Client is a connection to one router's management node. Calls are
// serialised: the router answers in order on one reply link.
type Client struct {
	conn     *amqp.Conn
	session  *amqp.Session
	sender   *amqp.Sender
	anon     *amqp.Sender // to other routers' management nodes, made on first use
	receiver *amqp.Receiver
	reply    string
	next     atomic.Uint64
	mu       sync.Mutex
	broken   error // set when a call failed in transit: replies may be out of step
}

// Dial connects to the management listener at addr (host:port).
func Dial(ctx context.Context, addr string, tlsConfig *tls.Config) (*Client, error) {
	conn, err := amqp.Dial(ctx, "amqps://"+addr, &amqp.ConnOptions{
		TLSConfig: tlsConfig,
		SASLType:  amqp.SASLTypeExternal(""),
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to router management at %s: %w", addr, err)
	}
	c := &Client{conn: conn}
	if err := c.open(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("router management at %s: %w", addr, err)
	}
	return c, nil
}

func (c *Client) open(ctx context.Context) error {
	var err error
	if c.session, err = c.conn.NewSession(ctx, nil); err != nil {
		return err
	}
	if c.receiver, err = c.session.NewReceiver(ctx, "", &amqp.ReceiverOptions{DynamicAddress: true, Credit: 16}); err != nil {
		return err
	}
	c.reply = c.receiver.Address()
	c.sender, err = c.session.NewSender(ctx, "$management", nil)
	return err
}

// NewSession opens another session on the client's connection, for links
// of its own (a vanflow subscription) that must not wait behind
// management calls.
func (c *Client) NewSession(ctx context.Context) (*amqp.Session, error) {
	return c.conn.NewSession(ctx, nil)
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Err returns why the client cannot be used any more, or nil.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// Request builds a management request message.
func Request(op, typ, name, replyTo string, id uint64, body any) *amqp.Message {
	props := map[string]any{"operation": op, "type": typ}
	if name != "" {
		props["name"] = name
	}
	if op == "QUERY" {
		props["type"] = "org.amqp.management"
		props["entityType"] = typ
	}
	return &amqp.Message{
		ApplicationProperties: props,
		Properties:            &amqp.MessageProperties{MessageID: id, ReplyTo: &replyTo},
		Value:                 body,
	}
}

// call sends a request and waits for its reply.
func (c *Client) call(ctx context.Context, op, typ, name string, body any, want ...int) (*amqp.Message, error) {
	return c.callAt(ctx, "", op, typ, name, body, want...)
}

// RemoteNode is the management node of another router of the network, as
// its routers route it: interior routers by their id under _topo, edge
// routers under _edge.
func RemoteNode(routerID string, edge bool) string {
	if edge {
		return "amqp:/_edge/" + routerID + "/$management"
	}
	return "amqp:/_topo/0/" + routerID + "/$management"
}

// QueryAt is Query on the management node node (RemoteNode) of another
// router, reached through the router this client is connected to.
func (c *Client) QueryAt(ctx context.Context, node, typ string) ([]map[string]any, error) {
	msg, err := c.callAt(ctx, node, "QUERY", typ, "", map[string]any{"attributeNames": []any{}}, 200)
	if err != nil {
		return nil, err
	}
	return ParseQuery(msg.Value)
}

// callAt sends a request to node ("" for the connected router's own) and
// waits for its reply.
func (c *Client) callAt(ctx context.Context, node, op, typ, name string, body any, want ...int) (*amqp.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, c.broken
	}
	id := c.next.Add(1)
	req := Request(op, typ, name, c.reply, id, body)
	sender := c.sender
	if node != "" {
		if c.anon == nil {
			anon, err := c.session.NewSender(ctx, "", nil)
			if err != nil {
				c.broken = fmt.Errorf("opening a link to other routers' management: %w", err)
				return nil, c.broken
			}
			c.anon = anon
		}
		sender, req.Properties.To = c.anon, &node
	}
	if err := sender.Send(ctx, req, nil); err != nil {
		c.broken = fmt.Errorf("%s %s %q: %w", op, typ, name, err)
		return nil, c.broken
	}
	for {
		msg, err := c.receiver.Receive(ctx, nil)
		if err != nil {
			// the reply may still come and would answer the next call:
			// this client is done
			c.broken = fmt.Errorf("%s %s %q: waiting for the reply: %w", op, typ, name, err)
			return nil, c.broken
		}
		c.receiver.AcceptMessage(ctx, msg)
		if msg.Properties != nil && msg.Properties.CorrelationID != nil && fmt.Sprint(msg.Properties.CorrelationID) != fmt.Sprint(id) {
			continue // a late reply to an abandoned call
		}
		code, desc := Status(msg)
		for _, w := range want {
			if code == w {
				return msg, nil
			}
		}
		return nil, &StatusError{Operation: op, Type: typ, Name: name, Code: code, Description: desc}
	}
}

// Status reads statusCode and statusDescription of a reply.
func Status(msg *amqp.Message) (int, string) {
	code, desc := 0, ""
	if v, ok := msg.ApplicationProperties["statusCode"]; ok {
		code = toInt(v)
	}
	if v, ok := msg.ApplicationProperties["statusDescription"].(string); ok {
		desc = v
	}
	return code, desc
}

func toInt(v any) int {
	switch n := v.(type) {
	case int32:
		return int(n)
	case int64:
		return int(n)
	case int:
		return n
	case uint32:
		return int(n)
	case uint64:
		return int(n)
	case string:
		i, _ := strconv.Atoi(n)
		return i
	}
	return 0
}

// Query returns every entity of a type with all its attributes.
func (c *Client) Query(ctx context.Context, typ string) ([]map[string]any, error) {
	msg, err := c.call(ctx, "QUERY", typ, "", map[string]any{"attributeNames": []any{}}, 200)
	if err != nil {
		return nil, err
	}
	return ParseQuery(msg.Value)
}

// ParseQuery turns a QUERY reply body ({attributeNames, results}) into one
// attribute map per entity, with numbers as int64.
func ParseQuery(body any) ([]map[string]any, error) {
	m, ok := body.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("query reply is %T, not a map", body)
	}
	names, _ := m["attributeNames"].([]any)
	results, _ := m["results"].([]any)
	var out []map[string]any
	for _, r := range results {
		row, ok := r.([]any)
		if !ok || len(row) != len(names) {
			return nil, fmt.Errorf("query reply row %v does not match %d attribute names", r, len(names))
		}
		e := map[string]any{}
		for i, n := range names {
			if name, ok := n.(string); ok && row[i] != nil {
				e[name] = Normalize(row[i])
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// Normalize makes AMQP numbers int64, so that they compare with rendered
// attributes.
func Normalize(v any) any {
	switch n := v.(type) {
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64:
		return int64(toInt(n))
	}
	return v
}

// Create creates an entity and returns its attributes as the router has
// them.
func (c *Client) Create(ctx context.Context, typ, name string, attrs map[string]any) (map[string]any, error) {
	body := map[string]any{}
	for k, v := range attrs {
		body[k] = v
	}
	body["name"] = name
	msg, err := c.call(ctx, "CREATE", typ, name, body, 201)
	if err != nil {
		return nil, err
	}
	return entity(msg.Value), nil
}

// Update changes attributes of an entity and returns its attributes as
// the router has them.
func (c *Client) Update(ctx context.Context, typ, name string, attrs map[string]any) (map[string]any, error) {
	msg, err := c.call(ctx, "UPDATE", typ, name, attrs, 200)
	if err != nil {
		return nil, err
	}
	return entity(msg.Value), nil
}

// entity reads a reply body holding one entity's attributes.
func entity(body any) map[string]any {
	m, _ := body.(map[string]any)
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = Normalize(v)
		}
	}
	return out
}

// Delete deletes an entity; a missing one is not an error.
func (c *Client) Delete(ctx context.Context, typ, name string) error {
	_, err := c.call(ctx, "DELETE", typ, name, nil, 204)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// Read returns one entity's attributes.
func (c *Client) Read(ctx context.Context, typ, name string) (map[string]any, error) {
	msg, err := c.call(ctx, "READ", typ, name, nil, 200)
	if err != nil {
		return nil, err
	}
	if _, ok := msg.Value.(map[string]any); !ok {
		return nil, fmt.Errorf("READ %s %q: reply is %T", typ, name, msg.Value)
	}
	return entity(msg.Value), nil
}
