package producer

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// javaMurmur2 is a literal port of Kafka's Utils.murmur2 (clients, since
// 0.8.2), keeping Java's signed 32-bit int arithmetic: Go's int32 wraps on
// overflow as Java's int does, and Java's >>> is a shift of the unsigned
// bits.
func javaMurmur2(data []byte) int32 {
	length := int32(len(data))
	seed := int32(-1756908916) // 0x9747b28c as a Java int
	const m = int32(0x5bd1e995)
	const r = 24
	ushr := func(x int32, n uint) int32 { return int32(uint32(x) >> n) } // Java >>>
	b := func(i int32) int32 { return int32(data[i]) & 0xff }            // Java (byte & 0xff)

	h := seed ^ length
	length4 := length / 4
	for i := int32(0); i < length4; i++ {
		i4 := i * 4
		k := b(i4+0) + (b(i4+1) << 8) + (b(i4+2) << 16) + (b(i4+3) << 24)
		k *= m
		k ^= ushr(k, r)
		k *= m
		h *= m
		h ^= k
	}
	switch length % 4 {
	case 3:
		h ^= b((length&^3)+2) << 16
		fallthrough
	case 2:
		h ^= b((length&^3)+1) << 8
		fallthrough
	case 1:
		h ^= b(length &^ 3)
		h *= m
	}
	h ^= ushr(h, 13)
	h *= m
	h ^= ushr(h, 15)
	return h
}

// javaToPositive is Utils.toPositive.
func javaToPositive(n int32) int32 { return n & 0x7fffffff }

// javaPartition is BuiltInPartitioner.partitionForKey (DefaultPartitioner
// before Kafka 3.3): toPositive(murmur2(keyBytes)) % numPartitions.
func javaPartition(key []byte, n int) int32 { return javaToPositive(javaMurmur2(key)) % int32(n) }

// Published values of Utils.murmur2, from Kafka's UtilsTest.testMurmur2.
var publishedMurmur2 = []struct {
	key  string
	hash int32
}{
	{"21", -973932308},
	{"foobar", -790332482},
	{"a-little-bit-long-string", -985981536},
	{"a-little-bit-longer-string", -1486304829},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
	{"abc", 479470107},
}

func TestMurmur2PublishedValues(t *testing.T) {
	for _, c := range publishedMurmur2 {
		if got := javaMurmur2([]byte(c.key)); got != c.hash {
			t.Errorf("java port: murmur2(%q) = %d, published %d", c.key, got, c.hash)
		}
		if got := int32(murmur2([]byte(c.key))); got != c.hash {
			t.Errorf("murmur2(%q) = %d, published %d", c.key, got, c.hash)
		}
	}
}

var partitionCounts = []int{1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32, 50, 64, 100, 128, 1000}

// testKeys covers every tail length (0–3 bytes after the 4-byte blocks),
// bytes with the high bit set (signed in Java), and typical keys.
func testKeys() [][]byte {
	keys := [][]byte{
		{}, []byte("a"), []byte("ab"), []byte("abc"), []byte("abcd"), []byte("abcde"),
		[]byte("order-1"), []byte("order-2"), []byte("order-42"), []byte("user-1"),
		[]byte("customer:8d3c0e61"), []byte("ñandú"), []byte("日本語のキー"),
		{0x00}, {0xff}, {0x80, 0x7f}, {0xff, 0xfe, 0xfd}, {0xde, 0xad, 0xbe, 0xef},
		{0xde, 0xad, 0xbe, 0xef, 0x01}, bytes.Repeat([]byte{0xa5}, 257),
	}
	for _, c := range publishedMurmur2 {
		keys = append(keys, []byte(c.key))
	}
	for i := range 50 {
		keys = append(keys, fmt.Appendf(nil, "key-%d", i))
	}
	return keys
}

// The partition of a published hash, for every count, without the Java port.
func TestPublishedPartitions(t *testing.T) {
	for _, c := range publishedMurmur2 {
		for _, n := range partitionCounts {
			want := (c.hash & 0x7fffffff) % int32(n)
			if got := KeyPartition([]byte(c.key), n); got != want {
				t.Errorf("KeyPartition(%q, %d) = %d, want %d", c.key, n, got, want)
			}
		}
	}
	// A few spelled out: "21" hashes negative, so the mask matters
	// (abs() would differ): -973932308 & 0x7fffffff = 1173551340.
	for _, c := range []struct {
		key  string
		n    int
		want int32
	}{
		{"21", 3, 0}, {"21", 7, 1173551340 % 7}, {"21", 100, 40},
		{"abc", 10, 7}, {"abc", 6, 479470107 % 6},
		{"foobar", 12, (-790332482 & 0x7fffffff) % 12},
	} {
		if got := KeyPartition([]byte(c.key), c.n); got != c.want {
			t.Errorf("KeyPartition(%q, %d) = %d, want %d", c.key, c.n, got, c.want)
		}
	}
}

type fakeBackup struct{ n, i int }

func (f *fakeBackup) Next() (int, int64) { f.i++; return f.i - 1, 0 }
func (f *fakeBackup) Rem() int           { return f.n - f.i }

// partitionWith asks a kgo TopicPartitioner as the kgo producer does.
func partitionWith(tp kgo.TopicPartitioner, r *kgo.Record, n int) int {
	if b, ok := tp.(kgo.TopicBackupPartitioner); ok {
		return b.PartitionByBackup(r, n, &fakeBackup{n: n})
	}
	return tp.Partition(r, n)
}

// The partitioner the Producer installs, kgo's StickyKeyPartitioner and
// KeyPartition all put keys where Java's DefaultPartitioner does.
func TestKeyPartitionMatchesJava(t *testing.T) {
	installed := explicitPartitioner{DefaultPartitioner()}.ForTopic("t")
	sticky := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	checked := 0
	for _, key := range testKeys() {
		if got, want := int32(murmur2(key)), javaMurmur2(key); got != want {
			t.Fatalf("murmur2(%x) = %d, java %d", key, got, want)
		}
		for _, n := range partitionCounts {
			want := javaPartition(key, n)
			r := &kgo.Record{Key: key}
			if !installed.RequiresConsistency(r) {
				t.Fatalf("key %x: installed partitioner does not require consistency", key)
			}
			if got := partitionWith(installed, r, n); int32(got) != want {
				t.Errorf("installed partitioner: key %x, %d partitions: %d, java %d", key, n, got, want)
			}
			if got := partitionWith(sticky, r, n); int32(got) != want {
				t.Errorf("StickyKeyPartitioner: key %x, %d partitions: %d, java %d", key, n, got, want)
			}
			if got := KeyPartition(key, n); got != want {
				t.Errorf("KeyPartition: key %x, %d partitions: %d, java %d", key, n, got, want)
			}
			checked++
		}
	}
	t.Logf("%d key/partition-count pairs agree with the Java port", checked)
}

// Java hashes an empty key (non-null) and spreads a null key; so must we.
func TestNullAndEmptyKey(t *testing.T) {
	p := explicitPartitioner{DefaultPartitioner()}.ForTopic("t")
	if p.RequiresConsistency(&kgo.Record{Key: nil}) {
		t.Fatal("nil key requires consistency: it would be hashed, not spread")
	}
	if KeyPartition(nil, 8) != -1 {
		t.Fatal("KeyPartition(nil) should be -1")
	}
	for _, n := range partitionCounts {
		r := &kgo.Record{Key: []byte{}}
		if got, want := int32(partitionWith(p, r, n)), javaPartition([]byte{}, n); got != want {
			t.Errorf("empty key, %d partitions: %d, java %d", n, got, want)
		}
	}
	// Keyless records stick to a partition for a while, then move: over
	// enough bytes they must reach more than one partition.
	seen := map[int]bool{}
	val := make([]byte, 4096)
	for range 2000 {
		seen[partitionWith(p, &kgo.Record{Value: val}, 8)] = true
	}
	if len(seen) < 2 {
		t.Fatalf("nil-key records all went to %v", seen)
	}
	// The String serializer must keep "" a non-nil (hashed) key.
	b, err := String().Serialize("t", "")
	if err != nil || b == nil {
		t.Fatalf("String().Serialize(\"\") = %v, %v; want empty non-nil", b, err)
	}
}

func TestExplicitPartitionWrapper(t *testing.T) {
	p := explicitPartitioner{DefaultPartitioner()}.ForTopic("t")
	if _, ok := p.(kgo.TopicBackupPartitioner); !ok {
		t.Fatal("wrapper hides PartitionByBackup of the uniform partitioner")
	}
	r := &kgo.Record{Key: []byte("order-1"), Context: withExplicitPartition(t.Context(), 5)}
	if !p.RequiresConsistency(r) {
		t.Fatal("explicit partition must require consistency")
	}
	for range 3 { // asked again on a new batch: same answer
		if got := partitionWith(p, r, 8); got != 5 {
			t.Fatalf("explicit partition 5 partitioned to %d", got)
		}
	}
	// Wrapping partitioners with and without the optional interfaces.
	for _, inner := range []kgo.Partitioner{kgo.StickyKeyPartitioner(nil), kgo.ManualPartitioner(), kgo.RoundRobinPartitioner(), kgo.LeastBackupPartitioner()} {
		w := explicitPartitioner{inner}.ForTopic("t")
		_, wb := w.(kgo.TopicBackupPartitioner)
		_, ib := inner.ForTopic("t").(kgo.TopicBackupPartitioner)
		_, wn := w.(kgo.TopicPartitionerOnNewBatch)
		_, in := inner.ForTopic("t").(kgo.TopicPartitionerOnNewBatch)
		if wb != ib || wn != in {
			t.Errorf("%T: wrapper backup=%v newBatch=%v, inner %v %v", inner, wb, wn, ib, in)
		}
		if got := partitionWith(w, r, 8); got != 5 {
			t.Errorf("%T: explicit partition 5 partitioned to %d", inner, got)
		}
	}
}
