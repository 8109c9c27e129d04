#!/usr/bin/env bash
# National scale (docs/SCALE.md): a national tree (34 provinces, 3,321
# communes, 45,000 schools) and N fictional cases (default 10,000,000) over
# ten years in one PostgreSQL database, then the six-month national report
# timed over HTTP as benches/stats.sh times the district's, the server's
# peak memory, and the store's bytes per case, table by table.
#
#   benches/scale.sh [N]
#
# How the cases are made, fast: `caseguard demo --cases BASE` (default
# 100,000) generates a base set through the real code (sealing, triggers,
# summary) over every school of the national tree; then SQL copies it
# onto new ids, other schools of the same level and dates moved back by
# 0, 2, 4, 6 or 8 years. With the default base, copies 1-4 go 2, 4, 6
# and 8 years back, copies 5-23 stay in the last two years and later ones
# cycle over 2, 4, 6, 8: the last two years always hold 2,000,000 cases (a
# ten-million, ten-year store's million a year), so the six-month window
# holds what it would at 10 M even when disk or time stop the copying
# earlier, and at N = 10,000,000 every year holds a million. The
# triggers and the secondary indexes off during the copy (they are
# recreated from their own definitions afterwards) and the pre-summed
# counts rebuilt in one pass with the same sums as migration 000012 (the
# script first checks that pass gives exactly what the triggers kept for
# the base set). A copy's sealed fields are the base case's bytes: same
# sizes, but they open only under the base case's id, so this store is for
# measuring statistics and storage, not for reading cases
# (`caseguard restore` / `migrate-store`, which open every case, would
# refuse it).
#
# Environment:
#   CG_BENCH_POSTGRES_URL  admin URL (default postgres://postgres@127.0.0.1:5432/postgres);
#                          the database caseguard_scale is created there
#   CG_SCALE_BASE          cases the demo generator makes (default 100000)
#   CG_SCALE_DIR           where the keyring, the tree file and logs go
#                          (default: a temporary directory)
#   CG_SCALE_KEEP=1        keep the database (default: dropped at the end);
#                          a kept one is reused by the next run (no generation)
#   CG_SCALE_UNTIL         stop copying at this time (`date -d` syntax, e.g.
#                          20:20) and measure what was reached
#   CG_SCALE_MAX_GB        refuse to copy beyond this projected size (default 35)
#   CG_BENCH_BIN           the release binary (default target/release/caseguard)
# Needs python3, psql and /usr/bin/time. Run it under `nice -n 10` on a
# shared machine.
set -euo pipefail

N="${1:-10000000}"
BASE="${CG_SCALE_BASE:-100000}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${CG_BENCH_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/caseguard}"
PG_ADMIN="${CG_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB=caseguard_scale
URL="${PG_ADMIN%/*}/$DB"
PORT="${CG_BENCH_PORT:-18090}"
RUNS=5
MAX_GB="${CG_SCALE_MAX_GB:-35}"
UNTIL=""
[ -n "${CG_SCALE_UNTIL:-}" ] && UNTIL="$(date -d "$CG_SCALE_UNTIL" +%s)"
[ -x "$BIN" ] || { echo "build first: cargo build --release (or set CG_BENCH_BIN)" >&2; exit 1; }
[ "$N" -ge "$BASE" ] || { echo "N ($N) must be at least the base set ($BASE)" >&2; exit 1; }

if [ -n "${CG_SCALE_DIR:-}" ]; then mkdir -p "$CG_SCALE_DIR"; WORK="$(cd "$CG_SCALE_DIR" && pwd)"; else WORK="$(mktemp -d)"; fi
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$(pgrep -P "$SERVER_PID")" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -z "${CG_SCALE_KEEP:-}" ]; then
        psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
        [ -n "${CG_SCALE_DIR:-}" ] || rm -rf "$WORK"
    fi
}
trap cleanup EXIT

export CASEGUARD_DATABASE_URL="$URL" CASEGUARD_DATA_DIR="$WORK/data"
# The shipped policies, but no retention run while measuring: the server
# would otherwise start destroying the content of the copies closed more
# than five years ago (what a real ten-year store would have done already;
# docs/SCALE.md counts it separately).
rm -rf "$WORK/policies"; cp -r "$ROOT/policies" "$WORK/policies"
sed -i 's/^closed_case_content_days = .*/closed_case_content_days = 36500/' "$WORK/policies/retention.toml"
export CASEGUARD_POLICY_DIR="$WORK/policies"
# The national report takes longer than the shipped 30 s request timeout
# (docs/SCALE.md): give it ten minutes so it can be timed.
export CASEGUARD_REQUEST_TIMEOUT_SECS="${CASEGUARD_REQUEST_TIMEOUT_SECS:-600}"
q() { PGOPTIONS="-c client_min_messages=warning" psql "$URL" -v ON_ERROR_STOP=1 -qAtX "$@"; }
stamp() { date -u +%H:%M:%S; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(uname -sr); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "disk before: $(df -h --output=avail /work | tail -1 | tr -d ' ') free on /work"

fresh=1
if [ -n "${CG_SCALE_KEEP:-}" ] && [ -s "$WORK/logins.json" ] \
    && psql "$PG_ADMIN" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    fresh=0
    echo "== reusing the database $DB and $WORK"
fi

if [ "$fresh" = 1 ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
    psql "$PG_ADMIN" -qc "CREATE DATABASE $DB" >/dev/null
    rm -rf "$WORK/data" "$WORK/logins.json"

    echo "== $(stamp) the demo district and its accounts"
    "$BIN" demo --json 2>/dev/null >"$WORK/logins.json"

    echo "== $(stamp) the national tree"
    python3 - "$WORK/national.csv" <<'EOF'
import csv, random, sys
# 34 provinces, 3,321 communes (Vietnam after the 2025 reform: no district
# tier), 45,000 schools in the proportions of the levels. Invented names.
rng = random.Random(34)
levels = [("kindergarten", 34), ("primary", 31), ("lower_secondary", 22),
          ("upper_secondary", 5.5), ("primary_lower_secondary", 4),
          ("lower_upper_secondary", 1.5), ("continuing_education", 1.5),
          ("special_education", 0.5)]
names = {"kindergarten": "Trường Mầm non", "primary": "Trường Tiểu học",
         "lower_secondary": "Trường THCS", "upper_secondary": "Trường THPT",
         "primary_lower_secondary": "Trường Tiểu học và THCS",
         "lower_upper_secondary": "Trường THCS và THPT",
         "continuing_education": "Trung tâm GDTX",
         "special_education": "Trường chuyên biệt"}
provinces, communes, schools = 34, 3321, 45000
with open(sys.argv[1], "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["kind", "code", "name", "parent", "level", "agency_type"])
    w.writerow(["area", "VN", "Bộ Giáo dục và Đào tạo (thử nghiệm)", "", "national", ""])
    # The demo province joins the national tree (its agencies receive the referrals).
    w.writerow(["area", "SX", "Tỉnh Sông Xanh (demo)", "VN", "province", ""])
    commune_codes = []
    for p in range(provinces):
        pc = "VN%02d" % (p + 1)
        w.writerow(["area", pc, "Tỉnh thử nghiệm %02d" % (p + 1), "VN", "province", ""])
        for c in range(communes * (p + 1) // provinces - communes * p // provinces):
            cc = "%s-X%03d" % (pc, c + 1)
            commune_codes.append(cc)
            w.writerow(["area", cc, "Xã thử nghiệm %s" % cc, pc, "commune", ""])
    per = {}
    for s in range(schools):
        cc = commune_codes[s * len(commune_codes) // schools]
        level = rng.choices([l for l, _ in levels], [w for _, w in levels])[0]
        per[cc] = per.get(cc, 0) + 1
        code = "%s-T%02d" % (cc, per[cc])
        w.writerow(["school", code, "%s thử nghiệm %s" % (names[level], code), cc, level, ""])
EOF
    "$BIN" org import "$WORK/national.csv" 2>&1 | tail -1
    q -c "SELECT 'organisations: ' || string_agg(kind || ' ' || n, ', ') FROM (SELECT kind, count(*) n FROM organisations GROUP BY kind ORDER BY kind) x"

    echo "== $(stamp) $BASE cases through the demo generator (real sealing, triggers on)"
    gen_start=$(date +%s)
    "$BIN" demo --cases "$BASE" --seed 1 2>/dev/null | grep -o 'generated [0-9]* fictional case(s) in [0-9.]* s' || true
    echo "   $(( $(date +%s) - gen_start )) s including the start"
fi

# Ids: the base id's UUIDv7 time moved on by k × 1,000 s, the rest kept, so
# copies are unique, still UUIDv7-shaped and (as in the real service) grow
# with the time of writing, so a copy appends to the primary keys.
q <<'SQL'
CREATE OR REPLACE FUNCTION scale_id(id TEXT, k INTEGER) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || substr(id, 14)
    FROM (SELECT lpad(to_hex(('x' || substr(id, 1, 8) || substr(id, 10, 4))::bit(48)::bigint
                             + k::bigint * 1000000), 12, '0') AS h) t
$$;
CREATE TABLE IF NOT EXISTS scale_copies (k INTEGER PRIMARY KEY, cases BIGINT NOT NULL, seconds NUMERIC NOT NULL);
CREATE TABLE IF NOT EXISTS scale_indexes (name TEXT PRIMARY KEY, def TEXT NOT NULL);
-- The base set: copies are made of the cases that are not copies.
CREATE TABLE IF NOT EXISTS scale_base AS SELECT id FROM cases;
SQL
# The base set's rows, apart: the copies read them by case without the
# secondary indexes (dropped while copying) and without scanning the copies.
for t in cases case_keys pupils incidents chronology referrals; do
    key=case_id; [ "$t" = cases ] && key=id
    q -c "CREATE TABLE IF NOT EXISTS scale_base_$t AS SELECT x.* FROM $t x JOIN scale_base b ON b.id = x.$key" \
      -c "CREATE INDEX IF NOT EXISTS scale_base_${t}_key ON scale_base_$t ($key)"
done
base_n="$(q -c "SELECT count(*) FROM scale_base")"

# The summary rebuilt from the rows (migration 000012's pass, counting at
# COALESCE(recorded_school_id, school_id) as 000015 does).
SUMMARY_SQL="
SELECT g.grain,
       CASE g.grain WHEN 'd' THEN to_char(x.ts, 'YYYY-MM-DD')
            ELSE to_char(date_trunc('month', x.ts), 'YYYY-MM-DD') END,
       x.school_id, x.measure, x.a, x.b, COUNT(*)
FROM (
    SELECT created_at AS ts, COALESCE(recorded_school_id, school_id) AS school_id, 'case' AS measure, survivor_sex AS a, COALESCE(age_band, '') AS b FROM cases
    UNION ALL
    SELECT closed_at, COALESCE(recorded_school_id, school_id), 'closure', '', stats_whole(closed_at, created_at, 86400)
    FROM cases WHERE closed_at IS NOT NULL
    UNION ALL
    SELECT created_at, school_id, 'incident_type', COALESCE(survivor_sex, ''), incident_type FROM incidents
    UNION ALL
    SELECT created_at, school_id, 'incident_relation', COALESCE(survivor_sex, ''), perpetrator_relation FROM incidents
    UNION ALL
    SELECT created_at, school_id, 'incident_delay', COALESCE(survivor_sex, ''), reporting_delay FROM incidents
    UNION ALL
    SELECT sent_at, COALESCE(recorded_school_id, school_id), 'referral', agency_type, status FROM referrals
    UNION ALL
    SELECT sent_at, COALESCE(recorded_school_id, school_id), 'referral_ack',
           CASE WHEN acknowledged_at <= acknowledge_by THEN 'on_time' ELSE 'late' END,
           stats_whole(acknowledged_at, sent_at, 3600)
    FROM referrals WHERE acknowledged_at IS NOT NULL
) x
CROSS JOIN (VALUES ('d'), ('m')) AS g (grain)
WHERE x.school_id IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6"

copies_done="$(q -c "SELECT count(*) FROM scale_copies")"
if [ "$copies_done" = 0 ] && [ -z "$(q -c "SELECT 1 FROM scale_indexes LIMIT 1")" ]; then
    echo "== $(stamp) the one-pass summary equals what the triggers kept for the base set?"
    diff_rows="$(q -c "CREATE TEMP TABLE s AS $SUMMARY_SQL;
        SELECT count(*) FROM ((TABLE s EXCEPT SELECT grain, bucket, school_id, measure, a, b, n FROM stats_counts)
            UNION ALL (SELECT grain, bucket, school_id, measure, a, b, n FROM stats_counts EXCEPT TABLE s)) d")"
    echo "   rows that differ: $diff_rows"
    [ "$diff_rows" = 0 ] || { echo "the rebuild would not be exact: stopping" >&2; exit 1; }
    echo "   base store: $(q -c "SELECT pg_size_pretty(pg_database_size('$DB'))") for $base_n cases"
fi

copies=$(( (N + base_n - 1) / base_n ))
if [ "$copies_done" -lt $(( copies - 1 )) ]; then
    echo "== $(stamp) copying to $N cases ($copies - 1 copies of $base_n)"
    if [ "$copies_done" = 0 ]; then # the base store, whole, per case
        per_case="$(q -c "SELECT pg_database_size('$DB') / $base_n")"
        projected=$(( per_case * N / 1024 / 1024 / 1024 ))
        echo "   projected ~${projected} GiB at ${per_case} B/case"
        [ "$projected" -le "$MAX_GB" ] || { echo "projected size over CG_SCALE_MAX_GB=$MAX_GB: lower N" >&2; exit 1; }
    fi
    # Secondary indexes off while copying (their definitions kept in the store).
    q <<'SQL'
INSERT INTO scale_indexes (name, def)
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relname IN ('cases', 'case_keys', 'pupils', 'incidents', 'chronology', 'referrals')
  AND NOT i.indisprimary AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ON CONFLICT DO NOTHING;
SQL
    for name in $(q -c "SELECT name FROM scale_indexes"); do q -c "DROP INDEX IF EXISTS $name"; done
    q <<'SQL'
CREATE TABLE IF NOT EXISTS scale_schools AS
SELECT id, school_level, (row_number() OVER (PARTITION BY school_level ORDER BY id) - 1)::int AS idx,
       (count(*) OVER (PARTITION BY school_level))::int AS n
FROM organisations WHERE kind = 'school';
CREATE UNIQUE INDEX IF NOT EXISTS scale_schools_id ON scale_schools (id);
CREATE UNIQUE INDEX IF NOT EXISTS scale_schools_idx ON scale_schools (school_level, idx);
SQL
    copy_start=$(date +%s)
    for k in $(seq 1 $(( copies - 1 ))); do
        [ -z "$(q -c "SELECT 1 FROM scale_copies WHERE k = $k")" ] || continue
        if [ -n "$UNTIL" ] && [ "$(date +%s)" -ge "$UNTIL" ]; then
            echo "   stopped at CG_SCALE_UNTIL: $(q -c "SELECT count(*) FROM cases") cases"; break
        fi
        t0=$(date +%s.%N)
        q -v k="$k" <<'SQL'
SET session_replication_role = replica;  -- no triggers, no foreign-key checks: the rows are copies of checked ones
SET synchronous_commit = off;
SET work_mem = '256MB';
BEGIN;
CREATE TEMP TABLE m ON COMMIT DROP AS
SELECT c.id AS old_id, scale_id(c.id, :k) AS new_id, t.id AS school_id,
       make_interval(years => CASE WHEN :k BETWEEN 1 AND 4 THEN 2 * :k
                                   WHEN :k < 24 THEN 0 ELSE 2 * (1 + :k % 4) END) AS back
FROM scale_base_cases c
JOIN scale_schools f ON f.id = c.school_id
JOIN scale_schools t ON t.school_level = f.school_level AND t.idx = (f.idx + :k * 7919) % f.n;
INSERT INTO cases (id, school_id, status, risk_level, survivor_sex, age_band, under_16, under_18, disability,
                   school_level, version, created_by, created_at, updated_at, closed_at, content_destroyed_at,
                   legal_hold, recorded_school_id, assigned_to)
SELECT m.new_id, m.school_id, c.status, c.risk_level, c.survivor_sex, c.age_band, c.under_16, c.under_18, c.disability,
       c.school_level, c.version, c.created_by, c.created_at - m.back, c.updated_at - m.back, c.closed_at - m.back,
       c.content_destroyed_at, c.legal_hold, NULL, c.assigned_to
FROM m JOIN scale_base_cases c ON c.id = m.old_id ORDER BY m.new_id;
INSERT INTO case_keys (case_id, kek_id, wrapped_dek, created_at, rewrapped_at, bound_school_id)
SELECT m.new_id, x.kek_id, x.wrapped_dek, x.created_at - m.back, x.rewrapped_at, NULL
FROM m JOIN scale_base_case_keys x ON x.case_id = m.old_id ORDER BY m.new_id;
INSERT INTO pupils (case_id, name_enc, date_of_birth_enc, class_enc, guardian_enc, contact_enc, blind_index)
SELECT m.new_id, p.name_enc, p.date_of_birth_enc, p.class_enc, p.guardian_enc, p.contact_enc,
       substr(encode(sha256(convert_to(p.blind_index || ':' || :k, 'UTF8')), 'hex'), 1, length(p.blind_index))
FROM m JOIN scale_base_pupils p ON p.case_id = m.old_id ORDER BY m.new_id;
INSERT INTO incidents (id, case_id, incident_type, csa_subtype, contexts, location_type, perpetrator_relation,
                       incident_month, reporting_delay, incident_date_enc, narrative_enc, created_by, created_at,
                       school_id, survivor_sex)
SELECT scale_id(i.id, :k), m.new_id, i.incident_type, i.csa_subtype, i.contexts, i.location_type, i.perpetrator_relation,
       to_char(to_date(i.incident_month || '-01', 'YYYY-MM-DD') - m.back, 'YYYY-MM'), i.reporting_delay,
       i.incident_date_enc, i.narrative_enc, i.created_by, i.created_at - m.back, m.school_id, i.survivor_sex
FROM m JOIN scale_base_incidents i ON i.case_id = m.old_id ORDER BY 1;
INSERT INTO chronology (id, case_id, kind, from_status, to_status, note_enc, author_id, created_at)
SELECT scale_id(h.id, :k), m.new_id, h.kind, h.from_status, h.to_status, h.note_enc, h.author_id, h.created_at - m.back
FROM m JOIN scale_base_chronology h ON h.case_id = m.old_id ORDER BY 1;
INSERT INTO referrals (id, case_id, school_id, agency_id, agency_type, kind, need, profile, rules, legal_basis, status,
                       note_enc, override_reason_enc, acknowledge_by, version, sent_by, sent_at, acknowledged_at,
                       answered_at, closed_at, updated_at, recorded_school_id)
SELECT scale_id(r.id, :k), m.new_id, m.school_id, r.agency_id, r.agency_type, r.kind, r.need, r.profile, r.rules,
       r.legal_basis, r.status, r.note_enc, r.override_reason_enc, r.acknowledge_by - m.back, r.version, r.sent_by,
       r.sent_at - m.back, r.acknowledged_at - m.back, r.answered_at - m.back, r.closed_at - m.back,
       r.updated_at - m.back, NULL
FROM m JOIN scale_base_referrals r ON r.case_id = m.old_id ORDER BY 1;
INSERT INTO scale_copies (k, cases, seconds) SELECT :k, count(*), 0 FROM m;
COMMIT;
SQL
        t1=$(date +%s.%N)
        q -c "UPDATE scale_copies SET seconds = round(($t1 - $t0)::numeric, 1) WHERE k = $k"
        if [ $(( k % 10 )) = 0 ]; then
            echo "   $(stamp) copy $k: $(q -c "SELECT sum(cases) FROM scale_copies") copied, $(( $(date +%s) - copy_start )) s, $(q -c "SELECT pg_size_pretty(pg_database_size('$DB'))"), $(df -h --output=avail /work | tail -1 | tr -d ' ') free"
        fi
    done
    copied_s=$(( $(date +%s) - copy_start ))
    echo "   copies: $(q -c "SELECT count(*) || ' copies, ' || sum(cases) || ' cases, median ' || percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) || ' s per copy' FROM scale_copies") ($copied_s s this run)"
fi

if [ -n "$(q -c "SELECT 1 FROM scale_indexes LIMIT 1")" ]; then
    echo "== $(stamp) secondary indexes back"
    idx_start=$(date +%s)
    q -c "SELECT name FROM scale_indexes" | while read -r name; do
        def="$(q -c "SELECT def FROM scale_indexes WHERE name = '$name'")"
        s=$(date +%s)
        q -c "SET maintenance_work_mem = '512MB'" -c "$def" -c "DELETE FROM scale_indexes WHERE name = '$name'"
        echo "   $name: $(( $(date +%s) - s )) s"
    done
    echo "   $(( $(date +%s) - idx_start )) s"
    echo "== $(stamp) the pre-summed counts rebuilt in one pass"
    s=$(date +%s)
    q -c "SET work_mem = '512MB'" -c "BEGIN" -c "TRUNCATE stats_counts" \
      -c "INSERT INTO stats_counts (grain, bucket, school_id, measure, a, b, n) $SUMMARY_SQL" -c "COMMIT"
    echo "   $(( $(date +%s) - s )) s, $(q -c "SELECT count(*) FROM stats_counts") rows"
    s=$(date +%s)
    q -c "VACUUM (ANALYZE) cases, case_keys, pupils, incidents, chronology, referrals, stats_counts"
    echo "   VACUUM ANALYZE: $(( $(date +%s) - s )) s"
fi

total="$(q -c "SELECT count(*) FROM cases")"
echo "== $(stamp) the store: $total cases over $(q -c "SELECT min(created_at)::date || ' .. ' || max(created_at)::date FROM cases")"
echo "   database: $(q -c "SELECT pg_size_pretty(pg_database_size('$DB'))") ($(q -c "SELECT pg_database_size('$DB') / $total") B per case); disk $(df -h --output=avail /work | tail -1 | tr -d ' ') free on /work"
q -F ' | ' <<'SQL'
SELECT '   ' || c.relname, n_live_tup AS rows, pg_size_pretty(pg_table_size(c.oid)) AS heap_toast,
       pg_size_pretty(pg_indexes_size(c.oid)) AS indexes,
       round((pg_total_relation_size(c.oid)::numeric / (SELECT count(*) FROM cases)), 1) AS bytes_per_case
FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind = 'r' AND pg_total_relation_size(c.oid) > 1000000
ORDER BY pg_total_relation_size(c.oid) DESC;
SQL

# A national officer: the demo's district officer, moved to the national root.
q -c "UPDATE users SET org_id = (SELECT id FROM organisations WHERE code = 'VN') WHERE email = 'phonggd.anlac@demo.caseguard.invalid'"
totp() { python3 "$ROOT/benches/totp.py" "$1"; } # otpauth URI -> current code
login="$(python3 -c '
import json, sys
text = open(sys.argv[1]).read()
logins = json.loads(text[:text.rindex("]") + 1])
o = next(l for l in logins if l["role"] == "district_officer")
print(o["email"], o["password"].replace(" ", "\u00a0"), o["totp_uri"])' "$WORK/logins.json")"
read -r email password uri <<<"$login"
password="${password//$'\u00a0'/ }"
CASEGUARD_LISTEN="127.0.0.1:$PORT" /usr/bin/time -v "$BIN" serve >"$WORK/serve.log" 2>"$WORK/time.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
token="$(curl -sf "http://127.0.0.1:$PORT/api/v1/auth/token" -H 'content-type: application/json' \
    -d "$(python3 -c 'import json,sys; print(json.dumps({"email": sys.argv[1], "password": sys.argv[2], "totp": sys.argv[3]}))' "$email" "$password" "$(totp "$uri")")" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
p="$(python3 -c 'import datetime; t = datetime.date.today(); print("six_month-%d" % (t.year if t.month > 4 else t.year - 1))')"
report="http://127.0.0.1:$PORT/api/v1/stats/report?area=VN&period=$p"
t0=$(date +%s.%N)
curl -sS --fail-with-body -H "authorization: Bearer $token" "$report" >"$WORK/report.json" \
    || { echo "the report failed:" >&2; cat "$WORK/report.json" >&2; exit 1; }
t1=$(date +%s.%N)
python3 - "$WORK/report.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
cases = next(t["total"] for t in r["tables"] if t["code"] == "cases_by_age")
print("   report: %s cases in the window, %d tables, %d bytes of JSON" % (cases, len(r["tables"]), len(open(sys.argv[1], "rb").read())))
EOF
printf '   first request (cold caches): %.3f s\n' "$(echo "$t1 - $t0" | bc)"
echo "   cases in the window, counted in SQL: $(q -c "SELECT count(*) FROM cases WHERE created_at >= (date '${p#six_month-}-05-01' - interval '6 months' - interval '7 hours') AND created_at < (date '${p#six_month-}-05-01' - interval '7 hours')")"
times=()
for _ in $(seq 1 $RUNS); do
    times+=("$(curl -sf -o /dev/null -w '%{time_total}' -H "authorization: Bearer $token" "$report")")
done
printf '   national six-month report (%s): %s s (median of %d: %s)\n' "$p" \
    "$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")" "$RUNS" "${times[*]}"
kill -TERM "$(pgrep -P "$SERVER_PID")" 2>/dev/null || true
wait "$SERVER_PID" || true; SERVER_PID=""
echo "   server peak RSS: $(grep 'Maximum resident' "$WORK/time.log" | awk '{print $NF}') KiB"
echo "== $(stamp) done"
