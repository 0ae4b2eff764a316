#!/usr/bin/env bash
# Produce and consume throughput and produce latency of one `tlog dev` agent
# with franz-go (through `tlog bench`), 1 KiB random records, 8 partitions,
# acks=all, with --wal-sync=never and --wal-sync=always side by side in one
# run. Prints a Markdown table; docs/benchmarks.md quotes it.
#
#   bash bench/produce-consume.sh [RECORDS]
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-500000}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/tlog" ./cmd/tlog
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port

run() { # mode
  local mode=$1 data="$tmp/data-$1"
  "$tmp/tlog" --log-level warn dev --data "$data" --listen "$addr" --wal-sync "$mode" >"$tmp/dev-$mode.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/dev-$mode.log"; exit 1; }
  local b=("$tmp/tlog" --brokers "$addr" bench)
  local thr lat con
  thr=$("${b[@]}" produce --topic thr --partitions 8 -n "$records" --record-size 1024 --acks all --format json)
  con=$("${b[@]}" consume --topic thr -n "$records" --format json)
  # Latency at light load: few records in flight, no linger.
  lat=$("${b[@]}" produce --topic lat --partitions 8 -n 20000 --record-size 1024 --acks all --max-buffered 8 --linger 0 --format json)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  python3 - "$mode" "$thr" "$con" "$lat" <<'PY'
import json, sys
mode, thr, con, lat = sys.argv[1], *(json.loads(x) for x in sys.argv[2:])
print(f"| {mode} | {thr['mib_per_sec']:.0f} MiB/s ({thr['records_per_sec']:.0f} rec/s) | p50 {thr['p50_ms']:.1f} / p99 {thr['p99_ms']:.1f} ms "
      f"| {lat['records_per_sec']:.0f} rec/s, p50 {lat['p50_ms']:.2f} / p99 {lat['p99_ms']:.2f} ms "
      f"| {con['mib_per_sec']:.0f} MiB/s ({con['records_per_sec']:.0f} rec/s) |")
PY
}

echo "records=$records, 1 KiB random values, 8 partitions, acks=all, idempotent, no compression, $(nproc) cores"
echo
echo "| --wal-sync | produce throughput | ack latency at full load | ack latency, 8 in flight | consume throughput |"
echo "|---|---|---|---|---|"
run never
run always
