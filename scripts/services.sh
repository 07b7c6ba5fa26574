# Shared helpers for scripts/up, scripts/test and scripts/bench: install (when missing) and start
# PostgreSQL and Apache Kafka. Sourced, not executed. Works on a fresh Debian machine where only
# the toolchains (Java 17, Maven, Rust, Node) are present; run as root or with sudo.
#
#   ensure_postgres   Debian's postgresql, a cluster on 127.0.0.1:5432 that trusts loopback
#   ensure_kafka      Apache Kafka $KAFKA_VERSION (KRaft, one combined broker + controller node),
#                     jars from Maven Central via scripts/kafka/pom.xml, data under .clarity/kafka
#   start_kafka_at DIR PORT   a Kafka with its own data dir and port (throwaway bench brokers)
#   stop_kafka_at DIR         stop it cleanly (SIGTERM, then wait)
#
# Everything lives under .clarity/ in the checkout (ignored by git).

CLARITY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLARITY_HOME="${CLARITY_HOME:-$CLARITY_ROOT/.clarity}"
KAFKA_VERSION="4.4.0"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_LIBS="$CLARITY_HOME/kafka-$KAFKA_VERSION/libs"
# A 2-core machine: a 1 GiB heap, two GC threads. Override with CLARITY_KAFKA_HEAP.
CLARITY_KAFKA_HEAP="${CLARITY_KAFKA_HEAP:--Xms1g -Xmx1g}"
mkdir -p "$CLARITY_HOME"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 what=$2 tries=${3:-120}
  for _ in $(seq "$tries"); do port_open "$port" && return 0; sleep 0.5; done
  echo "error: $what did not open port $port" >&2
  return 1
}

# Runs a command as root (directly, or through sudo when not root).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "error: '$*' needs root and sudo is not available" >&2
    return 1
  fi
}

# apt-get install with the package lists refreshed once per machine (a fresh machine has none).
APT_UPDATED_MARK="$CLARITY_HOME/.apt-updated"
apt_install() {
  if [ ! -f "$APT_UPDATED_MARK" ] || ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; then
    log "refreshing Debian's package lists"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    touch "$APT_UPDATED_MARK"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

pg_cluster_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -1; }

ensure_postgres() {
  if port_open 5432; then return 0; fi
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(pg_cluster_version)" ]; then
    # A fresh machine has only the psql client: this is `apt-get install postgresql` (after one
    # `apt-get update`, see apt_install), which also creates the cluster.
    log "installing PostgreSQL from Debian's packages"
    apt_install postgresql
  fi
  local v conf
  v="$(pg_cluster_version)"
  conf="/etc/postgresql/$v/main"
  if [ ! -f "$conf/conf.d/clarity.conf" ]; then
    log "configuring the PostgreSQL $v cluster for development (loopback only, trusted)"
    # Development and test machines only: loopback connections are trusted so the scripts and the
    # tests can connect as `postgres` without a password. Production uses its own cluster.
    as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$conf/pg_hba.conf"
    as_root sed -i -E 's/^(local\s+all\s+(postgres|all)\s+)\S+/\1trust/' "$conf/pg_hba.conf"
    # Tests run many processes at once (the scale-out test runs seven Clarity processes), each
    # with its own pool.
    as_root tee "$conf/conf.d/clarity.conf" >/dev/null <<'CONF'
listen_addresses = '127.0.0.1'
max_connections = 400
shared_buffers = 512MB
idle_in_transaction_session_timeout = '10min'
CONF
  fi
  log "starting PostgreSQL $v"
  as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start
  wait_port 5432 PostgreSQL
}

# ---------------------------------------------------------------------------------------------
# Apache Kafka (KRaft)

ensure_kafka_installed() {
  if [ -f "$KAFKA_LIBS/.complete" ]; then return 0; fi
  command -v java >/dev/null || { echo "error: Java 17 is required for Kafka" >&2; return 1; }
  command -v mvn >/dev/null || { echo "error: Maven is required to resolve Kafka's jars" >&2; return 1; }
  log "resolving Apache Kafka $KAFKA_VERSION from Maven Central (first time only)"
  rm -rf "$KAFKA_LIBS" && mkdir -p "$KAFKA_LIBS"
  (cd "$CLARITY_ROOT/scripts/kafka" &&
    mvn -q -B -Dkafka.version="$KAFKA_VERSION" dependency:copy-dependencies \
      -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime)
  touch "$KAFKA_LIBS/.complete"
}

# The JVM options of every Kafka process.
kafka_jvm_opts() {
  # shellcheck disable=SC2086 # the heap setting is a list of options
  printf '%s\n' $CLARITY_KAFKA_HEAP -XX:+UseG1GC -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 \
    -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$CLARITY_ROOT/scripts/kafka/log4j2.properties" -cp "$KAFKA_LIBS/*"
}

# Writes DIR/server.properties for a single node on PORT (controller on PORT+1).
kafka_write_config() {
  local dir=$1 port=$2
  local cport=$((port + 1))
  mkdir -p "$dir/data"
  sed -e "s|@PORT@|$port|g" -e "s|@CPORT@|$cport|g" -e "s|@DATA@|$dir/data|g" \
    "$CLARITY_ROOT/scripts/kafka/server.properties" >"$dir/server.properties"
}

start_kafka_at() {
  local dir=$1 port=$2
  ensure_kafka_installed
  mkdir -p "$dir"
  kafka_write_config "$dir" "$port"
  local opts
  mapfile -t opts < <(kafka_jvm_opts)
  if [ ! -f "$dir/data/meta.properties" ]; then
    log "formatting Kafka storage in $dir/data"
    java "${opts[@]}" kafka.tools.StorageTool format --ignore-formatted \
      -t "$(java "${opts[@]}" kafka.tools.StorageTool random-uuid)" -c "$dir/server.properties" \
      >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; return 1; }
  fi
  log "starting Apache Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1:$port, data in $dir/data"
  : >"$dir/server.log"
  # setsid: the broker outlives the script that started it and ignores its terminal's Ctrl-C.
  setsid java "${opts[@]}" "-Dkafka.logs.dir=$dir" kafka.Kafka "$dir/server.properties" \
    >>"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/kafka.pid"
  # Healthy = the broker says it started (the port opens a little earlier, while it catches up
  # with its own metadata log).
  for _ in $(seq 240); do
    if grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null && port_open "$port"; then return 0; fi
    if ! kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
      echo "error: Kafka exited during start; last lines of $dir/server.log:" >&2
      tail -30 "$dir/server.log" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "error: Kafka did not start within 120 s; see $dir/server.log" >&2
  return 1
}

stop_kafka_at() {
  local dir=$1 pid
  [ -f "$dir/kafka.pid" ] || return 0
  pid="$(cat "$dir/kafka.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping Kafka (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { log "Kafka ignored SIGTERM for 60 s; killing it"; kill -KILL "$pid"; }
  fi
  rm -f "$dir/kafka.pid"
}

# The development broker on $KAFKA_PORT (scripts/up, scripts/test).
ensure_kafka() {
  if port_open "$KAFKA_PORT"; then return 0; fi
  start_kafka_at "$CLARITY_HOME/kafka" "$KAFKA_PORT"
}
stop_kafka() { stop_kafka_at "$CLARITY_HOME/kafka"; }

# Deletes the topics whose names match REGEX (test leftovers) on BOOTSTRAP.
kafka_delete_topics() {
  local bootstrap=$1 regex=$2 opts
  mapfile -t opts < <(kafka_jvm_opts)
  java "${opts[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" \
    --delete --if-exists --topic "$regex" >/dev/null 2>&1 || true
}
