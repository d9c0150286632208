#!/usr/bin/env bash
# The whole shape on this machine, without Docker: Identity on PostgreSQL, RabbitMQ with mutual TLS, and two regional
# services (eu, us) whose user replicas are fed by the broker.
#
#   scripts/demo.sh               # build, start everything, print the URLs and the demo credentials; Ctrl-C stops it all
#   scripts/demo.sh --scripted    # the same, then by itself: sign a user in at eu (and at us, single sign-on), change
#                                 # the user through the admin API, wait for the change in both regions' replicas, stop
#   --no-build                    # use what dotnet build -c Release (or DEMO_CONFIGURATION) already built
#
# Everything runs as this user's processes on 127.0.0.1, in a temporary folder (certificates, secrets, databases, logs)
# that is removed at the end. Every process is stopped by the PID this script recorded (trap on EXIT, INT and TERM).
# The ports are 5080 (Identity), 7301 (eu), 7302 (us) when free, other free ports otherwise (--scripted: always free ones).
# Installs what is missing the first time (needs root then): PostgreSQL, RabbitMQ, jq.
# Secrets are generated for this run only and shown once; nothing here is fit for production (see docs/deployment.md).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/postgres.sh
. "$REPO_ROOT/scripts/lib/postgres.sh"
# shellcheck source=scripts/lib/rabbitmq.sh
. "$REPO_ROOT/scripts/lib/rabbitmq.sh"

scripted=false
build=true
for arg in "$@"; do
  case $arg in
    --scripted) scripted=true ;;
    --no-build) build=false ;;
    *) echo "usage: $0 [--scripted] [--no-build]" >&2; exit 2 ;;
  esac
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
CONFIGURATION=${DEMO_CONFIGURATION:-Release}
SERVER_DLL=$REPO_ROOT/src/Identity.Server/bin/$CONFIGURATION/net10.0/Identity.Server.dll
REGION_DLL=$REPO_ROOT/src/Identity.RegionSample/bin/$CONFIGURATION/net10.0/Identity.RegionSample.dll

say() { echo "demo: $*"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }

DEMO_DIR=
PIDS=()     # the dotnet processes this script started, stopped in reverse order
NAMES=()

# cleanup: stop every process by its recorded PID (TERM, then KILL after 15 s), the broker, PostgreSQL; remove the folder.
# shellcheck disable=SC2317  # invoked through the trap
cleanup() {
  local rc=$? i pid n
  trap - EXIT INT TERM
  for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
    pid=${PIDS[i]}
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    for (( n = 0; n < 150; n++ )); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "${NAMES[i]} (pid $pid) still running after 15 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    say "stopped ${NAMES[i]} (pid $pid)"
  done
  # shellcheck disable=SC2119  # the broker rmq_start started
  rmq_stop || true
  pg_stop || true
  [ -z "$DEMO_DIR" ] || rm -rf "$DEMO_DIR"
  say "everything stopped"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# pick_port DEFAULT: DEFAULT when it is free (and this is not a scripted run), else any free port.
pick_port() {
  if ! $scripted && _port_bindable "$1"; then echo "$1"; else free_port; fi
}

# secret: 32 random bytes, base64url (safe in a URL-encoded form and in HTTP Basic without escaping).
secret() { openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n'; }

# start NAME LOG CMD...: run CMD in the background with its output in LOG, record its PID.
start() {
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 </dev/null &
  PIDS+=("$!")
  NAMES+=("$name")
  say "started $name (pid $!)"
}

# wait_ready NAME URL: until URL answers 2xx (120 s), or the last started process died.
wait_ready() {
  local name=$1 url=$2 pid=${PIDS[-1]} i
  for (( i = 0; i < 480; i++ )); do
    if curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$DEMO_DIR/logs/$name.log" >&2; fail "$name exited during start-up"; }
    sleep 0.25
  done
  tail -n 30 "$DEMO_DIR/logs/$name.log" >&2
  fail "$name did not answer $url within 120 s"
}

# --- 1. What is needed. ---
pg_install_if_missing
rmq_install_if_missing
if ! command -v jq >/dev/null; then
  say "jq not found; installing it (apt)"
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq jq >&2
fi
if $build; then
  say "building Identity.Server and Identity.RegionSample ($CONFIGURATION)"
  dotnet build "$REPO_ROOT/src/Identity.Server" -c "$CONFIGURATION" -v quiet -nologo >&2
  dotnet build "$REPO_ROOT/src/Identity.RegionSample" -c "$CONFIGURATION" -v quiet -nologo >&2
fi
[ -f "$SERVER_DLL" ] && [ -f "$REGION_DLL" ] || fail "build first: $SERVER_DLL or $REGION_DLL is missing"

DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/identity-demo.XXXXXX")
chmod 711 "$DEMO_DIR"   # the postgres OS user must reach its sub-folder
mkdir -p "$DEMO_DIR/logs" "$DEMO_DIR/secrets" "$DEMO_DIR/eu" "$DEMO_DIR/us"
chmod 700 "$DEMO_DIR/secrets"

# --- 2. PostgreSQL and the broker (mutual TLS only; users identity, region-eu, region-us). ---
pg_start "$DEMO_DIR/postgres"
"$PG_BIN/psql" "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" -qc 'CREATE DATABASE identity'
RMQ_REGIONS="eu us" rmq_start "$DEMO_DIR/rabbitmq"

ID_PORT=$(pick_port 5080)
EU_PORT=$(pick_port 7301)
US_PORT=$(pick_port 7302)
ISSUER=http://localhost:$ID_PORT/
EU_URL=http://127.0.0.1:$EU_PORT
US_URL=http://127.0.0.1:$US_PORT
for name in platform-admin region-eu region-us; do
  (umask 077; secret >"$DEMO_DIR/secrets/$name")
done
ADMIN_SECRET=$(<"$DEMO_DIR/secrets/platform-admin")

# --- 3. Identity: migrations as a job, then the server. ---
identity_env=(
  ASPNETCORE_ENVIRONMENT=Production
  Database__Provider=PostgreSql
  "Database__ConnectionString=Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Password=unused;Database=identity"
  Oidc__Issuer="$ISSUER"
  Oidc__AllowInsecureHttp=true                 # local HTTP only
  DataProtection__AllowUnprotectedKeys=true    # local only: production encrypts the key ring with a certificate
  Logging__LogLevel__Default=Warning
  Logging__LogLevel__Microsoft.Hosting.Lifetime=Information
  Broker__Host=127.0.0.1 Broker__Port="$RMQ_PORT" Broker__ServerName=localhost
  Broker__CaCertificatePath="$RMQ_CERTS/ca.pem" Broker__ClientCertificatePath="$RMQ_CERTS/identity.pfx"
  Oidc__Clients__0__ClientId=platform-admin Oidc__Clients__0__GrantTypes__0=client_credentials
  Oidc__Clients__0__Scopes__0=identity.admin Oidc__Clients__0__PlatformAdmin=true
  Oidc__Clients__0__SecretFile="$DEMO_DIR/secrets/platform-admin"
)
index=1
for region in eu us; do
  port_var=${region^^}_PORT
  p=Oidc__Clients__${index}__
  identity_env+=(
    "${p}ClientId=region-$region" "${p}DisplayName=Regional app ($region)" "${p}Region=$region" "${p}FirstParty=true"
    "${p}GrantTypes__0=authorization_code" "${p}GrantTypes__1=refresh_token" "${p}GrantTypes__2=client_credentials"
    "${p}Scopes__0=openid" "${p}Scopes__1=profile" "${p}Scopes__2=email" "${p}Scopes__3=identity.sync"
    "${p}RedirectUris__0=http://127.0.0.1:${!port_var}/signin-oidc"
    "${p}PostLogoutRedirectUris__0=http://127.0.0.1:${!port_var}/signout-callback-oidc"
    "${p}SecretFile=$DEMO_DIR/secrets/region-$region"
  )
  index=$(( index + 1 ))
done

say "applying the PostgreSQL migrations"
env "${identity_env[@]}" dotnet "$SERVER_DLL" migrate >"$DEMO_DIR/logs/migrate.log" 2>&1 \
  || { tail -n 30 "$DEMO_DIR/logs/migrate.log" >&2; fail "migrations"; }
start identity "$DEMO_DIR/logs/identity.log" env "${identity_env[@]}" dotnet "$SERVER_DLL" --urls "http://localhost:$ID_PORT"
wait_ready identity "${ISSUER}health/ready"

# --- 4. The demo's data through the admin API: regions, an account living in both, a user. ---
admin_token=$(curl -fsS -u "platform-admin:$ADMIN_SECRET" -d grant_type=client_credentials -d scope=identity.admin \
  "${ISSUER}connect/token" | jq -r .access_token)
admin() { curl -fsS -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' "$@"; }
admin -X PUT -d '{"displayName":"Europe"}' "${ISSUER}admin/v1/regions/eu" >/dev/null
admin -X PUT -d '{"displayName":"United States"}' "${ISSUER}admin/v1/regions/us" >/dev/null
ACCOUNT=$(admin -d '{"name":"Contoso","regions":["eu","us"]}' "${ISSUER}admin/v1/accounts" | jq -r .id)
USER_EMAIL=alice@contoso.example
USER_PASSWORD="Demo-$(secret | cut -c1-16)"
USER_ID=$(admin -d "$(jq -nc --arg e "$USER_EMAIL" --arg p "$USER_PASSWORD" \
  '{email: $e, displayName: "Alice", role: "member", password: $p}')" "${ISSUER}admin/v1/accounts/$ACCOUNT/users" | jq -r .user.id)

# --- 5. The regional services: pages, a SQLite replica fed by the broker (and resync at start). ---
for region in eu us; do
  port_var=${region^^}_PORT
  start "region-$region" "$DEMO_DIR/logs/region-$region.log" env -C "$DEMO_DIR/$region" \
    ASPNETCORE_ENVIRONMENT=Production Logging__LogLevel__Default=Warning \
    Identity__Authority="$ISSUER" Identity__Region="$region" Identity__ClientId="region-$region" \
    Identity__ClientSecret="$(<"$DEMO_DIR/secrets/region-$region")" \
    IdentityRegion__ReplicaConnectionString="Data Source=$DEMO_DIR/$region/replica.db" \
    Broker__Host=127.0.0.1 Broker__Port="$RMQ_PORT" Broker__ServerName=localhost \
    Broker__CaCertificatePath="$RMQ_CERTS/ca.pem" Broker__ClientCertificatePath="$RMQ_CERTS/region-$region.pfx" \
    dotnet "$REGION_DLL" --urls "http://127.0.0.1:${!port_var}"
  wait_ready "region-$region" "http://127.0.0.1:${!port_var}/"
done

cat <<EOF

==== Identity demo (this run only; stopped with Ctrl-C) ====
Identity     $ISSUER                (discovery: ${ISSUER}.well-known/openid-configuration)
Region eu    $EU_URL/me      (replica: $EU_URL/replica)
Region us    $US_URL/me      (replica: $US_URL/replica)
Sign in as   $USER_EMAIL / $USER_PASSWORD   (account Contoso, living in eu and us)
Admin API    client platform-admin, secret $ADMIN_SECRET
             TOKEN=\$(curl -s -u platform-admin:$ADMIN_SECRET -d grant_type=client_credentials -d scope=identity.admin ${ISSUER}connect/token | jq -r .access_token)
             user: ${ISSUER}admin/v1/accounts/$ACCOUNT/users/$USER_ID (PATCH with If-Match: the ETag of a GET)
Broker       amqps://127.0.0.1:$RMQ_PORT (mutual TLS; certificates in $RMQ_CERTS)
PostgreSQL   127.0.0.1:$PG_PORT, database identity
Logs         $DEMO_DIR/logs
EOF

if ! $scripted; then
  say "running; Ctrl-C stops everything"
  while true; do
    for i in "${!PIDS[@]}"; do
      kill -0 "${PIDS[i]}" 2>/dev/null || fail "${NAMES[i]} (pid ${PIDS[i]}) stopped; its log: $DEMO_DIR/logs/${NAMES[i]}.log"
    done
    sleep 2
  done
fi

# --- 6. Scripted: sign in at eu, single sign-on at us, an admin change, the change in both replicas. ---
jar=$DEMO_DIR/cookies.txt
html_decode() { perl -pe 's/&#x([0-9a-fA-F]+);/chr(hex($1))/ge; s/&#(\d+);/chr($1)/ge; s/&quot;/"/g; s/&lt;/</g; s/&gt;/>/g; s/&amp;/&/g'; }
# field NAME FILE: the value of the first input named NAME in FILE.
field() { grep -o "<input[^>]*name=\"$1\"[^>]*>" "$2" | head -n 1 | sed -n 's/.*value="\([^"]*\)".*/\1/p' | html_decode; }

login_url=$(curl -fsS -L -c "$jar" -b "$jar" -o "$DEMO_DIR/login.html" -w '%{url_effective}' "$EU_URL/me")
[[ $login_url == "${ISSUER}Account/Login"* ]] || fail "eu did not send the browser to Identity's sign-in page (ended at $login_url)"
landed=$(curl -fsS -L -c "$jar" -b "$jar" -o "$DEMO_DIR/me-eu.html" -w '%{url_effective}' "$login_url" \
  --data-urlencode "__RequestVerificationToken=$(field __RequestVerificationToken "$DEMO_DIR/login.html")" \
  --data-urlencode "ReturnUrl=$(field ReturnUrl "$DEMO_DIR/login.html")" \
  --data-urlencode "Input.Email=$USER_EMAIL" --data-urlencode "Input.Password=$USER_PASSWORD")
[ "$landed" = "$EU_URL/me" ] && grep -q "Signed in as $USER_EMAIL" "$DEMO_DIR/me-eu.html" \
  || fail "sign-in at eu ended at $landed"
say "signed in at eu as $USER_EMAIL"
# curl sends at most 8 KB of cookies per request (a browser sends more): both regions' session cookies live on 127.0.0.1, so
# the visit to us starts from a copy of the jar without eu's (Identity's session cookie, on localhost, is in both).
jar_us=$DEMO_DIR/cookies-us.txt
grep -v 'regionsample-eu' "$jar" >"$jar_us"
landed=$(curl -fsS -L -c "$jar_us" -b "$jar_us" -o "$DEMO_DIR/me-us.html" -w '%{url_effective}' "$US_URL/me")
[ "$landed" = "$US_URL/me" ] && grep -q "Signed in as $USER_EMAIL" "$DEMO_DIR/me-us.html" \
  || fail "single sign-on at us ended at $landed"
say "signed in at us without a password (single sign-on)"

new_name="Alice changed by an admin $(date +%H%M%S)"
etag=$(admin -D - -o /dev/null "${ISSUER}admin/v1/accounts/$ACCOUNT/users/$USER_ID" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
admin -X PATCH -H "If-Match: $etag" -d "$(jq -nc --arg n "$new_name" '{displayName: $n}')" \
  "${ISSUER}admin/v1/accounts/$ACCOUNT/users/$USER_ID" >/dev/null
say "an admin changed the user's name to \"$new_name\" through the admin API"

for region in eu us; do
  url_var=${region^^}_URL
  cookies=$jar
  [ "$region" = eu ] || cookies=$jar_us
  for (( i = 0; ; i++ )); do
    if curl -fsS -b "$cookies" "${!url_var}/replica" | grep -q "$new_name"; then
      say "region $region's replica has \"$new_name\""
      break
    fi
    (( i < 120 )) || fail "the change did not reach region $region's replica within 60 s"
    sleep 0.5
  done
done
say "scripted run complete"
