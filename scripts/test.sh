#!/usr/bin/env bash
# The project's single test command: ./scripts/test.sh [extra dotnet test arguments]
#
# Starts the private services the integration tests need, runs every test project of
# Identity.sln in Release, stops the services again (by PID) and exits with dotnet's code.
#
#   ./scripts/test.sh                                       # everything
#   ./scripts/test.sh --filter "FullyQualifiedName~Token"   # extra args go to dotnet test
#
# Services (each private to this run, on 127.0.0.1, in a temporary folder):
#   PostgreSQL  -> IDENTITY_TEST_POSTGRES (Npgsql connection string, superuser, may CREATE DATABASE)
#   RabbitMQ    -> IDENTITY_TEST_RABBITMQ_PORT (AMQPS, mutual TLS only), IDENTITY_TEST_RABBITMQ_CERTS (the
#                  certificates of deploy/rabbitmq/make-certs.sh), IDENTITY_TEST_RABBITMQ_STATE (the broker's
#                  state folder) and IDENTITY_TEST_RABBITMQ_CTL (scripts/rabbitmq.sh, to kill and restart it)
# Installed when missing: Debian's rabbitmq-server; Debian's chromium (/usr/bin/chromium) for the Playwright browser tests;
# iproute2 (ip) for the tests whose client lives in a network namespace; Debian's nginx-light for the tests behind a
# real TLS-terminating proxy; Debian's docker-compose for the compose file's test (kubectl comes with the machine).
#
# Needs root (or sudo-less apt) when something must be installed, and for the network-namespace tests.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=scripts/lib/postgres.sh
. "$REPO_ROOT/scripts/lib/postgres.sh"
# shellcheck source=scripts/lib/rabbitmq.sh
. "$REPO_ROOT/scripts/lib/rabbitmq.sh"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

started_at=$SECONDS
TEST_TMP=

# cleanup: stop every service this script started (by PID), then remove the temp folder.
# Runs exactly once, on any exit (normal, error, Ctrl-C, SIGTERM).
# shellcheck disable=SC2317  # only ever invoked through the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  pg_stop || true
  # shellcheck disable=SC2119  # no argument: the broker rmq_start used (and restarted, if a test did)
  rmq_stop || true
  if [ -n "$TEST_TMP" ]; then
    rm -rf "$TEST_TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. Install what is missing (idempotent; a fresh machine may lack some of it). ---
pg_install_if_missing
rmq_install_if_missing
# Chromium for the Playwright browser tests (tests/Identity.BrowserTests launch /usr/bin/chromium;
# Playwright's own browser download cannot work here, Debian's package can).
if [ ! -x /usr/bin/chromium ]; then
  echo "scripts/test.sh: /usr/bin/chromium not found; installing chromium (apt)" >&2
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium >&2
fi

# iproute2's ip for the forwarded-headers tests, which put their client in a network namespace of its own (a
# non-loopback peer, as from another machine; tests/Identity.Server.IntegrationTests/Infrastructure/NetworkNamespace.cs).
if ! command -v ip >/dev/null 2>&1; then
  echo "scripts/test.sh: ip not found; installing iproute2 (apt)" >&2
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq iproute2 >&2
fi

# nginx for the tests that put a real TLS-terminating proxy in front of the server (it forwards the client certificate:
# tests/Identity.Server.IntegrationTests/Hosting/ForwardedClientCertificateTests.cs); each test class starts its own from a
# generated configuration and stops it by PID. Debian's nginx-light has the ssl module.
if [ ! -x /usr/sbin/nginx ]; then
  echo "scripts/test.sh: /usr/sbin/nginx not found; installing nginx-light (apt)" >&2
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq nginx-light >&2
fi

# Debian's docker-compose for the test that validates docker-compose.yml (`docker-compose config`; no Docker engine runs
# here, and none is needed for that): tests/Identity.Server.IntegrationTests/Deployment/ComposeFileTests.cs.
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "scripts/test.sh: docker-compose not found; installing docker-compose (apt)" >&2
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq docker-compose >&2
fi

# --- 2. Private services in a temporary folder. ---
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/identity-test.XXXXXX")
chmod 711 "$TEST_TMP"   # the postgres OS user must be able to reach its sub-folder

pg_start "$TEST_TMP/postgres"
export IDENTITY_TEST_POSTGRES="$PG_CONNECTION_STRING"

# The broker is TLS-only with client certificates (deploy/rabbitmq); its certificates are made here.
# Regions eu/us/au serve the broker's own tests; p-eu/p-us the end-to-end propagation tests; rep the two-process
# replica test's count at the broker (their own queues, so the suites never consume each other's messages). Exported: a
# test that restarts the broker keeps them.
export RMQ_REGIONS="eu us au p-eu p-us rep"
rmq_start "$TEST_TMP/rabbitmq"
export IDENTITY_TEST_RABBITMQ_PORT="$RMQ_PORT" IDENTITY_TEST_RABBITMQ_CERTS="$RMQ_CERTS" \
  IDENTITY_TEST_RABBITMQ_STATE="$RMQ_DIR" IDENTITY_TEST_RABBITMQ_CTL="$REPO_ROOT/scripts/rabbitmq.sh"

# --- 3. The tests. ---
# Output is also kept in a log so that the counts can be summed up at the end.
TEST_LOG="$TEST_TMP/dotnet-test.log"
set +e
dotnet test Identity.sln -c Release --logger "console;verbosity=normal" "$@" 2>&1 | tee "$TEST_LOG"
rc=${PIPESTATUS[0]}
set -e

elapsed=$(( SECONDS - started_at ))
printf 'scripts/test.sh: dotnet test exited %d after %dm%02ds\n' "$rc" $(( elapsed / 60 )) $(( elapsed % 60 ))

# The failed tests by name, each with the first lines of its error message, gathered here so that a log
# cut to its last lines (as CI shows it) still says which tests failed and why.
awk '
  { gsub(/\033\[[0-9;]*[A-Za-z]/, ""); sub(/\r$/, "") }   # a colouring console (CI with a terminal) must not hide a name
  /^\[xUnit\.net [^]]*\] +.+ \[FAIL\]$/ { print "FAIL (xUnit):" substr($0, index($0, "]") + 1); next }
  /^ *Failed .+ \[[^]]*\]$/ { print "FAILED:" substr($0, index($0, "Failed") + 6); grab = 1; n = 0; frames = 0; next }
  grab && /Error Message:/  { next }
  grab && /Stack Trace:/    { grab = 2; next }
  grab == 1 && n < 8        { print "   " $0; n++; next }
  grab == 2 && / in \// && frames < 3 { print "   " $0; frames++; next }
  grab == 2 && /^ *(Passed|Failed|Skipped) / { grab = 0 }
  /\[Test (Class|Collection|Assembly) Cleanup Failure/ { print "CLEANUP FAILURE:" $0 }
' "$TEST_LOG"

# A plain closing line "tests: N passed, N failed, N skipped", summed over all test
# assemblies (VSTest's "Total tests:" blocks, or Microsoft.Testing.Platform's "total:"
# blocks), as the very last line. Printed only when dotnet test reported such a block.
awk '
  /^Total tests: [0-9]+/                      { vs = 1; found = 1; next }
  vs && /^ *Passed: *[0-9]+ *$/               { p += $2; next }
  vs && /^ *Failed: *[0-9]+ *$/               { f += $2; next }
  vs && /^ *Skipped: *[0-9]+ *$/              { s += $2; next }
  vs && /Total time:/                         { vs = 0; next }
  /Test run summary:/                         { mtp = 1; found = 1; next }
  mtp && /^ *succeeded: *[0-9]+ *$/           { p += $2; next }
  mtp && /^ *failed: *[0-9]+ *$/              { f += $2; next }
  mtp && /^ *skipped: *[0-9]+ *$/             { s += $2; next }
  mtp && /^ *duration:/                       { mtp = 0; next }
  END { if (found) printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }
' "$TEST_LOG"

exit "$rc"
