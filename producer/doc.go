// Package producer is tlog's Go client for writing records, built on
// franz-go's kgo. It works against tlog and against any Kafka broker.
//
// A Producer sends raw records; a Typed producer adds a key and a value
// Serializer (bytes, string, JSON and protobuf are provided):
//
//	p, err := producer.New([]string{"127.0.0.1:9092"})
//	if err != nil { ... }
//	defer p.Close(context.Background())
//
//	orders := producer.NewTyped(p, producer.String(), producer.JSON[Order]())
//	res, err := orders.Send(ctx, producer.Message[string, Order]{
//		Topic: "orders", Key: "order-1", Value: Order{Status: "prepared"},
//	})
//	// res.Partition, res.Offset
//
// Defaults follow the Java client: acks=all, idempotence on (the broker
// drops retried duplicates), and records with a key go to partition
// toPositive(murmur2(key)) % numPartitions, exactly where Java's default
// partitioner puts them, so Go and Java producers sharing a topic keep each
// key's records in one partition and in order. Records with a nil key are
// spread with the uniform sticky strategy of Java 3.3+ (KIP-794).
//
// Send waits for the acknowledgement; SendAsync calls a callback and
// SendFuture returns a Future. Flush waits for everything buffered; Close
// flushes and releases the client.
package producer
