#!/usr/bin/env bash
# PUTs per second of one `tlog dev` agent on MinIO at the same byte rate
# spread round-robin over 1, 100 and 1,000 partitions (1 KiB records,
# acks=all, idempotent, default flush settings: 250 ms or 8 MiB). Each
# partition count gets a fresh agent on its own prefix; bench/putrate
# produces at the fixed rate, warms up 3 s, then counts over the window the
# new segment objects in the bucket (one PUT per flush), every PutObject
# MinIO served (segments, journal entries, lease renewals), and the agent's
# own flush and bucket-write counters from --admin-listen /metrics. Prints
# a Markdown table; docs/benchmarks.md quotes it.
#
#   bash bench/put-rate.sh [BYTES_PER_SEC] [SECONDS]     (defaults: 4194304 20)
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-4194304}
secs=${2:-20}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
source bench/minio-lib.sh
go build -o "$tmp/tlog" ./cmd/tlog
go build -o "$tmp/putrate" ./bench/putrate
go build -o "$tmp/s3tool" ./bench/s3tool

start_minio
bucket=bench
"$tmp/s3tool" mkbucket -endpoint "$endpoint" -bucket "$bucket" >/dev/null
results=()
for n in 1 100 1000; do
  admin=127.0.0.1:$(free_port)
  start_tlog "$tmp/data-$n" "putrate-$n" --admin-listen "$admin"
  results+=("$("$tmp/putrate" -brokers "$addr" -partitions "$n" -rate "$rate" -duration "${secs}s" \
    -endpoint "$endpoint" -bucket "$bucket" -prefix "putrate-$n" -admin "http://$admin")")
  stop_tlog
done

echo "$(python3 -c "print(f'{$rate/2**20:g}')") MiB/s of 1 KiB records for ${secs} s per partition count (after 3 s warm-up), acks=all, idempotent, flush every 250 ms or 8 MiB, MinIO on the same machine, $(nproc) cores"
echo
python3 - "${results[@]}" <<'PY'
import json, sys
rs = [json.loads(x) for x in sys.argv[1:]]
base = rs[0]
print("| partitions | produced | segment PUTs/s (bucket listing) | vs 1 partition | mean segment | flushes/s (tlog /metrics) | PutObject/s, all kinds (MinIO) | bucket writes/s (tlog /metrics) | vs 1 partition |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rs:
    print(f"| {r['partitions']:,} | {r['mib_per_sec']:.2f} MiB/s | {r['segment_puts_per_sec']:.2f} ({r['segment_puts']} in {r['seconds']:.1f} s) "
          f"| {r['segment_puts_per_sec']/base['segment_puts_per_sec']:.2f} | {r['segment_mean_bytes']/2**10:.0f} KiB "
          f"| {r.get('tlog_flushes_per_sec', 0):.2f} | {r['put_object_per_sec']:.2f} | {r.get('tlog_bucket_writes_per_sec', 0):.2f} "
          f"| {r['put_object_per_sec']/base['put_object_per_sec']:.2f} |")
PY
