#!/usr/bin/env bash
# Cold replay and tail reads of one `tlog dev` agent on MinIO (default
# flush settings: 250 ms or 8 MiB).
#
#  1. `tlog bench produce`: RECORDS records of 1 KiB random bytes (1 GiB by
#     default) into a 16-partition topic, acks=all, idempotent, no
#     compression; then wait until no new segment object appears for 2 s.
#  2. Stop the agent (SIGTERM), delete DATA/wal, start it again on the same
#     bucket, and time `tlog bench consume` reading everything from offset 0:
#     every byte comes back from MinIO through the range cache.
#  3. GET the same segment objects whole with the AWS SDK (bench/s3tool
#     rawget), one at a time and 16 at a time: the floor for the replay.
#  4. Tail reads (bench/tailread): a consumer on a fresh 16-partition topic
#     while 256 MiB is produced as fast as allowed, then again at 20 MiB/s
#     for end-to-end latency.
#
# Prints Markdown tables; docs/benchmarks.md quotes them.
#
#   bash bench/cold-replay.sh [RECORDS]     (default 1048576: 1 GiB)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1048576}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
source bench/minio-lib.sh
go build -o "$tmp/tlog" ./cmd/tlog
go build -o "$tmp/s3tool" ./bench/s3tool
go build -o "$tmp/tailread" ./bench/tailread

start_minio
bucket=bench
s3=(-endpoint "$endpoint" -bucket "$bucket" -prefix cold)
"$tmp/s3tool" mkbucket "${s3[@]}" >/dev/null
start_tlog "$tmp/data" cold
tbench() { "$tmp/tlog" --brokers "$addr" bench "$@"; }  # $addr changes on restart

# CPU seconds a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' "/proc/$1/stat"; }
# measure NAME CMD...: run CMD; its JSON output goes to $tmp/NAME.json, and
# the CPU seconds it, tlog dev and MinIO used meanwhile to $tmp/NAME.cpu.
measure() {
  local name=$1 t0 m0 u s TIMEFORMAT='%U %S'
  shift
  t0=$(cpu "$tlog_pid"); m0=$(cpu "$minio_pid")
  if ! { time "$@" >"$tmp/$name.json" 2>"$tmp/$name.err"; } 2>"$tmp/$name.time"; then
    cat "$tmp/$name.err" >&2; exit 1
  fi
  read -r u s <"$tmp/$name.time"
  awk -v t="$(cpu "$tlog_pid")" -v t0="$t0" -v m="$(cpu "$minio_pid")" -v m0="$m0" -v u="$u" -v s="$s" \
    'BEGIN {printf "{\"tlog\":%.2f,\"minio\":%.2f,\"client\":%.2f}\n", t-t0, m-m0, u+s}' >"$tmp/$name.cpu"
}
# tlog_metric PREFIX: the sum of the agent's /metrics lines starting with PREFIX.
tlog_metric() { curl -fs "http://$admin/metrics" | awk -v p="$1" 'index($0, p) == 1 {s += $NF} END {printf "%.0f", s}'; }

produce=$(tbench produce --topic cold --partitions 16 -n "$records" --record-size 1024 --acks all --format json)
flushwait=$("$tmp/s3tool" wait-flushed "${s3[@]}" -quiet 2s)
segs=$("$tmp/s3tool" segments "${s3[@]}")

stop_tlog
rm -rf "$tmp/data/wal"
admin=127.0.0.1:$(free_port)
start_tlog "$tmp/data" cold --admin-listen "$admin"
req0=$("$tmp/s3tool" requests -endpoint "$endpoint")
measure replay tbench consume --topic cold -n "$records" --format json
req1=$("$tmp/s3tool" requests -endpoint "$endpoint")
tlogreads=$(printf '{"get_range":%s,"get":%s,"read_bytes":%s}' \
  "$(tlog_metric 'tlog_bucket_requests_total{op="get_range"')" \
  "$(tlog_metric 'tlog_bucket_requests_total{op="get"')" \
  "$(tlog_metric 'tlog_bucket_read_bytes_total{')")
segs2=$("$tmp/s3tool" segments "${s3[@]}")

measure raw1 "$tmp/s3tool" rawget "${s3[@]}" -concurrency 1
measure raw16 "$tmp/s3tool" rawget "${s3[@]}" -concurrency 16

tailfast=$("$tmp/tailread" -brokers "$addr" -topic tail -partitions 16 -n 262144)
tailpaced=$("$tmp/tailread" -brokers "$addr" -topic tail-paced -partitions 16 -n 204800 -rate 20971520)
stop_tlog

echo "records=$records of 1 KiB, 16 partitions, MinIO on the same machine and disk, $(nproc) cores"
echo
python3 - "$tmp" "$produce" "$flushwait" "$segs" "$req0" "$req1" "$tlogreads" "$segs2" "$tailfast" "$tailpaced" <<'PY'
import json, sys
tmp = sys.argv[1]
produce, flushwait, segs, req0, req1, tlogreads, segs2, tailfast, tailpaced = (json.loads(x) for x in sys.argv[2:])
def load(name):
    return json.load(open(f"{tmp}/{name}.json")), json.load(open(f"{tmp}/{name}.cpu"))
(replay, replaycpu), (raw1, raw1cpu), (raw16, raw16cpu) = load("replay"), load("raw1"), load("raw16")
def cpu(c):
    return f"CPU s: tlog {c['tlog']:.1f}, MinIO {c['minio']:.1f}, client {c['client']:.1f}"
gets = req1.get("GetObject", 0) - req0.get("GetObject", 0)
print("| step | time | throughput | notes |")
print("|---|---|---|---|")
print(f"| produce | {produce['seconds']:.2f} s | {produce['mib_per_sec']:.0f} MiB/s ({produce['records_per_sec']:,.0f} rec/s) "
      f"| p50 {produce['p50_ms']:.1f} / p99 {produce['p99_ms']:.1f} ms ack latency |")
print(f"| flushed (quiet 2 s) | {flushwait['seconds']:.2f} s after produce | | {segs['flush_objects']} segment objects, "
      f"{segs['flush_bytes']/2**20:.0f} MiB ({segs['flush_bytes']/segs['flush_objects']/2**20:.1f} MiB each); {segs['compacted_objects']} compacted |")
print(f"| cold replay, WAL deleted (`tlog bench consume`) | {replay['seconds']:.2f} s | {replay['mib_per_sec']:.0f} MiB/s ({replay['records_per_sec']:,.0f} rec/s) "
      f"| {gets:.0f} GetObject at MinIO; tlog: {tlogreads['get_range']} ranged GETs, {tlogreads['read_bytes']/2**20:.0f} MiB read "
      f"(+{tlogreads['get']} small GETs replaying the metadata journal at start); "
      f"{cpu(replaycpu)}; {segs2['compacted_objects']} compacted objects by the end |")
for r, c in ((raw1, raw1cpu), (raw16, raw16cpu)):
    print(f"| raw GET of the {r['objects']} objects, {r['concurrency']} at a time | {r['seconds']:.2f} s | {r['mib_per_sec']:.0f} MiB/s "
          f"| {r['bytes']/2**20:.0f} MiB; {cpu(c)} |")
best = max(raw1, raw16, key=lambda r: r['mib_per_sec'])
print()
print(f"Replay / raw GET time: {replay['seconds']/raw1['seconds']:.2f}x one stream, {replay['seconds']/raw16['seconds']:.2f}x 16 streams "
      f"(replay throughput is {replay['mib_per_sec']/best['mib_per_sec']:.0%} of the best raw GET).")
print()
print("| tail read | produced | consumer | consumer done after last ack | end-to-end p50 / p99 / max |")
print("|---|---|---|---|---|")
for name, t in (("as fast as allowed", tailfast), ("20 MiB/s", tailpaced)):
    print(f"| {name}, {t['mib']:.0f} MiB | {t['produce_mib_per_sec']:.0f} MiB/s | {t['consume_mib_per_sec']:.0f} MiB/s ({t['consume_records_per_sec']:,.0f} rec/s) "
          f"| {t['consumer_done_after_last_ack_ms']:.0f} ms | {t['e2e_p50_ms']:.1f} / {t['e2e_p99_ms']:.1f} / {t['e2e_max_ms']:.1f} ms |")
PY
