#!/usr/bin/env bash
# Runs franz-go's own kgo integration tests against a fresh `tlog dev`.
#
#   bash tests/compat/franz-go.sh             # the selected set below
#   bash tests/compat/franz-go.sh TestPing    # only the named tests
#
# Environment:
#   TLOG_LOG_LEVEL   tlog's --log-level (default info)
#   KGO_LOG_LEVEL    franz-go test client logging (debug, info, none)
#   COMPAT_VERBOSE=1 pass -v to go test
#   COMPAT_TIMEOUT   go test -timeout (default 15m)
#
# The selection, and why every other real-broker test is left out, is in
# docs/compatibility.md; keep the two in sync.
set -euo pipefail

# Tests in github.com/twmb/franz-go/pkg/kgo (v1.22.2) that talk to a real
# broker and need neither transactions, share groups nor SCRAM/TLS.
SELECTED=(
	TestPing
	TestIssue325
	TestConsumeTopicRetrieval
	TestConsumeTopicRetrieval_Many
	TestIssue337
	TestDirectPartitionPurge
	TestIssue434
	TestAddRemovePartitions
	TestPauseIssue489
	TestPauseIssueOct2023
	TestIssue648
	TestIssue810
	TestIssue865
	TestIssueFetchLargerThanBrokerMaxReadBytes
	TestPooling
	TestHookPollStart
	TestConsumeMaxDecompressBatchBytes
	TestClient_Produce
	TestIssue769
	TestIssueProduceBrokerTooOldFailsRecords
	TestIssueProduceSyncManualPartitionNegativeDoesNotPanic
	TestIssue831
	TestClient_ProduceLargeMessages
	TestUnknownGroupOffsetFetchPinned
	TestIssue1034
	TestConsumeRegex
	Test848RegexBrokerResolves
	TestIssue523
	TestGroupSimple
	TestGroupETL
)

if [ "$#" -gt 0 ]; then
	tests=("$@")
else
	tests=("${SELECTED[@]}")
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlog-compat.XXXXXX")
pid=""
status=1

cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ "$status" -ne 0 ] && [ -f "$tmp/tlog.log" ]; then
		echo "---- last 200 lines of tlog's log ($tmp/tlog.log) ----" >&2
		tail -n 200 "$tmp/tlog.log" >&2 || true
		echo "---- (data and full log kept in $tmp) ----" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$root"

echo "building tlog..."
go build -o "$tmp/tlog" ./cmd/tlog

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
addr="127.0.0.1:$port"

"$tmp/tlog" --log-level "${TLOG_LOG_LEVEL:-info}" dev --data "$tmp/data" --listen "$addr" >"$tmp/tlog.log" 2>&1 &
pid=$!

up=0
for _ in $(seq 1 300); do # 300 × 0.1s = 30s
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "tlog exited before accepting connections" >&2
		exit 1
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		up=1
		break
	fi
	sleep 0.1
done
if [ "$up" -ne 1 ]; then
	echo "tlog did not accept connections on $addr within 30s" >&2
	exit 1
fi
echo "tlog dev is serving on $addr (pid $pid, log $tmp/tlog.log)"

regex="^($(IFS='|'; echo "${tests[*]}"))\$"
verbose=()
if [ "${COMPAT_VERBOSE:-0}" = 1 ]; then
	verbose=(-v)
fi

echo "running: go test github.com/twmb/franz-go/pkg/kgo -run '$regex'"
set +e
KGO_SEEDS="$addr" KGO_TEST_RF=1 \
	go test github.com/twmb/franz-go/pkg/kgo -count=1 -timeout "${COMPAT_TIMEOUT:-15m}" "${verbose[@]}" -run "$regex"
status=$?
set -e

if [ "$status" -ne 0 ]; then
	echo "franz-go kgo tests FAILED against tlog (exit $status)" >&2
fi
exit "$status"
