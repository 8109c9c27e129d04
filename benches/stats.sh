#!/usr/bin/env bash
# District statistics at scale: generates N fictional cases (default
# 1,000,000) into a fresh store on SQLite and on PostgreSQL, then times, on
# the running server, the district's full six-month report and one dashboard
# chart, and the server's peak memory (/usr/bin/time -v) while computing them.
#
#   benches/stats.sh [N]
#
# Needs a release build (cargo build --release), python3 (for the demo
# account's TOTP code) and, for the PostgreSQL half, CG_BENCH_POSTGRES_URL
# (admin URL, default postgres://postgres@127.0.0.1:5432/postgres): a
# database caseguard_bench_stats is created there and dropped afterwards.
# Results go to stdout; docs/PERFORMANCE.md records them.
#
# CG_BENCH_KEEP=DIR keeps the generated stores (DIR for SQLite, the
# database caseguard_bench_stats for PostgreSQL) and reuses them on the
# next run instead of generating again: a store made by an older release is
# migrated by the one measured, as an upgrade would.
set -euo pipefail

N="${1:-1000000}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/caseguard"
PG_ADMIN="${CG_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PORT="${CG_BENCH_PORT:-18089}"
RUNS=5
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }

KEEP="${CG_BENCH_KEEP:-}"
if [ -n "$KEEP" ]; then mkdir -p "$KEEP"; WORK="$(cd "$KEEP" && pwd)"; else WORK="$(mktemp -d)"; fi
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$(pgrep -P "$SERVER_PID")" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -z "$KEEP" ]; then
        psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS caseguard_bench_stats WITH (FORCE)" >/dev/null 2>&1 || true
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

totp() { python3 "$ROOT/benches/totp.py" "$1"; } # otpauth URI -> current code

period() { # the six-month report whose window ended last (or is running)
    python3 -c 'import datetime; t = datetime.date.today(); print("six_month-%d" % (t.year if t.month > 4 else t.year - 1))'
}

bench() {
    local name="$1" url="$2" dir="$WORK/$1"
    mkdir -p "$dir"
    export CASEGUARD_DATABASE_URL="$url" CASEGUARD_DATA_DIR="$dir/data"
    local logins
    if [ -s "$dir/logins.json" ]; then
        echo "== $name: reusing the store kept in $dir"
        logins="$(cat "$dir/logins.json")"
        local migrate_start=$SECONDS
        "$BIN" migrate >/dev/null 2>&1
        echo "   caseguard migrate: $((SECONDS - migrate_start)) s"
    else
        echo "== $name: generating $N cases"
        logins="$("$BIN" demo --json --cases "$N" 2>/dev/null)"
        printf '%s\n' "$logins" >"$dir/logins.json"
    fi
    local started=$SECONDS
    local generated
    generated="$(printf '%s\n' "$logins" | grep -o 'generated [0-9]* fictional case(s) in [0-9.]* s' || true)"
    echo "   $generated"
    local login
    login="$(printf '%s\n' "$logins" | python3 -c '
import json, sys
text = sys.stdin.read()
logins = json.loads(text[:text.rindex("]") + 1])
o = next(l for l in logins if l["role"] == "district_officer")
print(o["email"], o["password"].replace(" ", "\u00a0"), o["totp_uri"])')"
    read -r email password uri <<<"$login"
    password="${password//$'\u00a0'/ }"
    CASEGUARD_LISTEN="127.0.0.1:$PORT" /usr/bin/time -v "$BIN" serve >"$dir/serve.log" 2>"$dir/time.log" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
    local token
    token="$(curl -sf "http://127.0.0.1:$PORT/api/v1/auth/token" -H 'content-type: application/json' \
        -d "$(python3 -c 'import json,sys; print(json.dumps({"email": sys.argv[1], "password": sys.argv[2], "totp": sys.argv[3]}))' "$email" "$password" "$(totp "$uri")")" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
    local p
    p="$(period)"
    local report="http://127.0.0.1:$PORT/api/v1/stats/report?area=SX-AL&period=$p"
    local chart="http://127.0.0.1:$PORT/api/v1/stats/chart?area=SX-AL&period=$p&table=incidents_by_type"
    local cases
    cases="$(curl -sf -H "authorization: Bearer $token" "$report" | python3 -c 'import json,sys; r = json.load(sys.stdin); print(next(t["total"] for t in r["tables"] if t["code"] == "cases_by_age"))')"
    echo "   period $p: $cases cases in the window (first request warms the caches)"
    for what in report chart; do
        local target="$report"; [ "$what" = chart ] && target="$chart"
        local times=()
        for _ in $(seq 1 $RUNS); do
            times+=("$(curl -sf -o /dev/null -w '%{time_total}' -H "authorization: Bearer $token" "$target")")
        done
        printf '   %-6s %s s (median of %d: %s)\n' "$what" \
            "$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")" "$RUNS" "${times[*]}"
    done
    local cli_start cli_end
    cli_start=$(date +%s.%N)
    "$BIN" stats report --area SX-AL --period "$p" --format xlsx --out "$dir/report.xlsx" 2>/dev/null
    cli_end=$(date +%s.%N)
    printf '   cli    %.2f s (stats report --format xlsx, whole process)\n' "$(echo "$cli_end - $cli_start" | bc)"
    # GNU time ignores SIGINT itself: stop the server it runs.
    kill -TERM "$(pgrep -P "$SERVER_PID")" 2>/dev/null || true
    wait "$SERVER_PID" || true; SERVER_PID=""
    echo "   server peak RSS: $(grep 'Maximum resident' "$dir/time.log" | awk '{print $NF}') KiB"
    if [ "$name" = sqlite ]; then
        echo "   store size: $(du -sh "$dir/data" | cut -f1) (SQLite file and keyring)"
    else
        echo "   store size: $(psql "$PG_ADMIN" -tAc "SELECT pg_size_pretty(pg_database_size('caseguard_bench_stats'))")"
    fi
    unset CASEGUARD_DATABASE_URL CASEGUARD_DATA_DIR
    echo "   ($((SECONDS - started)) s for the measurements)"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(uname -sr)"
bench sqlite "sqlite://$WORK/sqlite/data/caseguard.db"
if [ -n "$KEEP" ] && [ -s "$WORK/postgres/logins.json" ] \
    && psql "$PG_ADMIN" -tAc "SELECT 1 FROM pg_database WHERE datname = 'caseguard_bench_stats'" 2>/dev/null | grep -q 1; then
    bench postgres "${PG_ADMIN%/*}/caseguard_bench_stats"
elif psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS caseguard_bench_stats WITH (FORCE)" >/dev/null 2>&1 \
    && psql "$PG_ADMIN" -qc "CREATE DATABASE caseguard_bench_stats" >/dev/null; then
    bench postgres "${PG_ADMIN%/*}/caseguard_bench_stats"
else
    echo "== postgres: skipped (cannot reach $PG_ADMIN)"
fi
