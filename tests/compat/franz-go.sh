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
#   COMPAT_SECURE=1  run over TLS: `tlog dev` serves an SSL listener (a fresh
#                    self-signed certificate; every test client dials it with
#                    KGO_TEST_TLS) and a SASL_PLAINTEXT one for the SCRAM tests
#                    (KGO_TEST_SCRAM_SEEDS, the bootstrap user, SCRAM-SHA-512);
#                    TestSCRAMAuth and TestSCRAMAuthBadCredentials are added
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
secure_env=()
if [ "${COMPAT_CLUSTER:-0}" = 1 ]; then
	start_tlog_cluster
	rf=3
elif [ "${COMPAT_SECURE:-0}" = 1 ]; then
	command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
	tls_addr=127.0.0.1:$(free_port)
	sasl_addr=127.0.0.1:$(free_port)
	TLOG_BOOTSTRAP_PASSWORD=compat-secret start_tlog_dev --listener "SSL://$tls_addr" --listener "SASL_PLAINTEXT://$sasl_addr" \
		--tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --bootstrap-user compat
	# The bootstrap user is journaled just after start.
	for _ in $(seq 1 100); do
		"$tmp/tlog" --brokers "$sasl_addr" --sasl-mechanism SCRAM-SHA-512 --sasl-user compat --sasl-password compat-secret \
			user list >/dev/null 2>&1 && break
		sleep 0.1
	done
	addr=$tls_addr
	secure_env=(KGO_TEST_TLS="ca:$tmp/cert.pem" KGO_TEST_SCRAM="compat:compat-secret:512" KGO_TEST_SCRAM_SEEDS="$sasl_addr")
	if [ "$#" -eq 0 ]; then
		# TestIssue769 sets its own Dialer, which franz-go refuses beside
		# the TLS config every test client gets here (NewClient fails).
		kept=()
		for t in "${tests[@]}"; do [ "$t" = TestIssue769 ] || kept+=("$t"); done
		tests=("${kept[@]}" TestSCRAMAuth TestSCRAMAuthBadCredentials)
	fi
	echo "TLS listener $tls_addr, SASL_PLAINTEXT listener $sasl_addr"
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
env "${secure_env[@]}" KGO_SEEDS="$addr" KGO_TEST_RF=$rf \
	go test github.com/twmb/franz-go/pkg/kgo -count=1 -timeout "${COMPAT_TIMEOUT:-15m}" "${verbose[@]}" -run "$regex"
status=$?
set -e

if [ "$status" -ne 0 ]; then
	echo "franz-go kgo tests FAILED against tlog (exit $status)" >&2
fi
exit "$status"
