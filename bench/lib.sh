# shellcheck shell=bash
# Helpers shared by the bench scripts (bench/token-bench.sh, telemetry-bench.sh, authcode-bench.sh, propagation-bench.sh,
# mtls-bench.sh).
# Source it after scripts/lib/postgres.sh; the caller defines log() (its own "# name-bench:" prefix) before calling
# wait_quiet and the start/wait helpers.

# port_free PORT: fail if something already listens on 127.0.0.1:PORT.
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "127.0.0.1:$1 is already in use; stop that server first" >&2
    return 1
  fi
}

# stop_pid PID: SIGTERM, wait up to 5 s, then SIGKILL. Only the PID we started.
# shellcheck disable=SC2317  # only ever invoked from the cleanup trap
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for (( i = 0; i < 50; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

# wait_quiet [MAX_WAIT_S]: wait (up to 120 s) until the machine has been nearly idle (< 15 % of
# one core) for 2 s, so that the run is not measured while something else works.
wait_quiet() {
  local max=${1:-120} waited=0 a b busy
  while :; do
    a=$(awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 }' /proc/stat); sleep 2
    b=$(awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 }' /proc/stat)
    busy=$(( (b - a) * 100 / $(getconf CLK_TCK) / 2 ))
    [ "$busy" -lt 15 ] && return 0
    if [ "$waited" -ge "$max" ]; then
      log "warning: machine still busy (${busy}% of one core) after ${waited}s; measuring anyway"
      return 0
    fi
    waited=$(( waited + 2 ))
  done
}

# kv LINE KEY: value of KEY=... in a key=value line.
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# machine_line: the summary's "machine:" line (cores, CPU, memory, OS, .NET).
machine_line() {
  echo "machine: nproc=$(nproc) cpu=\"$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)\"" \
       "mem=$(awk '/MemTotal/ { printf "%.0fGiB", $2 / 1048576 }' /proc/meminfo)" \
       "os=\"$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)\" dotnet=$(dotnet --version)"
}

# median VALUE...: the median of the numeric values (mean of the two middle ones for an even count, 2 decimals);
# n/a without any.
median() {
  printf '%s\n' "$@" | grep -E '^[0-9]+([.][0-9]+)?$' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# median_of KEY LINE...: the median of KEY=value over key=value lines (median).
median_of() {
  local key=$1 l vals=()
  shift
  for l in "$@"; do vals+=("$(kv "$l" "$key")"); done
  median "${vals[@]}"
}

# git_rev: the short commit, "+dirty" when the worktree has changes.
git_rev() {
  local rev
  rev=$(git rev-parse --short HEAD 2>/dev/null || echo none)
  [ -z "$(git status --porcelain 2>/dev/null | head -n 1)" ] || rev+="+dirty"
  echo "$rev"
}

# publish_projects PROJECT...: dotnet publish each project (Release) into $BENCH_TMP/<its folder name>; on failure,
# print the end of the build log and exit.
publish_projects() {
  publish_each "." "$BENCH_TMP" "$BENCH_TMP/publish.log" "" "$@"
}

# publish_each SRC OUT LOG WHAT PROJECT...: dotnet publish SRC/PROJECT (Release) into OUT/<its folder name> for each
# project; on failure, print the end of LOG and exit, naming the project (and WHAT, e.g. " at <commit>").
publish_each() {
  local src=$1 out=$2 log=$3 what=$4 project
  shift 4
  for project in "$@"; do
    if ! dotnet publish "$src/$project" -c Release -o "$out/$(basename "$project")" >"$log" 2>&1; then
      tail -n 60 "$log" >&2
      echo "dotnet publish $project$what failed" >&2
      exit 1
    fi
  done
}

# publish_baseline COMMIT PROJECT...: the same projects as publish_projects, built from the committed tree of COMMIT
# (git archive, no worktree) with THIS worktree's bench/ apps (bench/Shared and each bench/* project given) copied over
# it, so that both sides of an A/B are measured by the same harness; into $BENCH_TMP/baseline/<its folder name>. The
# bench apps must still compile against COMMIT's code.
publish_baseline() {
  local commit=$1 project src="$BENCH_TMP/baseline-src"
  shift
  rm -rf "$src" && mkdir -p "$src"
  git -C "$REPO_ROOT" archive "$commit" | tar -x -C "$src"
  rm -rf "$src/bench/Shared" && cp -r "$REPO_ROOT/bench/Shared" "$src/bench/Shared"
  for project in "$@"; do
    if [[ "$project" == bench/* ]]; then
      rm -rf "${src:?}/$project" && cp -r "$REPO_ROOT/$project" "$src/$project"
      rm -rf "$src/$project/bin" "$src/$project/obj"
    fi
  done
  publish_each "$src" "$BENCH_TMP/baseline" "$BENCH_TMP/publish-baseline.log" " at $commit" "$@"
}

# bench_postgres: a private PostgreSQL cluster in $BENCH_TMP/postgres (installed with apt when missing).
bench_postgres() {
  pg_install_if_missing
  pg_start "$BENCH_TMP/postgres"
}

# ensure_wrk: installs wrk (Debian's package) when missing: the load generator of the shared harness's token-load.sh.
ensure_wrk() {
  command -v wrk >/dev/null && return 0
  log "installing wrk (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq wrk >&2
}

# token_client CLIENT_ID SCOPE RESOURCE: the client_credentials client token-load.sh asks tokens of. Sets
# BENCH_CLIENT_SECRET (new, random; not exported: the peer reads the same name for its own client) and the array
# TOKEN_CLIENT_SETTINGS, start_server's settings that declare the client and SCOPE (audience RESOURCE) with ES256 access
# tokens, plain HTTP and loopback not throttled.
token_client() {
  BENCH_CLIENT_SECRET=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=')
  TOKEN_CLIENT_SETTINGS=(
    Oidc__AllowInsecureHttp=true
    Throttling__ExemptLoopback=true
    Oidc__AccessTokenAlgorithm=ES256
    Oidc__Clients__0__ClientId="$1"
    Oidc__Clients__0__GrantTypes__0=client_credentials
    Oidc__Clients__0__Scopes__0="$2"
    Oidc__Clients__0__SecretEnvironmentVariable=BENCH_CLIENT_SECRET
    BENCH_CLIENT_SECRET="$BENCH_CLIENT_SECRET"
    Oidc__Scopes__0__Name="$2"
    Oidc__Scopes__0__Resources__0="$3"
  )
}

# bench_database NAME: creates the database NAME in bench_postgres's cluster; sets DB_CONNECTION_STRING to it.
bench_database() {
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -q -c "create database $1"
  DB_CONNECTION_STRING="${PG_CONNECTION_STRING/%;Database=postgres/;Database=$1}"
}

# start_server URL [NAME=VALUE...]: starts the published server ($SERVER_ROOT, else $BENCH_TMP/Identity.Server:
# publish_projects) in the
# background on URL, issuer URL/, as every bench runs it: Production, PostgreSQL ($DB_CONNECTION_STRING) with
# auto-migration, unprotected data-protection keys, log level Warning; then the caller's settings and environment
# variables. Output in $BENCH_TMP/server.log (or $SERVER_LOG); sets SERVER_PID.
start_server() {
  local url=$1
  shift
  # The content root is the working folder: start from the publish folder so that its appsettings.json is read.
  (
    cd "${SERVER_ROOT:-$BENCH_TMP/Identity.Server}"
    exec env \
      ASPNETCORE_ENVIRONMENT=Production \
      DataProtection__AllowUnprotectedKeys=true \
      Database__Provider=PostgreSql \
      Database__ConnectionString="$DB_CONNECTION_STRING" \
      Database__AutoMigrate=true \
      Oidc__Issuer="$url/" \
      Logging__LogLevel__Default=Warning \
      "$@" \
      dotnet Identity.Server.dll --urls "$url"
  ) >"${SERVER_LOG:-$BENCH_TMP/server.log}" 2>&1 &
  SERVER_PID=$!
}

# server_log_tail [N]: the last N (80) lines of the server's log ($BENCH_TMP/server.log), to stderr.
server_log_tail() {
  echo "----- $BENCH_TMP/server.log (last ${1:-80} lines) -----" >&2
  tail -n "${1:-80}" "$BENCH_TMP/server.log" >&2 || true
  echo "-----" >&2
}

# wait_http_200 PID URL [BODY]: wait (up to 60 s) until URL answers 200 (and, if BODY is given, a body containing it)
# while the server PID stays alive; on failure, says why, prints the end of the server's log and returns 1.
wait_http_200() {
  local pid=$1 url=$2 body=${3:-} i status answer
  for (( i = 0; i < 600; i++ )); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "the server (pid $pid) exited during start-up"
      server_log_tail 200
      return 1
    fi
    answer=$(curl -s -w '\n%{http_code}' "$url" || true)
    status=${answer##*$'\n'}
    # Alive after the 200 too: a server that failed to bind leaves the answer to whatever else listens there.
    if [ "$status" = 200 ] && { [ -z "$body" ] || [[ "${answer%$'\n'*}" == *"$body"* ]]; } \
       && sleep 0.2 && kill -0 "$pid" 2>/dev/null; then
      log "the server is ready after $(( i / 10 )).$(( i % 10 )) s ($url)"
      return 0
    fi
    sleep 0.1
  done
  log "$url did not answer 200 within 60 s"
  server_log_tail 200
  return 1
}

# bench_cleanup_traps: on exit (and INT/TERM: exit 130/143), stop by PID the server ($SERVER_PID, when set), then
# whatever bench_stop_more stops when the caller defines it (e.g. the broker), then PostgreSQL (pg_stop), and remove
# $BENCH_TMP. The exit code is kept.
bench_cleanup_traps() {
  BENCH_TMP=${BENCH_TMP:-}
  SERVER_PID=${SERVER_PID:-}
  trap _bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# shellcheck disable=SC2317  # only ever invoked through the trap
_bench_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$SERVER_PID" ]; then
    stop_pid "$SERVER_PID"
  fi
  if declare -F bench_stop_more >/dev/null; then
    bench_stop_more || true
  fi
  pg_stop || true
  if [ -n "$BENCH_TMP" ]; then
    rm -rf "$BENCH_TMP"
  fi
  exit "$rc"
}

# check_bench_result NAME RC LINE: after a bench app ran (exit code RC, result line LINE). No line: says so, prints
# the end of the server's log and exits the script with 1. A line with RC != 0 (errors, lost changes): says so and
# returns RC, so that the caller keeps it as its own exit code (`check_bench_result … || overall_rc=$?`).
check_bench_result() {
  local name=$1 rc=$2 line=$3
  if [ -z "$line" ]; then
    log "$name failed (exit $rc) without a result line"
    kill -0 "$SERVER_PID" 2>/dev/null || log "Identity.Server (pid $SERVER_PID) is no longer running"
    server_log_tail 80
    exit 1
  fi
  if [ "$rc" -ne 0 ]; then
    log "$name reported errors (exit $rc)"
    server_log_tail 40
    return "$rc"
  fi
}
