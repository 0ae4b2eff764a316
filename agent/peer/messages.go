package peer

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// Message types. A response carries its request's type with the high bit
// set and the request's correlation id.
const (
	TypeHello     uint8 = 1 // first on every connection: who is calling
	TypeHeartbeat uint8 = 2 // agent → controller: registration and liveness
	TypePropose   uint8 = 3 // agent → controller: journal these commands
	TypePush      uint8 = 4 // controller → agent, one-way: a journal entry
	TypeProbe     uint8 = 5 // leader → follower: where does your log end?
	TypeAppend    uint8 = 6 // leader → follower: batches, truncation, HW
	TypeKafka     uint8 = 7 // agent → agent: a Kafka request run as the cluster (markers, transaction checks)

	responseBit uint8 = 0x80
)

// Result codes of peer responses.
const (
	OK         int8 = 0
	Retry      int8 = 1 // not ready (metadata behind, starting up): try again shortly
	Fenced     int8 = 2 // the sender's epoch is stale, or it is not the leader
	NotReplica int8 = 3 // this agent holds no replica of the partition
	OutOfOrder int8 = 4 // an append did not start at the follower's log end
	Storage    int8 = 5 // the follower's WAL failed
	Invalid    int8 = 6 // the request makes no sense (corrupt batch, bad field)
	Failed     int8 = 7 // a command was refused; Kind says why
	Challenge  int8 = 8 // Hello: prove the cluster secret over HelloResp.Challenge
)

// Hello opens a connection. With a cluster secret the first Hello is
// answered with a Challenge, and a second one carries Nonce (the
// caller's, for the answer's proof), Time (unix milliseconds, for logs)
// and Proof (HelloProof, over the challenge); they are sent last and only
// then, so agents without a secret still decode.
type Hello struct {
	From        int32
	ClusterID   string
	Incarnation int64
	Nonce       []byte
	Time        int64
	Proof       []byte
}

func (m *Hello) Encode(e *Enc) {
	e.Int32(m.From)
	e.String(m.ClusterID)
	e.Int64(m.Incarnation)
	if len(m.Proof) > 0 {
		e.Bytes(m.Nonce)
		e.Int64(m.Time)
		e.Bytes(m.Proof)
	}
}

func (m *Hello) Decode(d *Dec) error {
	m.From, m.ClusterID, m.Incarnation = d.Int32(), d.String(), d.Int64()
	if d.Err == nil && len(d.B) > 0 {
		m.Nonce, m.Time, m.Proof = d.Bytes(), d.Int64(), d.Bytes()
	}
	return d.Done()
}

// HelloResp answers Hello; with a cluster secret, Challenge (with Code
// Challenge) is the nonce the caller must prove the secret over, and
// Proof (HelloRespProof, with OK) proves the answering agent knows it too.
type HelloResp struct {
	Code      int8
	Msg       string
	From      int32
	Proof     []byte
	Challenge []byte
}

func (m *HelloResp) Encode(e *Enc) {
	e.Int8(m.Code)
	e.String(m.Msg)
	e.Int32(m.From)
	if len(m.Proof) > 0 || len(m.Challenge) > 0 {
		e.Bytes(m.Proof)
		e.Bytes(m.Challenge)
	}
}

func (m *HelloResp) Decode(d *Dec) error {
	m.Code, m.Msg, m.From = d.Int8(), d.String(), d.Int32()
	if d.Err == nil && len(d.B) > 0 {
		m.Proof, m.Challenge = d.Bytes(), d.Bytes()
	}
	return d.Done()
}

// HelloProof is HMAC-SHA256 under the cluster secret of what a Hello
// claims (who calls, in which cluster and incarnation, with which nonce)
// bound to the agent called (to) and its challenge for this connection:
// a proof is good once, on one connection.
func HelloProof(secret []byte, m *Hello, to int32, challenge []byte) []byte {
	return mac(secret, fmt.Sprintf("tlog-peer-hello|%s|%d|%d|%x|%d|%x", m.ClusterID, m.From, m.Incarnation, m.Nonce, to, challenge))
}

// HelloRespProof is the answering agent's proof: its id, bound to the
// caller's nonce and the challenge.
func HelloRespProof(secret []byte, clusterID string, from int32, nonce, challenge []byte) []byte {
	return mac(secret, fmt.Sprintf("tlog-peer-hello-resp|%s|%d|%x|%x", clusterID, from, nonce, challenge))
}

func mac(secret []byte, msg string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// Heartbeat tells the controller an agent is alive and where it listens.
type Heartbeat struct {
	ID          int32
	Addr        string
	PeerAddr    string
	AdminAddr   string
	Zone        string
	Incarnation int64
	Seq         uint64 // metadata the agent has applied
	// Listeners are the agent's named Kafka listeners as
	// "NAME=HOST:PORT,..." (empty: only Addr); sent last, and only when
	// set, so agents that predate it still decode.
	Listeners string
}

func (m *Heartbeat) Encode(e *Enc) {
	e.Int32(m.ID)
	e.String(m.Addr)
	e.String(m.PeerAddr)
	e.String(m.AdminAddr)
	e.String(m.Zone)
	e.Int64(m.Incarnation)
	e.Uint64(m.Seq)
	if m.Listeners != "" {
		e.String(m.Listeners)
	}
}

func (m *Heartbeat) Decode(d *Dec) error {
	m.ID, m.Addr, m.PeerAddr, m.AdminAddr, m.Zone = d.Int32(), d.String(), d.String(), d.String(), d.String()
	m.Incarnation, m.Seq = d.Int64(), d.Uint64()
	if d.Err == nil && len(d.B) > 0 {
		m.Listeners = d.String()
	}
	return d.Done()
}

// HeartbeatResp answers with the controller's journal position, so an
// agent that missed a push knows to catch up.
type HeartbeatResp struct {
	Code            int8
	Msg             string
	ControllerEpoch int64
	Seq             uint64
}

func (m *HeartbeatResp) Encode(e *Enc) {
	e.Int8(m.Code)
	e.String(m.Msg)
	e.Int64(m.ControllerEpoch)
	e.Uint64(m.Seq)
}

func (m *HeartbeatResp) Decode(d *Dec) error {
	m.Code, m.Msg, m.ControllerEpoch, m.Seq = d.Int8(), d.String(), d.Int64(), d.Uint64()
	return d.Done()
}

// Propose asks the controller to journal commands (JSON, as in the
// journal).
type Propose struct {
	Cmds []byte
}

func (m *Propose) Encode(e *Enc)       { e.Bytes(m.Cmds) }
func (m *Propose) Decode(d *Dec) error { m.Cmds = d.Bytes(); return d.Done() }

// ProposeResp carries the journaled entry (its bytes, so the proposer
// applies exactly what was stored), or why the commands were refused.
type ProposeResp struct {
	Code int8
	Kind string // the refusal's class, for errors.Is on the proposer
	Msg  string
	Seq  uint64
	Body []byte
}

func (m *ProposeResp) Encode(e *Enc) {
	e.Int8(m.Code)
	e.String(m.Kind)
	e.String(m.Msg)
	e.Uint64(m.Seq)
	e.Bytes(m.Body)
}

func (m *ProposeResp) Decode(d *Dec) error {
	m.Code, m.Kind, m.Msg, m.Seq, m.Body = d.Int8(), d.String(), d.String(), d.Uint64(), d.Bytes()
	return d.Done()
}

// Push delivers one journal entry from the controller.
type Push struct {
	Seq  uint64
	Body []byte
}

func (m *Push) Encode(e *Enc)       { e.Uint64(m.Seq); e.Bytes(m.Body) }
func (m *Push) Decode(d *Dec) error { m.Seq, m.Body = d.Uint64(), d.Bytes(); return d.Done() }

// Probe asks a follower where its log of a partition ends, before the
// leader streams to it.
type Probe struct {
	Topic     [16]byte
	Partition int32
	Epoch     int32
}

func (m *Probe) Encode(e *Enc) { e.ID(m.Topic); e.Int32(m.Partition); e.Int32(m.Epoch) }
func (m *Probe) Decode(d *Dec) error {
	m.Topic, m.Partition, m.Epoch = d.ID(), d.Int32(), d.Int32()
	return d.Done()
}

// ProbeResp: the follower's log end and the epoch of its last batch.
type ProbeResp struct {
	Code      int8
	Msg       string
	LEO       int64
	LastEpoch int32
}

func (m *ProbeResp) Encode(e *Enc) {
	e.Int8(m.Code)
	e.String(m.Msg)
	e.Int64(m.LEO)
	e.Int32(m.LastEpoch)
}
func (m *ProbeResp) Decode(d *Dec) error {
	m.Code, m.Msg, m.LEO, m.LastEpoch = d.Int8(), d.String(), d.Int64(), d.Int32()
	return d.Done()
}

// Append carries whole stamped batches starting at the follower's log
// end. Truncate ≥ 0 first cuts the follower's log there (divergence after
// a leader change); Reset ≥ 0 first empties it and starts it at Reset
// (everything below is in the bucket). HW is the leader's high watermark.
// An Append with no data just moves HW.
type Append struct {
	Topic     [16]byte
	Partition int32
	Epoch     int32
	Truncate  int64
	Reset     int64
	HW        int64
	Data      []byte
}

func (m *Append) Encode(e *Enc) {
	e.ID(m.Topic)
	e.Int32(m.Partition)
	e.Int32(m.Epoch)
	e.Int64(m.Truncate)
	e.Int64(m.Reset)
	e.Int64(m.HW)
	e.TailBytes(m.Data)
}

func (m *Append) encodedSize() int { return 16 + 4 + 4 + 8 + 8 + 8 + 4 }

func (m *Append) Decode(d *Dec) error {
	m.Topic, m.Partition, m.Epoch = d.ID(), d.Int32(), d.Int32()
	m.Truncate, m.Reset, m.HW, m.Data = d.Int64(), d.Int64(), d.Int64(), d.Bytes()
	return d.Done()
}

// AppendResp: the follower's log end once the batches are in its WAL.
type AppendResp struct {
	Code int8
	Msg  string
	LEO  int64
}

func (m *AppendResp) Encode(e *Enc) { e.Int8(m.Code); e.String(m.Msg); e.Int64(m.LEO) }
func (m *AppendResp) Decode(d *Dec) error {
	m.Code, m.Msg, m.LEO = d.Int8(), d.String(), d.Int64()
	return d.Done()
}

// Kafka carries one Kafka request body (kmsg encoding, no header) for
// the called agent's front end to run as the cluster itself: requests
// agents make of each other (WriteTxnMarkers, AddPartitionsToTxn v4+)
// travel here, over the authenticated peer port, not a Kafka listener.
type Kafka struct {
	Key     int16
	Version int16
	Body    []byte
}

func (m *Kafka) Encode(e *Enc) { e.Int16(m.Key); e.Int16(m.Version); e.Bytes(m.Body) }
func (m *Kafka) Decode(d *Dec) error {
	m.Key, m.Version, m.Body = d.Int16(), d.Int16(), d.Bytes()
	return d.Done()
}

// KafkaResp carries the response body, or (Code ≠ OK) why there is none.
type KafkaResp struct {
	Code int8
	Msg  string
	Body []byte
}

func (m *KafkaResp) Encode(e *Enc) { e.Int8(m.Code); e.String(m.Msg); e.Bytes(m.Body) }
func (m *KafkaResp) Decode(d *Dec) error {
	m.Code, m.Msg, m.Body = d.Int8(), d.String(), d.Bytes()
	return d.Done()
}

// Message is any of the above.
type Message interface {
	Encode(*Enc)
	Decode(*Dec) error
}

// Decode parses body into m.
func Decode(body []byte, m Message) error {
	return m.Decode(&Dec{B: body})
}
