package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// errTooBig is wrapped (with ErrCorrupt) when a payload would decompress
// past the caller's cap.
var errTooBig = errors.New("decompressed size exceeds limit")

// decompress returns the records section src of a batch compressed with
// codec (gzip, snappy, lz4 or zstd), refusing to produce more than limit
// bytes: a payload that would decompress further fails as soon as that is
// known, so allocations stay within a small multiple of limit (plus codec
// state, such as lz4's pooled block buffers of up to 4 MiB). The output
// goes into dst's storage when it fits (dst may be nil). Every error wraps
// ErrCorrupt, and one past the limit errTooBig too.
func decompress(codec int8, src []byte, limit int, dst []byte) ([]byte, error) {
	limit = max(limit, 0)
	var (
		out []byte
		err error
	)
	switch codec {
	case CompressionGzip:
		out, err = decompressGzip(src, limit, dst)
	case CompressionSnappy:
		out, err = decompressSnappy(src, limit, dst)
	case CompressionLZ4:
		out, err = decompressLZ4(src, limit, dst)
	case CompressionZstd:
		out, err = decompressZstd(src, limit, dst)
	default:
		err = fmt.Errorf("unknown codec %d", codec)
	}
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("batch: decompress codec %d: %w: %w", codec, err, ErrCorrupt)
	}
	return out, nil
}

// readBounded reads r to EOF into dst's storage (growing it by doubling
// when it runs out, never past limit+1 bytes), failing with errTooBig once
// more than limit bytes come out. The check is made as the data streams,
// so a bomb costs at most limit+1 bytes of buffer.
func readBounded(r io.Reader, srcLen, limit int, dst []byte) ([]byte, error) {
	hard := int64(limit) + 1
	buf := dst[:0]
	if int64(cap(buf)) > hard {
		buf = buf[:0:hard]
	}
	if cap(buf) == 0 {
		buf = make([]byte, 0, min(int64(srcLen)*4+512, hard))
	}
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= hard {
				return nil, fmt.Errorf("more than %d bytes: %w", limit, errTooBig)
			}
			next := min(int64(cap(buf))*2, hard)
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		if n < 0 || n > cap(buf)-len(buf) {
			return nil, fmt.Errorf("reader returned %d bytes", n)
		}
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if len(buf) > limit {
				return nil, fmt.Errorf("more than %d bytes: %w", limit, errTooBig)
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// gzip readers are pooled: each holds a 32 KiB window and Huffman tables.
var gzipReaders sync.Pool

func decompressGzip(src []byte, limit int, dst []byte) ([]byte, error) {
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		if zr, err = gzip.NewReader(bytes.NewReader(src)); err != nil {
			return nil, err
		}
	} else if err = zr.Reset(bytes.NewReader(src)); err != nil {
		gzipReaders.Put(zr)
		return nil, err
	}
	defer gzipReaders.Put(zr)
	return readBounded(zr, len(src), limit, dst)
}

// lz4 readers are pooled: each holds up to two block buffers (of up to 4 MiB
// each, by the frame's block size), which Reset hands back to lz4's own
// pools.
var lz4Readers = sync.Pool{New: func() any { return lz4.NewReader(nil) }}

func decompressLZ4(src []byte, limit int, dst []byte) ([]byte, error) {
	zr := lz4Readers.Get().(*lz4.Reader)
	defer func() {
		zr.Reset(nil)
		lz4Readers.Put(zr)
	}()
	zr.Reset(bytes.NewReader(src))
	return readBounded(zr, len(src), limit, dst)
}

// xerialPrefix starts snappy data framed by the Java client's
// snappy-java SnappyOutputStream: the magic, then two 4-byte versions, then
// blocks of a big-endian length and a raw snappy block. Other clients send
// one raw snappy block. franz-go's kgo tells them apart the same way.
var xerialPrefix = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderLen = 16

func decompressSnappy(src []byte, limit int, dst []byte) ([]byte, error) {
	if len(src) > xerialHeaderLen && bytes.HasPrefix(src, xerialPrefix) {
		return decodeXerial(src[xerialHeaderLen:], limit, dst)
	}
	// The decoded length leads the block and is allocated up front, so
	// bound it before decoding.
	l, err := s2.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if l > limit {
		return nil, fmt.Errorf("snappy block claims %d bytes, limit %d: %w", l, limit, errTooBig)
	}
	return s2.Decode(dst[:cap(dst)], src) // uses dst when it is long enough
}

// decodeXerial decodes xerial blocks (after the header), summing the
// blocks' claimed lengths against limit before allocating anything.
func decodeXerial(src []byte, limit int, dst []byte) ([]byte, error) {
	var total int64
	for rem := src; len(rem) > 0; {
		if len(rem) < 4 {
			return nil, errors.New("xerial: truncated block length")
		}
		size := int64(binary.BigEndian.Uint32(rem))
		rem = rem[4:]
		if size > int64(len(rem)) {
			return nil, fmt.Errorf("xerial: block of %d bytes, %d left", size, len(rem))
		}
		l, err := s2.DecodedLen(rem[:size])
		if err != nil {
			return nil, err
		}
		if total += int64(l); total > int64(limit) {
			return nil, fmt.Errorf("xerial blocks claim more than %d bytes: %w", limit, errTooBig)
		}
		rem = rem[size:]
	}
	out := dst[:0]
	if int64(cap(out)) < total {
		out = make([]byte, 0, total)
	}
	for len(src) > 0 {
		size := int(binary.BigEndian.Uint32(src))
		block := src[4 : 4+size]
		src = src[4+size:]
		l, err := s2.DecodedLen(block)
		if err != nil {
			return nil, err
		}
		if _, err := s2.Decode(out[len(out):len(out)+l], block); err != nil {
			return nil, err
		}
		out = out[:len(out)+l]
	}
	return out, nil
}

// zstd decoders are costly to build and are tied to their size limit, so
// they are pooled per limit, for a few limits at a time.
var zstdPools struct {
	mu sync.Mutex
	m  map[int]*sync.Pool
}

type zstdDecoder struct{ d *zstd.Decoder }

func zstdPool(limit int) *sync.Pool {
	zstdPools.mu.Lock()
	defer zstdPools.mu.Unlock()
	if p := zstdPools.m[limit]; p != nil {
		return p
	}
	if zstdPools.m == nil || len(zstdPools.m) >= 4 {
		zstdPools.m = make(map[int]*sync.Pool)
	}
	p := &sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			// Bounds the declared frame size, the window and the
			// output as it grows, over all frames.
			zstd.WithDecoderMaxMemory(uint64(limit)),
		)
		if err != nil {
			return nil
		}
		zd := &zstdDecoder{d}
		runtime.AddCleanup(zd, func(d *zstd.Decoder) { d.Close() }, d)
		return zd
	}}
	zstdPools.m[limit] = p
	return p
}

func decompressZstd(src []byte, limit int, dst []byte) ([]byte, error) {
	pool := zstdPool(max(limit, 1)) // the option needs at least 1
	zd, _ := pool.Get().(*zstdDecoder)
	if zd == nil {
		return nil, errors.New("zstd: cannot create decoder")
	}
	defer pool.Put(zd)
	out, err := zd.d.DecodeAll(src, dst[:0])
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return nil, fmt.Errorf("%w: %w", errTooBig, err)
	}
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("more than %d bytes: %w", limit, errTooBig)
	}
	return out, nil
}
