#!/usr/bin/env bash
# Builds the localstack images FROM scratch from static binaries (tlog and
# s3tool from this tree; MinIO with `go install`, CGO off, reusing
# localstack/.build/minio once built, which takes minutes the first time)
# and runs compose.yaml.
#
#   bash localstack/docker.sh build|up|down|clean
set -euo pipefail
cd "$(dirname "$0")"
compose() { if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi; }

build() {
  mkdir -p .build
  (cd .. && CGO_ENABLED=0 go build -o localstack/.build/tlog ./cmd/tlog && CGO_ENABLED=0 go build -o localstack/.build/s3tool ./bench/s3tool)
  if [ ! -x .build/minio ]; then
    minio=$(command -v minio || echo "$(go env GOPATH)/bin/minio")
    if go version -m "$minio" 2>/dev/null | grep -q 'CGO_ENABLED=0'; then
      cp "$minio" .build/minio # a static build already here (.ci/run installs one)
    else
      echo "building MinIO from source (CGO off, for a FROM scratch image): about 6 minutes on 2 cores, once; kept in localstack/.build/minio"
      CGO_ENABLED=0 GOBIN="$PWD/.build" go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
    fi
  fi
  docker build -q --target tlog -t tlog-localstack/tlog . >/dev/null
  docker build -q --target minio -t tlog-localstack/minio . >/dev/null
}

case "${1:-}" in
  build) build ;;
  up) build; compose -p tlog-localstack up -d
      TLOG_BROKERS=127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 .build/tlog cluster status --wait-agents 3 --timeout 60s >/dev/null
      echo "tlog cluster up in Docker: export TLOG_BROKERS=127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094" ;;
  down) compose -p tlog-localstack down ;;
  clean) compose -p tlog-localstack down -v; rm -rf .build ;;
  *) echo "usage: $0 build|up|down|clean" >&2; exit 2 ;;
esac
