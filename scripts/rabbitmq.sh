#!/usr/bin/env bash
# A private RabbitMQ broker over mutual TLS, controlled by its state folder.
#
#   scripts/rabbitmq.sh start  DIR   # new DIR: certificates + free ports; existing DIR: same ports, certificates, data
#   scripts/rabbitmq.sh stop   DIR   # clean shutdown by PID, then epmd
#   scripts/rabbitmq.sh kill   DIR   # SIGKILL the broker's process group (a crash); "start DIR" brings it back
#   scripts/rabbitmq.sh status DIR   # "running ..." (exit 0) or "stopped ..." (exit 3)
#
# start prints the AMQPS port on stdout. The certificates are in DIR/certs (see deploy/rabbitmq/make-certs.sh).
# scripts/test.sh starts one under $TEST_TMP/rabbitmq and passes this command and DIR to the tests
# (IDENTITY_TEST_RABBITMQ_CTL, IDENTITY_TEST_RABBITMQ_STATE).
set -euo pipefail

# shellcheck source=scripts/lib/rabbitmq.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/rabbitmq.sh"

usage() { echo "usage: $0 start|stop|kill|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
# One command at a time per broker: a start that overlapped a kill still waiting for the old broker to die once lost
# the new broker's PID (the kill removed the PID file after the start had written it), so the next kill missed it and
# every later start found its ports taken (dist_port_already_used). The broker itself never holds this lock (rmq_start
# closes descriptor 9 for it).
mkdir -p "$2"
exec 9>>"$2/control.lock"
flock -w 300 9 || { echo "$0: another command on $2 held its lock for 300 s" >&2; exit 1; }
case $1 in
  start)  rmq_start "$2" && echo "$RMQ_PORT" ;;
  stop)   rmq_stop "$2" ;;
  kill)   rmq_kill "$2" ;;
  status) rmq_status "$2" ;;
  *)      usage ;;
esac
