#!/bin/sh
# Clarity runner: the first process inside every sandbox.
# Starts the run's own services (CLARITY_SERVICES, space separated: postgres, redis) on the
# sandbox's private loopback / in its private /tmp, then execs the run's command.
# Everything here runs as the run's unprivileged uid; nothing outlives the sandbox.
set -eu
for svc in ${CLARITY_SERVICES:-}; do
  case "$svc" in
    postgres)
      PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
      export PGDATA=/tmp/.pgdata PGHOST=/tmp PGPORT=5432 PGUSER=clarity PGDATABASE=clarity
      "$PGBIN/initdb" -D "$PGDATA" -U clarity --auth=trust --no-sync -E UTF8 --locale=C >/tmp/.pg-init.log 2>&1 \
        || { echo "clarity-runner: postgres initdb failed" >&2; cat /tmp/.pg-init.log >&2; exit 97; }
      "$PGBIN/pg_ctl" -D "$PGDATA" -l /tmp/.pg.log -w -t 30 -o "-c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=40" start >/dev/null \
        || { echo "clarity-runner: postgres did not start" >&2; cat /tmp/.pg.log >&2; exit 97; }
      "$PGBIN/createdb" clarity >/dev/null 2>&1 || true
      export DATABASE_URL="postgres://clarity@127.0.0.1:5432/clarity"
      ;;
    redis)
      redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
        --dir /tmp --logfile /tmp/.redis.log >/dev/null
      i=0; until redis-cli -p 6379 ping >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && { echo "clarity-runner: redis did not start" >&2; exit 97; }; sleep 0.05; done
      export REDIS_URL="redis://127.0.0.1:6379"
      ;;
    "") ;;
    *) echo "clarity-runner: unknown service $svc" >&2; exit 97 ;;
  esac
done
exec "$@"
