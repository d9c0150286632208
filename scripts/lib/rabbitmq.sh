# shellcheck shell=bash
# Private, throw-away RabbitMQ brokers over mutual TLS for tests and development.
#
# Source this file (do not execute it), then:
#
#   rmq_install_if_missing       # apt-get install rabbitmq-server when it is missing
#   rmq_start "$DIR"             # certificates, config, start on free 127.0.0.1 ports; exports RMQ_* below
#   ...                          # connect with the certificates in $RMQ_CERTS to 127.0.0.1:$RMQ_PORT
#   rmq_stop                     # stop by PID (idempotent), then epmd; call it from an EXIT trap
#
# scripts/rabbitmq.sh wraps the same functions as a command (start|stop|kill|status DIR), so that a
# test can kill the broker and start it again: a second rmq_start on the same DIR reuses its ports,
# certificates and data (durable queues and their messages survive).
#
# rmq_start exports:
#   RMQ_PORT     the AMQPS port (TLS only, 127.0.0.1; there is no plain AMQP listener)
#   RMQ_PID      the broker's PID, leader of its own process group (also in DIR/rabbitmq.pid)
#   RMQ_DIR      DIR: config, data (mnesia/), logs (log/), ports (ports.env)
#   RMQ_CERTS    DIR/certs, made by deploy/rabbitmq/make-certs.sh (CA, server, clients, rogue CA)
#
# Regions: RMQ_REGIONS (default "eu us au") picks the region users, exchanges and queues.
# Scheduling: RMQ_ERL_SCHEDULER_ARGS (default "+sbwt none +sbwtdcpu none +sbwtdio none") stops the Erlang
# schedulers from busy-waiting when they run out of work. The broker shares two cores with the server,
# PostgreSQL and the regions here; busy-waiting burns CPU that they need. Set it to "" for Erlang's default.
# See deploy/rabbitmq/ for the configuration, certificates and permissions.

# shellcheck source=scripts/lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

_RMQ_DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../deploy/rabbitmq" && pwd)
_RMQ_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
_RMQ_NODENAME=identity@localhost

# _rmq_log MESSAGE...: progress messages go to stderr, so stdout stays the caller's.
_rmq_log() { echo "# rabbitmq: $*" >&2; }

# rmq_install_if_missing: install Debian's rabbitmq-server package when the server is missing.
# The package starts no service here (no systemd); rmq_start runs private brokers.
rmq_install_if_missing() {
  if [ -x "$_RMQ_SERVER" ]; then
    return 0
  fi
  _rmq_log "$_RMQ_SERVER not found; installing rabbitmq-server (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq rabbitmq-server >&2
  [ -x "$_RMQ_SERVER" ] || { _rmq_log "rabbitmq-server installed but $_RMQ_SERVER still not found"; return 1; }
}

# _rmq_use DIR: point RMQ_DIR / RMQ_CERTS at DIR and read its ports and PID when it has them.
_rmq_use() {
  mkdir -p "$1"
  RMQ_DIR=$(cd "$1" && pwd)
  RMQ_CERTS=$RMQ_DIR/certs
  RMQ_PORT='' RMQ_DIST_PORT='' RMQ_EPMD_PORT='' RMQ_PID=''
  if [ -f "$RMQ_DIR/ports.env" ]; then
    # shellcheck source=/dev/null
    . "$RMQ_DIR/ports.env"
  fi
  if [ -f "$RMQ_DIR/rabbitmq.pid" ]; then
    read -r RMQ_PID <"$RMQ_DIR/rabbitmq.pid" || RMQ_PID=
  fi
}

# _rmq_pick_ports: three distinct free ports (AMQPS, Erlang distribution, epmd), kept in
# DIR/ports.env so that a restart listens where the clients expect it.
_rmq_pick_ports() {
  local p var i used=" "
  for var in RMQ_PORT RMQ_DIST_PORT RMQ_EPMD_PORT; do
    for (( i = 0; i < 20; i++ )); do
      p=$(free_port) || return 1
      [[ $used == *" $p "* ]] || break
    done
    used+="$p "
    printf -v "$var" '%s' "$p"
  done
  printf 'RMQ_PORT=%s\nRMQ_DIST_PORT=%s\nRMQ_EPMD_PORT=%s\n' "$RMQ_PORT" "$RMQ_DIST_PORT" "$RMQ_EPMD_PORT" \
    >"$RMQ_DIR/ports.env"
}

# _rmq_configure: certificates (once per DIR), definitions, rabbitmq.conf and the plugin list.
_rmq_configure() {
  local regions
  read -r -a regions <<<"${RMQ_REGIONS:-eu us au}"
  if [ ! -f "$RMQ_CERTS/ca.pem" ]; then
    "$_RMQ_DEPLOY/make-certs.sh" "$RMQ_CERTS" "${regions[@]}" 2>/dev/null \
      || { _rmq_log "make-certs.sh failed"; return 1; }
  fi
  "$_RMQ_DEPLOY/make-definitions.sh" "${regions[@]}" >"$RMQ_DIR/definitions.json"
  sed -e "s|@ADDRESS@|127.0.0.1|; s|@PORT@|$RMQ_PORT|; s|@CERTS@|$RMQ_CERTS|g; s|@DEFINITIONS@|$RMQ_DIR/definitions.json|" \
    "$_RMQ_DEPLOY/rabbitmq.conf.template" >"$RMQ_DIR/rabbitmq.conf"
  cp "$_RMQ_DEPLOY/enabled_plugins" "$RMQ_DIR/enabled_plugins"
  : >"$RMQ_DIR/rabbitmq-env.conf"
  mkdir -p "$RMQ_DIR/mnesia" "$RMQ_DIR/log"
}

# _rmq_exec_env CMD...: replace the current (sub)shell with CMD in the broker's environment: everything
# in RMQ_DIR, Erlang distribution and epmd on private ports bound to 127.0.0.1, HOME (the Erlang cookie)
# in RMQ_DIR. Call it in the background (&), so that $! is the PID of CMD itself.
_rmq_exec_env() {
  exec env HOME="$RMQ_DIR" \
    RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf" \
    RABBITMQ_NODENAME="$_RMQ_NODENAME" \
    RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf" \
    RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia" \
    RABBITMQ_LOG_BASE="$RMQ_DIR/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins" \
    RABBITMQ_PLUGINS_EXPAND_DIR="$RMQ_DIR/plugins-expand" \
    RABBITMQ_DIST_PORT="$RMQ_DIST_PORT" \
    ERL_EPMD_PORT="$RMQ_EPMD_PORT" \
    ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} ${RMQ_ERL_SCHEDULER_ARGS-+sbwt none +sbwtdcpu none +sbwtdio none}" \
    "$@"
}

# _rmq_exists PID: true while PID is our broker (the rabbitmq-server script, leader of its process
# group), running or a zombie not yet reaped. A PID that now belongs to another program counts as gone.
_rmq_exists() {
  [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = rabbitmq-server ]
}

# _rmq_running PID: true while PID is our broker and has not exited (not a zombie).
_rmq_running() {
  _rmq_exists "$1" || return 1
  [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

# _rmq_group_alive PGID: true while any process of the group is alive (beam.smp outlives a killed script briefly).
_rmq_group_alive() { [ -n "$1" ] && pgrep -g "$1" >/dev/null 2>&1; }

# rmq_start DIR: start a broker with DIR's state (new DIR: certificates, free ports; existing DIR:
# the same ports, certificates and data) and wait until it accepts connections. A start that fails early (a
# restart found its distribution port taken — dist_port_already_used — before free_port picked ports outside the
# kernel's ephemeral range) is tried once more, a second later.
rmq_start() {
  local dir=${1:?usage: rmq_start DIR}
  _rmq_start_once "$dir" && return 0
  _rmq_log "starting the broker again, once"
  sleep 1
  _rmq_start_once "$dir"
}

_rmq_start_once() {
  local dir=$1 log log_size started i stat state
  [ -x "$_RMQ_SERVER" ] || { _rmq_log "$_RMQ_SERVER not found; run rmq_install_if_missing first"; return 1; }
  _rmq_use "$dir"
  if _rmq_running "$RMQ_PID"; then
    _rmq_log "already running (pid $RMQ_PID) on 127.0.0.1:$RMQ_PORT"
    export RMQ_PORT RMQ_PID RMQ_DIR RMQ_CERTS
    return 0
  fi
  # A broker killed with its group a moment ago may still be dying.
  for (( i = 0; i < 50; i++ )); do
    _rmq_group_alive "$RMQ_PID" || break
    sleep 0.1
  done
  [ -n "$RMQ_PORT" ] || _rmq_pick_ports || return 1
  _rmq_configure || return 1

  log=$RMQ_DIR/log/$_RMQ_NODENAME.log
  log_size=$(stat -c %s "$log" 2>/dev/null || echo 0)
  started=$SECONDS
  # setsid: the broker leads its own process group (killed as one by "scripts/rabbitmq.sh kill") and
  # does not get the terminal's Ctrl-C. The script stays the parent of beam.smp and turns TERM into a
  # clean shutdown.
  _rmq_exec_env setsid "$_RMQ_SERVER" >>"$RMQ_DIR/log/stdout.log" 2>&1 </dev/null 9>&- &
  RMQ_PID=$!
  echo "$RMQ_PID" >"$RMQ_DIR/rabbitmq.pid"

  # Ready when the node logs the end of its boot (listeners open after definitions are imported).
  for (( i = 0; i < 600; i++ )); do
    if tail -c "+$(( log_size + 1 ))" "$log" 2>/dev/null | grep -q 'Server startup complete'; then
      export RMQ_PORT RMQ_PID RMQ_DIR RMQ_CERTS
      _rmq_log "RabbitMQ ready on 127.0.0.1:$RMQ_PORT (TLS only; pid $RMQ_PID, $RMQ_DIR) in $(( SECONDS - started )) s"
      return 0
    fi
    # Gone = exited (a zombie until reaped: it is our child, so its PID cannot be reused meanwhile). Until the
    # background job has exec'd env, setsid and the scripts it is alive under other names: still starting. One read
    # of /proc/PID/stat gives name and state together (reading the name twice raced with those execs: a start that
    # was fine was once judged dead).
    stat=$(cat "/proc/$RMQ_PID/stat" 2>/dev/null) || break
    state=${stat##*) }
    [ "${state%% *}" != Z ] || break
    sleep 0.1
  done
  _rmq_log "broker did not start (pid $RMQ_PID: $(cat "/proc/$RMQ_PID/comm" 2>/dev/null || echo gone)," \
    "state $(sed 's/^.*) //' "/proc/$RMQ_PID/stat" 2>/dev/null | cut -d' ' -f1)); log tail:"
  tail -n 20 "$RMQ_DIR/log/stdout.log" "$log" >&2 2>/dev/null || true
  rmq_kill "$RMQ_DIR"
  return 1
}

# _rmq_wait_gone PID SECONDS: wait until the process group PID has no process left.
_rmq_wait_gone() {
  local i
  for (( i = 0; i < $2 * 10; i++ )); do
    _rmq_group_alive "$1" || _rmq_exists "$1" || return 0
    sleep 0.1
  done
  return 1
}

# rmq_kill [DIR]: SIGKILL the broker's whole process group at once (a crash, for tests). epmd stays
# up for the next start on the same ports.
rmq_kill() {
  [ $# -eq 0 ] || _rmq_use "$1"
  local recorded=
  if _rmq_exists "$RMQ_PID" || _rmq_group_alive "$RMQ_PID"; then
    kill -KILL -- "-$RMQ_PID" 2>/dev/null || true
    _rmq_wait_gone "$RMQ_PID" 10 || _rmq_log "process group $RMQ_PID still alive after SIGKILL"
  fi
  # Only the PID this kill was about: a broker started meanwhile keeps its record.
  [ -f "$RMQ_DIR/rabbitmq.pid" ] && read -r recorded <"$RMQ_DIR/rabbitmq.pid"
  if [ -z "$recorded" ] || [ "$recorded" = "$RMQ_PID" ]; then
    rm -f "$RMQ_DIR/rabbitmq.pid"
  fi
  RMQ_PID=
}

# rmq_stop [DIR]: clean shutdown (SIGTERM to the broker, by PID; SIGKILL to its group after 30 s),
# then epmd. Reads the PID from DIR (default: the one rmq_start used), so a broker restarted through
# scripts/rabbitmq.sh is stopped too. Safe to call more than once and when rmq_start never ran.
rmq_stop() {
  local i
  [ $# -eq 0 ] || _rmq_use "$1"
  [ -n "${RMQ_DIR:-}" ] || return 0
  [ -f "$RMQ_DIR/rabbitmq.pid" ] && read -r RMQ_PID <"$RMQ_DIR/rabbitmq.pid"
  if _rmq_running "${RMQ_PID:-}"; then
    kill -TERM "$RMQ_PID" 2>/dev/null || true
    if ! _rmq_wait_gone "$RMQ_PID" 30; then
      _rmq_log "pid $RMQ_PID still running after 30 s; sending SIGKILL to its group"
    fi
  fi
  rmq_kill
  # epmd daemonizes out of the broker's group and outlives it; it exits on request once no node is registered.
  if [ -n "${RMQ_EPMD_PORT:-}" ]; then
    if ERL_EPMD_PORT=$RMQ_EPMD_PORT epmd -kill >/dev/null 2>&1; then
      for (( i = 0; i < 30; i++ )); do
        ERL_EPMD_PORT=$RMQ_EPMD_PORT epmd -names >/dev/null 2>&1 || break
        sleep 0.1
      done
    fi
  fi
}

# rmq_status [DIR]: "running" (exit 0) or "stopped" (exit 3), with the port.
rmq_status() {
  [ $# -eq 0 ] || _rmq_use "$1"
  if _rmq_running "${RMQ_PID:-}"; then
    echo "running pid=$RMQ_PID port=${RMQ_PORT:-?} dir=$RMQ_DIR"
  else
    echo "stopped port=${RMQ_PORT:-?} dir=$RMQ_DIR"
    return 3
  fi
}
