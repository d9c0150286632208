# shellcheck shell=bash
# Private, throw-away PostgreSQL clusters for tests and benchmarks.
#
# Source this file (do not execute it), then:
#
#   pg_install_if_missing        # apt-get install postgresql when no initdb is found
#   pg_start "$DIR"              # initdb + start on a free 127.0.0.1 port; exports PG_* below
#   ...                          # use $PG_CONNECTION_STRING
#   pg_stop                      # stop by PID (idempotent); call it from an EXIT trap
#
# pg_start exports:
#   PG_PORT               the TCP port (127.0.0.1 only)
#   PG_PID                the postmaster's PID (first line of DIR/data/postmaster.pid)
#   PG_BIN                the PostgreSQL bin folder used (initdb, pg_ctl, psql, ...)
#   PG_DIR                DIR
#   PG_CONNECTION_STRING  Npgsql form, superuser "postgres" (trust auth; may CREATE DATABASE)
#
# The cluster is tuned for speed, not durability (fsync, synchronous_commit and
# full_page_writes are off): never point it at data you want to keep.

# shellcheck source=scripts/lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

# _pg_log MESSAGE...: progress messages go to stderr, so stdout stays the caller's.
_pg_log() { echo "# postgres: $*" >&2; }

# pg_bin_dir: print the newest /usr/lib/postgresql/*/bin that has initdb (fails when none).
pg_bin_dir() {
  local dir best=
  # Version order (sort -V), so that 15 wins over 9.6.
  while IFS= read -r dir; do
    [ -x "$dir/initdb" ] && best=$dir
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
  [ -n "$best" ] || return 1
  printf '%s\n' "$best"
}

# pg_install_if_missing: install Debian's postgresql package when no initdb is present.
pg_install_if_missing() {
  if pg_bin_dir >/dev/null; then
    return 0
  fi
  _pg_log "initdb not found under /usr/lib/postgresql/*/bin; installing postgresql (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq postgresql >&2
  pg_bin_dir >/dev/null || { _pg_log "postgresql installed but initdb still not found"; return 1; }
}

# pg_free_port: print a TCP port that nothing listens on at 127.0.0.1 (see ports.sh).
pg_free_port() { free_port; }

# _pg_as_owner CMD...: run CMD as the cluster owner. As root that is the "postgres" OS user
# (PostgreSQL refuses to run as root); otherwise the current user. The working folder is
# PG_DIR so that the postgres user can always read it.
_pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd "$PG_DIR" && runuser -u postgres -- "$@")
  else
    (cd "$PG_DIR" && "$@")
  fi
}

# pg_start DIR: create a new cluster in DIR/data and start it on a free port.
# DIR may exist (it should be empty); it gets the data folder, the socket and the log.
pg_start() {
  local dir=${1:?usage: pg_start DIR} attempt port
  local bin
  bin=$(pg_bin_dir) || { _pg_log "initdb not found; run pg_install_if_missing first"; return 1; }

  mkdir -p "$dir"
  PG_DIR=$(cd "$dir" && pwd)
  PG_BIN=$bin
  if [ "$(id -u)" -eq 0 ]; then
    id -u postgres >/dev/null 2>&1 || { _pg_log "OS user 'postgres' is missing (install the postgresql package)"; return 1; }
    chown postgres: "$PG_DIR"
    # Every parent folder must be traversable by the postgres user (mktemp -d under /tmp is).
    runuser -u postgres -- test -w "$PG_DIR" \
      || { _pg_log "user postgres cannot write $PG_DIR (every parent folder must be traversable by it, e.g. chmod 711 a mktemp -d parent)"; return 1; }
  fi

  # UTF8 with the C locale: independent of the machine's locale settings, and any text
  # the application stores round-trips.
  _pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust --no-sync -U postgres \
    -E UTF8 --locale=C >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; _pg_log "initdb failed"; return 1; }

  # The port is picked before the server binds it, so another process may take it first:
  # retry with a new port a few times.
  for attempt in 1 2 3; do
    port=$(pg_free_port) || return 1
    if _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 60 -l "$PG_DIR/log" start \
        -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        >/dev/null; then
      break
    fi
    _pg_log "start on port $port failed (attempt $attempt); log tail:"
    tail -n 5 "$PG_DIR/log" >&2 || true
    [ "$attempt" -lt 3 ] || return 1
  done

  read -r PG_PID <"$PG_DIR/data/postmaster.pid"
  PG_PORT=$port
  PG_CONNECTION_STRING="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Password=unused;Database=postgres"
  export PG_PORT PG_PID PG_BIN PG_DIR PG_CONNECTION_STRING
  _pg_log "PostgreSQL $("$PG_BIN/postgres" -V | awk '{ print $3 }') ready on 127.0.0.1:$PG_PORT (pid $PG_PID, $PG_DIR)"
}

# _pg_exists PID: true while PID is a postgres process, running or a zombie not yet reaped.
# A PID that now belongs to another program counts as gone, so we never signal it.
_pg_exists() {
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = postgres ]
}

# _pg_running PID: true while PID is a postgres process that has not exited (not a zombie).
_pg_running() {
  _pg_exists "$1" || return 1
  [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

# pg_stop: fast shutdown (SIGINT) of the cluster started by pg_start, by PID; SIGKILL
# after 10 s. Safe to call more than once and when pg_start never ran.
pg_stop() {
  local pid=${PG_PID:-} i
  [ -n "$pid" ] || return 0
  if _pg_running "$pid"; then
    kill -INT "$pid" 2>/dev/null || true
    for (( i = 0; i < 100; i++ )); do
      _pg_running "$pid" || break
      sleep 0.1
    done
    if _pg_running "$pid"; then
      _pg_log "pid $pid still running after 10 s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  # The postmaster is not our child: once it has exited, PID 1 reaps it a moment later
  # (about 2 s on this machine). Wait up to 5 s so that the PID is gone when we return.
  for (( i = 0; i < 50; i++ )); do
    _pg_exists "$pid" || break
    sleep 0.1
  done
  PG_PID=
}
