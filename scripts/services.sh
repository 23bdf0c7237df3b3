#!/usr/bin/env bash
# Starts, stops and reports the services the real-broker suites need:
# RabbitMQ, Redis and PostgreSQL.
#
#   scripts/services.sh up       start what does not answer yet, then wait until all answer
#   scripts/services.sh down     stop them
#   scripts/services.sh status   one line per service; exits non-zero when one is down
#
# Each takes optional service names (rabbitmq, redis, postgres) to act on fewer.
#
# With a working Docker engine the services run from docker-compose.yml; without
# one, from the local Debian packages (installed with apt-get when missing).
# Where each service lives comes from LOSSLESS_RABBITMQ_URL, LOSSLESS_REDIS_URL
# and LOSSLESS_POSTGRES_URL; a service on another host is only waited for.
# LOSSLESS_SERVICES_TIMEOUT bounds the wait (seconds, default 120).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# rabbitmq-server and rabbitmqctl live in sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

ALL_SERVICES=(rabbitmq redis postgres)
TIMEOUT="${LOSSLESS_SERVICES_TIMEOUT:-120}"

declare -A URL HOST PORT PACKAGE
URL[rabbitmq]="${LOSSLESS_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672}"
URL[redis]="${LOSSLESS_REDIS_URL:-redis://127.0.0.1:6379}"
URL[postgres]="${LOSSLESS_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PACKAGE=([rabbitmq]=rabbitmq-server [redis]=redis-server [postgres]=postgresql)
declare -A DEFAULT_PORT=([rabbitmq]=5672 [redis]=6379 [postgres]=5432)

log() { printf '%s\n' "$*"; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Splits scheme://[user[:pass]@]host[:port][/path] into HOST and PORT.
parse_url() {
  local svc=$1 rest host port
  rest="${URL[$svc]#*://}"
  rest="${rest%%/*}"
  rest="${rest%%\?*}"
  rest="${rest##*@}"
  if [[ $rest == \[* ]]; then
    host="${rest%%]*}"
    host="${host#[}"
    port="${rest#*]}"
  else
    host="${rest%%:*}"
    port="${rest#"$host"}"
  fi
  port="${port#:}"
  HOST[$svc]="${host:-127.0.0.1}"
  PORT[$svc]="${port:-${DEFAULT_PORT[$svc]}}"
}
for svc in "${ALL_SERVICES[@]}"; do parse_url "$svc"; done

is_local() {
  case "${HOST[$1]}" in
    127.* | localhost | ::1 | 0.0.0.0) return 0 ;;
    *) return 1 ;;
  esac
}

# Sends a greeting (printf format) and prints the first N reply bytes as hex.
# Plain bash /dev/tcp keeps the script free of client libraries.
probe() {
  local host=$1 port=$2 greeting=$3 n=$4
  # shellcheck disable=SC2016 # the inner script expands its own positional parameters
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "$2" >&3 && head -c "$3" <&3 | od -An -tx1' \
    "$host" "$port" "$greeting" "$n" 2>/dev/null | tr -d ' \n' || true
}

# Whether a service answers its own protocol, not merely accepts TCP.
answers() {
  local svc=$1 host=${HOST[$1]} port=${PORT[$1]}
  case "$svc" in
    # AMQP 0-9-1 header; the server replies with a method frame (type 1).
    rabbitmq) [[ "$(probe "$host" "$port" 'AMQP\000\000\011\001' 1)" == 01 ]] ;;
    # PING; "+PONG", or "-NOAUTH" from a server that wants a password.
    redis) [[ "$(probe "$host" "$port" "*1\r\n\$4\r\nPING\r\n" 5)" =~ ^(2b504f4e47|2d4e4f4155)$ ]] ;;
    postgres)
      if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$host" -p "$port" -t 3
      else
        # SSLRequest; a PostgreSQL server replies 'S' or 'N'.
        [[ "$(probe "$host" "$port" '\000\000\000\010\004\322\026\057' 1)" =~ ^(53|4e)$ ]]
      fi
      ;;
  esac
}

docker_works() { command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; }

compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -f "$ROOT/docker-compose.yml" "$@"
  elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose -f "$ROOT/docker-compose.yml" "$@"
  else
    die "Docker works but neither 'docker compose' nor 'docker-compose' is installed"
  fi
}

# Runs a command as root: directly, or through sudo when it needs no password.
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 126
  fi
}
can_be_root() { [[ $EUID -eq 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; }

# The newest installed major version that has a cluster configuration.
pg_version() { find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1; }

installed() {
  case "$1" in
    rabbitmq) command -v rabbitmq-server >/dev/null 2>&1 ;;
    redis) command -v redis-server >/dev/null 2>&1 ;;
    postgres) command -v pg_ctlcluster >/dev/null 2>&1 && [[ -n "$(pg_version)" ]] ;;
  esac
}

# Local development trusts TCP connections from this machine, as the Docker
# image does with POSTGRES_HOST_AUTH_METHOD=trust. pg_hba.conf is first-match,
# so the lines go on top.
pg_trust_local() {
  local v hba tmp
  v="$(pg_version)"
  hba="/etc/postgresql/$v/main/pg_hba.conf"
  [[ -f $hba ]] || return 0
  if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    log "postgres: trusting local TCP connections in $hba"
    tmp="$(mktemp)"
    {
      printf '# local development: trust TCP connections from this machine\n'
      printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n'
      as_root cat "$hba"
    } >"$tmp"
    # Writing into the existing file keeps its owner and mode.
    as_root tee "$hba" <"$tmp" >/dev/null
    rm -f "$tmp"
    as_root pg_ctlcluster --skip-systemctl-redirect "$v" main reload >/dev/null 2>&1 || true
  fi
}

start_local() {
  case "$1" in
    rabbitmq)
      # A fresh install whose host name does not resolve cannot boot the node.
      if ! getent hosts "$(hostname)" >/dev/null 2>&1 && ! grep -qs '^NODENAME=' /etc/rabbitmq/rabbitmq-env.conf; then
        log "rabbitmq: host name does not resolve; using node name rabbit@localhost"
        as_root sh -c 'echo NODENAME=rabbit@localhost >> /etc/rabbitmq/rabbitmq-env.conf'
      fi
      as_root rabbitmq-server -detached
      ;;
    redis)
      as_root mkdir -p /var/lib/redis /var/log/redis
      as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "${PORT[redis]}" --save "" \
        --appendonly no --dir /var/lib/redis --logfile /var/log/redis/lossless.log
      ;;
    postgres)
      as_root pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main start
      ;;
  esac
}

# Waits until every listed service answers, or fails after $TIMEOUT seconds.
wait_for() {
  local pending=("$@") still svc next_report=10
  local start=$SECONDS
  while ((${#pending[@]} > 0)); do
    still=()
    for svc in "${pending[@]}"; do
      if answers "$svc"; then
        log "$svc: ready at ${HOST[$svc]}:${PORT[$svc]} ($((SECONDS - start)) s)"
      else
        still+=("$svc")
      fi
    done
    pending=("${still[@]+"${still[@]}"}")
    ((${#pending[@]} > 0)) || break
    if ((SECONDS - start >= TIMEOUT)); then
      die "no answer after ${TIMEOUT} s from: ${pending[*]}"
    fi
    if ((SECONDS - start >= next_report)); then
      log "waiting for ${pending[*]} ($((SECONDS - start)) s of ${TIMEOUT} s)"
      next_report=$((next_report + 10))
    fi
    sleep 1
  done
}

# Beyond answering, PostgreSQL must accept a query from the URL's user.
postgres_query() {
  PGCONNECT_TIMEOUT=5 psql "${URL[postgres]}" -w -Atqc 'select 1' 2>&1
}
check_postgres_query() {
  command -v psql >/dev/null 2>&1 || return 0
  local out
  if out="$(postgres_query)"; then
    log "postgres: accepts queries"
    return 0
  fi
  if is_local postgres && [[ $out =~ password|pg_hba|authentication ]] && can_be_root && [[ -n "$(pg_version)" ]]; then
    pg_trust_local
    if out="$(postgres_query)"; then
      log "postgres: accepts queries"
      return 0
    fi
  fi
  die "postgres answers but rejects a query: ${out//$'\n'/ }"
}

cmd_up() {
  local svc to_start=() missing=() packages=() waiting=()
  for svc in "${SERVICES[@]}"; do
    if answers "$svc"; then
      log "$svc: already running"
    elif is_local "$svc"; then
      to_start+=("$svc")
    else
      log "$svc: remote (${HOST[$svc]}:${PORT[$svc]}), waiting for it"
      waiting+=("$svc")
    fi
  done

  if ((${#to_start[@]} > 0)); then
    waiting+=("${to_start[@]}")
    if docker_works; then
      log "starting with Docker Compose: ${to_start[*]}"
      compose up -d "${to_start[@]}"
    else
      for svc in "${to_start[@]}"; do
        installed "$svc" || {
          missing+=("$svc")
          packages+=("${PACKAGE[$svc]}")
        }
      done
      if ((${#missing[@]} > 0)); then
        can_be_root || die "not installed: ${missing[*]}; install as root: apt-get install ${packages[*]} (or run this script as root)"
        log "installing ${packages[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
        # A fresh cluster only trusts local socket peers; tests connect over TCP.
        if [[ " ${missing[*]} " == *" postgres "* ]]; then pg_trust_local; fi
      fi
      for svc in "${to_start[@]}"; do
        # Package scripts may already have started it.
        if answers "$svc"; then
          log "$svc: running"
          continue
        fi
        can_be_root || die "$svc is not running and starting it needs root; run: sudo $0 up"
        log "$svc: starting"
        start_local "$svc" || log "$svc: start command failed; waiting in case it is already booting"
      done
    fi
  fi

  if ((${#waiting[@]} > 0)); then wait_for "${waiting[@]}"; fi
  if [[ " ${SERVICES[*]} " == *" postgres "* ]]; then check_postgres_query; fi
  log "ready: ${SERVICES[*]}"
}

cmd_down() {
  local svc
  if docker_works; then
    if ((${#SERVICES[@]} == ${#ALL_SERVICES[@]})); then compose down; else compose stop "${SERVICES[@]}"; fi
    return 0
  fi
  for svc in "${SERVICES[@]}"; do
    if ! is_local "$svc"; then
      log "$svc: remote, left alone"
      continue
    fi
    if ! answers "$svc"; then
      log "$svc: not running"
      continue
    fi
    log "$svc: stopping"
    case "$svc" in
      rabbitmq) as_root rabbitmqctl stop >/dev/null ;;
      redis)
        if command -v redis-cli >/dev/null 2>&1; then
          redis-cli -h "${HOST[redis]}" -p "${PORT[redis]}" shutdown nosave >/dev/null 2>&1 || true
        else
          probe "${HOST[redis]}" "${PORT[redis]}" "*2\r\n\$8\r\nSHUTDOWN\r\n\$6\r\nNOSAVE\r\n" 1 >/dev/null
        fi
        ;;
      postgres) as_root pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main stop ;;
    esac
    # Some stop commands return before the port closes.
    local waited=0
    while answers "$svc" && ((waited < 30)); do
      sleep 1
      waited=$((waited + 1))
    done
    if answers "$svc"; then die "$svc: still answering 30 s after stop"; fi
    log "$svc: stopped"
  done
}

cmd_status() {
  local svc down=0
  for svc in "${SERVICES[@]}"; do
    if answers "$svc"; then
      log "$svc: up (${HOST[$svc]}:${PORT[$svc]})"
    else
      log "$svc: down (${HOST[$svc]}:${PORT[$svc]})"
      down=1
    fi
  done
  return "$down"
}

usage() {
  printf 'usage: %s up|down|status [rabbitmq|redis|postgres ...]\n' "$0" >&2
  exit 2
}

action="${1:-}"
shift || true
SERVICES=("${ALL_SERVICES[@]}")
if (($# > 0)); then
  for svc in "$@"; do [[ -n ${URL[$svc]:-} ]] || usage; done
  SERVICES=("$@")
fi

case "$action" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) usage ;;
esac
