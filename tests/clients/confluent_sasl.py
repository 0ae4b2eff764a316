#!/usr/bin/env python3
"""SASL through confluent-kafka (librdkafka) against tlog.

  confluent_sasl.py BOOTSTRAP PROTOCOL MECHANISM USER PASSWORD TOPIC

produces five records (s-0..s-4) with the given security.protocol and
sasl.mechanism, reads them back and prints "read v...". With wrong
credentials it prints "auth-failed: ..." and exits 3 once librdkafka
reports the authentication error (or after 20 seconds without one).
"""
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

bootstrap, protocol, mechanism, user, password, topic = sys.argv[1:7]
conf = {"bootstrap.servers": bootstrap, "security.protocol": protocol, "sasl.mechanism": mechanism,
        "sasl.username": user, "sasl.password": password}
failed = []


def on_error(err):
    if err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
        failed.append(str(err))


p = Producer(dict(conf, error_cb=on_error))
delivered = []
for i in range(5):
    p.produce(topic, value=f"s-{i}".encode(), on_delivery=lambda err, m: delivered.append(err))
deadline = time.time() + 20
while len(delivered) < 5 and not failed and time.time() < deadline:
    p.poll(0.2)
if failed or len(delivered) < 5:
    print("auth-failed:", failed[0] if failed else "no delivery within 20 s")
    sys.exit(3)
if any(e is not None for e in delivered):
    print("delivery errors:", delivered)
    sys.exit(1)

c = Consumer(dict(conf, **{"group.id": "sasl-reader", "enable.auto.commit": False}))
c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
out, deadline = [], time.time() + 20
while len(out) < 5 and time.time() < deadline:
    m = c.poll(0.2)
    if m is not None and not m.error():
        out.append(m.value().decode())
c.close()
print("read", " ".join(out))
