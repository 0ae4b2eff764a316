#!/usr/bin/env bash
# Runs IBM/sarama's own functional admin tests (build tag functional)
# against five `tlog agent` processes numbered 1 to 5, as sarama's
# docker-compose cluster is, behind a toxiproxy server with the proxies
# its suite expects: kafka1..kafka5 on 127.0.0.1:29091-29095 (the agents
# advertise those addresses, so every connection goes through them).
#
#   bash tests/compat/sarama.sh                            # the selected set below
#   bash tests/compat/sarama.sh TestFuncAdminAlterConfig   # only these tests
#
# The suite and toxiproxy's server are fetched through the Go module
# proxy: the suite into a scratch module (sarama is not a dependency of
# tlog), the server built once into $SARAMA_CACHE. Ports 29091-29095 must
# be free.
#
# Environment:
#   TLOG_LOG_LEVEL     tlog's --log-level (default info)
#   SARAMA_VERSION     the sarama release (default v1.61.1)
#   SARAMA_CACHE       where toxiproxy's server is kept (default ~/.cache/tlog/toxiproxy)
#   COMPAT_VERBOSE=1   print every test's output
#
# The selection, and why the other admin tests are left out, is in
# docs/compatibility.md; keep the two in sync.
set -euo pipefail

SELECTED=(
	TestFuncAdminAlterConfig
	TestFuncAdminIncrementalAlterConfigs
	TestFuncAdminDescribeConfig
	TestFuncAdminDescribeLogDirs
	TestFuncAdminQuotas
	TestFuncAdminDeleteTopic
	TestFuncAdminDeleteRecords
	TestFuncAdminListOffsets
	TestFuncAdminAlterConsumerGroupOffsets
	TestFuncAdminListConsumerGroupOffsetsBatch
	TestFuncAdminDeleteGroup
	TestFuncAdminListConsumerGroups
	TestFuncAdminDescribeGroups
	TestFuncAdminNetworkErrorClosesControllerConnection
)
tests=("$@")
[ "${#tests[@]}" -eq 0 ] && tests=("${SELECTED[@]}")

version=${SARAMA_VERSION:-v1.61.1}
toxiproxy_version=v2.5.0
cache=${SARAMA_CACHE:-$HOME/.cache/tlog/toxiproxy}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlog-sarama.XXXXXX")
# shellcheck source=lib.sh
. "$root/tests/compat/lib.sh"
cd "$root"

for port in 29091 29092 29093 29094 29095; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "port $port is in use; sarama's suite dials 127.0.0.1:29091-29095" >&2
		exit 1
	fi
done

if [ ! -x "$cache/$toxiproxy_version/server" ]; then
	echo "building toxiproxy's server $toxiproxy_version (once)..."
	GOBIN="$cache/$toxiproxy_version" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$toxiproxy_version"
fi

trap stop_tlog_dev EXIT
trap 'exit 130' INT TERM
toxi_port=$(free_port)
"$cache/$toxiproxy_version/server" -host 127.0.0.1 -port "$toxi_port" >"$tmp/toxiproxy.log" 2>&1 &
pids+=($!)

echo "building tlog..."
go build -o "$tmp/tlog" ./cmd/tlog
mkdir -p "$tmp/bucket"
for i in 1 2 3 4 5; do
	port=$(free_port)
	peer=$(free_port)
	"$tmp/tlog" --log-level "${TLOG_LOG_LEVEL:-info}" agent --id "$i" --data "$tmp/agent-$i" \
		--bucket "file://$tmp/bucket" --listen "127.0.0.1:$port" --advertise "127.0.0.1:2909$i" \
		--peer-listen "127.0.0.1:$peer" --auto-create-topics >"$tmp/tlog-agent-$i.log" 2>&1 &
	pids+=($!)
	ok=0
	for _ in $(seq 1 300); do # 30 s
		if (exec 3<>"/dev/tcp/127.0.0.1/$toxi_port") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			ok=1
			break
		fi
		sleep 0.1
	done
	if [ "$ok" -ne 1 ]; then
		echo "tlog agent $i (or toxiproxy) did not accept connections within 30s" >&2
		exit 1
	fi
	curl -fsS -X POST "http://127.0.0.1:$toxi_port/proxies" \
		-d "{\"name\":\"kafka$i\",\"listen\":\"127.0.0.1:2909$i\",\"upstream\":\"127.0.0.1:$port\"}" >/dev/null
done
echo "five tlog agents (ids 1-5) behind toxiproxy on 127.0.0.1:29091-29095 (logs in $tmp)"
for _ in $(seq 1 100); do # every agent registered, so replicas can be placed on five
	[ "$("$tmp/tlog" --brokers 127.0.0.1:29091 cluster status 2>/dev/null | grep -c ' live ')" -eq 5 ] && break
	sleep 0.2
done

(
	mkdir -p "$tmp/mod" && cd "$tmp/mod"
	go mod init tlog-compat-sarama >/dev/null 2>&1
	printf 'package compat\n\nimport _ "github.com/IBM/sarama"\n' >deps.go
	go get "github.com/IBM/sarama@$version" >/dev/null 2>&1
	go mod tidy >/dev/null 2>&1
	# The functional tests' own imports, for go.sum.
	go get -t -tags functional github.com/IBM/sarama >/dev/null 2>&1 || true
)
run=$(IFS='|'; echo "^(${tests[*]})\$")
echo "running: go test -tags functional github.com/IBM/sarama ($version) -run '$run'"
set +e
out=$(cd "$tmp/mod" && TOXIPROXY_ADDR="http://127.0.0.1:$toxi_port" KAFKA_VERSION=3.9.0 \
	go test -tags functional -count=1 -timeout 10m -v -run "$run" github.com/IBM/sarama 2>&1)
rc=$?
set -e
if [ -n "${COMPAT_VERBOSE:-}" ]; then
	echo "$out"
else
	echo "$out" | grep -E '^(--- |ok|FAIL|PASS|panic)|functional_[a-z_]+_test.go:[0-9]+'
fi
passed=$(echo "$out" | grep -c -- '--- PASS' || true)
if [ "$rc" -ne 0 ] || [ "$passed" -ne "${#tests[@]}" ]; then
	echo "sarama's functional tests FAILED against tlog: $passed of ${#tests[@]} passed (exit $rc)" >&2
	exit 1
fi
echo "sarama: all ${#tests[@]} selected functional tests passed"
status=0
