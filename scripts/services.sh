# Shared helpers for scripts/up and scripts/test: make sure PostgreSQL and the Kafka-compatible
# broker (Tansu) are installed and running. Sourced, not executed.
# Everything lives under .clarity/ in the checkout (ignored by git).

CLARITY_HOME="${CLARITY_HOME:-$(pwd)/.clarity}"
TANSU_VERSION="0.6.0"
KAFKA_PORT="${KAFKA_PORT:-9092}"
mkdir -p "$CLARITY_HOME"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 what=$2 tries=${3:-120}
  for _ in $(seq "$tries"); do port_open "$port" && return 0; sleep 0.5; done
  echo "error: $what did not open port $port" >&2
  return 1
}

ensure_postgres() {
  if port_open 5432; then return 0; fi
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  else
    echo "error: PostgreSQL is not running on 127.0.0.1:5432 and pg_ctlcluster is not available" >&2
    return 1
  fi
  wait_port 5432 PostgreSQL
}

tansu_bin() {
  if command -v tansu >/dev/null && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    command -v tansu
  elif [ -x "$HOME/.cargo/bin/tansu" ]; then
    echo "$HOME/.cargo/bin/tansu"
  fi
}

ensure_tansu_installed() {
  if [ -n "$(tansu_bin)" ]; then return 0; fi
  log "installing the Tansu broker $TANSU_VERSION from crates.io (first time only; ~10-20 min on 2 cores)"
  CARGO_TARGET_DIR="$CLARITY_HOME/tansu-build" cargo install tansu --version "$TANSU_VERSION" --locked \
    --features dynostore,postgres,libsql
  rm -rf "$CLARITY_HOME/tansu-build"
}

ensure_broker() {
  if port_open "$KAFKA_PORT"; then return 0; fi
  ensure_tansu_installed
  log "starting Tansu on 127.0.0.1:$KAFKA_PORT (durable storage: $CLARITY_HOME/tansu/tansu.db)"
  mkdir -p "$CLARITY_HOME/tansu"
  (cd "$CLARITY_HOME/tansu" && nohup "$(tansu_bin)" broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine sqlite://tansu.db >"$CLARITY_HOME/tansu/broker.log" 2>&1 &
   echo $! >"$CLARITY_HOME/tansu/broker.pid")
  wait_port "$KAFKA_PORT" Tansu
}
