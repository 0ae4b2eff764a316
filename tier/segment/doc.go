// Package segment is the format of the objects a flusher uploads: one object
// holds the record batches of many partitions plus an index footer, so the
// PUT rate is per agent, not per partition.
//
// Writing: NewWriter, Add per partition (appending again continues it),
// Bytes, then PUT. Reading: Open (footer via one ranged GET of the tail,
// rarely two), Footer.Find, then ReadPartition for all of a partition or
// ReadFrom for whole batches from an offset; Entry.Span, Entry.Verify and
// Cut are its steps, for a cache that fetches blocks itself.
//
// # Object layout
//
//	[data section] [footer] [trailer]
//
// Every integer is big-endian (as in Kafka); "uint" fields are unsigned, the
// rest two's complement. CRCs are CRC-32C (Castagnoli), the checksum Kafka
// uses for RecordBatch v2.
//
// # Data section (bytes [0, dataLen))
//
// For each partition, in footer order (topic id bytes, then partition index,
// ascending), its RecordBatch v2 bytes exactly as they were appended: whole
// batches, offsets dense and ascending, no padding between batches or
// partitions. The bytes are never re-encoded, so fetches serve them as is.
//
// # Trailer (the last TrailerSize = 16 bytes)
//
//	off size field
//	  0    4 footerLen  uint: footer length in bytes, in [FooterHeaderSize, MaxFooterLen]
//	  4    4 footerCRC  uint: CRC-32C of the footer bytes
//	  8    8 magic      "TLOGSEG1"
//
// Fixed size and last, so a reader finds the footer from the object size
// alone: it GETs the last min(size, 64 KiB) bytes, which for most objects
// hold trailer and footer together. The magic sits at the very end (as
// Parquet's does) so the last 8 bytes identify the object type. The footer
// starts at size-16-footerLen.
//
// # Footer, version 1
//
//	off size field
//	  0    2 version    uint, 1; readers refuse other versions (ErrUnsupportedVersion)
//	  2    8 createdAt  int: Unix milliseconds when the writer was created
//	 10    4 agentID    int: the writing agent
//	 14    8 dataLen    uint: data section length (= footer's byte position), <= MaxInt64
//	 22    4 count      uint: number of entries
//	 26      count entries, back to back; nothing may follow the last one
//
// Entry (96 bytes plus the variable parts):
//
//	off size field
//	  0   16 topicID       Kafka topic UUID, not all zero
//	 16    4 partition     int, >= 0
//	 20    4 leaderEpoch   int: epoch of the leader that flushed the partition
//	 24    8 pos           uint: byte position of the partition's data in the object
//	 32    8 len           uint: length of that data, >= 61 (one batch header)
//	 40    4 crc           uint: CRC-32C of the data bytes [pos, pos+len)
//	 44    8 firstOffset   int: base offset of the first batch, >= 0
//	 52    8 lastOffset    int: last offset of the last batch, >= firstOffset
//	 60    8 minTimestamp  int: min over batches of firstTimestamp (maxTimestamp for LogAppendTime batches)
//	 68    8 maxTimestamp  int: max over batches of maxTimestamp, >= minTimestamp
//	 76    8 recordCount   int: sum of the batches' record counts, in [0, lastOffset-firstOffset+1]
//	 84    4 batchCount    uint: number of batches, in [1, min(len/61, lastOffset-firstOffset+1)]
//	 88    4 indexCount    uint: number of sparse index entries, 0 or in [2, batchCount]
//	 92   20×indexCount    sparse index entries
//	  …    4 snapshotLen   uint
//	  …    snapshotLen     producer-state snapshot, opaque to this package
//
// Entries are sorted strictly ascending by (topicID bytes, partition), and
// their data ranges ascend without overlapping and end within dataLen.
//
// Sparse index entry (20 bytes), one per block:
//
//	off size field
//	  0    8 offset  int: base offset of the block's first batch
//	  8    8 pos     uint: block start relative to the partition's pos
//	 16    4 crc     uint: CRC-32C of the block's bytes
//
// A block is a run of whole batches; the writer starts a new one at the
// first batch boundary at or past BlockSize (64 KiB) bytes into the current
// block, so a block is at most 64 KiB plus one batch. A block ends where the
// next begins, the last at len. Block 0 starts at pos 0 with offset
// firstOffset; positions and offsets ascend strictly. The index is written
// only when there are two or more blocks: for a single block it would repeat
// pos, firstOffset and crc.
//
// # Checksums
//
// The footer has its own CRC (in the trailer) and each partition has one
// over its data, plus one per block: a cold read fetches one partition, or
// a few blocks from the middle of one, and must verify what it got without
// reading the rest of the object. A single CRC over the whole data section
// could only be checked by reading everything. Batches carry their own CRC,
// but it skips baseOffset, batchLength and partitionLeaderEpoch, the very
// fields a flipped bit would make a reader misframe or misnumber.
//
// # Robustness
//
// Readers never trust a length or count from the object before checking it
// against the bytes at hand: counts are capped by the remaining bytes divided
// by the smallest encoding of one element, so a corrupt footer cannot make
// them allocate more than a small multiple of its own size. Corruption
// wraps ErrCorrupt.
package segment
