# Sourced by the tiered-storage benchmarks (bench/put-rate.sh,
# bench/cold-replay.sh): a throwaway MinIO and `tlog dev` processes on free
# loopback ports, everything under $tmp (set by the caller, which also
# kills its jobs on exit). MinIO comes from $PATH or $(go env GOPATH)/bin,
# where .ci/run installs it.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_minio: sets $endpoint and exports the AWS credentials tlog uses.
start_minio() {
  local bin port cport
  bin=$(command -v minio || echo "$(go env GOPATH)/bin/minio")
  if [ ! -x "$bin" ]; then
    echo "minio not found; install it as .ci/run does (go install github.com/minio/minio@...)" >&2
    exit 1
  fi
  port=$(free_port); cport=$(free_port)
  export AWS_ACCESS_KEY_ID=tlogbench AWS_SECRET_ACCESS_KEY="bench-$RANDOM$RANDOM$RANDOM"
  export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  unset AWS_PROFILE AWS_SESSION_TOKEN
  MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY \
    MINIO_BROWSER=off MINIO_UPDATE=off MINIO_PROMETHEUS_AUTH_TYPE=public \
    "$bin" server "$tmp/minio" --address "127.0.0.1:$port" --console-address "127.0.0.1:$cport" --quiet >"$tmp/minio.log" 2>&1 &
  minio_pid=$!
  endpoint=http://127.0.0.1:$port
  for _ in $(seq 300); do
    curl -fs "$endpoint/minio/health/ready" >/dev/null 2>&1 && return 0
    kill -0 "$minio_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$tmp/minio.log" >&2
  exit 1
}

# start_tlog DATA PREFIX [dev flags...]: tlog dev on s3://$bucket/PREFIX;
# sets $addr and $tlog_pid.
start_tlog() {
  local data=$1 prefix=$2 port
  shift 2
  port=$(free_port)
  addr=127.0.0.1:$port
  "$tmp/tlog" --log-level warn dev --data "$data" --listen "$addr" \
    --bucket "s3://$bucket/$prefix?endpoint=$endpoint&region=us-east-1" "$@" >>"$data.log" 2>&1 &
  tlog_pid=$!
  for _ in $(seq 300); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$tlog_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$data.log" >&2
  exit 1
}

# stop_tlog: SIGTERM, and wait for a clean exit.
stop_tlog() {
  kill -TERM "$tlog_pid"
  wait "$tlog_pid" || { echo "tlog dev exited with $?" >&2; exit 1; }
}
