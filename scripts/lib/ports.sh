# shellcheck shell=bash
# Free TCP ports on 127.0.0.1 for the private services of tests and benchmarks.
#
# Source this file (do not execute it), then: port=$(free_port)

# Ports never handed out: the usual PostgreSQL and RabbitMQ ports (AMQP, AMQPS, epmd, distribution),
# and the bench range.
_FREE_PORT_EXCLUDED_RE='^(5432|5671|5672|4369|25672|71[0-9][0-9])$'

# _free_port_ok PORT: true when PORT is not on the excluded list.
_free_port_ok() { ! [[ $1 =~ $_FREE_PORT_EXCLUDED_RE ]]; }

# _port_bindable PORT: true when a listener could bind PORT on 127.0.0.1 now.
_port_bindable() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()' "$1"
  else
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# free_port: print a TCP port that nothing uses on 127.0.0.1, chosen BELOW the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default). The services keep their ports across restarts (a
# test kills the broker and starts it again on the same ports); a port from the ephemeral range can meanwhile become
# the local port of any outgoing connection (a client reconnecting), and the restart then fails to bind it (RabbitMQ:
# dist_port_already_used, seen in the broker-kill tests).
free_port() {
  local port i low base=20000
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null) || low=32768
  (( low > base + 1000 )) || base=1024
  for (( i = 0; i < 200; i++ )); do
    port=$(( base + RANDOM % (low - base) ))
    _free_port_ok "$port" || continue
    if _port_bindable "$port"; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  echo "# ports: no free TCP port found" >&2
  return 1
}
