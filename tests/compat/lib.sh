# Shared by the compat scripts: a fresh `tlog dev` on a free loopback port,
# stopped (and its log shown if the run failed) on exit. Source it, then
#   tmp=$(mktemp -d ...); start_tlog_dev [tlog dev flags...]
# which sets pid and addr. Set status=0 at the end of a successful run.

pid=""
status=1

stop_tlog_dev() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ "$status" -ne 0 ] && [ -f "$tmp/tlog.log" ]; then
		echo "---- last ${TLOG_LOG_TAIL:-200} lines of tlog's log ($tmp/tlog.log) ----" >&2
		tail -n "${TLOG_LOG_TAIL:-200}" "$tmp/tlog.log" >&2 || true
		echo "---- (data and logs kept in $tmp) ----" >&2
	else
		rm -rf "$tmp"
	fi
}

start_tlog_dev() {
	trap stop_tlog_dev EXIT
	trap 'exit 130' INT TERM
	echo "building tlog..."
	go build -o "$tmp/tlog" ./cmd/tlog
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
	addr="127.0.0.1:$port"
	"$tmp/tlog" --log-level "${TLOG_LOG_LEVEL:-info}" dev --data "$tmp/data" --listen "$addr" "$@" >"$tmp/tlog.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 300); do # 30 s
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "tlog exited before accepting connections" >&2
			exit 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "tlog dev is serving on $addr (pid $pid, log $tmp/tlog.log)"
			return 0
		fi
		sleep 0.1
	done
	echo "tlog did not accept connections on $addr within 30s" >&2
	exit 1
}
