#!/usr/bin/env bash
# Benchmark (not a test): client_credentials tokens per second of Identity.Server, measured
# against the oidc-provider peer in the same run, interleaved A B A B.
#
#   bench/token-bench.sh
#
# env: ROUNDS (2)          rounds of (Identity, peer)
#      PEER_WORKERS (2)    node:cluster workers of the peer (run-peer.sh)
#      PEER_BENCH_DIR      the shared bench harness (default: <repo>/../shared/bench)
#      WARMUP_S, DURATION_S, CONNS, THREADS: passed on to token-load.sh (5, 15, 32, 2)
#      ALLOW_UNVERIFIED_JWT=1  measure even when Identity's access token fails the JWT check
#
# What it does:
#   1. installs wrk if missing; starts a private PostgreSQL (scripts/lib/postgres.sh)
#   2. dotnet publish src/Identity.Server (Release) and starts the published dll on
#      http://127.0.0.1:7280 (Production, PostgreSQL, one client declared in configuration)
#   3. checks once that Identity's access token is a real JWT, signed ES256, verifiable
#      against its JWKS (as the peer's verify-jwt.mjs does for the peer)
#   4. per round: token-load.sh on Identity's token endpoint, then run-peer.sh ES256
#   5. prints a summary and appends it to bench/results/token-bench-DATE-HHMM.txt
# Everything it starts is stopped by PID on exit.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
PEER_BENCH_DIR=${PEER_BENCH_DIR:-$REPO_ROOT/../shared/bench}
[ -d "$PEER_BENCH_DIR" ] || { echo "shared bench harness not found at $PEER_BENCH_DIR (set PEER_BENCH_DIR)" >&2; exit 2; }
PEER_BENCH_DIR=$(cd "$PEER_BENCH_DIR" && pwd)
ROUNDS=${ROUNDS:-2}
PEER_WORKERS=${PEER_WORKERS:-2}
PORT=7280
BASE_URL="http://127.0.0.1:$PORT"
ISSUER="$BASE_URL/"
TOKEN_URL="$BASE_URL/connect/token"
CLIENT_ID=bench-client
SCOPE=api:read
RESOURCE=https://api.bench.test
RESULT_FILE="$REPO_ROOT/bench/results/token-bench-$(date +%F-%H%M).txt"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# shellcheck source=scripts/lib/postgres.sh
. "$REPO_ROOT/scripts/lib/postgres.sh"
# shellcheck source=bench/lib.sh
. "$REPO_ROOT/bench/lib.sh"
for f in token-load.sh run-peer.sh; do
  [ -x "$PEER_BENCH_DIR/$f" ] || { echo "$PEER_BENCH_DIR/$f not found (set PEER_BENCH_DIR)" >&2; exit 2; }
done

log() { echo "# token-bench: $*" >&2; }

# --- cleanup: stop the server and PostgreSQL by PID, remove the temp folder (bench/lib.sh). ---
bench_cleanup_traps

# pg_ticks: CPU ticks used so far by the PostgreSQL cluster: the postmaster, its reaped
# children (cutime/cstime) and its live children (the backends serving the server).
pg_ticks() {
  local total=0 p f
  for p in "$PG_PID" $(ps -o pid= --ppid "$PG_PID" 2>/dev/null); do
    [ -r "/proc/$p/stat" ] || continue
    f=$(sed 's/^.*) //' "/proc/$p/stat")
    # shellcheck disable=SC2086  # split the stat fields on purpose
    set -- $f
    total=$(( total + ${12} + ${13} ))
    [ "$p" = "$PG_PID" ] && total=$(( total + ${14} + ${15} ))
  done
  echo "$total"
}

# server_ticks: CPU ticks used so far by Identity.Server (0 when it is not running).
server_ticks() {
  local f
  f=$(sed 's/^.*) //' "/proc/$SERVER_PID/stat" 2>/dev/null) || { echo 0; return; }
  # shellcheck disable=SC2086  # split the stat fields on purpose
  set -- $f
  echo $(( ${12} + ${13} ))
}

# cpu_pct TICKS0 TICKS1 T0 T1: ticks used between two date +%s.%N stamps, in % of one core.
cpu_pct() {
  awk -v a="$1" -v b="$2" -v t0="$3" -v t1="$4" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.0f", (b - a) * 100 / hz / (t1 - t0) }'
}

# --- 1. Tools and PostgreSQL. ---
ensure_wrk
command -v node >/dev/null || { echo "node is needed (the peer and the JWT check)" >&2; exit 2; }
port_free "$PORT"

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/identity-bench.XXXXXX")
chmod 711 "$BENCH_TMP"   # the postgres OS user must be able to reach its sub-folder
bench_postgres
bench_database identity_bench

# --- 2. Publish and start Identity.Server. ---
log "dotnet publish src/Identity.Server (Release)"
publish_projects src/Identity.Server

# Only the server gets the client's secret (token_client does not export it): the peer (server.js) reads the same name
# for its own client secret.
token_client "$CLIENT_ID" "$SCOPE" "$RESOURCE"
start_server "$BASE_URL" "${TOKEN_CLIENT_SETTINGS[@]}"
log "Identity.Server started (pid $SERVER_PID); waiting for discovery"
wait_http_200 "$SERVER_PID" "$BASE_URL/.well-known/openid-configuration" || exit 1

# --- 3. Identity's access token must be a real signed JWT, like the peer's. ---
# Node 20's crypto only (no npm package): discovery, one token, the JWS header, the
# signature against jwks_uri, then iss, aud, exp and client_id.
cat >"$BENCH_TMP/verify-jwt.mjs" <<'EOF'
import { createPublicKey, verify } from 'node:crypto';
const [issuer, expectedAlg, clientId, secret, scope, resource] = process.argv.slice(2);
const b64 = (s) => Buffer.from(s, 'base64url');
try {
  const d = await (await fetch(issuer.replace(/\/$/, '') + '/.well-known/openid-configuration')).json();
  if (d.issuer !== issuer) throw new Error(`discovery_issuer=${d.issuer}`);
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64');
  const res = await fetch(d.token_endpoint, { method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope }) });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`token_http_${res.status}:${body.error}`);
  const token = body.access_token, parts = token.split('.');
  if (parts.length !== 3) throw new Error('not_a_jws(opaque_or_encrypted_token)');
  const header = JSON.parse(b64(parts[0])), payload = JSON.parse(b64(parts[1]));
  if (header.alg !== expectedAlg) throw new Error(`alg=${header.alg}`);
  const jwks = await (await fetch(d.jwks_uri)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`kid_${header.kid}_not_in_jwks`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const ok = expectedAlg === 'ES256'
    ? verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key, dsaEncoding: 'ieee-p1363' }, b64(parts[2]))
    : verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), key, b64(parts[2]));
  if (!ok) throw new Error('bad_signature');
  if (payload.iss !== issuer) throw new Error(`iss=${payload.iss}`);
  const aud = [].concat(payload.aud ?? []);
  if (!aud.includes(resource)) throw new Error(`aud=${aud.join(',')}`);
  if (!(payload.exp > Date.now() / 1000)) throw new Error('expired');
  const cid = payload.client_id ?? payload.azp;
  if (cid !== clientId) throw new Error(`client_id=${cid}`);
  console.log(`jwt_verified=ok alg=${header.alg} typ=${header.typ} token_bytes=${token.length} `
    + `aud=${aud.join(',')} ttl_s=${payload.exp - payload.iat}`);
} catch (e) {
  console.log(`jwt_verified=FAILED reason=${String(e.message ?? e).replace(/\s+/g, '_')}`);
  process.exitCode = 1;
}
EOF
if ! identity_jwt=$(node "$BENCH_TMP/verify-jwt.mjs" "$ISSUER" ES256 "$CLIENT_ID" "$BENCH_CLIENT_SECRET" "$SCOPE" "$RESOURCE"); then
  log "Identity's access token failed the JWT check: $identity_jwt"
  if [ "${ALLOW_UNVERIFIED_JWT:-0}" != 1 ]; then
    server_log_tail 60
    echo "not comparable with the peer's verified JWTs; set ALLOW_UNVERIFIED_JWT=1 to measure anyway" >&2
    exit 1
  fi
fi
log "Identity token: $identity_jwt"

# --- 4. Rounds: Identity, then the peer (A B A B ...). ---
identity_lines=()
peer_lines=()
for (( round = 1; round <= ROUNDS; round++ )); do
  log "round $round/$ROUNDS: Identity.Server"
  wait_quiet
  pg0=$(pg_ticks); t0=$(date +%s.%N)
  if ! line=$(SERVER_PID=$SERVER_PID "$PEER_BENCH_DIR/token-load.sh" "$TOKEN_URL" "$CLIENT_ID" "$BENCH_CLIENT_SECRET" "scope=$SCOPE"); then
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "token-load.sh failed against Identity.Server (pid $SERVER_PID still running)"
    else
      wait "$SERVER_PID" && rc=0 || rc=$?
      log "token-load.sh failed: Identity.Server (pid $SERVER_PID) has exited with status $rc"
      SERVER_PID=
    fi
    server_log_tail 80
    exit 1
  fi
  pg1=$(pg_ticks); t1=$(date +%s.%N)
  # PostgreSQL's CPU over the whole token-load.sh call (warm-up included), % of one core;
  # token-load.sh itself counts it under other_cpu_pct.
  line="server=identity round=$round $line db_cpu_pct_incl_warmup=$(cpu_pct "$pg0" "$pg1" "$t0" "$t1") $identity_jwt"
  echo "$line"
  identity_lines+=("$line")

  log "round $round/$ROUNDS: peer (oidc-provider ES256, PEER_WORKERS=$PEER_WORKERS)"
  # Identity.Server and PostgreSQL stay up, idle, during the peer's run: their CPU over the
  # whole run-peer.sh call (~0 expected) shows whether they disturbed it.
  id0=$(( $(server_ticks) + $(pg_ticks) )); t0=$(date +%s.%N)
  peer_out=$(env -u BENCH_CLIENT_SECRET RUNS=1 PEER_WORKERS="$PEER_WORKERS" "$PEER_BENCH_DIR/run-peer.sh" ES256)
  id1=$(( $(server_ticks) + $(pg_ticks) )); t1=$(date +%s.%N)
  line=$(printf '%s\n' "$peer_out" | grep '^peer=' | tail -n 1 || true)
  [ -n "$line" ] || { printf '%s\n' "$peer_out" >&2; log "no peer= line from run-peer.sh"; exit 1; }
  line="server=peer round=$round $line idle_identity_stack_cpu_pct=$(cpu_pct "$id0" "$id1" "$t0" "$t1")"
  echo "$line"
  peer_lines+=("$line")
done

# --- 5. Summary (stdout and bench/results/). ---
id_tps=$(median_of tokens_per_s "${identity_lines[@]}")
id_p50=$(median_of p50_ms "${identity_lines[@]}")
id_p99=$(median_of p99_ms "${identity_lines[@]}")
peer_tps=$(median_of tokens_per_s "${peer_lines[@]}")
peer_p50=$(median_of p50_ms "${peer_lines[@]}")
peer_p99=$(median_of p99_ms "${peer_lines[@]}")
ratio=$(awk -v a="$id_tps" -v b="$peer_tps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
git_rev=$(git_rev)

summary=$(
  echo "== token-bench $(date '+%F %T %Z') =="
  echo "$(machine_line) node=$(node -v) postgres=$("$PG_BIN/postgres" -V | awk '{ print $3 }')"
  echo "identity: Identity.Server@$git_rev, Production, PostgreSQL, client_credentials, $identity_jwt"
  echo "peer: $(kv "${peer_lines[0]}" peer) node=$(kv "${peer_lines[0]}" node) alg=ES256 workers=$PEER_WORKERS"
  echo "load: wrk conns=$(kv "${identity_lines[0]}" conns) threads=$(kv "${identity_lines[0]}" threads)" \
       "warmup_s=$(kv "${identity_lines[0]}" warmup_s) duration_s=${DURATION_S:-15} (wrk shares the cores with the server)"
  printf '%-7s | %-9s %12s %8s %8s %6s | %-9s %12s %8s %8s %6s\n' \
    round identity tokens_per_s p50_ms p99_ms errors peer tokens_per_s p50_ms p99_ms errors
  for (( r = 0; r < ROUNDS; r++ )); do
    a=${identity_lines[r]} b=${peer_lines[r]}
    printf '%-7s | %-9s %12s %8s %8s %6s | %-9s %12s %8s %8s %6s\n' "$(( r + 1 ))" \
      "" "$(kv "$a" tokens_per_s)" "$(kv "$a" p50_ms)" "$(kv "$a" p99_ms)" "$(kv "$a" errors)" \
      "" "$(kv "$b" tokens_per_s)" "$(kv "$b" p50_ms)" "$(kv "$b" p99_ms)" "$(kv "$b" errors)"
  done
  printf '%-7s | %-9s %12s %8s %8s %6s | %-9s %12s %8s %8s %6s\n' median \
    "" "$id_tps" "$id_p50" "$id_p99" "" "" "$peer_tps" "$peer_p50" "$peer_p99" ""
  echo "ratio identity/peer (median tokens_per_s): $ratio"
  echo "raw:"
  for (( r = 0; r < ROUNDS; r++ )); do
    echo "  ${identity_lines[r]}"
    echo "  ${peer_lines[r]}"
  done
)
echo
echo "$summary"
mkdir -p "$(dirname "$RESULT_FILE")"
printf '%s\n\n' "$summary" >>"$RESULT_FILE"
log "summary appended to ${RESULT_FILE#"$REPO_ROOT"/}"
