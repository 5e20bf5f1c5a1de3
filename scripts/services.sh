#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis servers the tests use are up: start them if they are installed but stopped,
# then wait for them. Under CI=true a server that cannot be reached fails the run; elsewhere it is a warning and
# the tests that need it are skipped (tests/conftest.py decides).
set -uo pipefail
PGHOST=${PGHOST:-127.0.0.1}; PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
# SERVICES_WAIT: seconds to wait for each server (default 30).
failed=0

wait_for() {  # name, check command...
  local name=$1; shift
  for _ in $(seq 1 "${SERVICES_WAIT:-30}"); do "$@" >/dev/null 2>&1 && { echo "services: $name is up"; return 0; }; sleep 1; done
  echo "services: $name is not reachable" >&2; return 1
}

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT"; }
if ! pg_up 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start 2>/dev/null || true
  fi
fi
wait_for PostgreSQL pg_up || failed=1

redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG; }
if ! redis_up 2>/dev/null && command -v redis-server >/dev/null; then
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1 || true
fi
wait_for Redis redis_up || failed=1

if [ "$failed" = 1 ] && [ "${CI:-}" = "true" ]; then
  echo "services: CI needs PostgreSQL and Redis; failing instead of skipping their tests" >&2
  exit 1
fi
exit 0
