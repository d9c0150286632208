#!/usr/bin/env bash
# Benchmark (not a test): what telemetry costs the token endpoint. client_credentials tokens per second of
# Identity.Server with telemetry off (A) and on as in production (B: metrics with the Prometheus scrape endpoint on the
# management port, scraped every SCRAPE_INTERVAL_S as Prometheus would, and traces sampled parent-based at 1 %),
# alternating A B A B in the same run. Issue 19's target: B >= 95 % of A.
#
#   bench/telemetry-bench.sh
#   WARMUP_S=1 DURATION_S=3 QUIET_WAIT_S=2 bench/telemetry-bench.sh   # a quick smoke run of the script itself
#
# env: ROUNDS (3, at least 3)   rounds of (off, on)
#      SCRAPE_INTERVAL_S (15)   how often the on server's /metrics is scraped during its rounds (0: never)
#      QUIET_WAIT_S (120)       before each measurement, how long to wait for the machine to be idle (bench/lib.sh wait_quiet)
#      PEER_BENCH_DIR           the shared bench harness, for its load generator token-load.sh (default: <repo>/../shared/bench)
#      WARMUP_S, DURATION_S, CONNS, THREADS: passed on to token-load.sh (5, 15, 32, 2)
#
# What it does:
#   1. installs wrk if missing; starts a private PostgreSQL (scripts/lib/postgres.sh) with one database per server
#   2. dotnet publish src/Identity.Server (Release); starts it twice from the same build, both Production on PostgreSQL
#      with the same client and settings: "off" on 127.0.0.1:7290 (no Telemetry settings) and "on" on 127.0.0.1:7291
#      (Telemetry:Traces=true, TraceSampleRatio=0.01, ManagementPort=7292 on 127.0.0.1); both stay up, one idle while
#      the other is measured
#   3. checks that "on" serves /metrics on its management port and "off" has none
#   4. per round: token-load.sh against "off", then against "on" (with the scraper running)
#   5. prints per-round figures, the medians and the ratio on/off, and appends them to
#      bench/results/telemetry-bench-DATE-HHMM.txt
# Everything it starts is stopped by PID on exit.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
PEER_BENCH_DIR=${PEER_BENCH_DIR:-$REPO_ROOT/../shared/bench}
[ -x "$PEER_BENCH_DIR/token-load.sh" ] || { echo "token-load.sh not found in $PEER_BENCH_DIR (set PEER_BENCH_DIR)" >&2; exit 2; }
PEER_BENCH_DIR=$(cd "$PEER_BENCH_DIR" && pwd)
ROUNDS=${ROUNDS:-3}
[ "$ROUNDS" -ge 3 ] || { echo "ROUNDS must be at least 3 (got $ROUNDS)" >&2; exit 2; }
SCRAPE_INTERVAL_S=${SCRAPE_INTERVAL_S:-15}
OFF_PORT=7290
ON_PORT=7291
MANAGEMENT_PORT=7292
CLIENT_ID=bench-client
SCOPE=api:read
RESOURCE=https://api.bench.test
RESULT_FILE="$REPO_ROOT/bench/results/telemetry-bench-$(date +%F-%H%M).txt"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# shellcheck source=scripts/lib/postgres.sh
. "$REPO_ROOT/scripts/lib/postgres.sh"
# shellcheck source=bench/lib.sh
. "$REPO_ROOT/bench/lib.sh"

log() { echo "# telemetry-bench: $*" >&2; }

# --- cleanup: the servers and the scraper by PID, then PostgreSQL and the temp folder (bench/lib.sh). ---
OFF_PID=
ON_PID=
SCRAPER_PID=
bench_cleanup_traps
# shellcheck disable=SC2317  # invoked by bench/lib.sh's cleanup trap
bench_stop_more() {
  [ -z "$SCRAPER_PID" ] || stop_pid "$SCRAPER_PID"
  [ -z "$OFF_PID" ] || stop_pid "$OFF_PID"
  [ -z "$ON_PID" ] || stop_pid "$ON_PID"
}

# --- 1. Tools and PostgreSQL. ---
ensure_wrk
for port in "$OFF_PORT" "$ON_PORT" "$MANAGEMENT_PORT"; do port_free "$port"; done

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/identity-telemetry-bench.XXXXXX")
chmod 711 "$BENCH_TMP"   # the postgres OS user must be able to reach its sub-folder
bench_postgres

# --- 2. Publish once; start "off" and "on" from the same build. ---
log "dotnet publish src/Identity.Server (Release)"
publish_projects src/Identity.Server
# Everything but Telemetry is the same for both servers.
token_client "$CLIENT_ID" "$SCOPE" "$RESOURCE"

bench_database identity_telemetry_off
SERVER_LOG="$BENCH_TMP/off.log" start_server "http://127.0.0.1:$OFF_PORT" "${TOKEN_CLIENT_SETTINGS[@]}"
OFF_PID=$SERVER_PID
SERVER_PID=
bench_database identity_telemetry_on
SERVER_LOG="$BENCH_TMP/on.log" start_server "http://127.0.0.1:$ON_PORT" "${TOKEN_CLIENT_SETTINGS[@]}" \
  Telemetry__Traces=true \
  Telemetry__TraceSampleRatio=0.01 \
  Telemetry__ManagementPort="$MANAGEMENT_PORT" \
  Telemetry__ManagementAddress=127.0.0.1
ON_PID=$SERVER_PID
SERVER_PID=
log "servers started: off pid $OFF_PID (port $OFF_PORT), on pid $ON_PID (port $ON_PORT, management $MANAGEMENT_PORT)"
wait_http_200 "$OFF_PID" "http://127.0.0.1:$OFF_PORT/.well-known/openid-configuration" || { tail -n 80 "$BENCH_TMP/off.log" >&2; exit 1; }
wait_http_200 "$ON_PID" "http://127.0.0.1:$ON_PORT/.well-known/openid-configuration" || { tail -n 80 "$BENCH_TMP/on.log" >&2; exit 1; }

# --- 3. The configurations differ as intended: "on" has the scrape endpoint, "off" none. ---
scrape() { curl -s --max-time 10 "http://127.0.0.1:$MANAGEMENT_PORT/metrics"; }
first_scrape=$(scrape || true)   # not piped into grep -q: with pipefail, curl's SIGPIPE would fail the check
grep -q '^identity_keys_next_rotation_seconds' <<<"$first_scrape" \
  || { log "the on server serves no identity_keys_next_rotation_seconds on 127.0.0.1:$MANAGEMENT_PORT/metrics"; tail -n 80 "$BENCH_TMP/on.log" >&2; exit 1; }
off_metrics=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OFF_PORT/metrics" || true)
[ "$off_metrics" = 404 ] || { log "the off server answered /metrics with $off_metrics (expected 404)"; exit 1; }

# run_round NAME PID PORT: token-load.sh against one server; prints its result line, prefixed.
run_round() {
  local name=$1 pid=$2 port=$3 round=$4 line
  wait_quiet "${QUIET_WAIT_S:-120}"
  if ! line=$(SERVER_PID=$pid "$PEER_BENCH_DIR/token-load.sh" "http://127.0.0.1:$port/connect/token" "$CLIENT_ID" \
      "$BENCH_CLIENT_SECRET" "scope=$SCOPE"); then
    log "token-load.sh failed against the $name server (pid $pid)"
    kill -0 "$pid" 2>/dev/null || log "the $name server (pid $pid) has exited"
    tail -n 80 "$BENCH_TMP/$name.log" >&2
    exit 1
  fi
  echo "telemetry=$name round=$round $line"
}

# --- 4. Rounds: off, then on (A B A B ...). ---
off_lines=()
on_lines=()
for (( round = 1; round <= ROUNDS; round++ )); do
  log "round $round/$ROUNDS: telemetry off"
  line=$(run_round off "$OFF_PID" "$OFF_PORT" "$round")
  echo "$line"
  off_lines+=("$line")

  log "round $round/$ROUNDS: telemetry on (metrics scraped every ${SCRAPE_INTERVAL_S}s, traces 1 % parent-based)"
  if [ "$SCRAPE_INTERVAL_S" -gt 0 ]; then
    ( while :; do scrape >/dev/null || true; sleep "$SCRAPE_INTERVAL_S"; done ) &
    SCRAPER_PID=$!
  fi
  line=$(run_round on "$ON_PID" "$ON_PORT" "$round")
  if [ -n "$SCRAPER_PID" ]; then stop_pid "$SCRAPER_PID"; SCRAPER_PID=; fi
  echo "$line"
  on_lines+=("$line")
done

# --- 5. Summary (stdout and bench/results/). ---
off_tps=$(median_of tokens_per_s "${off_lines[@]}")
on_tps=$(median_of tokens_per_s "${on_lines[@]}")
ratio=$(awk -v a="$on_tps" -v b="$off_tps" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }')
verdict=$(awk -v r="$ratio" 'BEGIN { if (r == "n/a") print "n/a"; else if (r >= 0.95) print "met"; else print "NOT met" }')
issued=$(scrape | awk '/^identity_tokens_issued_total/ { s += $NF } END { printf "%.0f", s }')

summary=$(
  echo "== telemetry-bench $(date '+%F %T %Z') =="
  echo "$(machine_line) postgres=$("$PG_BIN/postgres" -V | awk '{ print $3 }')"
  echo "identity: Identity.Server@$(git_rev), Production, PostgreSQL, client_credentials ES256, both servers from one build"
  echo "off: no Telemetry settings; on: Telemetry:Traces=true TraceSampleRatio=0.01 (parent-based) ManagementPort=$MANAGEMENT_PORT," \
       "/metrics scraped every ${SCRAPE_INTERVAL_S}s during its rounds (identity_tokens_issued_total at the end: $issued)"
  echo "load: wrk conns=$(kv "${off_lines[0]}" conns) threads=$(kv "${off_lines[0]}" threads)" \
       "warmup_s=$(kv "${off_lines[0]}" warmup_s) duration_s=${DURATION_S:-15} (wrk shares the cores with the server)"
  printf '%-7s | %-4s %12s %8s %8s %6s %8s | %-4s %12s %8s %8s %6s %8s\n' \
    round off tokens_per_s p50_ms p99_ms errors cpu_pct on tokens_per_s p50_ms p99_ms errors cpu_pct
  for (( r = 0; r < ROUNDS; r++ )); do
    a=${off_lines[r]} b=${on_lines[r]}
    printf '%-7s | %-4s %12s %8s %8s %6s %8s | %-4s %12s %8s %8s %6s %8s\n' "$(( r + 1 ))" \
      "" "$(kv "$a" tokens_per_s)" "$(kv "$a" p50_ms)" "$(kv "$a" p99_ms)" "$(kv "$a" errors)" "$(kv "$a" server_cpu_pct)" \
      "" "$(kv "$b" tokens_per_s)" "$(kv "$b" p50_ms)" "$(kv "$b" p99_ms)" "$(kv "$b" errors)" "$(kv "$b" server_cpu_pct)"
  done
  printf '%-7s | %-4s %12s %8s %8s %6s %8s | %-4s %12s %8s %8s %6s %8s\n' median \
    "" "$off_tps" "$(median_of p50_ms "${off_lines[@]}")" "$(median_of p99_ms "${off_lines[@]}")" "" "" \
    "" "$on_tps" "$(median_of p50_ms "${on_lines[@]}")" "$(median_of p99_ms "${on_lines[@]}")" "" ""
  echo "ratio on/off (median tokens_per_s): $ratio (target >= 0.95: $verdict)"
  echo "raw:"
  for (( r = 0; r < ROUNDS; r++ )); do
    echo "  ${off_lines[r]}"
    echo "  ${on_lines[r]}"
  done
)
echo
echo "$summary"
mkdir -p "$(dirname "$RESULT_FILE")"
printf '%s\n\n' "$summary" >>"$RESULT_FILE"
log "summary appended to ${RESULT_FILE#"$REPO_ROOT"/}"
