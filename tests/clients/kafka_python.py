"""kafka-python against a tlog agent: admin create, keyed produce with
acks=all, consume from the earliest offset without a group, and print what
was read as `partition key value offset` lines (sorted), for the Go test to
compare; then a consumer group reads everything and commits, and a second
member of the group started afterwards finds nothing left (`group N M`)."""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

addr, topic = sys.argv[1], sys.argv[2]

admin = KafkaAdminClient(bootstrap_servers=addr, client_id="tlog-test")
admin.create_topics([NewTopic(name=topic, num_partitions=3, replication_factor=1)])
admin.close()

producer = KafkaProducer(bootstrap_servers=addr, acks="all", linger_ms=5)
futures = []
for i in range(30):
    key = f"order-{i % 5}".encode()
    futures.append(producer.send(topic, key=key, value=f"status-{i}".encode()))
producer.flush()
acked = [f.get(timeout=10) for f in futures]
producer.close()

consumer = KafkaConsumer(bootstrap_servers=addr, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", consumer_timeout_ms=3000)
parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
consumer.assign(parts)
consumer.seek_to_beginning(*parts)
lines = []
for m in consumer:
    lines.append(f"{m.partition} {m.key.decode()} {m.value.decode()} {m.offset}")
    if len(lines) == len(acked):
        break
consumer.close()

def group_read():
    c = KafkaConsumer(topic, bootstrap_servers=addr, group_id="py-group", enable_auto_commit=False,
                      auto_offset_reset="earliest", consumer_timeout_ms=5000, session_timeout_ms=10000)
    n = 0
    for _ in c:
        n += 1
        if n == len(acked):
            break
    c.commit()
    c.close()
    return n


first = group_read()
second = group_read()

for meta in acked:
    print(f"ack {meta.partition} {meta.offset}")
for l in sorted(lines):
    print(l)
print(f"group {first} {second}")
