#!/usr/bin/env bash
# What validating inside compressed batches costs produce: one `tlog dev`
# built from OLD_REV (header and CRC checks only for compressed batches)
# and one from the work tree (decompress, bounded, and walk the records),
# driven alternately by the same `tlog bench produce` (franz-go) with
# JSON-like text values, for each codec. Reports throughput and the
# agent's CPU time per MiB produced. Prints a Markdown table;
# docs/benchmarks.md quotes it.
#
#   bash bench/compressed-produce.sh [RECORDS] [OLD_REV]
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-300000}
old_rev=${2:-f2b3ff9^}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; git worktree remove --force "$tmp/old" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/tlog-new" ./cmd/tlog
git worktree add --detach -q "$tmp/old" "$old_rev"
(cd "$tmp/old" && go build -o "$tmp/tlog-old" ./cmd/tlog)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; } # clock ticks

run() { # binary codec -> "rec/s MiB/s cpu_ms_per_MiB"
  local bin=$1 codec=$2 data="$tmp/data-$1-$2"
  "$tmp/tlog-$bin" --log-level warn dev --data "$data" --listen "$addr" >"$tmp/dev.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  local c0 out c1
  c0=$(cpu "$pid")
  out=$("$tmp/tlog-new" --brokers "$addr" bench produce --topic c --partitions 8 -n "$records" --record-size 1024 \
    --acks all --compression "$codec" --payload text --format json)
  c1=$(cpu "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
  python3 - "$out" "$c0" "$c1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); c0, c1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
mib = r['bytes'] / (1 << 20)  # uncompressed value bytes produced
print(f"{r['records_per_sec']:.0f} {r['mib_per_sec']:.0f} {(c1 - c0) * 1000 / hz / mib:.1f}")
PY
}

echo "records=$records, 1 KiB JSON-like text values (compresses about 5x), 8 partitions, acks=all, idempotent, $(nproc) cores;"
echo "old = $(git rev-parse --short "$old_rev") (compressed batches checked by header and CRC only), new = work tree"
echo
echo "| codec | old: rec/s | new: rec/s | new/old | old: agent CPU ms per MiB | new: agent CPU ms per MiB |"
echo "|---|---|---|---|---|---|"
for codec in none gzip snappy lz4 zstd; do
  read -r or om oc <<<"$(run old "$codec")"
  read -r nr nm nc <<<"$(run new "$codec")"
  python3 -c "print(f'| $codec | $or | $nr | {$nr/$or:.2f} | $oc | $nc |')"
done
