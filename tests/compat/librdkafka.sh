#!/usr/bin/env bash
# Runs chosen broker tests of librdkafka's own suite against a fresh
# `tlog dev --group-initial-rebalance-delay 0s --partitions 4` (the suite
# expects auto-created topics with 4 partitions, as its own test clusters
# are configured).
#
#   bash tests/compat/librdkafka.sh             # the selected set below
#   bash tests/compat/librdkafka.sh 0030 0084   # only these tests
#
# The suite comes from Debian's librdkafka source package (2.0.2, with its
# tests/; LIBRDKAFKA_VERSION=2.8.0 takes trixie's instead, for the tests in
# SELECTED_2_8): a deb-src entry for bookworm (or trixie) main is added, the
# source is fetched with `apt-get source --download-only`, and the library
# and test runner are built once into $LIBRDKAFKA_CACHE (default
# ~/.cache/tlog/librdkafka-2.0.2) and reused afterwards. Needs root for
# apt-get (as CI has); it installs gcc, make and zlib's headers.
#
# Environment:
#   TLOG_LOG_LEVEL     tlog's --log-level (default info)
#   LIBRDKAFKA_CACHE   where the built suite is kept
#   LIBRDKAFKA_VERSION 2.0.2 (default) or 2.8.0
#   COMPAT_VERBOSE=1   print every test's output, not only failures
#   COMPAT_GROUP_DELAY the broker's --group-initial-rebalance-delay
#                      (default 0s; 3s for the tests that need Kafka's default)
#   COMPAT_TLOG_ARGS   more flags for the agents (e.g. --authorizer acl)
#   COMPAT_CLUSTER=1   run against three `tlog agent` processes instead of
#                      one `tlog dev` (tests that need replication factor 3)'
#
# The selection, and why the other broker tests are left out, is in
# docs/compatibility.md; keep the two in sync.
set -euo pipefail

# Broker tests (0000-0999 that talk to a cluster) selected: each passes
# against tlog; see docs/compatibility.md for the rest.
SELECTED=(
	0001 0002 0005 0007 0008 0011 0012 0013 0014 0015 0017 0018 0019 0020
	0021 0022 0026 0028 0029 0030 0031 0033 0034 0036 0040 0041 0042 0044
	0046 0047 0048 0049 0050 0051 0053 0056 0058 0063 0065 0067 0069 0070
	0072 0073 0074 0075 0076 0082 0083 0084 0085 0086 0090 0091 0129
)
# Selected too, but run against a broker with Kafka's default
# group.initial.rebalance.delay.ms (3 s): 0089_max_poll_interval needs its
# two consumers to join the group's first generation together, which that
# delay gives on Kafka. With the delay at 0 the first consumer can take the
# partition alone, and the second one's join then moves it at once (the
# first consumer's librdkafka rejoins without the application polling), so
# the test fails whenever the second member id sorts first.
SELECTED_DEFAULT_DELAY=(0089)
# Run from Debian trixie's librdkafka 2.8.0 suite (built beside 2.0.2):
# tests whose 2.0.2 text lacks the part that matters to tlog. 0011's
# record-failure part (keyless records on a compacted topic refused with
# INVALID_RECORD, the others of the batch with INVALID_DIFFERENT_RECORD)
# came after 2.0.2.
SELECTED_2_8=(0011)
# Selected too, against a broker with the ACL authorizer on (anonymous
# clients as super users): 0081_admin creates, describes and deletes ACLs
# and expects the broker to have an authorizer, as its own test clusters
# do (without one, CreateAcls is refused).
SELECTED_AUTHORIZER=(0081)
# Run a second time if the first fails, and say so: 0086_purge_remote
# counts on librdkafka putting records 0-9 in one request that its socket
# emulator then stalls; once (CI, 2026-12-06) records 7-9 were outside it
# (in the queue when purged), and ten runs here, five under load, passed.
# What goes in a request is librdkafka's choice before tlog sees it.
RETRY_ONCE=(0086)
if [ "$#" -eq 0 ]; then
	rc=0
	"${BASH_SOURCE[0]}" "${SELECTED[@]}" || rc=1
	COMPAT_GROUP_DELAY=3s "${BASH_SOURCE[0]}" "${SELECTED_DEFAULT_DELAY[@]}" || rc=1
	COMPAT_TLOG_ARGS="--authorizer acl --super-users User:ANONYMOUS" "${BASH_SOURCE[0]}" "${SELECTED_AUTHORIZER[@]}" || rc=1
	LIBRDKAFKA_VERSION=2.8.0 "${BASH_SOURCE[0]}" "${SELECTED_2_8[@]}" || rc=1
	exit "$rc"
fi
tests=("$@")

version=${LIBRDKAFKA_VERSION:-2.0.2}
case "$version" in
2.0.2) suite=bookworm ;;
2.8.0) suite=trixie ;;
*)
	echo "LIBRDKAFKA_VERSION=$version: only 2.0.2 (bookworm) and 2.8.0 (trixie) are known" >&2
	exit 2
	;;
esac
cache=${LIBRDKAFKA_CACHE:-$HOME/.cache/tlog/librdkafka-$version}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# ---- the suite: fetched and built once ----
if [ ! -x "$cache/tests/test-runner" ]; then
	echo "fetching librdkafka $version's source from Debian..."
	# The source index of the suite (nothing is installed from it).
	[ -f "/etc/apt/sources.list.d/tlog-deb-src-$suite.sources" ] || cat >"/etc/apt/sources.list.d/tlog-deb-src-$suite.sources" <<-EOF
		Types: deb-src
		URIs: http://deb.debian.org/debian
		Suites: $suite
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	apt-get update -qq
	# The compilers, and zlib for gzip (0017 tests it); not in every image.
	apt-get install -y -qq gcc g++ make zlib1g-dev >/dev/null
	src=$(mktemp -d "${TMPDIR:-/tmp}/librdkafka-src.XXXXXX")
	(cd "$src" && apt-get source --download-only "librdkafka=$version-1" >/dev/null)
	rm -rf "$cache"
	mkdir -p "$(dirname "$cache")"
	tar -xzf "$src"/librdkafka_"$version".orig.tar.gz -C "$src"
	mv "$src/librdkafka-$version" "$cache"
	rm -rf "$src"
	echo "building librdkafka and its test runner (a few minutes, once)..."
	(
		cd "$cache"
		# Plaintext only: tlog's listener has no TLS or SASL yet.
		./configure --disable-ssl --disable-gssapi --disable-sasl --disable-curl \
			--disable-zstd --disable-lz4-ext --disable-syslog >/dev/null
		make -j"$(nproc)" libs >/dev/null
		make -C tests -j"$(nproc)" build >/dev/null
	)
fi

# ---- patches to the suite, for timing assumptions ----
# patch_suite FILE: runs the Python patch on stdin over tests/FILE of the
# 2.0.2 suite once (it leaves a marker), and rebuilds the runner.
patch_suite() {
	local f="$cache/tests/$1"
	if [ -f "$f.tlog-patched" ] || [ "$version" != 2.0.2 ]; then
		cat >/dev/null # later versions: these tests are not run
		return 0
	fi
	python3 - "$f"
	touch "$f.tlog-patched"
	make -C "$cache/tests" -j"$(nproc)" build >/dev/null
}

# 0103's "init_transactions(): timeout on first" calls init_transactions()
# with a 1 ms timeout on a new producer and requires it to time out: it
# assumes a coordinator takes longer than 1 ms to connect, find and answer
# InitProducerId. tlog on loopback often answers within it. The patch
# keeps every check for the case it was written for (the call timed out)
# and accepts the call finishing in time; the rest of 0103 is unchanged.
# Applied once (it leaves a marker), and the runner rebuilt.
patch_suite 0103-transactions.c <<'PY'
import sys
path = sys.argv[1]
src = open(path).read()
old = """        error = rd_kafka_init_transactions(p, 1);
        TEST_ASSERT(error, "Expected init_transactions() to fail");
        TEST_SAY("error: %s, %d\\n", rd_kafka_error_string(error),
                 rd_kafka_error_is_retriable(error));
        TEST_ASSERT(rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__TIMED_OUT,
                    "Expected ERR__TIMED_OUT, not %s: %s",
                    rd_kafka_error_name(error), rd_kafka_error_string(error));
        TEST_ASSERT(rd_kafka_error_is_retriable(error),
                    "Expected error to be retriable");
        rd_kafka_error_destroy(error);

        TEST_CALL_ERROR__(rd_kafka_init_transactions(p, 30 * 1000));
"""
new = """        error = rd_kafka_init_transactions(p, 1);
        if (!error) /* tlog: the coordinator answered within 1 ms */
                TEST_SAY("init_transactions() finished within 1 ms\\n");
        else {
        TEST_SAY("error: %s, %d\\n", rd_kafka_error_string(error),
                 rd_kafka_error_is_retriable(error));
        TEST_ASSERT(rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__TIMED_OUT,
                    "Expected ERR__TIMED_OUT, not %s: %s",
                    rd_kafka_error_name(error), rd_kafka_error_string(error));
        TEST_ASSERT(rd_kafka_error_is_retriable(error),
                    "Expected error to be retriable");
        rd_kafka_error_destroy(error);

        TEST_CALL_ERROR__(rd_kafka_init_transactions(p, 30 * 1000));
        }
"""
if src.count(old) != 1:
    sys.exit("0103-transactions.c is not the 2.0.2 text this patch expects")
open(path, "w").write(src.replace(old, new))
PY

# 0081's DescribeConsumerGroups closes three static members and waits
# "session timeout + 1s" (rd_sleep(6), written for session.timeout.ms
# 5000) before deleting their groups; but test_create_consumer() sets every
# consumer's session.timeout.ms to test_session_timeout_ms, 6000, so the
# wait is the session timeout itself, and a member whose close committed
# (a commit counts as a heartbeat, in Kafka as in tlog) is still there when
# the delete comes: "The group is not empty". The patch waits what the
# comment says, 6 s + 1 s.
patch_suite 0081-admin.c <<'PY'
import sys
path = sys.argv[1]
src = open(path).read()
old = """        /* Wait session timeout + 1s. Because using static group membership */
        rd_sleep(6);
"""
new = """        /* Wait session timeout + 1s. Because using static group membership */
        rd_sleep(7); /* tlog: test_session_timeout_ms (6 s) + 1 s */
"""
if src.count(old) != 1:
    sys.exit("0081-admin.c is not the 2.0.2 text this patch expects")
open(path, "w").write(src.replace(old, new))
PY

# ---- tlog dev ----
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlog-rdk.XXXXXX")
TLOG_LOG_TAIL=100
# shellcheck source=lib.sh
. "$root/tests/compat/lib.sh"
cd "$root"
if [ "${COMPAT_CLUSTER:-0}" = 1 ]; then
	# Three agents: tests that create topics with replication factor 3
	# (0103_transactions) need three brokers.
	# shellcheck disable=SC2086 # COMPAT_TLOG_ARGS is a list of flags
	start_tlog_cluster --group-initial-rebalance-delay "${COMPAT_GROUP_DELAY:-0s}" --partitions 4 ${COMPAT_TLOG_ARGS:-}
else
	# shellcheck disable=SC2086
	start_tlog_dev --group-initial-rebalance-delay "${COMPAT_GROUP_DELAY:-0s}" --partitions 4 ${COMPAT_TLOG_ARGS:-}
fi

cat >"$tmp/test.conf" <<EOF
bootstrap.servers=$addr
test.timeout.multiplier=2
EOF

# ---- the tests, one runner each so one hang cannot take the rest ----
passed=() failed=()
run_test() {
	# Without CI in the environment: librdkafka's tests skip some checks
	# when it is set (0055's latency cases), and a skip exits 0.
	(cd "$cache/tests" && LD_LIBRARY_PATH="$cache/src:$cache/src-cpp" RDKAFKA_TEST_CONF="$tmp/test.conf" TESTS="$1" TEST_KAFKA_VERSION=3.5.0 \
		env -u CI timeout "${COMPAT_TEST_TIMEOUT:-300}" ./test-runner -p1 >"$tmp/test-$1.log" 2>&1)
}
for t in "${tests[@]}"; do
	start=$(date +%s)
	set +e
	run_test "$t"
	rc=$?
	if [ "$rc" -ne 0 ] && [[ " ${RETRY_ONCE[*]} " == *" $t "* ]]; then
		echo "RETRY $t (exit $rc the first time; its log's tail:)"
		tail -n 40 "$tmp/test-$t.log" | sed 's/^/    /'
		run_test "$t"
		rc=$?
	fi
	set -e
	took=$(($(date +%s) - start))
	if [ "$rc" -eq 0 ]; then
		passed+=("$t")
		echo "PASS $t (${took}s)"
		# A skipped part passes too: say so.
		if skips=$(grep -c 'SKIPPED' "$tmp/test-$t.log"); then
			echo "    ($skips lines of its log say SKIPPED)"
		fi
		[ "${COMPAT_VERBOSE:-0}" = 1 ] && cat "$tmp/test-$t.log"
	else
		failed+=("$t")
		echo "FAIL $t (${took}s, exit $rc)"
		tail -n 40 "$tmp/test-$t.log" | sed 's/^/    /'
	fi
done
echo
echo "librdkafka $version broker tests against tlog: ${#passed[@]} passed, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "failed: ${failed[*]}"
	exit 1
fi
status=0
