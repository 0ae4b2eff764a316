# Shared by the compat scripts: a fresh `tlog dev` on a free loopback port,
# stopped (and its log shown if the run failed) on exit. Source it, then
#   tmp=$(mktemp -d ...); start_tlog_dev [tlog dev flags...]
# which sets pid and addr. Set status=0 at the end of a successful run.

pid=""
status=1

pids=()

stop_tlog_dev() {
	for p in $pid "${pids[@]}"; do
		if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
			kill "$p" 2>/dev/null || true
			for _ in $(seq 1 50); do
				kill -0 "$p" 2>/dev/null || break
				sleep 0.1
			done
			kill -9 "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
	if [ "$status" -ne 0 ] && ls "$tmp"/tlog*.log >/dev/null 2>&1; then
		for f in "$tmp"/tlog*.log; do
			echo "---- last ${TLOG_LOG_TAIL:-200} lines of $f ----" >&2
			tail -n "${TLOG_LOG_TAIL:-200}" "$f" >&2 || true
		done
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

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_tlog_cluster starts three `tlog agent` processes sharing a
# filesystem bucket ($tmp/bucket), topics at RF=3 by default, and sets
# addr to their Kafka addresses, comma-separated.
start_tlog_cluster() {
	trap stop_tlog_dev EXIT
	trap 'exit 130' INT TERM
	echo "building tlog..."
	go build -o "$tmp/tlog" ./cmd/tlog
	mkdir -p "$tmp/bucket"
	local ports=() i
	addr=""
	for i in 0 1 2; do
		ports[i]=$(free_port)
		local peer
		peer=$(free_port)
		"$tmp/tlog" --log-level "${TLOG_LOG_LEVEL:-info}" agent --id "$i" --data "$tmp/agent-$i" \
			--bucket "file://$tmp/bucket" --listen "127.0.0.1:${ports[i]}" --peer-listen "127.0.0.1:$peer" \
			--auto-create-topics "$@" >"$tmp/tlog-agent-$i.log" 2>&1 &
		pids+=($!)
		addr="${addr:+$addr,}127.0.0.1:${ports[i]}"
	done
	for i in 0 1 2; do
		local ok=0
		for _ in $(seq 1 300); do # 30 s
			if ! kill -0 "${pids[i]}" 2>/dev/null; then
				echo "tlog agent $i exited before accepting connections" >&2
				exit 1
			fi
			if (exec 3<>"/dev/tcp/127.0.0.1/${ports[i]}") 2>/dev/null; then
				ok=1
				break
			fi
			sleep 0.1
		done
		if [ "$ok" -ne 1 ]; then
			echo "tlog agent $i did not accept connections within 30s" >&2
			exit 1
		fi
	done
	echo "tlog cluster of 3 agents is serving on $addr (logs in $tmp)"
}
