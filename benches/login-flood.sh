#!/usr/bin/env bash
# Does a sign-in flood starve the rest of the service? Throughput of /readyz
# alone, then while wrk floods POST /api/v1/auth/token with wrong passwords
# for an existing account; prints the ratio (target >= 0.5).
#
# The per-address sign-in limit is lifted for the run (it would turn most of
# the flood into cheap 429s); what is measured is the bounded password-hash
# pool. Usage: benches/login-flood.sh [BINARY]   (default target/release/caseguard)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/caseguard}
duration=${DURATION:-15s}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export CASEGUARD_LISTEN=127.0.0.1:$port CASEGUARD_DATA_DIR=$work/data \
  CASEGUARD_DATABASE_URL=sqlite://$work/data/caseguard.db CASEGUARD_LOG_LEVEL=error \
  CASEGUARD_LOGIN_ATTEMPTS_PER_MINUTE=100000000
"$bin" demo >/dev/null
"$bin" serve >"$work/server.log" 2>&1 &
until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do sleep 0.05; done

cat >"$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"daumoi.anbinh@demo.caseguard.invalid","password":"not the right password at all"}'
LUA

alone=$(wrk -t1 -c16 -d"$duration" "http://127.0.0.1:$port/readyz" | awk '/Requests\/sec/ {print $2}')
echo "/readyz alone:             $alone req/s"
wrk -t1 -c64 -d"$duration" -s "$work/login.lua" "http://127.0.0.1:$port/api/v1/auth/token" >"$work/flood.txt" &
flood=$!
sleep 1
during=$(wrk -t1 -c16 -d"$duration" "http://127.0.0.1:$port/readyz" | awk '/Requests/ && /sec/ {print $2}')
wait $flood
echo "/readyz during the flood:  $during req/s"
echo "sign-in flood:             $(awk '/Requests\/sec/ {print $2}' "$work/flood.txt") req/s ($(grep -E 'Non-2xx' "$work/flood.txt" | xargs))"
python3 -c "print(f'ratio: {float(\"$during\")/float(\"$alone\"):.2f} (target >= 0.5)')"
