#!/usr/bin/env bash
# Replication cost: produce throughput and ack latency with acks=all, and
# end-to-end latency, for RF=3 on three `tlog agent` processes against
# RF=1 on one, side by side in one run (same machine, same bucket kind: a
# shared directory). Prints a Markdown table; docs/benchmarks.md quotes it.
#
#   bash bench/cluster.sh [RECORDS]
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-300000}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/tlog" ./cmd/tlog
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start N: N agents on a fresh bucket; sets seeds.
start() {
  local n=$1 run="$tmp/run-$1"
  mkdir -p "$run"
  seeds=""
  for id in $(seq 0 $((n - 1))); do
    local kp pp
    kp=$(freeport); pp=$(freeport)
    "$tmp/tlog" --log-level warn agent --id "$id" --data "$run/data-$id" --bucket "file://$run/bucket" \
      --listen "127.0.0.1:$kp" --peer-listen "127.0.0.1:$pp" >"$run/agent-$id.log" 2>&1 &
    for _ in $(seq 150); do (echo >/dev/tcp/127.0.0.1/$kp) 2>/dev/null && break; sleep 0.1; done
    seeds="$seeds${seeds:+,}127.0.0.1:$kp"
  done
}

stop() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; }

measure() { # label rf
  local label=$1 rf=$2 b thr lat e2e
  b=("$tmp/tlog" --brokers "$seeds" bench)
  thr=$("${b[@]}" produce --topic thr --partitions 12 --replication-factor "$rf" -n "$records" --record-size 1024 --acks all --format json)
  lat=$("${b[@]}" produce --topic lat --partitions 12 --replication-factor "$rf" -n 20000 --record-size 1024 --acks all --max-buffered 8 --linger 0 --format json)
  e2e=$("${b[@]}" e2e --topic e2e --partitions 12 --replication-factor "$rf" -n 50000 --rate 5000 --record-size 1024 --format json)
  echo "$label|$thr|$lat|$e2e" >>"$tmp/results"
}

start 1; measure "RF=1, 1 agent" 1; stop
start 3; measure "RF=3, 3 agents" 3; stop

echo "records=$records of 1 KiB (random), 12 partitions, acks=all, idempotent, no compression, $(nproc) cores, agents and client on one machine"
echo
python3 - "$tmp/results" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    label, thr, lat, e2e = line.rstrip("\n").split("|")
    rows.append((label, json.loads(thr), json.loads(lat), json.loads(e2e)))
print("| setup | produce throughput | ack p50 / p99, full load | ack p50 / p99, 8 in flight | end-to-end p50 / p99 at 5,000 rec/s | ack p50 / p99 at 5,000 rec/s |")
print("|---|---|---|---|---|---|")
for label, thr, lat, e2e in rows:
    print(f"| {label} | {thr['mib_per_sec']:.0f} MiB/s ({thr['records_per_sec']:.0f} rec/s) | {thr['p50_ms']:.1f} / {thr['p99_ms']:.1f} ms "
          f"| {lat['p50_ms']:.2f} / {lat['p99_ms']:.2f} ms ({lat['records_per_sec']:.0f} rec/s) "
          f"| {e2e['e2e_p50_ms']:.2f} / {e2e['e2e_p99_ms']:.2f} ms | {e2e['p50_ms']:.2f} / {e2e['p99_ms']:.2f} ms |")
if len(rows) == 2:
    a, b = rows[0], rows[1]
    print()
    print(f"RF=3 / RF=1: throughput {b[1]['mib_per_sec']/a[1]['mib_per_sec']:.2f}x; "
          f"light-load ack p50 {b[2]['p50_ms']/a[2]['p50_ms']:.2f}x, p99 {b[2]['p99_ms']/a[2]['p99_ms']:.2f}x; "
          f"end-to-end p50 {b[3]['e2e_p50_ms']/a[3]['e2e_p50_ms']:.2f}x, p99 {b[3]['e2e_p99_ms']/a[3]['e2e_p99_ms']:.2f}x")
PY
