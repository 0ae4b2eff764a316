#!/usr/bin/env bash
# A local tlog cluster as plain processes: MinIO on 127.0.0.1:9000 and three
# `tlog agent`s on Kafka ports 9092-9094 (peer ports 9192-9194, admin
# 9292-9294), zones a, b and c, sharing the bucket s3://tlog/local. State
# lives in localstack/.data; `down` stops everything, `clean` also deletes
# it. MinIO comes from $PATH or $(go env GOPATH)/bin (.ci/run installs it).
#
#   bash localstack/run.sh up|down|status|clean
set -euo pipefail
cd "$(dirname "$0")/.."
state=localstack/.data
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-tlog} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-tlog-local-secret}
export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
endpoint=http://127.0.0.1:9000
bucket="s3://tlog/local?endpoint=$endpoint&region=us-east-1"
brokers=127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094

wait_port() { # port pid log
  for _ in $(seq 300); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; return 1; }
    sleep 0.1
  done
  cat "$3" >&2
  return 1
}

up() {
  mkdir -p "$state"
  local minio
  minio=$(command -v minio || echo "$(go env GOPATH)/bin/minio")
  [ -x "$minio" ] || { echo "minio not found: CGO_ENABLED=0 go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c (about 6 minutes on 2 cores)" >&2; exit 1; }
  go build -o "$state/tlog" ./cmd/tlog
  go build -o "$state/s3tool" ./bench/s3tool
  MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off MINIO_UPDATE=off \
    nohup "$minio" server "$state/minio" --address 127.0.0.1:9000 --console-address 127.0.0.1:9001 --quiet >"$state/minio.log" 2>&1 &
  echo $! >"$state/minio.pid"
  wait_port 9000 "$(cat "$state/minio.pid")" "$state/minio.log"
  "$state/s3tool" mkbucket -endpoint "$endpoint" -bucket tlog >/dev/null
  local zones=(a b c)
  for i in 0 1 2; do
    nohup "$state/tlog" agent --id "$i" --zone "${zones[$i]}" --data "$state/agent-$i" --bucket "$bucket" \
      --listen "127.0.0.1:909$((2 + i))" --peer-listen "127.0.0.1:919$((2 + i))" --admin-listen "127.0.0.1:929$((2 + i))" \
      >"$state/agent-$i.log" 2>&1 &
    echo $! >"$state/agent-$i.pid"
  done
  for i in 0 1 2; do wait_port "909$((2 + i))" "$(cat "$state/agent-$i.pid")" "$state/agent-$i.log"; done
  # Listening is not yet registered: wait until all three are live, so
  # that status (and RF 3 topics) right after up see the whole cluster.
  TLOG_BROKERS=$brokers "$state/tlog" cluster status --wait-agents 3 --timeout 60s >/dev/null
  echo "tlog cluster up: Kafka on $brokers; MinIO on $endpoint"
  echo "  export TLOG_BROKERS=$brokers; $state/tlog cluster status"
}

down() {
  for f in "$state"/agent-*.pid "$state"/minio.pid; do
    [ -f "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) TLOG_BROKERS=$brokers "$state/tlog" cluster status ;;
  clean) down; rm -rf "$state" ;;
  *) echo "usage: $0 up|down|status|clean" >&2; exit 2 ;;
esac
