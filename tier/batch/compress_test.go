package batch

import (
	"bytes"
	"testing"
)

// Recompress turns a batch of any codec into any other with the same
// records and header fields, a correct length and CRC, and a records
// section the decompressors (ours, as every client's) read back.
func TestRecompress(t *testing.T) {
	targets := []int8{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}
	for _, cc := range codecCases() {
		src := tsBatch(t, cc, attrTransactional, 5000, 0, 30, -20, 10)
		srcH, _, err := Next(src)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Records(src, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, codec := range targets {
			for _, level := range []int{0, 1} {
				out, err := Recompress(src, codec, level, 1<<20)
				if err != nil {
					t.Fatalf("%s → %d (level %d): %v", cc.name, codec, level, err)
				}
				h, size, err := Next(out) // checks the CRC
				if err != nil || size != len(out) {
					t.Fatalf("%s → %d: %v (size %d of %d)", cc.name, codec, err, size, len(out))
				}
				if h.Compression() != codec || h.Attributes&^attrCompressionMask != srcH.Attributes&^attrCompressionMask || h.FirstTimestamp != srcH.FirstTimestamp ||
					h.MaxTimestamp != srcH.MaxTimestamp || h.ProducerID != srcH.ProducerID || h.NumRecords != srcH.NumRecords {
					t.Fatalf("%s → %d: header %+v from %+v", cc.name, codec, h, srcH)
				}
				got, err := Records(out, 1<<20)
				if err != nil || len(got) != len(want) {
					t.Fatalf("%s → %d: %d records, %v", cc.name, codec, len(got), err)
				}
				for i := range got {
					if got[i].Offset != want[i].Offset || !bytes.Equal(got[i].Key, want[i].Key) || !bytes.Equal(got[i].Value, want[i].Value) {
						t.Fatalf("%s → %d: record %d differs", cc.name, codec, i)
					}
				}
			}
		}
	}
}
