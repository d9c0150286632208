# shellcheck shell=bash
# Free TCP ports on 127.0.0.1 for the private services of tests and benchmarks.
#
# Source this file (do not execute it), then: port=$(free_port)

# Ports never handed out: the usual PostgreSQL and RabbitMQ ports (AMQP, AMQPS, epmd, distribution),
# and the bench range.
_FREE_PORT_EXCLUDED_RE='^(5432|5671|5672|4369|25672|71[0-9][0-9])$'

# _free_port_ok PORT: true when PORT is not on the excluded list.
_free_port_ok() { ! [[ $1 =~ $_FREE_PORT_EXCLUDED_RE ]]; }

# free_port: print a TCP port that nothing listens on at 127.0.0.1.
# Prefers the kernel's choice (bind to port 0 with python3); otherwise probes random
# ports with bash's /dev/tcp (a refused connection means the port is free).
free_port() {
  local port i
  if command -v python3 >/dev/null; then
    for (( i = 0; i < 20; i++ )); do
      port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()') || break
      if _free_port_ok "$port"; then
        printf '%s\n' "$port"
        return 0
      fi
    done
  fi
  for (( i = 0; i < 200; i++ )); do
    port=$(( 20000 + RANDOM % 30000 ))
    _free_port_ok "$port" || continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  echo "# ports: no free TCP port found" >&2
  return 1
}
