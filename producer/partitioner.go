package producer

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// uniformBatchBytes is how many bytes of keyless records go to one partition
// before the partitioner moves on (kgo's default; Java's batch.size plays the
// same role).
const uniformBatchBytes = 64 << 10

// DefaultPartitioner returns the partitioner a Producer uses unless
// WithPartitioner replaces it: a record with a non-nil key (an empty key
// included) goes to partition toPositive(murmur2(key)) % numPartitions over
// all partitions of the topic, as Java's default partitioner does; a record
// with a nil key goes to a partition chosen by the adaptive uniform sticky
// strategy of Java 3.3+ (KIP-794), so keyless records fill large batches
// while spreading evenly over time.
func DefaultPartitioner() kgo.Partitioner {
	// A nil hasher makes kgo use KafkaHasher(murmur2): int(h & 0x7fffffff) % n.
	return kgo.UniformBytesPartitioner(uniformBatchBytes, true, true, nil)
}

// KeyPartition returns the partition that a record with this non-nil key
// goes to in a topic of numPartitions partitions under DefaultPartitioner
// (and under Java's default partitioner). It returns -1 for a nil key, whose
// partition is not a function of the key, or for numPartitions < 1.
func KeyPartition(key []byte, numPartitions int) int32 {
	if key == nil || numPartitions < 1 {
		return -1
	}
	return int32(keyHasher(key, numPartitions))
}

var keyHasher = kgo.KafkaHasher(murmur2)

// murmur2 is Kafka's Utils.murmur2 (MurmurHash2, seed 0x9747b28c). kgo has
// the same function but does not export it; the tests check this copy, kgo's
// partitioner and a literal port of the Java code against each other.
func murmur2(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		b = b[4:]
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// explicitKey marks, in a kgo.Record's Context, the partition the caller
// chose. The Context is used rather than Record.Partition because kgo may
// ask the partitioner twice for one record (KIP-480 new-batch retry).
type explicitKey struct{}

func withExplicitPartition(ctx context.Context, p int32) context.Context {
	return context.WithValue(ctx, explicitKey{}, p)
}

func explicitPartition(r *kgo.Record) (int32, bool) {
	if r.Context == nil {
		return 0, false
	}
	p, ok := r.Context.Value(explicitKey{}).(int32)
	return p, ok
}

// explicitPartitioner honours a partition the caller chose and otherwise
// defers to the wrapped partitioner.
type explicitPartitioner struct{ inner kgo.Partitioner }

func (e explicitPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	inner := e.inner.ForTopic(topic)
	base := explicitTopicPartitioner{inner}
	// kgo looks for these optional interfaces by type assertion, so the
	// wrapper must expose exactly the ones the wrapped partitioner has.
	_, backup := inner.(kgo.TopicBackupPartitioner)
	_, onNew := inner.(kgo.TopicPartitionerOnNewBatch)
	switch {
	case backup && onNew:
		return backupNewBatchPartitioner{backupPartitioner{base}}
	case backup:
		return backupPartitioner{base}
	case onNew:
		return newBatchPartitioner{base}
	default:
		return base
	}
}

type explicitTopicPartitioner struct{ inner kgo.TopicPartitioner }

// RequiresConsistency is true for an explicit partition: the record must go
// there even while that partition is unavailable.
func (e explicitTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	if _, ok := explicitPartition(r); ok {
		return true
	}
	return e.inner.RequiresConsistency(r)
}

// Partition returns the explicit partition when there is one; kgo fails the
// record if it is out of range.
func (e explicitTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if p, ok := explicitPartition(r); ok {
		return int(p)
	}
	return e.inner.Partition(r, n)
}

type backupPartitioner struct{ explicitTopicPartitioner }

// PartitionByBackup is Partition for partitioners that weigh backlog.
func (b backupPartitioner) PartitionByBackup(r *kgo.Record, n int, it kgo.TopicBackupIter) int {
	if p, ok := explicitPartition(r); ok {
		return int(p)
	}
	return b.inner.(kgo.TopicBackupPartitioner).PartitionByBackup(r, n, it)
}

type newBatchPartitioner struct{ explicitTopicPartitioner }

// OnNewBatch forwards to the wrapped partitioner.
func (b newBatchPartitioner) OnNewBatch() { b.inner.(kgo.TopicPartitionerOnNewBatch).OnNewBatch() }

type backupNewBatchPartitioner struct{ backupPartitioner }

// OnNewBatch forwards to the wrapped partitioner.
func (b backupNewBatchPartitioner) OnNewBatch() {
	b.inner.(kgo.TopicPartitionerOnNewBatch).OnNewBatch()
}
