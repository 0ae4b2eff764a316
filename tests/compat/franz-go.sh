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
#   COMPAT_CLUSTER=1 run against three `tlog agent` processes (RF=3 topics)
#                    instead of one `tlog dev`
#
# The selection, and why every other real-broker test is left out, is in
# docs/compatibility.md; keep the two in sync.
set -euo pipefail

# Tests in github.com/twmb/franz-go/pkg/kgo (v1.22.2) that talk to a real
# broker and need neither share groups nor SCRAM/TLS.
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
	TestTxnEtl
)

if [ "$#" -gt 0 ]; then
	tests=("$@")
else
	tests=("${SELECTED[@]}")
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlog-compat.XXXXXX")
# shellcheck source=lib.sh
. "$root/tests/compat/lib.sh"
cd "$root"
rf=1
if [ "${COMPAT_CLUSTER:-0}" = 1 ]; then
	start_tlog_cluster
	rf=3
else
	start_tlog_dev
fi

regex="^($(IFS='|'; echo "${tests[*]}"))\$"
verbose=()
if [ "${COMPAT_VERBOSE:-0}" = 1 ]; then
	verbose=(-v)
fi

echo "running: go test github.com/twmb/franz-go/pkg/kgo -run '$regex'"
set +e
KGO_SEEDS="$addr" KGO_TEST_RF=$rf \
	go test github.com/twmb/franz-go/pkg/kgo -count=1 -timeout "${COMPAT_TIMEOUT:-15m}" "${verbose[@]}" -run "$regex"
status=$?
set -e

if [ "$status" -ne 0 ]; then
	echo "franz-go kgo tests FAILED against tlog (exit $status)" >&2
fi
exit "$status"
