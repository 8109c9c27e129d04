#!/usr/bin/env bash
# What keeping the statistics' pre-summed counts (migration 000012) costs
# writers: generates N fictional cases (default 20,000) into fresh stores
# with the summary triggers and with them dropped, alternating, on SQLite
# and on PostgreSQL, and prints the generation times and their ratio.
#
#   benches/summary-cost.sh [N] [ROUNDS]
#
# Needs a release build and python3; for PostgreSQL CG_BENCH_POSTGRES_URL
# (admin URL, default postgres://postgres@127.0.0.1:5432/postgres), where
# databases caseguard_bench_cost_* are created and dropped.
set -euo pipefail

N="${1:-20000}"
ROUNDS="${2:-2}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/caseguard"
PG_ADMIN="${CG_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"; for d in with without; do psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS caseguard_bench_cost_$d WITH (FORCE)" >/dev/null 2>&1 || true; done' EXIT

TRIGGERS_SQLITE="cases_counted cases_uncounted cases_recounted incidents_counted incidents_uncounted incidents_recounted referrals_counted referrals_uncounted referrals_recounted"
TRIGGERS_PG="cases_counted:cases cases_recounted:cases incidents_counted:incidents incidents_recounted:incidents referrals_counted:referrals referrals_recounted:referrals"

one() { # backend variant -> seconds of `demo --cases N`
    local backend="$1" variant="$2" dir="$WORK/$1-$2-$RANDOM"
    mkdir -p "$dir"
    export CASEGUARD_DATA_DIR="$dir"
    if [ "$backend" = sqlite ]; then
        export CASEGUARD_DATABASE_URL="sqlite://$dir/caseguard.db"
    else
        psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS caseguard_bench_cost_$variant WITH (FORCE)" >/dev/null
        psql "$PG_ADMIN" -qc "CREATE DATABASE caseguard_bench_cost_$variant" >/dev/null
        export CASEGUARD_DATABASE_URL="${PG_ADMIN%/*}/caseguard_bench_cost_$variant"
    fi
    "$BIN" migrate >/dev/null 2>&1
    if [ "$variant" = without ]; then
        if [ "$backend" = sqlite ]; then
            python3 - "$dir/caseguard.db" $TRIGGERS_SQLITE <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for name in sys.argv[2:]:
    db.execute(f"DROP TRIGGER {name}")
db.commit()
PY
        else
            for t in $TRIGGERS_PG; do
                psql "$CASEGUARD_DATABASE_URL" -qc "DROP TRIGGER ${t%%:*} ON ${t##*:}" >/dev/null
            done
        fi
    fi
    "$BIN" demo --cases "$N" 2>/dev/null | grep -o 'generated [0-9]* fictional case(s) in [0-9.]* s' | awk '{print $(NF-1)}'
    unset CASEGUARD_DATA_DIR CASEGUARD_DATABASE_URL
}

echo "machine: $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); $N cases per store, $ROUNDS rounds"
for backend in sqlite postgres; do
    with=0; without=0
    for _ in $(seq 1 "$ROUNDS"); do
        a="$(one "$backend" with)"; b="$(one "$backend" without)"
        echo "   $backend: with the summary ${a} s, without ${b} s"
        with="$(echo "$with + $a" | bc -l)"; without="$(echo "$without + $b" | bc -l)"
    done
    printf '%s: with %.1f s, without %.1f s over %d rounds: %.2fx\n' "$backend" "$with" "$without" "$ROUNDS" "$(echo "$with / $without" | bc -l)"
done
