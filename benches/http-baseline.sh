#!/usr/bin/env bash
# Foundation figures, the reference ceiling for later issues:
#   - time from process start to a green /readyz on an empty SQLite store
#     (process start, store creation, all migrations), median of 5 runs;
#   - idle resident memory after start, and after the load below;
#   - requests per second for /healthz and /readyz under wrk.
#
# Usage: benches/http-baseline.sh [BINARY]        (default target/release/caseguard)
#        PG_URL=postgres://postgres@127.0.0.1/postgres benches/http-baseline.sh
#          also measures /readyz on a fresh PostgreSQL database.
# Needs curl and wrk (apt-get install wrk). Build first: cargo build --release
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/caseguard}
duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }

start_server() { # $1 = database URL, $2 = data dir; sets pid and port
  port=$(free_port)
  CASEGUARD_LISTEN=127.0.0.1:$port CASEGUARD_DATABASE_URL=$1 CASEGUARD_DATA_DIR=$2 \
    CASEGUARD_LOG_LEVEL=warn "$bin" serve >"$work/server.log" 2>&1 &
  pid=$!
}
wait_ready() { until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do sleep 0.002; done; }
stop_server() { kill -TERM "$pid"; wait "$pid" || true; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

echo "binary: $bin ($(du -h "$bin" | cut -f1))"
samples=()
for i in 1 2 3 4 5; do
  data="$work/run$i"
  t0=$(now_ns)
  start_server "sqlite://$data/caseguard.db" "$data"
  wait_ready
  t1=$(now_ns)
  samples+=($(( (t1 - t0) / 1000000 )))
  [ "$i" = 5 ] || stop_server
done
median=$(printf '%s\n' "${samples[@]}" | sort -n | sed -n 3p)
echo "start to ready, empty SQLite store (ms): ${samples[*]} (median $median)"
sleep 2
echo "idle RSS after start: $(rss_kib) KiB"

for path in /healthz /readyz; do
  echo "wrk -t2 -c$connections -d$duration http://127.0.0.1:$port$path (SQLite)"
  wrk -t2 -c"$connections" -d"$duration" --latency "http://127.0.0.1:$port$path" | grep -E 'Requests/sec|50%|99%|Non-2xx'
done
echo "RSS after load: $(rss_kib) KiB"
stop_server

if [ -n "${PG_URL:-}" ]; then
  db="caseguard_bench_$$"
  psql -q "$PG_URL" -c "CREATE DATABASE $db"
  pg_db_url="${PG_URL%/*}/$db"
  start_server "$pg_db_url" "$work/pg"
  wait_ready
  echo "wrk -t2 -c$connections -d$duration http://127.0.0.1:$port/readyz (PostgreSQL)"
  wrk -t2 -c"$connections" -d"$duration" --latency "http://127.0.0.1:$port/readyz" | grep -E 'Requests/sec|50%|99%|Non-2xx'
  stop_server
  psql -q "$PG_URL" -c "DROP DATABASE $db WITH (FORCE)"
fi
