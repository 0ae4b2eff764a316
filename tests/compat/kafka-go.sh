#!/usr/bin/env bash
# Runs segmentio/kafka-go's own SASL tests (package sasl: PLAIN,
# SCRAM-SHA-256 and SCRAM-SHA-512 logins that must succeed, fail with a
# wrong password, and work again on the same mechanism) against a fresh
# `tlog dev` with a SASL_PLAINTEXT listener where the suite expects it,
# localhost:9093, and the users and topic its CI sets up, created with
# `tlog user`: adminplain (admin-secret); for its Kafka 4 environment
# (KAFKA_VERSION=4.0.0) adminscram256 (SCRAM-SHA-256, admin-secret-256) and
# adminscram512 (SCRAM-SHA-512, admin-secret-512); for older ones
# (KAFKA_VERSION=3.7.0) one user, adminscram, with a different password per
# mechanism; and the topic test-writer-0. The suite runs once per
# environment, and a skipped test fails the run.
#
#   bash tests/compat/kafka-go.sh
#
# The suite is fetched through the Go module proxy into a scratch module
# (kafka-go is not a dependency of tlog). Port 9093 must be free.
#
# Environment:
#   TLOG_LOG_LEVEL    tlog's --log-level (default info)
#   KAFKA_GO_VERSION  the kafka-go release (default v0.4.51)
set -euo pipefail

version=${KAFKA_GO_VERSION:-v0.4.51}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlog-kafka-go.XXXXXX")
# shellcheck source=lib.sh
. "$root/tests/compat/lib.sh"
cd "$root"

if (exec 3<>/dev/tcp/127.0.0.1/9093) 2>/dev/null; then
	echo "port 9093 is in use; kafka-go's SASL tests dial localhost:9093" >&2
	exit 1
fi
# Beside the PLAINTEXT port start_tlog_dev serves ($addr), for set-up.
TLOG_BOOTSTRAP_PASSWORD=compat-secret start_tlog_dev --listener "SASL=SASL_PLAINTEXT://127.0.0.1:9093" --bootstrap-user compat
tlog() { "$tmp/tlog" --brokers "$addr" "$@"; }
for _ in $(seq 1 100); do # the bootstrap user is journaled just after start
	tlog user list >/dev/null 2>&1 && break
	sleep 0.1
done
echo admin-secret | tlog user create adminplain --mechanism SCRAM-SHA-512 --password-stdin
echo admin-secret-256 | tlog user create adminscram256 --mechanism SCRAM-SHA-256 --password-stdin
echo admin-secret-512 | tlog user create adminscram512 --mechanism SCRAM-SHA-512 --password-stdin
echo admin-secret-256 | tlog user create adminscram --mechanism SCRAM-SHA-256 --password-stdin
echo admin-secret-512 | tlog user create adminscram --mechanism SCRAM-SHA-512 --password-stdin
tlog topic create test-writer-0 --partitions 1

(
	cd "$tmp"
	go mod init tlog-compat-kafka-go >/dev/null 2>&1
	# What the suite's package and its tests import, so go.sum has them.
	cat >deps.go <<-'GO'
		package compat

		import (
			_ "github.com/segmentio/kafka-go/sasl/plain"
			_ "github.com/segmentio/kafka-go/sasl/scram"
			_ "github.com/segmentio/kafka-go/testing"
		)
	GO
	go get "github.com/segmentio/kafka-go@$version" >/dev/null 2>&1
	go mod tidy >/dev/null
)
for kv in 4.0.0 3.7.0; do
	echo "running: go test github.com/segmentio/kafka-go/sasl ($version, KAFKA_VERSION=$kv) against SASL_PLAINTEXT on localhost:9093"
	set +e
	out=$(cd "$tmp" && KAFKA_VERSION=$kv go test -count=1 -timeout 5m -v github.com/segmentio/kafka-go/sasl 2>&1)
	rc=$?
	set -e
	echo "$out" | grep -E '^(=== RUN|--- |\s+--- |ok|FAIL|PASS|panic)|sasl_test.go'
	if [ "$rc" -ne 0 ] || echo "$out" | grep -q -- '--- SKIP'; then
		echo "kafka-go's SASL tests FAILED (or skipped) against tlog (KAFKA_VERSION=$kv, exit $rc)" >&2
		exit 1
	fi
done
status=0
