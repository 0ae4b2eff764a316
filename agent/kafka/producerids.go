package kafka

// Producer ids bound to principals. An id is a counter from the
// controller's journaled blocks in the high bits and, for an idempotent
// producer, a MAC of the principal that asked for it in the low 24 bits
// (HMAC-SHA256 under the cluster's ProducerIDKey, kept in the journal).
// With an authorizer, a non-transactional batch whose producer id was not
// made for the connection's principal is refused: one client cannot
// write into, or bump the epoch of (fence), another's idempotent session
// by guessing its id. Transactional ids are guarded by the transactional
// id's WRITE ACL and the coordinator's check of every batch instead.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// pidMACBits is how many low bits of a producer id carry the MAC; the
// counter has the 39 above them (5.5 * 10^11 ids).
const pidMACBits = 24

// pidMAC is the MAC of principal and counter.
func pidMAC(key []byte, principal string, counter int64) int64 {
	m := hmac.New(sha256.New, key)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], uint64(counter))
	m.Write(c[:])
	m.Write([]byte(principal))
	sum := m.Sum(nil)
	return int64(sum[0])<<16 | int64(sum[1])<<8 | int64(sum[2])
}

// idempotentProducerID marks base (an id from the backend, low bits
// zero) as principal's.
func (s *Server) idempotentProducerID(principal string, base int64) int64 {
	key := s.b.State().ProducerIDKey
	if len(key) == 0 {
		return base
	}
	return base | pidMAC(key, principal, base>>pidMACBits)
}

// producerIDBound says whether the request's principal may write with
// idempotent producer id pid: always without an authorizer or as a super
// user; otherwise only if the id was made for this principal.
func (r *request) producerIDBound(pid int64) bool {
	if !r.c.s.cfg.Authorizer || r.superUser() || pid < 0 {
		return true
	}
	key := r.c.s.b.State().ProducerIDKey
	if len(key) == 0 {
		return true
	}
	return pid&(1<<pidMACBits-1) == pidMAC(key, r.Principal(), pid>>pidMACBits)
}
