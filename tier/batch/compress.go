package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Recompress returns the batch at the start of b (validated already, as
// ValidateProduce does) with its records compressed with codec at level
// instead (a topic's compression.type, as Kafka's LogValidator recompresses
// on the leader): the same records, producer id, epoch, sequence, offsets,
// timestamps and flags, a new records section, length and CRC. Level 0
// means the codec's default (Kafka's compression.*.level defaults). A batch
// already in codec is returned as it is. maxInflated bounds decompressing
// the original.
func Recompress(b []byte, codec int8, level int, maxInflated int) ([]byte, error) {
	h, size, err := Next(b)
	if err != nil {
		return nil, err
	}
	if h.Compression() == codec {
		return b, nil
	}
	raw := b[HeaderSize:size]
	if c := h.Compression(); c != CompressionNone {
		if raw, err = decompress(c, raw, maxInflated, nil); err != nil {
			return nil, err
		}
	}
	body, err := compressRecords(codec, level, raw)
	if err != nil {
		return nil, err
	}
	out := make([]byte, HeaderSize, HeaderSize+len(body))
	copy(out, b[:HeaderSize])
	out = append(out, body...)
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-lengthOverhead))
	attrs := binary.BigEndian.Uint16(out[offAttributes:])
	attrs = attrs&^attrCompressionMask | uint16(codec)
	binary.BigEndian.PutUint16(out[offAttributes:], attrs)
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[crcStart:], castagnoli))
	return out, nil
}

// compressRecords encodes a records section with codec: gzip, snappy in
// snappy-java's (xerial) framing as Kafka's own producer and broker write
// it, the LZ4 frame format, or zstd.
func compressRecords(codec int8, level int, raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch codec {
	case CompressionNone:
		return raw, nil
	case CompressionGzip:
		if level == 0 {
			level = gzip.DefaultCompression
		}
		w, err := gzip.NewWriterLevel(&buf, level)
		if err != nil {
			return nil, fmt.Errorf("batch: gzip level %d: %w", level, err)
		}
		if _, err := w.Write(raw); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case CompressionSnappy:
		buf.Write(xerialPrefix)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1}) // version 1, compatible version 1
		const block = 32 << 10                    // snappy-java's default block size
		for p := 0; p < len(raw); p += block {
			enc := s2.EncodeSnappy(nil, raw[p:min(p+block, len(raw))])
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(enc))))
			buf.Write(enc)
		}
	case CompressionLZ4:
		w := lz4.NewWriter(&buf)
		if level != 0 {
			if err := w.Apply(lz4.CompressionLevelOption(lz4Level(level))); err != nil {
				return nil, fmt.Errorf("batch: lz4 level %d: %w", level, err)
			}
		}
		if _, err := w.Write(raw); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case CompressionZstd:
		enc, err := zstdEncoder(level)
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(raw, nil), nil
	default:
		return nil, fmt.Errorf("batch: unknown codec %d: %w", codec, ErrInvalidRecord)
	}
	return buf.Bytes(), nil
}

// zstdEncoders holds one encoder per level: EncodeAll may be called
// concurrently, and building an encoder costs more than a batch.
var zstdEncoders sync.Map // int → *zstd.Encoder

func zstdEncoder(level int) (*zstd.Encoder, error) {
	if e, ok := zstdEncoders.Load(level); ok {
		return e.(*zstd.Encoder), nil
	}
	opts := []zstd.EOption{zstd.WithEncoderConcurrency(1)}
	if level != 0 {
		opts = append(opts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
	}
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("batch: zstd level %d: %w", level, err)
	}
	e, _ := zstdEncoders.LoadOrStore(level, enc)
	return e.(*zstd.Encoder), nil
}

// lz4Level maps Kafka's compression.lz4.level (1-17, 9 the default) to the
// library's levels: up to 9, the fast compressor (what Kafka's lz4 was
// before levels existed; the library's high-compression level 9 ran at a
// tenth of its speed here, docs/benchmarks.md); 10-17, its
// high-compression levels 1-8.
func lz4Level(level int) lz4.CompressionLevel {
	if level <= 9 {
		return lz4.Fast
	}
	return lz4.CompressionLevel(1 << (8 + min(level-9, 8)))
}
