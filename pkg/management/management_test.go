package management

import (
	"testing"

	amqp "github.com/Azure/go-amqp"
)

func TestRequestEncoding(t *testing.T) {
	q := Request("QUERY", TypeName("tcpListener"), "", "reply-to", 7, map[string]any{"attributeNames": []any{}})
	if q.ApplicationProperties["type"] != "org.amqp.management" || q.ApplicationProperties["entityType"] != "io.skupper.router.tcpListener" ||
		q.ApplicationProperties["operation"] != "QUERY" || *q.Properties.ReplyTo != "reply-to" || q.Properties.MessageID != uint64(7) {
		t.Errorf("query: %+v %+v", q.ApplicationProperties, q.Properties)
	}
	if _, named := q.ApplicationProperties["name"]; named {
		t.Error("query carries a name")
	}
	c := Request("CREATE", TypeName("sslProfile"), "p", "r", 8, map[string]any{"certFile": "/x"})
	if c.ApplicationProperties["type"] != "io.skupper.router.sslProfile" || c.ApplicationProperties["name"] != "p" {
		t.Errorf("create: %+v", c.ApplicationProperties)
	}
	// the message survives AMQP encoding
	data, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back amqp.Message
	if err := back.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if back.ApplicationProperties["operation"] != "CREATE" || back.Value.(map[string]any)["certFile"] != "/x" {
		t.Errorf("round trip: %+v %v", back.ApplicationProperties, back.Value)
	}
	if TypeName("address") != "io.skupper.router.router.config.address" {
		t.Error(TypeName("address"))
	}
}

func TestParseReplies(t *testing.T) {
	body := map[string]any{
		"attributeNames": []any{"name", "port", "backlog", "sslProfile"},
		"results":        []any{[]any{"listener/a", "80", uint32(5), nil}, []any{"listener/b", "81", int32(0), "p"}},
	}
	got, err := ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0]["backlog"] != int64(5) || got[1]["sslProfile"] != "p" {
		t.Errorf("%v", got)
	}
	if _, has := got[0]["sslProfile"]; has {
		t.Error("null attribute kept")
	}
	if _, err := ParseQuery(map[string]any{"attributeNames": []any{"a"}, "results": []any{[]any{1, 2}}}); err == nil {
		t.Error("a row of the wrong length parsed")
	}
	code, desc := Status(&amqp.Message{ApplicationProperties: map[string]any{"statusCode": int32(400), "statusDescription": "Cannot update attribute 'port' in UPDATE"}})
	if code != 400 || desc != "Cannot update attribute 'port' in UPDATE" {
		t.Errorf("%d %q", code, desc)
	}
	err = &StatusError{Operation: "DELETE", Type: "t", Name: "n", Code: 404, Description: "Not Found"}
	if !IsNotFound(err) || err.Error() != `DELETE t "n": 404 Not Found` {
		t.Errorf("%v", err)
	}
}
