#!/usr/bin/env bash
# `task bench`: install nats-server if it is missing (MinIO must be there,
# as .ci/run installs it), then run the suite; extra arguments go to it
# (e.g. -write=false, -skip-nats, -rounds 3).
set -euo pipefail
cd "$(dirname "$0")"
gobin=$(go env GOBIN); gobin=${gobin:-$(go env GOPATH)/bin}
if ! command -v nats-server >/dev/null && [ ! -x "$gobin/nats-server" ]; then
  CGO_ENABLED=0 go install github.com/nats-io/nats-server/v2@v2.15.3
fi
exec go run . -repo ../.. "$@"
