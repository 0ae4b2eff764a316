#!/usr/bin/env python3
"""Compacted topics through confluent-kafka (librdkafka) against tlog.

  confluent_compacted.py BOOTSTRAP produce TOPIC...   Kafka Connect-style
      writes: keyed records (each key overwritten ten times, every fifth
      key deleted by a tombstone at the end) to each topic, then one
      record without a key, which must be refused; prints "keyless refused:
      <error>" and "produced N".
  confluent_compacted.py BOOTSTRAP read TOPIC...      a fresh consumer reads
      each topic from the beginning to its end and prints, per topic,
      "TOPIC key=value ..." of the last value read per key (deleted keys
      left out) and "TOPIC records=N" (how many records it read).
"""
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

bootstrap, mode, topics = sys.argv[1], sys.argv[2], sys.argv[3:]

if mode == "produce":
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    errors = []
    n = 0
    for topic in topics:
        for rnd in range(10):
            for k in range(20):
                p.produce(topic, key=f"{topic}-k{k}".encode(), value=f"{topic}-v{rnd}".encode(),
                          on_delivery=lambda err, m: errors.append(err) if err else None)
                n += 1
            p.flush(10)
        for k in range(0, 20, 5):
            p.produce(topic, key=f"{topic}-k{k}".encode(), value=None,
                      on_delivery=lambda err, m: errors.append(err) if err else None)
            n += 1
        p.flush(10)
    if errors:
        print("delivery errors:", errors)
        sys.exit(1)
    refused = []
    p.produce(topics[0], value=b"no key", on_delivery=lambda err, m: refused.append(err))
    p.flush(10)
    if not refused or refused[0] is None:
        print("a record without a key was accepted")
        sys.exit(1)
    print("keyless refused:", refused[0])
    print("produced", n)
    sys.exit(0)

c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compacted-reader-%d" % time.time(),
              "enable.auto.commit": False, "enable.partition.eof": True})
for topic in topics:
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    latest, records = {}, 0
    deadline = time.time() + 30
    done = hi == 0
    while not done and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                done = True
                continue
            print("error:", m.error())
            sys.exit(1)
        records += 1
        if m.value() is None:
            latest.pop(m.key().decode(), None)
        else:
            latest[m.key().decode()] = m.value().decode()
        if m.offset() >= hi - 1:
            done = True
    if not done:
        print(topic, "did not reach its end", hi)
        sys.exit(1)
    print(topic, " ".join(f"{k}={v}" for k, v in sorted(latest.items())))
    print(f"{topic} records={records}")
c.close()
