#!/usr/bin/env bash
# Benchmark (not a test): propagation of user changes to the regions — the time from a change committed in the
# authority's database to the same change applied in a regional replica, p50/p90/p99/max, at a fixed rate of
# changes per second with two regions (eu, us) consuming, and whether anything was lost (bench/PropagationBench).
#
#   bench/propagation-bench.sh
#
# env: RATE (500)             changes/s, open loop (each change at its scheduled time, round robin over the users)
#      USERS (200)            users of the bench account (one account, in both regions)
#      CHANGES_PER_COMMIT (1) users changed per transaction, each its own change and event: 1 = one change per commit
#                             (the writers and the authority's database then cost ~3.7 ms of CPU per change on these
#                             two cores, 2026-12-02); N > 1 = bulk changes, so that the machine can still write the rate
#                             and what is measured is the propagation, not the load generator
#      WRITER (operation)     how a change is written: operation = the user operation the admin API's PATCH runs
#                             (UserOperations.ChangeProfileAsync: unit of work, user manager, version, audit entry, outbox
#                             rows, one transaction; without the HTTP and authorization work); direct = the context and
#                             the outbox interceptor's safety net only (the bench's writer before 2026-12-05; required
#                             for CHANGES_PER_COMMIT > 1)
#      WARMUP_S (40)          warm-up, not measured: on this 2-core VM the JIT still takes half of a region's CPU after
#                             20 s of load (perf, 2026-12-02); 40 s reaches steady state
#      DURATION_S (20)        measured window
#      POLL_INTERVALS ("default")  one run per word, each against a fresh server and database:
#                             "default" = the server's own Outbox:PollInterval (100 ms); otherwise the value of
#                             Outbox__PollInterval. The bench writes from its own process, so the server's dispatcher
#                             is never woken by a commit of its own: it finds the rows by polling.
#      BUSY_POLL_INTERVAL ("default")  the server's Outbox:BusyPollInterval (10 ms: the wait between rounds while they
#                             find rows); equal to the poll interval (e.g. 00:00:00.100) = the dispatcher before 2026-12-03
#      BASELINE ()            a commit to measure in the same invocation: its server and this bench app built against its
#                             code (bench/lib.sh publish_baseline), each run against a fresh database; the runs alternate
#                             baseline, current (per poll interval), ROUNDS times. E.g. the write path before and after
#                             a change: BASELINE=ddce85a ROUNDS=3 SUSTAIN=0 bench/propagation-bench.sh
#      ROUNDS (1)             repetitions of the sequence (with BASELINE: of the pair)
#      PORT (7282)            the server's port on 127.0.0.1 (the issuer is http://127.0.0.1:PORT/)
#      TARGET_P99_MS (250)    the issue's target, reported as met / not met (with zero lost)
#      SUSTAIN (1)            after each fixed-rate run, search the SUSTAINABLE RATE against the same server: the highest
#                             rate whose run has p99 < TARGET_P99_MS, zero lost and achieved >= 98 % of the rate. From
#                             the fixed run's verdict it steps up (x1.5) or down (/2) until the verdict flips, then
#                             bisects until the bounds are within 10 %, at most SUSTAIN_STEPS (6) runs of
#                             SUSTAIN_WARMUP_S (30) + SUSTAIN_DURATION_S (15) s each (fresh regions each run, the same
#                             server and database); SUSTAIN_MAX_RATE (3000) caps it. 0 = the fixed-rate run only.
#
# What it does:
#   1. starts a private PostgreSQL (scripts/lib/postgres.sh) and RabbitMQ over mutual TLS
#      (scripts/lib/rabbitmq.sh, RMQ_REGIONS="eu us")
#   2. dotnet publish src/Identity.Server and bench/PropagationBench (Release)
#   3. per poll interval: a fresh database; the published server on http://127.0.0.1:7282 (Production, PostgreSQL,
#      the broker with the identity client certificate, the clients region-eu and region-us for the regions'
#      resync) until /health/ready answers Healthy (broker connected); then PropagationBench (seeds, hosts both regions, writes, measures,
#      checks that nothing was lost) prints one key=value line
#   4. with SUSTAIN=1, the sustainable-rate search against the same server (see SUSTAIN)
#   5. prints a summary (with the CPU per change: writers, PostgreSQL, the server's dispatcher, and the sustainable
#      rate) and appends it to bench/results/propagation-bench-DATE-HHMM.txt
# Everything it starts is stopped by PID on exit.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
RATE=${RATE:-500}
CHANGES_PER_COMMIT=${CHANGES_PER_COMMIT:-1}
WRITER=${WRITER:-operation}
USERS=${USERS:-200}
WARMUP_S=${WARMUP_S:-40}
DURATION_S=${DURATION_S:-20}
POLL_INTERVALS=${POLL_INTERVALS:-default}
BUSY_POLL_INTERVAL=${BUSY_POLL_INTERVAL:-default}
TARGET_P99_MS=${TARGET_P99_MS:-250}
SUSTAIN=${SUSTAIN:-1}
SUSTAIN_STEPS=${SUSTAIN_STEPS:-6}
SUSTAIN_WARMUP_S=${SUSTAIN_WARMUP_S:-30}
SUSTAIN_DURATION_S=${SUSTAIN_DURATION_S:-15}
SUSTAIN_MAX_RATE=${SUSTAIN_MAX_RATE:-3000}
BASELINE=${BASELINE:-}
ROUNDS=${ROUNDS:-1}
DEFAULT_POLL_INTERVAL=00:00:00.100   # OutboxOptions.PollInterval's default
REGIONS="eu us"
PORT=${PORT:-7282}
BASE_URL="http://127.0.0.1:$PORT"
RESULT_FILE="$REPO_ROOT/bench/results/propagation-bench-$(date +%F-%H%M).txt"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# shellcheck source=scripts/lib/postgres.sh
. "$REPO_ROOT/scripts/lib/postgres.sh"
# shellcheck source=scripts/lib/rabbitmq.sh
. "$REPO_ROOT/scripts/lib/rabbitmq.sh"
# shellcheck source=bench/lib.sh
. "$REPO_ROOT/bench/lib.sh"

log() { echo "# propagation-bench: $*" >&2; }

# --- cleanup: stop the server, the broker and PostgreSQL by PID, remove the temp folder (bench/lib.sh). ---
# shellcheck disable=SC2317,SC2119  # called by the cleanup trap; no argument: the broker rmq_start started
bench_stop_more() { rmq_stop; }
bench_cleanup_traps

# --- 1. PostgreSQL and RabbitMQ. ---
port_free "$PORT"
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/identity-propagation-bench.XXXXXX")
chmod 711 "$BENCH_TMP"   # the postgres OS user must be able to reach its sub-folder
bench_postgres
rmq_install_if_missing
RMQ_REGIONS=$REGIONS rmq_start "$BENCH_TMP/rabbitmq"

# --- 2. Publish the server and the bench app. ---
log "dotnet publish src/Identity.Server and bench/PropagationBench (Release)"
publish_projects src/Identity.Server bench/PropagationBench
sides=(current)
if [ -n "$BASELINE" ]; then
  log "dotnet publish src/Identity.Server and bench/PropagationBench at $BASELINE (Release)"
  publish_baseline "$BASELINE" src/Identity.Server bench/PropagationBench
  sides=(baseline current)
fi

# The regions' resync clients (region-eu, region-us); generated per run, only in the server's environment and the
# bench's arguments.
REGION_SECRET=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=')

# start_identity DATABASE POLL_INTERVAL: the published server on a fresh database, until /health/ready = 200.
start_identity() {
  local db=$1 poll=$2 extra=() n=0 region
  bench_database "$db"
  [ "$poll" = default ] || extra+=("Outbox__PollInterval=$poll")
  [ "$BUSY_POLL_INTERVAL" = default ] || extra+=("Outbox__BusyPollInterval=$BUSY_POLL_INTERVAL")
  for region in $REGIONS; do
    extra+=("Oidc__Clients__${n}__ClientId=region-$region" "Oidc__Clients__${n}__GrantTypes__0=client_credentials"
            "Oidc__Clients__${n}__Scopes__0=identity.sync" "Oidc__Clients__${n}__Region=$region"
            "Oidc__Clients__${n}__SecretEnvironmentVariable=BENCH_REGION_SECRET")
    n=$(( n + 1 ))
  done
  SERVER_ROOT="$side_root/Identity.Server" start_server "$BASE_URL" \
    Oidc__AllowInsecureHttp=true \
    Broker__Host=127.0.0.1 \
    Broker__Port="$RMQ_PORT" \
    Broker__ServerName=localhost \
    Broker__CaCertificatePath="$RMQ_CERTS/ca.pem" \
    Broker__ClientCertificatePath="$RMQ_CERTS/identity.pfx" \
    BENCH_REGION_SECRET="$REGION_SECRET" \
    "${extra[@]}"
  log "Identity.Server started (pid $SERVER_PID, Outbox:PollInterval $poll); waiting for /health/ready"
  # "Healthy", not only 200: a broker not yet connected is "Degraded" (200 too).
  wait_http_200 "$SERVER_PID" "$BASE_URL/health/ready" '"status":"Healthy"'
}

# run_bench RATE WARMUP_S DURATION_S WORK_DIR: one PropagationBench run against the running server ($effective_poll);
# sets line (its key=value line) and bench_rc.
run_bench() {
  set +e
  line=$(dotnet "$side_root/PropagationBench/PropagationBench.dll" \
    --connection-string "$DB_CONNECTION_STRING" --broker-port "$RMQ_PORT" --certs "$RMQ_CERTS" \
    --authority "$BASE_URL/" --region-secret "$REGION_SECRET" --work-dir "$4" \
    --regions "$REGIONS" --users "$USERS" --rate "$1" --seconds "$3" --warmup-seconds "$2" \
    --changes-per-commit "$CHANGES_PER_COMMIT" --writer "$WRITER" --poll-interval "${effective_poll// /_}" \
    --server-pid "$SERVER_PID" --db-pid "$PG_PID" --broker-pid "$RMQ_PID")
  bench_rc=$?
  set -e
}

# verdict_of LINE RATE: "met" when p99 < TARGET_P99_MS, nothing lost and the writers achieved >= 98 % of RATE.
verdict_of() {
  local lost
  lost=$(kv "$1" lost)
  awk -v p="$(kv "$1" p99_ms)" -v t="$TARGET_P99_MS" -v l="${lost%%/*}" -v a="$(kv "$1" achieved_rate)" -v r="$2" \
    'BEGIN { print (p != "" && p + 0 < t + 0 && l != "" && l + 0 == 0 && a + 0 >= 0.98 * r) ? "met" : "NOT met" }'
}

# sustainable_rate FIXED_VERDICT: the search SUSTAIN describes, from the fixed run's verdict at $RATE; sets
# sustain_rate (the highest rate met, 0 if none), sustain_fail (the lowest rate not met, 0 if none) and sustain_steps
# (one "rate:verdict(p99, lost, achieved, cpu/change)" per run).
sustainable_rate() {
  local lo=0 hi=0 step r v
  if [ "$1" = met ]; then lo=$RATE; else hi=$RATE; fi
  sustain_steps=""
  for (( step = 1; step <= SUSTAIN_STEPS; step++ )); do
    if [ "$hi" = 0 ]; then
      [ "$lo" -lt "$SUSTAIN_MAX_RATE" ] || break
      r=$(( lo * 3 / 2 )); [ "$r" -le "$SUSTAIN_MAX_RATE" ] || r=$SUSTAIN_MAX_RATE
    elif [ "$lo" = 0 ]; then
      r=$(( hi / 2 )); [ "$r" -ge 20 ] || break
    else
      [ $(( hi * 10 )) -gt $(( lo * 11 )) ] || break
      r=$(( (lo + hi) / 2 ))
    fi
    r=$(( (r + 5) / 10 * 10 ))
    log "sustainable rate: run $step at $r changes/s (met so far: ${lo}, not met: ${hi})"
    wait_quiet "${QUIET_MAX_S:-120}"
    run_bench "$r" "$SUSTAIN_WARMUP_S" "$SUSTAIN_DURATION_S" "$BENCH_TMP/regions-$run-s$step"
    [ -n "$line" ] || { log "the run at $r gave no result line"; server_log_tail 40; break; }
    v=$(verdict_of "$line" "$r")
    sustain_steps+="${sustain_steps:+, }$r:${v// /_}(p99 $(kv "$line" p99_ms) ms, lost $(kv "$line" lost), achieved $(kv "$line" achieved_rate)/s, $(kv "$line" authority_cpu_ms_per_change) ms CPU/change)"
    if [ "$v" = met ]; then lo=$r; else hi=$r; fi
  done
  sustain_rate=$lo
  sustain_fail=$hi
}

# --- 3./4. One run per poll interval, and its summary (stdout and bench/results/). ---
git_rev=$(git_rev)
overall_rc=0
baseline_lines=()
current_lines=()
run=0
for (( round = 1; round <= ROUNDS; round++ )); do
  for side in "${sides[@]}"; do
    side_root=$BENCH_TMP
    side_rev=$git_rev
    if [ "$side" = baseline ]; then side_root=$BENCH_TMP/baseline; side_rev=$BASELINE; fi
    for poll in $POLL_INTERVALS; do
      run=$(( run + 1 ))
      start_identity "identity_propagation_bench_$run" "$poll" || exit 1
      effective_poll=$poll
      [ "$poll" != default ] || effective_poll="$DEFAULT_POLL_INTERVAL (default)"
      wait_quiet "${QUIET_MAX_S:-120}"
      run_bench "$RATE" "$WARMUP_S" "$DURATION_S" "$BENCH_TMP/regions-$run"
      check_bench_result PropagationBench "$bench_rc" "$line" || overall_rc=$?

      p99=$(kv "$line" p99_ms)
      lost=$(kv "$line" lost)
      verdict=$(verdict_of "$line" "$RATE")
      summary=$(
        echo "== propagation-bench $(date -u '+%F %T UTC') poll_interval=$effective_poll${BASELINE:+ round $round $side} =="
        echo "$(machine_line) postgres=$("$PG_BIN/postgres" -V | awk '{ print $3 }')" \
             "rabbitmq=$(readlink -f "$_RMQ_SERVER" | sed -n 's#.*/rabbitmq_server-\([^/]*\)/.*#\1#p')"
        echo "identity: Identity.Server@$side_rev (bench app: this worktree's, $git_rev), Production, PostgreSQL, outbox dispatcher → RabbitMQ (mTLS)," \
             "Outbox:PollInterval $effective_poll, BusyPollInterval $BUSY_POLL_INTERVAL; regions $REGIONS each in a process of its own (AddIdentityRegion()," \
             "SQLite replica, consuming over mTLS, batches of up to 100 events)"
        echo "load: PropagationBench rate=$RATE changes/s open loop, users=$USERS (one account in both regions)," \
             "warmup_s=$WARMUP_S duration_s=$DURATION_S changes_per_commit=$CHANGES_PER_COMMIT writer=$WRITER; each commit =" \
             "load its user(s) in a fresh AuthorityDbContext with the OutboxInterceptor, then (operation) the admin PATCH's" \
             "UserOperations.ChangeProfileAsync with a new DisplayName (one UserChanged row per region and an audit entry)" \
             "or (direct) change DisplayName and SaveChanges (one UserChanged row per changed user and region), one transaction"
        echo "result: achieved_rate=$(kv "$line" achieved_rate) changes=$(kv "$line" changes)" \
             "| latency p50/p90/p99/max ms: both $(kv "$line" p50_ms)/$(kv "$line" p90_ms)/$p99/$(kv "$line" max_ms)" \
             "| eu $(kv "$line" eu_p50_ms)/$(kv "$line" eu_p90_ms)/$(kv "$line" eu_p99_ms)/$(kv "$line" eu_max_ms)" \
             "| us $(kv "$line" us_p50_ms)/$(kv "$line" us_p90_ms)/$(kv "$line" us_p99_ms)/$(kv "$line" us_max_ms)" \
             "| split p50/p99 ms: commit→published (outbox) $(kv "$line" outbox_p50_ms)/$(kv "$line" outbox_p99_ms)," \
             "published→applied (region) $(kv "$line" region_p50_ms)/$(kv "$line" region_p99_ms)" \
             "| lost=$lost (drained=$(kv "$line" drained) within 60 s; outbox_pending=$(kv "$line" outbox_pending)) received eu/us=$(kv "$line" eu_received)/$(kv "$line" us_received) of $(kv "$line" changes_total)" \
             "| applied/s in the window eu/us=$(kv "$line" eu_applied_per_s)/$(kv "$line" us_applied_per_s)" \
             "| replica transactions eu/us=$(kv "$line" eu_batches)/$(kv "$line" us_batches), mean events $(kv "$line" eu_batch_mean_events)/$(kv "$line" us_batch_mean_events), mean ms $(kv "$line" eu_batch_mean_ms)/$(kv "$line" us_batch_mean_ms)" \
             "| late_starts=$(kv "$line" late_starts) write p50/p99 $(kv "$line" write_p50_ms)/$(kv "$line" write_p99_ms) ms"
        echo "latency: from UserChanged.ChangedAt (stamped by the interceptor in SaveChanges, just BEFORE the commit, so the" \
             "figures slightly over-state it) to the end of the region's consumer (after the replica write); split at the" \
             "message's SentTime (MassTransit, stamped when the server publishes)"
        echo "cpu (% of one core, measured window): server=$(kv "$line" server_cpu_pct) postgres=$(kv "$line" postgres_cpu_pct)" \
             "rabbitmq=$(kv "$line" rabbitmq_cpu_pct) writers=$(kv "$line" bench_cpu_pct)" \
             "regions eu/us=$(kv "$line" eu_cpu_pct)/$(kv "$line" us_cpu_pct)" \
             "other programs=$(kv "$line" other_cpu_pct) machine=$(kv "$line" machine_busy_pct) of $(( $(nproc) * 100 ))"
        echo "cpu per change (ms): authority=$(kv "$line" authority_cpu_ms_per_change) = writers $(kv "$line" writers_cpu_ms_per_change)" \
             "+ postgres $(kv "$line" postgres_cpu_ms_per_change) + server (dispatcher) $(kv "$line" server_cpu_ms_per_change)"
        echo "target: p99 < ${TARGET_P99_MS} ms at $RATE changes/s, zero lost: $verdict"
        echo "raw: $line"
      )
      fixed_line=$line
      if [ "$SUSTAIN" = 1 ]; then
        sustainable_rate "$verdict"
        summary+=$'\n'"sustainable rate (p99 < ${TARGET_P99_MS} ms, zero lost, >= 98 % achieved; ${SUSTAIN_WARMUP_S} s warm-up +"
        summary+=" ${SUSTAIN_DURATION_S} s per run): ${sustain_rate} changes/s (not met at: ${sustain_fail/#0/none}); runs: $RATE:${verdict// /_} (fixed run), ${sustain_steps}"
        line=$fixed_line
      fi
      echo
      echo "$summary"
      mkdir -p "$(dirname "$RESULT_FILE")"
      printf '%s\n\n' "$summary" >>"$RESULT_FILE"
      if [ "$side" = baseline ]; then baseline_lines+=("$line"); else current_lines+=("$line"); fi

      stop_pid "$SERVER_PID"
      SERVER_PID=
    done
  done
done
if [ -n "$BASELINE" ]; then
  # ab_side NAME LINE...: the medians of one side's runs.
  ab_side() {
    local name=$1
    shift
    echo "$name: authority CPU per change $(median_of authority_cpu_ms_per_change "$@") ms (runs: $(for l in "$@"; do printf '%s ' "$(kv "$l" authority_cpu_ms_per_change)"; done| sed 's/ $//'))" \
      "= writers $(median_of writers_cpu_ms_per_change "$@") + postgres $(median_of postgres_cpu_ms_per_change "$@")" \
      "+ dispatcher $(median_of server_cpu_ms_per_change "$@"); p99 $(median_of p99_ms "$@") ms; achieved $(median_of achieved_rate "$@")/s"
  }
  ab=$(
    echo "== propagation-bench A/B $(date -u '+%F %T UTC'): medians of $ROUNDS round(s), alternating =="
    ab_side "baseline $BASELINE" "${baseline_lines[@]}"
    ab_side "current $git_rev" "${current_lines[@]}"
    awk -v b="$(median_of authority_cpu_ms_per_change "${baseline_lines[@]}")" -v c="$(median_of authority_cpu_ms_per_change "${current_lines[@]}")" \
      'BEGIN { if (b > 0) printf "current/baseline authority CPU per change: %.2f\n", c / b }'
  )
  echo
  echo "$ab"
  printf '%s\n\n' "$ab" >>"$RESULT_FILE"
fi
log "summaries appended to ${RESULT_FILE#"$REPO_ROOT"/}"
exit "$overall_rc"
