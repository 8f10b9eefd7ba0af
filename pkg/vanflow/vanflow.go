// Package vanflow decodes and encodes the messages of the vanflow protocol,
// in which skupper-router (and Skupper's controllers) publish what they
// are and what passes through them as records: a source announces itself
// with a BEACON on BeaconAddress, sends its records (RECORD) and
// HEARTBEATs on its own multicast address (mc/sfe.<id>), and answers a
// FLUSH sent to its direct address (sfe.<id>) with every record it holds.
//
// It knows the wire format and nothing of sites, statuses or connections:
// messages in, values out, and back.
package vanflow

import (
	"fmt"
	"slices"
	"strings"
	"time"

	amqp "github.com/Azure/go-amqp"
)

// BeaconAddress is where every source of a network announces itself.
const BeaconAddress = "mc/sfe.all"

// The subjects of the four kinds of message.
const (
	SubjectBeacon    = "BEACON"
	SubjectHeartbeat = "HEARTBEAT"
	SubjectFlush     = "FLUSH"
	SubjectRecord    = "RECORD"
)

// Source types a beacon announces.
const (
	SourceRouter     = "ROUTER"
	SourceController = "CONTROLLER"
)

// Suffixes of a source's address where some of its messages go: a
// router's transport flows on <address>.flows, a controller's heartbeats
// (as Skupper's send them) on <address>.heartbeats.
const (
	FlowsSuffix      = ".flows"
	HeartbeatsSuffix = ".heartbeats"
)

// SourceAddress is the multicast address of source id's records;
// DirectAddress is where it takes FLUSH requests.
func SourceAddress(id string) string { return "mc/sfe." + id }

// DirectAddress is the address a source takes FLUSH requests on.
func DirectAddress(id string) string { return "sfe." + id }

// Message is one vanflow message.
type Message struct {
	Subject string `json:"subject"`
	To      string `json:"to,omitempty"`
	ReplyTo string `json:"replyTo,omitempty"`
	// Beacons and heartbeats: the protocol version and the source's id;
	// a beacon also its type, its address for records and its direct
	// address; a heartbeat the source's clock (µs since the epoch).
	Version    uint32 `json:"version,omitempty"`
	ID         string `json:"id,omitempty"`
	SourceType string `json:"sourceType,omitempty"`
	Address    string `json:"address,omitempty"`
	Direct     string `json:"direct,omitempty"`
	Now        uint64 `json:"now,omitempty"`
	// Records of a RECORD message.
	Records []Record `json:"records,omitempty"`
}

// Decode reads an AMQP message as a vanflow message.
func Decode(m *amqp.Message) (Message, error) {
	if m == nil || m.Properties == nil || m.Properties.Subject == nil {
		return Message{}, fmt.Errorf("vanflow message without a subject")
	}
	out := Message{Subject: *m.Properties.Subject}
	if m.Properties.To != nil {
		out.To = *m.Properties.To
	}
	if m.Properties.ReplyTo != nil {
		out.ReplyTo = *m.Properties.ReplyTo
	}
	props := m.ApplicationProperties
	str := func(k string) string { s, _ := props[k].(string); return s }
	switch out.Subject {
	case SubjectBeacon, SubjectHeartbeat:
		if v, ok := number(props["v"]); ok {
			out.Version = uint32(v)
		}
		out.ID = str("id")
		if out.Subject == SubjectBeacon {
			out.SourceType, out.Address, out.Direct = str("sourceType"), str("address"), str("direct")
		} else if now, ok := number(props["now"]); ok {
			out.Now = now
		}
		if out.ID == "" {
			return out, fmt.Errorf("%s without a source id", out.Subject)
		}
	case SubjectFlush:
	case SubjectRecord:
		values, ok := m.Value.([]any)
		if !ok {
			return out, fmt.Errorf("RECORD body is %T, not a list", m.Value)
		}
		for i, v := range values {
			r, err := decodeRecord(v)
			if err != nil {
				return out, fmt.Errorf("RECORD %d: %w", i, err)
			}
			out.Records = append(out.Records, r)
		}
	default:
		return out, fmt.Errorf("unknown vanflow subject %q", out.Subject)
	}
	return out, nil
}

// Encode makes the AMQP message of m.
func (m Message) Encode() (*amqp.Message, error) {
	subject := m.Subject
	out := &amqp.Message{Properties: &amqp.MessageProperties{Subject: &subject}}
	if m.To != "" {
		to := m.To
		out.Properties.To = &to
	}
	if m.ReplyTo != "" {
		rt := m.ReplyTo
		out.Properties.ReplyTo = &rt
	}
	switch m.Subject {
	case SubjectBeacon:
		out.ApplicationProperties = map[string]any{"v": m.Version, "sourceType": m.SourceType, "address": m.Address, "direct": m.Direct, "id": m.ID}
	case SubjectHeartbeat:
		out.ApplicationProperties = map[string]any{"v": m.Version, "now": m.Now, "id": m.ID}
	case SubjectFlush:
	case SubjectRecord:
		values := make([]any, 0, len(m.Records))
		for _, r := range m.Records {
			values = append(values, r.encode())
		}
		out.Value = values
	default:
		return nil, fmt.Errorf("unknown vanflow subject %q", m.Subject)
	}
	return out, nil
}

// RecordType is what a record is of.
type RecordType uint32

// The record types (skupper-router's vflow_record_type_t).
const (
	Site            RecordType = 0
	Router          RecordType = 1
	Link            RecordType = 2
	Controller      RecordType = 3
	Listener        RecordType = 4
	Connector       RecordType = 5
	Flow            RecordType = 6
	Process         RecordType = 7
	Image           RecordType = 8
	Ingress         RecordType = 9
	Egress          RecordType = 10
	Collector       RecordType = 11
	ProcessGroup    RecordType = 12
	Host            RecordType = 13
	Log             RecordType = 14
	RouterAccess    RecordType = 15
	TransportBiflow RecordType = 16
	AppBiflow       RecordType = 17
)

var typeNames = []string{"SITE", "ROUTER", "LINK", "CONTROLLER", "LISTENER", "CONNECTOR", "FLOW", "PROCESS", "IMAGE",
	"INGRESS", "EGRESS", "COLLECTOR", "PROCESS_GROUP", "HOST", "LOG", "ROUTER_ACCESS", "BIFLOW_TPORT", "BIFLOW_APP"}

func (t RecordType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("TYPE_%d", uint32(t))
}

// Attr is a record attribute's code point.
type Attr uint32

// The attributes (skupper-router's vflow_attribute_t). Values are
// strings, unsigned numbers (uint64; times in µs since the epoch) or, for
// Trace, a list of strings.
const (
	AttrType           Attr = 0
	AttrID             Attr = 1
	AttrParent         Attr = 2
	AttrStartTime      Attr = 3
	AttrEndTime        Attr = 4
	AttrCounterflow    Attr = 5
	AttrPeer           Attr = 6
	AttrProcess        Attr = 7
	AttrSiblingOrdinal Attr = 8
	AttrLocation       Attr = 9
	AttrProvider       Attr = 10
	AttrPlatform       Attr = 11
	AttrNamespace      Attr = 12
	AttrMode           Attr = 13
	AttrSourceHost     Attr = 14
	AttrDestHost       Attr = 15
	AttrProtocol       Attr = 16
	AttrSourcePort     Attr = 17
	AttrDestPort       Attr = 18
	AttrAddress        Attr = 19 // the VAN address: a routing key
	AttrImageName      Attr = 20
	AttrImageVersion   Attr = 21
	AttrHostName       Attr = 22
	AttrOctets         Attr = 23
	AttrLatency        Attr = 24
	AttrTransitLatency Attr = 25
	AttrBacklog        Attr = 26
	AttrMethod         Attr = 27
	AttrResult         Attr = 28
	AttrReason         Attr = 29
	AttrName           Attr = 30
	AttrTrace          Attr = 31
	AttrBuildVersion   Attr = 32
	AttrLinkCost       Attr = 33
	AttrDirection      Attr = 34
	AttrOctetRate      Attr = 35
	AttrOctetsOut      Attr = 36
	AttrOctetsUnacked  Attr = 37
	AttrWindowClosures Attr = 38
	AttrWindowSize     Attr = 39
	AttrFlowCountL4    Attr = 40
	AttrFlowCountL7    Attr = 41
	AttrFlowRateL4     Attr = 42
	AttrFlowRateL7     Attr = 43
	AttrDuration       Attr = 44
	AttrImage          Attr = 45
	AttrGroup          Attr = 46
	AttrStreamID       Attr = 47
	AttrLogSeverity    Attr = 48
	AttrLogText        Attr = 49
	AttrSourceFile     Attr = 50
	AttrSourceLine     Attr = 51
	AttrLinkCount      Attr = 52
	AttrOperStatus     Attr = 53
	AttrRole           Attr = 54
	AttrUpTimestamp    Attr = 55
	AttrDownTimestamp  Attr = 56
	AttrDownCount      Attr = 57
	AttrOctetsReverse  Attr = 58
	AttrOctetRateRev   Attr = 59
	AttrConnector      Attr = 60
	AttrProcessLatency Attr = 61
	AttrProxyHost      Attr = 62
	AttrProxyPort      Attr = 63
	AttrErrorListener  Attr = 64
	AttrErrorConnector Attr = 65
)

// Record is one record, or an update of one: only the attributes that
// changed since the last message about it, besides its type and id.
type Record struct {
	Type  RecordType
	ID    string
	Attrs map[Attr]any
}

// String returns a string attribute ("" when absent).
func (r Record) String(a Attr) string {
	s, _ := r.Attrs[a].(string)
	return s
}

// Uint returns a numeric attribute, and whether it is there.
func (r Record) Uint(a Attr) (uint64, bool) {
	n, ok := r.Attrs[a].(uint64)
	return n, ok
}

// Time returns a time attribute (zero when absent).
func (r Record) Time(a Attr) time.Time {
	n, ok := r.Uint(a)
	if !ok || n == 0 {
		return time.Time{}
	}
	return time.UnixMicro(int64(n))
}

// Ended tells whether the record says its thing has ended (an end time).
func (r Record) Ended() bool {
	n, ok := r.Uint(AttrEndTime)
	return ok && n != 0
}

// Merge returns r with the attributes of update u (same record) laid over.
func (r Record) Merge(u Record) Record {
	out := Record{Type: r.Type, ID: r.ID, Attrs: make(map[Attr]any, len(r.Attrs)+len(u.Attrs))}
	for k, v := range r.Attrs {
		out.Attrs[k] = v
	}
	for k, v := range u.Attrs {
		out.Attrs[k] = v
	}
	return out
}

// Format writes the record as one line: its type, id and attributes by
// code point, for test data and debugging.
func (r Record) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Type, r.ID)
	keys := make([]Attr, 0, len(r.Attrs))
	for k := range r.Attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %d=%q", k, fmt.Sprint(r.Attrs[k]))
	}
	return b.String()
}

// decodeRecord reads one record's attribute map.
func decodeRecord(v any) (Record, error) {
	var attrs map[Attr]any
	add := func(k, val any) error {
		code, ok := number(k)
		if !ok {
			return fmt.Errorf("attribute key %v (%T) is not a number", k, k)
		}
		if attrs == nil {
			attrs = map[Attr]any{}
		}
		if n, ok := number(val); ok {
			attrs[Attr(code)] = n
			return nil
		}
		switch x := val.(type) {
		case string:
			attrs[Attr(code)] = x
		case []any:
			var ss []string
			for _, e := range x {
				s, _ := e.(string)
				ss = append(ss, s)
			}
			attrs[Attr(code)] = ss
		case nil:
		default:
			attrs[Attr(code)] = fmt.Sprint(x)
		}
		return nil
	}
	switch m := v.(type) {
	case map[any]any:
		for k, val := range m {
			if err := add(k, val); err != nil {
				return Record{}, err
			}
		}
	default:
		return Record{}, fmt.Errorf("record is %T, not a map", v)
	}
	t, ok := attrs[AttrType].(uint64)
	if !ok {
		return Record{}, fmt.Errorf("record without a type")
	}
	id, _ := attrs[AttrID].(string)
	if id == "" {
		return Record{}, fmt.Errorf("%s record without an identity", RecordType(t))
	}
	delete(attrs, AttrType)
	delete(attrs, AttrID)
	return Record{Type: RecordType(t), ID: id, Attrs: attrs}, nil
}

// encode makes the attribute map of r, as routers send them: code points
// as uint32, numbers as uint64.
func (r Record) encode() map[any]any {
	m := make(map[any]any, len(r.Attrs)+2)
	m[uint32(AttrType)] = uint32(r.Type)
	m[uint32(AttrID)] = r.ID
	for k, v := range r.Attrs {
		switch x := v.(type) {
		case []string:
			l := make([]any, len(x))
			for i, s := range x {
				l[i] = s
			}
			m[uint32(k)] = l
		default:
			m[uint32(k)] = v
		}
	}
	return m
}

// number reads any AMQP unsigned or signed integer as a uint64.
func number(v any) (uint64, bool) {
	switch n := v.(type) {
	case uint8:
		return uint64(n), true
	case uint16:
		return uint64(n), true
	case uint32:
		return uint64(n), true
	case uint64:
		return n, true
	case int8:
		return uint64(n), n >= 0
	case int16:
		return uint64(n), n >= 0
	case int32:
		return uint64(n), n >= 0
	case int64:
		return uint64(n), n >= 0
	}
	return 0, false
}
