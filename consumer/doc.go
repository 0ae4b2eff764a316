// Package consumer is tlog's Go client for reading records, built on
// franz-go's kgo. It works against tlog and against any Kafka broker.
//
// A Consumer reads in one of two modes:
//
//   - Assignment mode (WithAssignment): the application names topics and
//     partitions and where to start (an offset, Earliest, Latest, or a time,
//     resolved with ListOffsets). There is no broker-side group, so the
//     application keeps its position: after processing, the consumer saves
//     the next offset of each partition to an OffsetStore (MemoryStore,
//     FileStore, or your own, e.g. a table written in the same transaction
//     as the results), and a restarted consumer resumes from it.
//
//   - Group mode (WithGroup): the broker's group coordinator spreads the
//     partitions of the subscribed topics over the members of a consumer
//     group and keeps committed offsets. Each group reads every record
//     independently of other groups. A member joins when its first Run
//     starts and leaves at Close. WithGroupProtocol("consumer") uses the
//     KIP-848 protocol, where the broker assigns partitions; the default
//     is the classic protocol. SupportsGroups reports whether a broker
//     serves groups at all.
//
// Run(ctx, handler) is the processing loop. It polls a batch (at most
// WithMaxPollRecords records), calls the handler for each record in
// partition order, and then saves or commits the positions reached:
// at-least-once. A record is never marked processed before its handler
// returned nil, so a crash or a handler error only replays records after the
// last saved position (the uncommitted tail). WithAtMostOnce saves the
// positions past the whole batch before the handler runs: a crash then
// skips the rest of the batch rather than replaying it.
//
// In group mode a rebalance cannot interrupt a batch: it waits until the
// batch is processed, and the positions processed are committed before the
// partitions are revoked, so the next owner starts exactly after them.
//
// Seek moves a partition (SeekAll every assigned partition) to an offset,
// Earliest, Latest or a time; Run applies it before the next record and
// drops what was already fetched past it. Seek to Earliest replays a
// partition.
//
// Typed adapts a handler of typed messages with key and value
// Deserializers (bytes, string, JSON and protobuf are provided); a record
// that does not deserialize stops Run with a *DeserializeError, not a panic.
package consumer
