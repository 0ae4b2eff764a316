#!/usr/bin/env python3
"""Transactions through confluent-kafka (librdkafka) against tlog.

  confluent_txn.py BOOTSTRAP commit-abort TOPIC
      commits one transaction (a-0..a-4), aborts another (b-0..b-4), then
      prints what a read_committed and a read_uncommitted consumer read:
      "committed v..." and "uncommitted v...".

  confluent_txn.py BOOTSTRAP ctp IN OUT GROUP TXN_ID [DELAY]
      consume-transform-produce: reads IN as GROUP (read_committed), writes
      each value upper-cased to OUT and commits the input offsets in the
      same transaction (send_offsets_to_transaction), 10 records per
      transaction, sleeping DELAY seconds after each; prints "txn N" after
      each commit; exits once nothing new arrived for 3 seconds after it was
      first assigned partitions.
"""
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition


def drain(bootstrap, topic, isolation):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                  "isolation.level": isolation})
    parts = c.list_topics(topic, 10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(parts)])
    out, idle = [], time.time()
    while time.time() - idle < 3:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        out.append(m.value().decode())
        idle = time.time()
    c.close()
    return out


def commit_abort(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "py-commit-abort"})
    p.init_transactions(30)
    for prefix, commit in (("a", True), ("b", False)):
        p.begin_transaction()
        for i in range(5):
            p.produce(topic, ("%s-%d" % (prefix, i)).encode())
        if commit:
            p.commit_transaction(30)
        else:
            p.flush(30)
            p.abort_transaction(30)
    print("committed", " ".join(drain(bootstrap, topic, "read_committed")), flush=True)
    print("uncommitted", " ".join(drain(bootstrap, topic, "read_uncommitted")), flush=True)


def ctp(bootstrap, src, dst, group, txn_id, delay):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "session.timeout.ms": 6000})
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id})
    p.init_transactions(30)
    assigned = []
    c.subscribe([src], on_assign=lambda _c, parts: assigned.append(parts))
    n, idle, start = 0, None, time.time()
    while idle is None or time.time() - idle < 3:
        if idle is None and assigned:
            idle = time.time()  # the 3 s of quiet count from the first assignment
        if time.time() - start > 60:
            sys.exit("no assignment within 60 s")
        msgs = c.consume(10, 0.5)
        msgs = [m for m in msgs if m.error() is None]
        if not msgs:
            continue
        idle = time.time()
        p.begin_transaction()
        for m in msgs:
            p.produce(dst, m.value().decode().upper().encode(), key=m.key())
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        n += 1
        print("txn", n, flush=True)
        time.sleep(delay)
    c.close()


def main():
    bootstrap, mode = sys.argv[1], sys.argv[2]
    if mode == "commit-abort":
        commit_abort(bootstrap, sys.argv[3])
    elif mode == "ctp":
        delay = float(sys.argv[7]) if len(sys.argv) > 7 else 0
        ctp(bootstrap, sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], delay)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
