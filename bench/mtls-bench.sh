#!/usr/bin/env bash
# Benchmark (not a test): client-credentials tokens per second over mutual TLS (RFC 8705, tls_client_auth), with
# connections kept alive, with TLS session resumption on a new connection per request, and with a full handshake per
# request, beside plain client_secret_basic over HTTPS in the same run; the oidc-provider peer in its mTLS mode
# (bench/peer-mtls) measured the same way, alternating A B A B. The closed-loop load generator is bench/MtlsBench/mtls-load.c
# (C on OpenSSL, compiled here; GENERATOR=dotnet: bench/MtlsBench, and bench/MtlsBench/resume-load.mjs on Node for
# `resume`, the generators before it, which cost more CPU per connection than the servers they measure).
#
#   bench/mtls-bench.sh
#
# env: ROUNDS (3)          repetitions of (every mode × every target), so that the targets alternate
#      MODES ("plain keepalive resume handshake")
#                          plain     = client_secret_basic over HTTPS, connections kept alive (the baseline)
#                          keepalive = tls_client_auth, connections kept alive (one handshake per connection)
#                          resume    = tls_client_auth, a new connection per request resuming the worker's last TLS
#                                      session (every connection says whether it resumed: resumed_ratio)
#                          handshake = tls_client_auth, a new connection and a full handshake per request
#      TARGETS ("identity peer")  Identity.Server, and the peer (oidc-provider 9.13.3 in mTLS mode)
#      GENERATOR (c)       c: bench/MtlsBench/mtls-load.c for every mode and target (gcc and libssl-dev installed with
#                          apt when missing); dotnet: bench/MtlsBench, and resume-load.mjs (Node) for resume
#      WORKERS (32)        closed-loop workers (requests in flight)
#      IDENTITY_OPENSSL_CONF  a file (path relative to the repository) given to Identity.Server as OPENSSL_CONF, e.g.
#                          deploy/openssl/stateful-tls-tickets.cnf (TLS 1.3 tickets kept by the server: no session
#                          decoded from the ticket per resumed connection, decision 0062); unset: none
#      WARMUP_S (5), DURATION_S (15)   per measurement
#      PEER_WORKERS (2)    node:cluster workers of the peer (as the shared token bench runs it)
#      MIN_RESUMED (0.9)   resume: the share of measured requests that must have resumed, or the round has no figure
#      QUIET_WAIT_S (120)  before each measurement, wait up to this long for the machine to be idle (then measure anyway,
#                          and say so); the 1-minute load average before each measurement is in its line
#
# What it does:
#   1. makes a CA, a server certificate (127.0.0.1) and the client certificate (CN=bench-mtls, clientAuth) with openssl
#   2. starts a private PostgreSQL (scripts/lib/postgres.sh); dotnet publish src/Identity.Server and bench/MtlsBench
#      (the token check, and GENERATOR=dotnet's load); gcc bench/MtlsBench/mtls-load.c (GENERATOR=c);
#      starts the server with its main port https://127.0.0.1:7284 and its mTLS port 7285 (Mtls:*), two clients
#      declared in configuration: bench-client (secret) and bench-mtls (tls_client_auth, subject CN=bench-mtls)
#   3. starts the peer on https://127.0.0.1:7286 (npm ci in bench/peer-mtls when needed), the same two clients
#   4. checks one token of every target and mode: an ES256 JWS verified against the JWKS, iss, client_id, and
#      cnf.x5t#S256 equal to the client certificate's SHA-256 thumbprint (none on plain); and whether each mTLS port
#      lets a session resume (openssl s_client -sess_out / -sess_in)
#   5. one unmeasured warm-up pass of every mode on every target (the JIT), then for each round, each mode, each
#      target: the load generator; prints a summary with medians and ratios and appends it to
#      bench/results/mtls-bench-DATE-HHMM.txt
# Everything it starts is stopped by PID on exit.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
ROUNDS=${ROUNDS:-3}
MODES=${MODES:-plain keepalive resume handshake}
TARGETS=${TARGETS:-identity peer}
WORKERS=${WORKERS:-32}
WARMUP_S=${WARMUP_S:-5}
DURATION_S=${DURATION_S:-15}
PEER_WORKERS=${PEER_WORKERS:-2}
QUIET_WAIT_S=${QUIET_WAIT_S:-120}
MIN_RESUMED=${MIN_RESUMED:-0.9}
GENERATOR=${GENERATOR:-c}
IDENTITY_OPENSSL_CONF=${IDENTITY_OPENSSL_CONF:-}
IDENTITY_ENV=()
if [ -n "$IDENTITY_OPENSSL_CONF" ]; then
  IDENTITY_OPENSSL_CONF=$(realpath "$IDENTITY_OPENSSL_CONF")   # relative to the repository
  [ -f "$IDENTITY_OPENSSL_CONF" ] || { echo "IDENTITY_OPENSSL_CONF: no file $IDENTITY_OPENSSL_CONF" >&2; exit 2; }
  IDENTITY_ENV=(OPENSSL_CONF="$IDENTITY_OPENSSL_CONF")
fi
PORT=7284
MTLS_PORT=7285
PEER_PORT=7286
BASE_URL="https://127.0.0.1:$PORT"
ISSUER="$BASE_URL/"
PEER_URL="https://127.0.0.1:$PEER_PORT"
CLIENT_ID=bench-client
MTLS_CLIENT_ID=bench-mtls
SCOPE=api:read
RESOURCE=https://api.bench.test
PEER_PID=
RESULT_FILE="$REPO_ROOT/bench/results/mtls-bench-$(date +%F-%H%M).txt"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# shellcheck source=scripts/lib/postgres.sh
. "$REPO_ROOT/scripts/lib/postgres.sh"
# shellcheck source=bench/lib.sh
. "$REPO_ROOT/bench/lib.sh"

log() { echo "# mtls-bench: $*" >&2; }

for mode in $MODES; do
  case $mode in plain | keepalive | resume | handshake) ;; *) log "unknown mode $mode"; exit 2 ;; esac
done
for target in $TARGETS; do
  case $target in identity | peer) ;; *) log "unknown target $target (identity or peer)"; exit 2 ;; esac
done
case $GENERATOR in c | dotnet) ;; *) log "unknown GENERATOR $GENERATOR (c or dotnet)"; exit 2 ;; esac

# --- cleanup: stop the server, the peer and PostgreSQL by PID, remove the temp folder (bench/lib.sh). ---
# shellcheck disable=SC2317  # invoked by _bench_cleanup
bench_stop_more() { if [ -n "$PEER_PID" ]; then stop_pid "$PEER_PID"; fi; }
bench_cleanup_traps

case " $TARGETS " in *" identity "*) port_free "$PORT"; port_free "$MTLS_PORT" ;; esac
case " $TARGETS " in *" peer "*)
  port_free "$PEER_PORT"
  command -v node >/dev/null || { log "node is needed for the peer (or TARGETS=identity)"; exit 2; } ;;
esac
if [ "$GENERATOR" = dotnet ]; then
  case " $MODES " in *" resume "*)
    command -v node >/dev/null || { log "node is needed for GENERATOR=dotnet MODES=resume (resume-load.mjs)"; exit 2; } ;;
  esac
elif ! command -v gcc >/dev/null || [ ! -f /usr/include/openssl/ssl.h ]; then
  log "installing gcc and libssl-dev (apt-get) for bench/MtlsBench/mtls-load.c"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev libssl-dev; } >&2 \
    || { log "could not install gcc/libssl-dev (run as root, or GENERATOR=dotnet)"; exit 2; }
fi
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/identity-mtls-bench.XXXXXX")
chmod 711 "$BENCH_TMP"   # the postgres OS user must be able to reach its sub-folder

# --- 1. Certificates: a CA, the servers' certificate, the client's. ---
CERTS="$BENCH_TMP/certs"
mkdir -p "$CERTS"
(
  cd "$CERTS"
  ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  ec ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=mtls-bench CA" -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  issue() { # name subject extensions
    ec "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  }
  issue server "/CN=127.0.0.1" "$(printf '%s\n' 'basicConstraints=CA:FALSE' 'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1,DNS:localhost')"
  issue client "/CN=$MTLS_CLIENT_ID" "$(printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature' 'extendedKeyUsage=clientAuth')"
)
export CURL_CA_BUNDLE="$CERTS/ca.pem"   # wait_http_200's curl trusts the bench CA

# --- 2. PostgreSQL, publish, Identity.Server. ---
log "dotnet publish src/Identity.Server and bench/MtlsBench (Release)"
publish_projects src/Identity.Server bench/MtlsBench
BENCH_APP=(dotnet "$BENCH_TMP/MtlsBench/MtlsBench.dll")
if [ "$GENERATOR" = c ]; then
  log "gcc bench/MtlsBench/mtls-load.c"
  gcc -O2 -Wall -Wextra -o "$BENCH_TMP/mtls-load" "$REPO_ROOT/bench/MtlsBench/mtls-load.c" -lssl -lcrypto -lpthread
fi
# Generated per run; only the servers' environments hold it (the bench gets it as an argument).
BENCH_CLIENT_SECRET=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=')

if [[ " $TARGETS " == *" identity "* ]]; then
  bench_postgres
  bench_database identity_mtls_bench
  start_server "$BASE_URL" \
    Throttling__ExemptLoopback=true \
    Oidc__AccessTokenAlgorithm=ES256 \
    Kestrel__Certificates__Default__Path="$CERTS/server.pem" \
    Kestrel__Certificates__Default__KeyPath="$CERTS/server.key" \
    Mtls__Port="$MTLS_PORT" \
    Mtls__CertificateFile="$CERTS/server.pem" \
    Mtls__CertificateKeyFile="$CERTS/server.key" \
    Mtls__TrustedCaFile="$CERTS/ca.pem" \
    Mtls__BaseUri="https://127.0.0.1:$MTLS_PORT/" \
    Oidc__Clients__0__ClientId="$CLIENT_ID" \
    Oidc__Clients__0__GrantTypes__0=client_credentials \
    Oidc__Clients__0__Scopes__0="$SCOPE" \
    Oidc__Clients__0__SecretEnvironmentVariable=BENCH_CLIENT_SECRET \
    Oidc__Clients__1__ClientId="$MTLS_CLIENT_ID" \
    Oidc__Clients__1__GrantTypes__0=client_credentials \
    Oidc__Clients__1__Scopes__0="$SCOPE" \
    Oidc__Clients__1__TlsClientAuthSubjectDn="CN=$MTLS_CLIENT_ID" \
    BENCH_CLIENT_SECRET="$BENCH_CLIENT_SECRET" \
    Oidc__Scopes__0__Name="$SCOPE" \
    Oidc__Scopes__0__Resources__0="$RESOURCE" \
    "${IDENTITY_ENV[@]}"
  log "Identity.Server started (pid $SERVER_PID); waiting for discovery"
  wait_http_200 "$SERVER_PID" "$BASE_URL/.well-known/openid-configuration" || exit 1
fi

# --- 3. The peer. ---
if [[ " $TARGETS " == *" peer "* ]]; then
  PEER_DIR="$REPO_ROOT/bench/peer-mtls"
  if [ ! -d "$PEER_DIR/node_modules" ] || [ "$PEER_DIR/package-lock.json" -nt "$PEER_DIR/node_modules" ]; then
    log "installing the peer's dependencies (npm ci)"
    (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  PEER_VERSION=$(node -p "require('$PEER_DIR/node_modules/oidc-provider/package.json').version")
  (
    cd "$PEER_DIR"
    exec env NODE_ENV=production PEER_PORT="$PEER_PORT" PEER_WORKERS="$PEER_WORKERS" \
      PEER_TLS_CERT="$CERTS/server.pem" PEER_TLS_KEY="$CERTS/server.key" PEER_CLIENT_CA="$CERTS/ca.pem" \
      BENCH_MTLS_CLIENT_ID="$MTLS_CLIENT_ID" BENCH_MTLS_SUBJECT_DN="CN=$MTLS_CLIENT_ID" \
      BENCH_CLIENT_ID="$CLIENT_ID" BENCH_CLIENT_SECRET="$BENCH_CLIENT_SECRET" BENCH_RESOURCE="$RESOURCE" \
      node server.mjs
  ) >"$BENCH_TMP/peer.log" 2>&1 &
  PEER_PID=$!
  log "peer started (pid $PEER_PID, oidc-provider $PEER_VERSION, $PEER_WORKERS workers)"
  wait_http_200 "$PEER_PID" "$PEER_URL/.well-known/openid-configuration" || { cat "$BENCH_TMP/peer.log" >&2; exit 1; }
fi

# target_args TARGET MODE: MtlsBench's arguments for a target and a mode.
target_args() {
  local token_url issuer pid
  case $1 in
    identity)
      issuer=$ISSUER pid=$SERVER_PID
      if [ "$2" = plain ]; then token_url="$BASE_URL/connect/token"; else token_url="https://127.0.0.1:$MTLS_PORT/connect/token"; fi ;;
    peer)
      issuer=$PEER_URL pid=$PEER_PID token_url="$PEER_URL/token" ;;
  esac
  printf '%s\n' --token-url "$token_url" --issuer "$issuer" --server-pid "$pid" \
    --server-cert "$CERTS/server.pem" --scope "$SCOPE" --mode "$2"
  if [ "$2" = plain ]; then
    printf '%s\n' --client-id "$CLIENT_ID" --secret "$BENCH_CLIENT_SECRET"
  else
    printf '%s\n' --client-id "$MTLS_CLIENT_ID" --cert "$CERTS/client.pem" --key "$CERTS/client.key"
  fi
}

# load TARGET MODE ARG...: one measurement's result line. GENERATOR=c: mtls-load (every mode; in resume it counts the
# resumed connections, resumed_ratio, and reports no figure, exit 1, when too few resumed). GENERATOR=dotnet:
# MtlsBench, but for `resume` bench/MtlsBench/resume-load.mjs: .NET's HttpClient on Linux never resumes a TLS session
# when it presents a client certificate, Node's https.Agent does (and counts them the same way).
load() {
  local target=$1 mode=$2 args
  shift 2
  mapfile -t args < <(target_args "$target" "$mode")
  if [ "$GENERATOR" = c ]; then
    local url pid=$SERVER_PID hostport
    url=$(arg_of --token-url "${args[@]}")
    [ "$target" = peer ] && pid=$PEER_PID
    hostport=${url#https://}
    hostport=${hostport%%/*}
    local c_args=(--mode "$mode" --host "${hostport%:*}" --port "${hostport##*:}" --path "/${url#https://*/}"
      --server-cert "$CERTS/server.pem" --scope "$SCOPE" --server-pid "$pid" --min-resumed "$MIN_RESUMED")
    if [ "$mode" = plain ]; then
      c_args+=(--client-id "$CLIENT_ID" --secret "$BENCH_CLIENT_SECRET")
    else
      c_args+=(--client-id "$MTLS_CLIENT_ID" --cert "$CERTS/client.pem" --key "$CERTS/client.key")
    fi
    "$BENCH_TMP/mtls-load" "${c_args[@]}" "$@"
  elif [ "$mode" = resume ]; then
    local pid=$SERVER_PID
    [ "$target" = peer ] && pid=$PEER_PID
    node "$REPO_ROOT/bench/MtlsBench/resume-load.mjs" --token-url "$(arg_of --token-url "${args[@]}")" \
      --client-id "$MTLS_CLIENT_ID" --cert "$CERTS/client.pem" --key "$CERTS/client.key" --server-cert "$CERTS/server.pem" \
      --scope "$SCOPE" --server-pid "$pid" --min-resumed "$MIN_RESUMED" "$@"
  else
    "${BENCH_APP[@]}" "${args[@]}" "$@"
  fi
}

# arg_of NAME ARG...: the value after NAME in ARG...
arg_of() {
  local name=$1
  shift
  while [ $# -gt 1 ]; do
    [ "$1" = "$name" ] && { echo "$2"; return; }
    shift
  done
}

# resumes HOST:PORT: "yes" when a second connection presenting the client certificate resumes the first's session.
resumes() {
  local sess="$BENCH_TMP/session.pem" out
  # A request is sent so that the TLS 1.3 session ticket (sent after the handshake) is read before closing.
  printf 'GET /.well-known/openid-configuration HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" \
    | openssl s_client -connect "$1" -cert "$CERTS/client.pem" -key "$CERTS/client.key" -CAfile "$CERTS/ca.pem" \
      -sess_out "$sess" -quiet >/dev/null 2>&1 || true
  [ -s "$sess" ] || { echo "no(no session)"; return; }
  out=$(printf 'GET /.well-known/openid-configuration HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" \
    | openssl s_client -connect "$1" -cert "$CERTS/client.pem" -key "$CERTS/client.key" -CAfile "$CERTS/ca.pem" \
      -sess_in "$sess" 2>/dev/null || true)
  rm -f "$sess"
  if grep -q '^Reused,' <<<"$out"; then echo yes; else echo no; fi
}

# --- 4. One checked token per target and mode; resumption on each mTLS port. ---
declare -A CHECKS RESUMES
for target in $TARGETS; do
  for mode in $MODES; do
    mapfile -t args < <(target_args "$target" "$mode")
    if ! CHECKS[$target.$mode]=$("${BENCH_APP[@]}" "${args[@]}" --check true); then
      log "$target, $mode: the token failed the check: ${CHECKS[$target.$mode]}"
      [ "$target" = identity ] && server_log_tail 60
      exit 1
    fi
    log "$target, $mode: ${CHECKS[$target.$mode]}"
  done
done
[[ " $TARGETS " == *" identity "* ]] && RESUMES[identity]=$(resumes "127.0.0.1:$MTLS_PORT")
[[ " $TARGETS " == *" peer "* ]] && RESUMES[peer]=$(resumes "127.0.0.1:$PEER_PORT")
for target in $TARGETS; do log "$target: a TLS session on the mTLS port resumes: ${RESUMES[$target]}"; done

# --- 5. Rounds: every mode, every target (A B A B). ---
# First one unmeasured pass of every mode on every target: otherwise the first mode measured on a fresh server also
# measures its JIT (seen: Identity's first mode at less than half its later figure).
for target in $TARGETS; do
  for mode in $MODES; do
    load "$target" "$mode" --workers "$WORKERS" --warmup-s 0 --seconds "$WARMUP_S" >/dev/null || true
  done
done
log "warm-up pass done (every mode on every target, ${WARMUP_S} s each, not measured)"

declare -A LINES
for (( round = 1; round <= ROUNDS; round++ )); do
  for mode in $MODES; do
    for target in $TARGETS; do
      log "round $round/$ROUNDS: $target, $mode ($(uptime | sed 's/.*load average/load average/'))"
      wait_quiet "$QUIET_WAIT_S"
      load=$(sed 's/ .*//' /proc/loadavg)
      rc=0
      line=$(load "$target" "$mode" --workers "$WORKERS" --warmup-s "$WARMUP_S" --seconds "$DURATION_S") || rc=$?
      if [ -z "$line" ]; then
        log "the load generator failed (exit $rc) without a result line"
        [ "$target" = identity ] && server_log_tail 60
        [ "$target" = peer ] && tail -n 40 "$BENCH_TMP/peer.log" >&2
        exit 1
      fi
      line="target=$target round=$round $line loadavg1_before=$load"
      echo "$line"
      LINES[$target.$mode]+="$line"$'\n'
    done
  done
done

# --- 6. Summary (stdout and bench/results/). ---
# med TARGET MODE KEY: the median of KEY over that target's and mode's rounds.
med() {
  local l vals=()
  while IFS= read -r l; do [ -n "$l" ] && vals+=("$(kv "$l" "$3")"); done <<<"${LINES[$1.$2]:-}"
  median "${vals[@]}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "n/a") printf "%.2f", a / b; else print "n/a" }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "n/a"; else if (r + 0 >= t) print "met"; else print "NOT met" }'; }

summary=$(
  echo "== mtls-bench $(date '+%F %T %Z') =="
  machine_line
  echo "node=$(node -v 2>/dev/null || echo none) openssl=\"$(openssl version)\" load_before=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
  echo "identity: Identity.Server@$(git_rev), Production, PostgreSQL, main port https $PORT, mTLS port $MTLS_PORT (Mtls:*)," \
       "tls_client_auth subject CN=$MTLS_CLIENT_ID; resumption on the mTLS port: ${RESUMES[identity]:-n/a};" \
       "OPENSSL_CONF=${IDENTITY_OPENSSL_CONF:-none}"
  echo "peer: oidc-provider ${PEER_VERSION:-n/a} (bench/peer-mtls) on node, https with requestCert, workers=$PEER_WORKERS;" \
       "resumption: ${RESUMES[peer]:-n/a}"
  echo "load: $([ "$GENERATOR" = c ] && echo "mtls-load (C, $(openssl version | cut -d' ' -f1-2))" || echo "MtlsBench (.NET), resume-load.mjs (node) for resume")" \
       "closed loop, workers=$WORKERS warmup_s=$WARMUP_S duration_s=$DURATION_S rounds=$ROUNDS" \
       "(the load generator shares the cores with the server; server CPU per token excludes PostgreSQL)"
  echo "checks: $(for t in $TARGETS; do for m in $MODES; do printf '%s.%s:%s ' "$t" "$m" "$(kv "${CHECKS[$t.$m]}" jwt_verified)/cnf=$(kv "${CHECKS[$t.$m]}" cnf_x5t_s256)"; done; done)"
  printf '%-10s %-9s %12s %8s %8s %7s %14s %14s %7s\n' mode target tokens_per_s p50_ms p99_ms errors cpu_us_per_token bench_us_per_req rounds
  for mode in $MODES; do
    for target in $TARGETS; do
      n=$(grep -c . <<<"${LINES[$target.$mode]:-}" || true)
      errs=0
      while IFS= read -r l; do [ -n "$l" ] && errs=$(( errs + $(kv "$l" errors) )); done <<<"${LINES[$target.$mode]:-}"
      printf '%-10s %-9s %12s %8s %8s %7s %14s %14s %7s\n' "$mode" "$target" "$(med "$target" "$mode" tokens_per_s)" \
        "$(med "$target" "$mode" p50_ms)" "$(med "$target" "$mode" p99_ms)" "$errs" \
        "$(med "$target" "$mode" server_cpu_us_per_token)" "$(med "$target" "$mode" bench_cpu_us_per_request)" "$n"
    done
  done
  echo "(medians over the rounds; errors summed; n/a: no round gave a figure)"
  if [[ " $MODES " == *" resume "* ]]; then
    for target in $TARGETS; do
      echo "resume $target: resumed_ratio median $(med "$target" resume resumed_ratio), full handshakes in the measured windows" \
           "$(med "$target" resume full_handshakes) (median; a round below MIN_RESUMED=$MIN_RESUMED reports no figure)"
    done
  fi
  if [[ " $TARGETS " == *" identity "* ]]; then
    id_plain=$(med identity plain tokens_per_s)
    for mode in keepalive resume handshake; do
      [[ " $MODES " == *" $mode "* && " $MODES " == *" plain "* ]] || continue
      r=$(ratio "$(med identity "$mode" tokens_per_s)" "$id_plain")
      line="identity $mode / identity plain: $r"
      [ "$mode" = resume ] && line+=" (target >= 0.60: $(verdict "$r" 0.60))"
      echo "$line"
    done
  fi
  if [[ " $TARGETS " == *" identity "* && " $TARGETS " == *" peer "* ]]; then
    for mode in $MODES; do
      r=$(ratio "$(med identity "$mode" tokens_per_s)" "$(med peer "$mode" tokens_per_s)")
      line="identity $mode / peer $mode: $r"
      [ "$mode" = resume ] && line+=" (target >= 1.50: $(verdict "$r" 1.50))"
      echo "$line"
    done
  fi
  echo "raw:"
  for mode in $MODES; do for target in $TARGETS; do printf '%s' "${LINES[$target.$mode]:-}" | sed 's/^/  /'; done; done
)
echo
echo "$summary"
mkdir -p "$(dirname "$RESULT_FILE")"
printf '%s\n\n' "$summary" >>"$RESULT_FILE"
log "summary appended to ${RESULT_FILE#"$REPO_ROOT"/}"
