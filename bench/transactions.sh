#!/usr/bin/env bash
# Transactional produce throughput of one `tlog dev` agent against
# idempotent produce, side by side in one run: franz-go (through `tlog
# bench produce`), 1 KiB random records, 8 partitions, acks=all, committing
# every 1, 10 and 100 records, under transactions version 2 (the default:
# produces add their partitions, EndTxn bumps the epoch) and version 1
# (`--transaction-version 1`: an AddPartitionsToTxn per transaction). Each
# transaction ends with an EndTxn whose markers land on every partition it
# touched. Prints a Markdown table; docs/benchmarks.md quotes it.
#
#   bash bench/transactions.sh [RECORDS]
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-100000}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/tlog" ./cmd/tlog

# start_dev VERSION: a fresh `tlog dev` at that transaction version; sets
# addr and pid.
start_dev() {
  if [ -n "${pid:-}" ]; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  addr=127.0.0.1:$port
  "$tmp/tlog" --log-level warn dev --data "$tmp/data-$1" --listen "$addr" --transaction-version "$1" >"$tmp/dev-$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/dev-$1.log"; exit 1; }
}

row() { # label json
  python3 - "$1" "$2" <<'PY'
import json, sys
label, r = sys.argv[1], json.loads(sys.argv[2])
print(f"| {label} | {r['records']} | {r['records_per_sec']:.0f} | {r['mib_per_sec']:.1f} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} |")
PY
}

echo "1 KiB random values, 8 partitions, acks=all, $(nproc) cores; records per run: idempotent and 100/txn $records, 10/txn $((records / 5)), 1/txn $((records / 50))"
echo
echo "| producer | records | records/s | MiB/s | latency p50 / p99 ms |"
echo "|---|---|---|---|---|"
start_dev 2
b=("$tmp/tlog" --brokers "$addr" bench)
row "idempotent" "$("${b[@]}" produce --topic idem --partitions 8 -n "$records" --record-size 1024 --format json)"
for v in 2 1; do
  start_dev "$v"
  b=("$tmp/tlog" --brokers "$addr" bench)
  row "transactional v$v, 100 records per transaction" "$("${b[@]}" produce --topic t100 --partitions 8 -n "$records" --record-size 1024 --txn-records 100 --format json)"
  row "transactional v$v, 10 records per transaction" "$("${b[@]}" produce --topic t10 --partitions 8 -n $((records / 5)) --record-size 1024 --txn-records 10 --format json)"
  row "transactional v$v, 1 record per transaction" "$("${b[@]}" produce --topic t1 --partitions 8 -n $((records / 50)) --record-size 1024 --txn-records 1 --format json)"
done
