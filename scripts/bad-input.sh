#!/usr/bin/env bash
# The bad-input test at any size: the same seeded corpus generator as CI, more requests or another seed.
#
#   scripts/bad-input.sh                       # 20000 requests of seed 1 (a few minutes)
#   scripts/bad-input.sh 100000 7              # COUNT SEED
#   ONLY=17,230 scripts/bad-input.sh 0 7       # send only requests 17 and 230 of seed 7 again (a replay)
#
# Runs tests/Identity.Server.IntegrationTests' BadInputTests (the real server on Kestrel at 127.0.0.1, a SQLite
# database of its own: no PostgreSQL or RabbitMQ needed). Every request goes to that one loopback server; the run is
# bounded by COUNT and each request by a 30 s timeout. CI runs the default count and seed of BadInputTests.
#
# Exits with dotnet test's code. The grouped failures (each with a request to replay) are written to
# $REPORT (default: $TMPDIR/identity-bad-input-report.txt) as well as to the test's output.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COUNT=${1:-20000}
SEED=${2:-1}
REPORT=${REPORT:-${TMPDIR:-/tmp}/identity-bad-input-report.txt}
case $COUNT$SEED in *[!0-9-]*) echo "usage: $0 [COUNT] [SEED]  (integers)" >&2; exit 2 ;; esac

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export IDENTITY_BAD_INPUT_COUNT=$COUNT IDENTITY_BAD_INPUT_SEED=$SEED IDENTITY_BAD_INPUT_REPORT=$REPORT
export IDENTITY_BAD_INPUT_ONLY=${ONLY:-}
rm -f "$REPORT"

cd "$REPO_ROOT"
set +e
dotnet test tests/Identity.Server.IntegrationTests -c Release --filter "FullyQualifiedName~BadInput.BadInputTests" \
  --logger "console;verbosity=detailed"
rc=$?
set -e
if [ -s "$REPORT" ]; then
  echo "scripts/bad-input.sh: failures grouped by cause in $REPORT"
fi
exit "$rc"
