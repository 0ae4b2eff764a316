#!/usr/bin/env bash
# Two or more builds of tlog side by side at RF=3: each round starts three
# fresh `tlog agent` processes of each build in turn on one MinIO, and
# either produces as fast as allowed (MODE=produce, N records) or measures
# end-to-end latency at RATE records a second (MODE=e2e, after a
# 200,000-record produce and read-back, as the suite does). Prints one line
# per run: throughput, latencies, and the CPU seconds the agents and MinIO
# used over the measured command (/proc/PID/stat).
#
#   git worktree add /tmp/before <rev> && (cd /tmp/before && go build -o /tmp/tlog-before ./cmd/tlog)
#   go build -o /tmp/tlog-after ./cmd/tlog
#   [MODE=produce|e2e] [ROUNDS=3] [N=300000] [RATE=2000] [AGENTS=3 RF=3] \
#     [AGENT_ARGS="--wal-sync always"] [AGENT_ENV="GOGC=400"] [BUCKET=dir] \
#     bash bench/ab-cluster.sh /tmp/tlog-before /tmp/tlog-after
#
# BUCKET=dir puts the bucket in a directory (as `tlog dev` does by
# default) instead of MinIO. A sustained produce (N=3000000: 2.9 GiB, well past what the WAL holds
# before --wal-max-bytes) measures the flusher as well as the WAL.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bench/ab-cluster.sh TLOG-BINARY..." >&2; exit 2; }
mode=${MODE:-produce} rounds=${ROUNDS:-3} agents=${AGENTS:-3} rf=${RF:-3}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
source bench/minio-lib.sh
start_minio
"$1" --version >/dev/null
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' "/proc/$1/stat"; }
sum_cpu() { local t=0 p; for p in "$@"; do t=$(awk -v a="$t" -v b="$(cpu "$p")" 'BEGIN {print a + b}'); done; echo "$t"; }
mkdir -p "$tmp/minio/bench"
run=0
for _ in $(seq "$rounds"); do
  for bin in "$@"; do
    run=$((run + 1))
    dir=$tmp/run-$run
    mkdir -p "$dir"
    bucket="s3://bench/run-$run?endpoint=$endpoint&region=us-east-1"
    [ "${BUCKET:-}" = dir ] && bucket="file://$dir/bucket"
    pids=() seeds=""
    for id in $(seq 0 $((agents - 1))); do
      kp=$(free_port) pp=$(free_port)
      # shellcheck disable=SC2086 # AGENT_ENV and AGENT_ARGS are words
      env ${AGENT_ENV:-} "$bin" --log-level warn agent --id "$id" --data "$dir/agent-$id" --bucket "$bucket" ${AGENT_ARGS:-} \
        --listen "127.0.0.1:$kp" --peer-listen "127.0.0.1:$pp" >"$dir/agent-$id.log" 2>&1 &
      pids+=($!)
      for _ in $(seq 150); do (echo >"/dev/tcp/127.0.0.1/$kp") 2>/dev/null && break; sleep 0.1; done
      seeds="$seeds${seeds:+,}127.0.0.1:$kp"
    done
    for _ in $(seq 120); do
      live=$("$bin" --brokers "$seeds" cluster status --format json 2>/dev/null | grep -o '"live"' | wc -l || true)
      [ "$live" -ge "$agents" ] && break
      sleep 0.5
    done
    b=("$bin" --brokers "$seeds" bench)
    common=(--partitions 8 --replication-factor "$rf" --record-size 1024 --linger 5ms --format json)
    if [ "$mode" = e2e ]; then
      "${b[@]}" produce --topic thr -n 200000 --acks all "${common[@]}" >/dev/null
      sleep 2
      "${b[@]}" consume --topic thr -n 200000 --format json >/dev/null
    fi
    a0=$(sum_cpu "${pids[@]}") m0=$(cpu "$minio_pid")
    if [ "$mode" = e2e ]; then
      out=$("${b[@]}" e2e --topic e2e -n "${N:-20000}" --rate "${RATE:-2000}" "${common[@]}")
    else
      out=$("${b[@]}" produce --topic thr -n "${N:-300000}" --acks all "${common[@]}")
    fi
    a1=$(sum_cpu "${pids[@]}") m1=$(cpu "$minio_pid")
    python3 - "$(basename "$bin")" "$out" "$a0" "$a1" "$m0" "$m1" <<'PY'
import json, sys
name, out, a0, a1, m0, m1 = sys.argv[1], json.loads(sys.argv[2]), *map(float, sys.argv[3:])
e2e = f" e2e p50 {out['e2e_p50_ms']:.2f} / p99 {out['e2e_p99_ms']:.2f} ms" if "e2e_p50_ms" in out else ""
print(f"{name}: {out['mib_per_sec']:.1f} MiB/s, ack p50 {out['p50_ms']:.2f} / p99 {out['p99_ms']:.2f} / max {out.get('max_ms', 0):.0f} ms{e2e}, "
      f"CPU s agents {a1 - a0:.2f}, MinIO {m1 - m0:.2f}")
PY
    kill "${pids[@]}"
    wait "${pids[@]}" 2>/dev/null || true
    rm -rf "$dir"
  done
done
