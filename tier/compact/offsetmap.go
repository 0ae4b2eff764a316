// Package compact holds the pieces of key compaction (cleanup.policy=
// compact) that need no agent: the bounded map from record keys to the
// latest offset that holds them.
package compact

import (
	"crypto/sha256"
	"encoding/binary"
)

// slotSize is one entry: a 16-byte key hash and an 8-byte offset.
const (
	hashSize = 16
	slotSize = hashSize + 8
)

// loadFactor is how full the table may get (Kafka's
// log.cleaner.io.buffer.load.factor).
const loadFactor = 0.9

// OffsetMap maps record keys to the latest offset seen for them within a
// fixed memory budget, as Kafka's cleaner's SkimpyOffsetMap does: keys
// are kept as 16-byte hashes (of SHA-256: a collision, which would make
// one key's record count as another's, is out of reach), in one
// open-addressing table allocated up front, so the map never grows past
// its budget. When it is full the compactor cleans up to the offsets it
// holds and starts another pass from there.
type OffsetMap struct {
	slots    []byte // len(slots)/slotSize slots; an all-zero hash is empty
	n        int    // slots used
	capacity int    // slots that may be used
	latest   int64  // the largest offset put, -1 if none
}

// NewOffsetMap makes a map using at most budget bytes (at least one
// slot's worth).
func NewOffsetMap(budget int) *OffsetMap {
	slots := max(budget/slotSize, 2)
	return &OffsetMap{
		slots:    make([]byte, slots*slotSize),
		capacity: max(int(float64(slots)*loadFactor), 1),
		latest:   -1,
	}
}

func keyHash(key []byte) [hashSize]byte {
	sum := sha256.Sum256(key)
	var h [hashSize]byte
	copy(h[:], sum[:hashSize])
	if h == ([hashSize]byte{}) {
		h[0] = 1 // the all-zero hash marks an empty slot
	}
	return h
}

// find returns the slot index holding h, or the empty one where it would
// go.
func (m *OffsetMap) find(h [hashSize]byte) (int, bool) {
	nslots := len(m.slots) / slotSize
	i := int(binary.BigEndian.Uint64(h[:8]) % uint64(nslots))
	for {
		s := m.slots[i*slotSize : i*slotSize+hashSize]
		if [hashSize]byte(s) == h {
			return i, true
		}
		if [hashSize]byte(s) == ([hashSize]byte{}) {
			return i, false
		}
		if i++; i == nslots {
			i = 0
		}
	}
}

// Put records offset as key's latest. It returns false, changing
// nothing, when key is new and the map is full.
func (m *OffsetMap) Put(key []byte, offset int64) bool {
	h := keyHash(key)
	i, found := m.find(h)
	if !found {
		if m.n >= m.capacity {
			return false
		}
		copy(m.slots[i*slotSize:], h[:])
		m.n++
	}
	binary.BigEndian.PutUint64(m.slots[i*slotSize+hashSize:], uint64(offset))
	m.latest = max(m.latest, offset)
	return true
}

// Get is key's latest offset, if the map has the key.
func (m *OffsetMap) Get(key []byte) (int64, bool) {
	i, found := m.find(keyHash(key))
	if !found {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(m.slots[i*slotSize+hashSize:])), true
}

// Len is how many keys the map holds; Full says no new key fits.
func (m *OffsetMap) Len() int   { return m.n }
func (m *OffsetMap) Full() bool { return m.n >= m.capacity }

// Latest is the largest offset put (-1 if none): the map knows every
// key's latest offset up to it.
func (m *OffsetMap) Latest() int64 { return m.latest }

// Clear empties the map for another pass, keeping its memory.
func (m *OffsetMap) Clear() {
	clear(m.slots)
	m.n, m.latest = 0, -1
}
