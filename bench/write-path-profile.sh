#!/usr/bin/env bash
# Benchmark (not a test): the authority's write path for one user change, alone (issue 18 item 5) — the admin PATCH's
# operation (UserOperations.ChangeProfileAsync: ChangeUnit, user manager, version, audit entry, outbox rows, one
# transaction) run back to back by PropagationBench --loop, with no broker, region or dispatcher. Per change: the bytes
# the writers allocated and the commands they sent (both independent of the machine's load), the writers' and
# PostgreSQL's CPU, and with PROFILE=1 where the writers' CPU went, by area (perf, bench/perf-areas.sh).
#
#   bench/write-path-profile.sh                      # this worktree (~2 min with the publish)
#   BASELINE=ddce85a bench/write-path-profile.sh     # A/B: that commit (with this bench app) and this worktree, alternating
#
# env: CHANGES (20000)        measured changes per run
#      WARMUP_CHANGES (3000)  changes before the measured part (JIT, pools)
#      WRITERS (4)            concurrent writers (each one change at a time)
#      USERS (200)            users of the bench account (in the regions eu and us: two outbox rows per change)
#      PROFILE (1)            1 = `perf record -F 999 -g` of the writers' measured part (DOTNET_PerfMapEnabled=1, no W^X)
#                             and bench/perf-areas.sh of it; files in bench/results/write-path-profile-DATE-HHMM/
#      BASELINE ()            a commit to measure beside this worktree (publish_baseline: its server for the schema, this
#                             bench app built against its code); runs alternate baseline, current
#      ROUNDS (1)             repetitions of the sequence
#      PORT (7283)            the server's port while it migrates each fresh database (then it is stopped)
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
CHANGES=${CHANGES:-20000}
WARMUP_CHANGES=${WARMUP_CHANGES:-3000}
WRITERS=${WRITERS:-4}
USERS=${USERS:-200}
PROFILE=${PROFILE:-1}
BASELINE=${BASELINE:-}
ROUNDS=${ROUNDS:-1}
PORT=${PORT:-7283}
BASE_URL="http://127.0.0.1:$PORT"
STAMP=$(date +%F-%H%M)
RESULT_FILE="$REPO_ROOT/bench/results/write-path-profile-$STAMP.txt"
PROFILE_DIR="$REPO_ROOT/bench/results/write-path-profile-$STAMP"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# shellcheck source=scripts/lib/postgres.sh
. "$REPO_ROOT/scripts/lib/postgres.sh"
# shellcheck source=bench/lib.sh
. "$REPO_ROOT/bench/lib.sh"

log() { echo "# write-path-profile: $*" >&2; }

PROFILER_PID=
# shellcheck disable=SC2317  # called by the cleanup trap
bench_stop_more() { [ -z "$PROFILER_PID" ] || stop_pid "$PROFILER_PID"; }
bench_cleanup_traps

if [ "$PROFILE" = 1 ]; then
  command -v perf >/dev/null || { log "PROFILE=1 needs perf (apt-get install linux-perf)"; exit 2; }
  mkdir -p "$PROFILE_DIR"
fi
port_free "$PORT"
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/identity-write-path.XXXXXX")
chmod 711 "$BENCH_TMP"   # the postgres OS user must be able to reach its sub-folder
bench_postgres

log "dotnet publish src/Identity.Server and bench/PropagationBench (Release)"
publish_projects src/Identity.Server bench/PropagationBench
sides=(current)
if [ -n "$BASELINE" ]; then
  log "dotnet publish src/Identity.Server and bench/PropagationBench at $BASELINE (Release)"
  publish_baseline "$BASELINE" src/Identity.Server bench/PropagationBench
  sides=(baseline current)
fi

git_rev=$(git_rev)
summary="== write-path-profile $(date -u '+%F %T UTC') ==
$(machine_line) postgres=$("$PG_BIN/postgres" -V | awk '{ print $3 }')
load: PropagationBench --loop $CHANGES (after $WARMUP_CHANGES), writers=$WRITERS users=$USERS (regions eu us): each change = load the user in a fresh pooled AuthorityDbContext, then UserOperations.ChangeProfileAsync (new DisplayName), as PATCH /admin/v1/accounts/{id}/users/{id} after its HTTP work"
run=0
for (( round = 1; round <= ROUNDS; round++ )); do
  for side in "${sides[@]}"; do
    run=$(( run + 1 ))
    root=$BENCH_TMP
    code=$git_rev
    if [ "$side" = baseline ]; then root=$BENCH_TMP/baseline; code=$BASELINE; fi
    # A fresh database, migrated by that side's own server (then stopped: nothing else runs during the loop).
    bench_database "identity_write_path_$run"
    SERVER_ROOT="$root/Identity.Server" start_server "$BASE_URL" Oidc__AllowInsecureHttp=true
    wait_http_200 "$SERVER_PID" "$BASE_URL/health/ready"
    stop_pid "$SERVER_PID"
    SERVER_PID=
    wait_quiet "${QUIET_MAX_S:-120}"

    name="r$round-$side"
    rm -f "$BENCH_TMP/window"
    set +e
    DOTNET_PerfMapEnabled=$PROFILE DOTNET_EnableWriteXorExecute=$(( 1 - PROFILE )) \
      dotnet "$root/PropagationBench/PropagationBench.dll" --connection-string "$DB_CONNECTION_STRING" \
      --loop "$CHANGES" --warmup-changes "$WARMUP_CHANGES" --writers "$WRITERS" --users "$USERS" --regions "eu us" \
      --db-pid "$PG_PID" --window-file "$BENCH_TMP/window" >"$BENCH_TMP/line" &
    app=$!
    if [ "$PROFILE" = 1 ]; then
      (
        while [ ! -e "$BENCH_TMP/window" ]; do kill -0 "$app" 2>/dev/null || exit 0; sleep 0.05; done
        exec perf record -q -F 999 -g -p "$app" -o "$PROFILE_DIR/$name.perf.data"
      ) >/dev/null 2>&1 &
      PROFILER_PID=$!
    fi
    wait "$app"
    rc=$?
    set -e
    if [ -n "$PROFILER_PID" ]; then
      wait "$PROFILER_PID" 2>/dev/null || true
      PROFILER_PID=
    fi
    line=$(cat "$BENCH_TMP/line")
    [ -n "$line" ] && [ "$rc" = 0 ] || { log "PropagationBench --loop failed (exit $rc): $line"; exit 1; }
    summary+=$'\n'"$side ($code) round $round: $line"
    if [ "$PROFILE" = 1 ]; then
      bench/perf-areas.sh "$PROFILE_DIR/$name.perf.data" >"$PROFILE_DIR/$name.areas.txt" 2>&1 || true
      summary+=$'\n'"  writers' CPU by area: $(sed -n '2,16p' "$PROFILE_DIR/$name.areas.txt" | awk '{ $2 = ""; printf "%s%s", (NR > 1 ? "; " : ""), $0 }')"
    fi
  done
done
[ "$PROFILE" != 1 ] || summary+=$'\n'"profile files: ${PROFILE_DIR#"$REPO_ROOT"/}/"

echo
echo "$summary"
mkdir -p "$(dirname "$RESULT_FILE")"
printf '%s\n\n' "$summary" >>"$RESULT_FILE"
