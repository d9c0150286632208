#!/usr/bin/env bash
# Benchmark (not a test): the authorization-code round trip of users who already have an SSO
# session — GET /connect/authorize (PKCE S256, state, nonce) → 302 with code → POST
# /connect/token (client_secret_basic) → 200 with tokens — p50/p99 and round trips per second
# at 50 concurrent sessions (bench/AuthCodeBench).
#
#   bench/authcode-bench.sh
#
# env: SESSIONS (50)      concurrent signed-in sessions
#      MODES ("closed 50 100")  one bench per word, against the same server: "closed" = closed loop
#                         (each session starts its next round trip at once: the saturation throughput);
#                         a number R = open loop at R round trips/s spread over the sessions (latency
#                         counted from the scheduled start, so falling behind shows in p99)
#      WARMUP_S (40)      warm-up, not measured (the JIT still compiles a minute into a run on this VM)
#      DURATION_S (15)    measured window
#      TARGET_P99_MS (20) the issue's target, reported as met / not met
#      TARGETS ("identity peer")  what to measure, in this order for every mode: Identity, and the reference peer
#                         (bench/peer-authcode: oidc-provider 9.13.3, the reference peer version, with the same
#                         client, PKCE S256 required and a sign-in page; its state lives in process memory);
#                         "identity2" = two Identity replicas (ports 7281 and 7284, one PostgreSQL, one issuer): each
#                         session authorizes at one and its code is redeemed at the other, CPU of both servers summed
#      ROUNDS (1)         repetitions of the whole sequence, so runs alternate A B A B (±10–15 % noise here)
#      SERVER_DIR ()      a folder with an already published Identity.Server to measure instead of publishing this
#                         worktree's (e.g. `dotnet publish src/Identity.Server -c Release -o /tmp/a` at each of two commits,
#                         then SERVER_DIR=/tmp/a and SERVER_DIR=/tmp/b in alternation: an A/B of the same machine and hour)
#      PROFILE (0)        1 = profile Identity's measured windows: the server runs with DOTNET_PerfMapEnabled=1,
#                         `perf record -F 999 -g -p <server>` records exactly each measured window of target identity,
#                         pidstat samples the PostgreSQL processes over it, and bench/perf-areas.sh prints where the
#                         server's CPU went by area; files in bench/results/authcode-profile-DATE-HHMM/ (perf.data
#                         kept for `perf report --no-children --sort symbol -i FILE`). Needs perf (linux-perf) and
#                         pidstat (sysstat); profiling costs the server a few % of CPU, and the server runs without W^X
#                         (DOTNET_EnableWriteXorExecute=0) so that perf sees the compiled code.
#
# Allocation: each Identity server runs with its management port (Telemetry:ManagementPort, 127.0.0.1:7287, the second
# replica 7288) as in production; the bench reads the runtime's allocated-bytes counter from its /metrics at both ends
# of the measured window and reports KB allocated per round trip ("n/a" for a SERVER_DIR build without the counter).
# Far less noisy than CPU time on a shared machine: the yardstick for per-request work.
#
# What it does:
#   1. starts a private PostgreSQL (scripts/lib/postgres.sh)
#   2. dotnet publish src/Identity.Server and bench/AuthCodeBench (Release); starts the published
#      server on http://127.0.0.1:7281 (Production, PostgreSQL, one authorization_code client
#      declared in configuration) and waits for discovery
#   3. seeds the bench user (random password) with AuthCodeBench --seed-connection-string
#   4. runs AuthCodeBench: N sessions sign in once through /Account/Login, then loop
#      authorize → token; prints one key=value line
#   5. starts the peer on http://127.0.0.1:7283 (npm ci in bench/peer-authcode when needed), with the same
#      client id, secret, redirect URI and user
#   6. for each round, each mode, each target: the same AuthCodeBench run; prints a summary and appends it to
#      bench/results/authcode-bench-DATE-HHMM.txt
# Everything it starts is stopped by PID on exit.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
SESSIONS=${SESSIONS:-50}
MODES=${MODES:-closed 50 100}
WARMUP_S=${WARMUP_S:-40}
DURATION_S=${DURATION_S:-15}
TARGET_P99_MS=${TARGET_P99_MS:-20}
TARGETS=${TARGETS:-identity peer}
ROUNDS=${ROUNDS:-1}
PORT=7281
PEER_PORT=7283
PEER_URL="http://127.0.0.1:$PEER_PORT"
PEER_PID=
REPLICA2_PORT=7284
REPLICA2_PID=
METRICS_PORT=7287
REPLICA2_METRICS_PORT=7288
BASE_URL="http://127.0.0.1:$PORT"
ISSUER="$BASE_URL/"
CLIENT_ID=bench-web
# Nothing listens there: the bench only reads the Location header of the authorize response.
REDIRECT_URI=http://127.0.0.1:7299/cb
BENCH_EMAIL=bench.user@authcode-bench.test
RESULT_FILE="$REPO_ROOT/bench/results/authcode-bench-$(date +%F-%H%M).txt"
PROFILE=${PROFILE:-0}
PROFILE_DIR="$REPO_ROOT/bench/results/authcode-profile-$(date +%F-%H%M)"
PROFILER_PID=

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# shellcheck source=scripts/lib/postgres.sh
. "$REPO_ROOT/scripts/lib/postgres.sh"

# shellcheck source=bench/lib.sh
. "$REPO_ROOT/bench/lib.sh"

log() { echo "# authcode-bench: $*" >&2; }

# --- cleanup: stop the server, the peer and PostgreSQL by PID, remove the temp folder (bench/lib.sh). ---
# shellcheck disable=SC2317  # invoked by _bench_cleanup
bench_stop_more() {
  if [ -n "$PEER_PID" ]; then stop_pid "$PEER_PID"; fi
  if [ -n "$REPLICA2_PID" ]; then stop_pid "$REPLICA2_PID"; fi
  if [ -n "$PROFILER_PID" ]; then stop_pid "$PROFILER_PID"; fi
}
bench_cleanup_traps

# --- 1. PostgreSQL. ---
port_free "$PORT"
case " $TARGETS " in *" peer "*) port_free "$PEER_PORT" ;; esac
port_free "$METRICS_PORT"
case " $TARGETS " in *" identity2 "*) port_free "$REPLICA2_PORT"; port_free "$REPLICA2_METRICS_PORT" ;; esac
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/identity-authcode-bench.XXXXXX")
chmod 711 "$BENCH_TMP"   # the postgres OS user must be able to reach its sub-folder
bench_postgres
bench_database identity_authcode_bench

# --- 2. Publish the server and the bench app; start the server. ---
if [ "$PROFILE" = 1 ]; then
  command -v perf >/dev/null && command -v pidstat >/dev/null \
    || { log "PROFILE=1 needs perf (apt-get install linux-perf) and pidstat (apt-get install sysstat)"; exit 2; }
  mkdir -p "$PROFILE_DIR"
fi
log "dotnet publish src/Identity.Server and bench/AuthCodeBench (Release)"
if [ -n "${SERVER_DIR:-}" ]; then
  [ -f "$SERVER_DIR/Identity.Server.dll" ] || { log "SERVER_DIR=$SERVER_DIR holds no Identity.Server.dll"; exit 2; }
  publish_projects bench/AuthCodeBench
  ln -s "$(cd "$SERVER_DIR" && pwd)" "$BENCH_TMP/Identity.Server"
else
  publish_projects src/Identity.Server bench/AuthCodeBench
fi
BENCH_APP=(dotnet "$BENCH_TMP/AuthCodeBench/AuthCodeBench.dll")

# Generated per run; only the server's environment holds it (the bench gets it as an argument).
BENCH_WEB_SECRET=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=')
profile_env=()
# The JIT writes /tmp/perf-<pid>.map, so that perf names the compiled .NET methods; without W^X, whose double mapping
# hides the compiled code from perf behind a memfd.
[ "$PROFILE" != 1 ] || profile_env=(DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0)
server_env=(
  Oidc__AllowInsecureHttp=true
  Throttling__ExemptLoopback=true
  Oidc__Clients__0__ClientId="$CLIENT_ID"
  Oidc__Clients__0__GrantTypes__0=authorization_code
  Oidc__Clients__0__Scopes__0=openid
  Oidc__Clients__0__Scopes__1=profile
  Oidc__Clients__0__RedirectUris__0="$REDIRECT_URI"
  Oidc__Clients__0__SecretEnvironmentVariable=BENCH_WEB_SECRET
  BENCH_WEB_SECRET="$BENCH_WEB_SECRET"
  Telemetry__ManagementAddress=127.0.0.1
)
start_server "$BASE_URL" "${profile_env[@]}" "${server_env[@]}" Telemetry__ManagementPort="$METRICS_PORT"
log "Identity.Server started (pid $SERVER_PID); waiting for discovery"

# Ready = discovery answers 200 within 60 s (the database is migrated and the client declared
# by then), while the process stays alive.
wait_http_200 "$SERVER_PID" "$BASE_URL/.well-known/openid-configuration" || exit 1

# The second replica (TARGETS with identity2): the same database, configuration and issuer, after the first migrated.
if [[ " $TARGETS " == *" identity2 "* ]]; then
  first_pid=$SERVER_PID
  SERVER_LOG="$BENCH_TMP/server2.log" start_server "http://127.0.0.1:$REPLICA2_PORT" "${server_env[@]}" Oidc__Issuer="$ISSUER" \
    Telemetry__ManagementPort="$REPLICA2_METRICS_PORT"
  REPLICA2_PID=$SERVER_PID
  SERVER_PID=$first_pid
  log "second replica started (pid $REPLICA2_PID) on port $REPLICA2_PORT"
  wait_http_200 "$REPLICA2_PID" "http://127.0.0.1:$REPLICA2_PORT/.well-known/openid-configuration" \
    || { tail -n 60 "$BENCH_TMP/server2.log" >&2; exit 1; }
fi

# --- 3. The bench user (after the server's migration), random password per run. ---
# Suffix: one character of each class ASP.NET Core Identity's default password rules ask for.
BENCH_PASSWORD="$(openssl rand -base64 24 | tr '+/' '-_' | tr -d '=')-aA1"
"${BENCH_APP[@]}" --seed-connection-string "$DB_CONNECTION_STRING" \
  --seed-email "$BENCH_EMAIL" --seed-password "$BENCH_PASSWORD"

# --- 5. The peer, with the same client, redirect URI and user. ---
if [[ " $TARGETS " == *" peer "* ]]; then
  command -v node >/dev/null || { log "node is needed for the peer (or TARGETS=identity)"; exit 2; }
  PEER_DIR="$REPO_ROOT/bench/peer-authcode"
  if [ ! -d "$PEER_DIR/node_modules/oidc-provider" ] || [ "$PEER_DIR/package-lock.json" -nt "$PEER_DIR/node_modules/.package-lock.json" ]; then
    log "installing the peer's dependencies (npm ci)"
    (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  (
    cd "$PEER_DIR"
    exec env NODE_ENV=production PEER_PORT="$PEER_PORT" BENCH_CLIENT_ID="$CLIENT_ID" BENCH_CLIENT_SECRET="$BENCH_WEB_SECRET" \
      BENCH_REDIRECT_URI="$REDIRECT_URI" BENCH_EMAIL="$BENCH_EMAIL" BENCH_PASSWORD="$BENCH_PASSWORD" node server.mjs
  ) >"$BENCH_TMP/peer.log" 2>&1 &
  PEER_PID=$!
  wait_http_200 "$PEER_PID" "$PEER_URL/.well-known/openid-configuration" || { cat "$BENCH_TMP/peer.log" >&2; exit 1; }
  PEER_VERSION=$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' "$PEER_DIR/node_modules/oidc-provider/package.json")
fi

# --- 6. The bench, per round, mode and target, and its summary (stdout and bench/results/). ---
git_rev=$(git_rev)
overall_rc=0
for (( round = 1; round <= ROUNDS; round++ )); do
for mode in $MODES; do
for target in $TARGETS; do
  rate_args=()
  load_desc="closed loop (each session starts its next round trip at once)"
  if [ "$mode" != closed ]; then
    rate_args=(--rate "$mode")
    load_desc="open loop at $mode round trips/s over the sessions (latency from the scheduled start)"
  fi
  case "$target" in
    identity)
      target_args=(--base-url "$BASE_URL" --server-pid "$SERVER_PID" --db-pid "$PG_PID"
        --metrics-url "http://127.0.0.1:$METRICS_PORT/metrics")
      target_desc="Identity.Server@${SERVER_DIR:-$git_rev}, Production, PostgreSQL, client $CLIENT_ID (authorization_code, PKCE S256, client_secret_basic, scope \"openid profile\")"
      ;;
    identity2)
      target_args=(--base-url "$BASE_URL" --base-url "http://127.0.0.1:$REPLICA2_PORT" --server-pid "$SERVER_PID"
        --server-pid "$REPLICA2_PID" --db-pid "$PG_PID" --metrics-url "http://127.0.0.1:$METRICS_PORT/metrics"
        --metrics-url "http://127.0.0.1:$REPLICA2_METRICS_PORT/metrics")
      target_desc="two replicas of Identity.Server@${SERVER_DIR:-$git_rev} on one PostgreSQL (every code issued at one, redeemed at the other; server CPU = both), Production, client $CLIENT_ID"
      ;;
    peer)
      target_args=(--base-url "$PEER_URL" --server-pid "$PEER_PID" --session-cookie _session)
      target_desc="peer oidc-provider $PEER_VERSION on node $(node -v) (one process, state in memory), the same client and flow"
      ;;
    *) log "unknown target $target (identity or peer)"; exit 2 ;;
  esac
  profile_name="r$round-$mode"
  if [ "$PROFILE" = 1 ] && [ "$target" = identity ]; then
    # Starts when the bench writes the window file (the measured window begins), lasts the window.
    rm -f "$BENCH_TMP/window"
    target_args+=(--window-file "$BENCH_TMP/window")
    (
      while [ ! -e "$BENCH_TMP/window" ]; do sleep 0.1; done
      pidstat -u -h -p "$(pgrep -d, -P "$PG_PID"),$PG_PID" 1 "${DURATION_S%.*}" >"$PROFILE_DIR/$profile_name.postgres-pidstat.txt" &
      exec perf record -q -F 999 -g -p "$SERVER_PID" -o "$PROFILE_DIR/$profile_name.perf.data" -- sleep "$DURATION_S"
    ) >/dev/null 2>&1 &
    PROFILER_PID=$!
  fi
  wait_quiet 120
  set +e
  line=$("${BENCH_APP[@]}" "${target_args[@]}" --client-id "$CLIENT_ID" --client-secret "$BENCH_WEB_SECRET" \
    --redirect-uri "$REDIRECT_URI" --email "$BENCH_EMAIL" --password "$BENCH_PASSWORD" \
    --sessions "$SESSIONS" --warmup-seconds "$WARMUP_S" --seconds "$DURATION_S" "${rate_args[@]}")
  bench_rc=$?
  set -e
  check_bench_result AuthCodeBench "$bench_rc" "$line" || overall_rc=$?
  profile_lines=
  if [ -n "$PROFILER_PID" ]; then
    wait "$PROFILER_PID" 2>/dev/null || true
    PROFILER_PID=
    bench/perf-areas.sh "$PROFILE_DIR/$profile_name.perf.data" >"$PROFILE_DIR/$profile_name.areas.txt" 2>&1 || true
    profile_lines="profile (server CPU by area, bench/perf-areas.sh): $(sed -n '2,18p' "$PROFILE_DIR/$profile_name.areas.txt" \
      | awk '{ $2 = ""; printf "%s%s", (NR > 1 ? "; " : ""), $0 }')"$'\n'"profile files: ${PROFILE_DIR#"$REPO_ROOT"/}/$profile_name.*"
  fi

  p99=$(kv "$line" p99_ms)
  verdict=$(awk -v p="$p99" -v t="$TARGET_P99_MS" 'BEGIN { print (p + 0 < t + 0) ? "met" : "NOT met" }')
  summary=$(
    echo "== authcode-bench $(date '+%F %T %Z') round=$round mode=$mode target=$target =="
    echo "$(machine_line) postgres=$("$PG_BIN/postgres" -V | awk '{ print $3 }')"
    echo "$target: $target_desc"
    echo "load: AuthCodeBench sessions=$SESSIONS warmup_s=$WARMUP_S duration_s=$DURATION_S, $load_desc; each session" \
         "signed in once through the sign-in page (the load generator shares the cores with the server)"
    echo "result: roundtrips_per_s=$(kv "$line" roundtrips_per_s) p50_ms=$(kv "$line" p50_ms) p99_ms=$p99" \
         "errors=$(kv "$line" errors) | authorize p50/p99 $(kv "$line" authorize_p50_ms)/$(kv "$line" authorize_p99_ms) ms" \
         "| token p50/p99 $(kv "$line" token_p50_ms)/$(kv "$line" token_p99_ms) ms"
    echo "cpu (% of one core, measured window): server=$(kv "$line" server_cpu_pct) db=$(kv "$line" db_cpu_pct)" \
         "load_generator=$(kv "$line" client_cpu_pct) machine=$(kv "$line" machine_busy_pct) of $(( $(nproc) * 100 ))" \
         "| per round trip: server $(kv "$line" server_cpu_ms_per_roundtrip) ms, db $(kv "$line" db_cpu_ms_per_roundtrip) ms"
    [ "$target" = peer ] || echo "allocated by the server per round trip (measured window): $(kv "$line" server_alloc_kb_per_roundtrip) KB"
    [ -z "$profile_lines" ] || echo "$profile_lines"
    echo "target: p99 < ${TARGET_P99_MS} ms at $SESSIONS sessions ($mode): $verdict"
    echo "raw: $line"
  )
  echo
  echo "$summary"
  mkdir -p "$(dirname "$RESULT_FILE")"
  printf '%s\n\n' "$summary" >>"$RESULT_FILE"
done
done
done
log "summaries appended to ${RESULT_FILE#"$REPO_ROOT"/}"
exit "$overall_rc"
