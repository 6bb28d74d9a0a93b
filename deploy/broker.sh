#!/usr/bin/env bash
# deploy/broker.sh — run a real single-node Apache Kafka broker (KRaft, no ZooKeeper)
# on 127.0.0.1 for development, CI and the integration tests.
#
#   deploy/broker.sh start|stop|restart|status|fetch|logs [-f]|help
#
# Needs only Java 11+ (17 recommended) and Maven (for the one-time `fetch`); no Docker,
# no Python. See deploy/README.md for the variables.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# ---------------------------------------------------------------- settings
KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
CACHE_DIR="${CHECKPOINT_CACHE:-${HOME:-/tmp}/.cache/checkpoint-streams}"
# one data dir per client port, so several brokers can run side by side
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$CACHE_DIR/broker-$KAFKA_PORT}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
KAFKA_LOG_LEVEL="${KAFKA_LOG_LEVEL:-INFO}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-180}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
KAFKA_FRESH="${KAFKA_FRESH:-0}"
# Opt-in transport security (default plaintext: the behaviour of every earlier version).
# sasl_ssl: the client listener on $KAFKA_PORT speaks SASL_SSL (SCRAM-SHA-512/256) with the
# broker certificate from $KAFKA_SSL_KEYSTORE, and ACLs are enforced (StandardAuthorizer,
# nothing allowed without an ACL; $KAFKA_SASL_ADMIN_USER is the super user).
KAFKA_SECURITY="${KAFKA_SECURITY:-plaintext}"
KAFKA_SSL_KEYSTORE="${KAFKA_SSL_KEYSTORE:-}"              # PKCS12: broker key + certificate chain
KAFKA_SSL_KEYSTORE_PASSWORD="${KAFKA_SSL_KEYSTORE_PASSWORD:-}"
KAFKA_SSL_CAFILE="${KAFKA_SSL_CAFILE:-}"                  # PEM: the CA that signed it
KAFKA_SASL_ADMIN_USER="${KAFKA_SASL_ADMIN_USER:-admin}"
KAFKA_SASL_ADMIN_PASSWORD="${KAFKA_SASL_ADMIN_PASSWORD:-}"
KAFKA_SCRAM_USERS="${KAFKA_SCRAM_USERS:-}"                # more users: name:password,name:password

# absolute paths: the broker runs with its data dir as working directory
[[ "$CACHE_DIR" == /* ]] || CACHE_DIR="$PWD/$CACHE_DIR"
[[ "$KAFKA_DATA_DIR" == /* ]] || KAFKA_DATA_DIR="$PWD/$KAFKA_DATA_DIR"

LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"
POM="$HERE/kafka/pom.xml"
TEMPLATE="$HERE/kafka/server.properties.template"

CONFIG="$KAFKA_DATA_DIR/server.properties"
LOG4J="$KAFKA_DATA_DIR/log4j.properties"
PIDFILE="$KAFKA_DATA_DIR/broker.pid"
LOG="$KAFKA_DATA_DIR/broker.log"          # broker stdout/stderr + log4j output
CLUSTER_ID_FILE="$KAFKA_DATA_DIR/cluster.id"
META="$KAFKA_DATA_DIR/kraft-logs/meta.properties"   # written by StorageTool format

# ---------------------------------------------------------------- helpers
die() { echo "broker.sh: $*" >&2; exit 1; }
say() { echo "broker.sh: $*"; }

usage() {
  cat <<EOF
usage: deploy/broker.sh start|stop|restart|status|fetch|logs [-f]|acl ARGS|scram-user NAME PASSWORD|help

  start    fetch if needed, format storage once, start in the background, wait until
           the broker answers a Kafka ApiVersions request (no-op if already running)
  stop     SIGTERM, wait up to \$KAFKA_STOP_TIMEOUT s, then SIGKILL
  restart  stop + start (data kept; add KAFKA_FRESH=1 to wipe it)
  status   exit 0 and print pid/port if the broker answers, exit 1 otherwise
  fetch    download the Kafka $KAFKA_VERSION jars with Maven once into $LIBS
  logs     print the last \${KAFKA_LOG_LINES:-100} lines of the broker log (-f: follow)
  acl ARGS (sasl_ssl) Kafka's AclCommand as the admin user, e.g. acl --list
  scram-user NAME PASSWORD
           (sasl_ssl) create or update a SCRAM-SHA-512/256 user on the running broker

env: KAFKA_PORT=$KAFKA_PORT KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT KAFKA_VERSION=$KAFKA_VERSION
     KAFKA_DATA_DIR=$KAFKA_DATA_DIR
     KAFKA_HEAP_OPTS="$KAFKA_HEAP_OPTS" KAFKA_JVM_OPTS KAFKA_LOG_LEVEL=$KAFKA_LOG_LEVEL
     KAFKA_START_TIMEOUT=$KAFKA_START_TIMEOUT KAFKA_STOP_TIMEOUT=$KAFKA_STOP_TIMEOUT KAFKA_FRESH=0|1
     CHECKPOINT_CACHE=$CACHE_DIR
     KAFKA_SECURITY=$KAFKA_SECURITY (plaintext|sasl_ssl) KAFKA_SSL_KEYSTORE KAFKA_SSL_KEYSTORE_PASSWORD
     KAFKA_SSL_CAFILE KAFKA_SASL_ADMIN_USER=$KAFKA_SASL_ADMIN_USER KAFKA_SASL_ADMIN_PASSWORD KAFKA_SCRAM_USERS
EOF
}

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && (( $1 > 0 && $1 < 65536 )); }
is_port "$KAFKA_PORT" || die "KAFKA_PORT must be a port number, got '$KAFKA_PORT'"
is_port "$KAFKA_CONTROLLER_PORT" || die "KAFKA_CONTROLLER_PORT must be a port number, got '$KAFKA_CONTROLLER_PORT'"
[[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
[[ "$KAFKA_VERSION" =~ ^3\.[0-9]+\.[0-9]+$ ]] \
  || die "KAFKA_VERSION must be a 3.x release (4.x dropped protocol versions aiokafka needs), got '$KAFKA_VERSION'"

case "$KAFKA_SECURITY" in
  plaintext|sasl_ssl) ;;  # sasl_ssl settings are checked when needed (start, acl, scram-user)
  *) die "KAFKA_SECURITY must be plaintext or sasl_ssl, got '$KAFKA_SECURITY'" ;;
esac

# Secrets are written into Java properties and JAAS strings: keep them to a safe alphabet.
is_secret() { [[ "$1" =~ ^[-A-Za-z0-9._~+_]{8,128}$ ]]; }
is_user() { [[ "$1" =~ ^[A-Za-z0-9._-]{1,64}$ ]]; }

check_security() {
  [[ "$KAFKA_SECURITY" == sasl_ssl ]] || return 0
  [[ -r "$KAFKA_SSL_KEYSTORE" ]] || die "KAFKA_SECURITY=sasl_ssl needs KAFKA_SSL_KEYSTORE (a readable PKCS12 file)"
  [[ -r "$KAFKA_SSL_CAFILE" ]] || die "KAFKA_SECURITY=sasl_ssl needs KAFKA_SSL_CAFILE (the CA certificate, PEM)"
  is_secret "$KAFKA_SSL_KEYSTORE_PASSWORD" || die "KAFKA_SSL_KEYSTORE_PASSWORD: 8-128 of [A-Za-z0-9._~+_-]"
  is_user "$KAFKA_SASL_ADMIN_USER" || die "KAFKA_SASL_ADMIN_USER: 1-64 of [A-Za-z0-9._-]"
  is_secret "$KAFKA_SASL_ADMIN_PASSWORD" || die "KAFKA_SASL_ADMIN_PASSWORD: 8-128 of [A-Za-z0-9._~+_-]"
  local pair
  for pair in ${KAFKA_SCRAM_USERS//,/ }; do
    is_user "${pair%%:*}" && is_secret "${pair#*:}" \
      || die "KAFKA_SCRAM_USERS: name:password pairs, names [A-Za-z0-9._-], passwords 8-128 of [A-Za-z0-9._~+_-]"
  done
  command -v openssl >/dev/null 2>&1 || die "KAFKA_SECURITY=sasl_ssl needs openssl (the readiness check speaks TLS)"
}

java_bin() {
  local java="java"
  [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]] && java="$JAVA_HOME/bin/java"
  command -v "$java" >/dev/null 2>&1 || die "java not found: install a JRE 17 (e.g. apt-get install openjdk-17-jre-headless)"
  # `java -version` prints e.g.: openjdk version "17.0.15" 2025-04-15  (or "1.8.0_392")
  local v major
  v="$("$java" -version 2>&1 | head -n1 | sed -E 's/^[^"]*"([^"]*)".*$/\1/')"
  major="${v%%.*}"
  [[ "$major" == 1 ]] && major="$(cut -d. -f2 <<<"$v")"
  [[ "$major" =~ ^[0-9]+$ ]] && (( major >= 11 )) \
    || die "java $v is too old for Kafka $KAFKA_VERSION: install a JRE 17"
  echo "$java"
}

# A bare TCP connect: is anything listening on 127.0.0.1:$1 ?
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# A real Kafka API round trip in pure bash (works before any Python dependency is
# installed, and costs no JVM start): send ApiVersions v0 and expect a response carrying
# our correlation id (0x2a) and error_code 0. The broker only answers once it has
# finished starting (metadata caught up, broker unfenced, request processing enabled).
kafka_answers() {
  local reply
  reply="$(timeout 3 bash -c '
      exec 3<>/dev/tcp/127.0.0.1/'"$1"' || exit 1
      # int32 size=12 | int16 api_key=18 (ApiVersions) | int16 version=0
      # | int32 correlation_id=42 | int16 len=2 + client_id "cs"
      printf "\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x02cs" >&3
      # response: int32 size | int32 correlation_id | int16 error_code | ...
      head -c 10 <&3 | od -An -v -tx1' 2>/dev/null)" || return 1
  reply="$(tr -d ' \n' <<<"$reply")"
  [[ "$reply" == ????????0000002a0000 ]]
}

# The same ApiVersions round trip through TLS (a SASL_SSL listener answers ApiVersions
# before authentication), the broker certificate verified against $KAFKA_SSL_CAFILE.
kafka_answers_tls() {
  local reply
  # stdin stays open a second for the reply, then EOF ends s_client (-no_ign_eof)
  reply="$(timeout 5 bash -c '
      { printf "\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x02cs"; sleep 1; } \
        | openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$1" -CAfile "$0" \
            -verify_return_error 2>/dev/null \
        | head -c 10 | od -An -v -tx1' "$KAFKA_SSL_CAFILE" "$1" 2>/dev/null)" || return 1
  reply="$(tr -d ' \n' <<<"$reply")"
  [[ "$reply" == ????????0000002a0000 ]]
}

answers() {
  if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then kafka_answers_tls "$1"; else kafka_answers "$1"; fi
}

# Is $1 a live process (not a zombie) running *this* data dir's broker?
# Guards against stale pid files and pid reuse.
is_our_broker() {
  local pid="$1" cmd
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    # field 3 of /proc/PID/stat is the state; Z = zombie (dead, not yet reaped)
    [[ "$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  else
    cmd="$(ps -p "$pid" -o args= 2>/dev/null)" || return 1
  fi
  [[ "$cmd" == *"kafka.Kafka $CONFIG"* ]]
}

# Prints the pid of this data dir's running broker, or fails (removing a stale pid file).
running_pid() {
  local pid=""
  [[ -f "$PIDFILE" ]] || return 1
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if is_our_broker "$pid"; then echo "$pid"; return 0; fi
  rm -f "$PIDFILE"
  return 1
}

# Serialise start/stop of one data dir (e.g. several test workers calling `start`).
LOCKED=0
lock_data_dir() {
  (( LOCKED )) && return 0
  LOCKED=1
  mkdir -p "$KAFKA_DATA_DIR"
  command -v flock >/dev/null 2>&1 || return 0          # macOS: no flock, best effort
  exec 9>"$KAFKA_DATA_DIR/.broker.lock"
  flock -w $(( KAFKA_START_TIMEOUT + KAFKA_STOP_TIMEOUT + 30 )) 9 \
    || die "another broker.sh is busy with $KAFKA_DATA_DIR"
}

sleep_a_bit() { sleep 0.25; }

# ---------------------------------------------------------------- fetch
fetch() {
  if [[ -f "$LIBS/.complete" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven 3.6+ (apt-get install maven) to fetch Kafka"
  [[ -f "$POM" ]] || die "missing $POM"
  local parent tmp t0
  parent="$(dirname "$LIBS")"
  mkdir -p "$parent"
  # download into a temp dir and rename at the end: an interrupted fetch never looks cached
  tmp="$(mktemp -d "$parent/libs.tmp.XXXXXX")"
  say "fetching Kafka $KAFKA_VERSION jars with Maven into $LIBS (once) ..."
  t0=$SECONDS
  # Maven's output is kept in a file and shown only if it fails
  if ! mvn -q -B -Dstyle.color=never -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
        >"$tmp.mvn.log" 2>&1 </dev/null; then
    tail -n 30 "$tmp.mvn.log" >&2
    rm -rf "$tmp" "$tmp.mvn.log"
    rmdir "$parent" 2>/dev/null || true
    die "maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (output above)"
  fi
  rm -f "$tmp.mvn.log"
  if [[ ! -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
    rm -rf "$tmp"
    die "maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing"
  fi
  touch "$tmp/.complete"
  if [[ -f "$LIBS/.complete" ]]; then
    rm -rf "$tmp"                                         # a concurrent fetch won the race
  else
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
  fi
  say "fetched $(ls "$LIBS" | wc -l | tr -d ' ') jars in $(( SECONDS - t0 ))s"
}

# ---------------------------------------------------------------- config
render_config() {
  [[ -f "$TEMPLATE" ]] || die "missing $TEMPLATE"
  # '|' as sed delimiter: data dirs contain '/'
  [[ "$KAFKA_DATA_DIR" != *'|'* && "$KAFKA_DATA_DIR" != *'&'* ]] \
    || die "KAFKA_DATA_DIR must not contain '|' or '&'"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@KAFKA_DATA_DIR@|$KAFKA_DATA_DIR|g" \
      "$TEMPLATE" >"$CONFIG.tmp"
  if [[ "$KAFKA_SECURITY" == sasl_ssl ]]; then
    # later keys override the template's (java.util.Properties keeps the last one)
    chmod 600 "$CONFIG.tmp"
    cat >>"$CONFIG.tmp" <<PROPERTIES

############################# SASL_SSL + ACLs (KAFKA_SECURITY=sasl_ssl) #############################
listeners=SASL_SSL://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_SASL_ADMIN_USER" password="$KAFKA_SASL_ADMIN_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_SASL_ADMIN_USER" password="$KAFKA_SASL_ADMIN_PASSWORD";
ssl.keystore.type=PKCS12
ssl.keystore.location=$KAFKA_SSL_KEYSTORE
ssl.keystore.password=$KAFKA_SSL_KEYSTORE_PASSWORD
ssl.key.password=$KAFKA_SSL_KEYSTORE_PASSWORD
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_SSL_CAFILE
ssl.client.auth=none
ssl.enabled.protocols=TLSv1.3,TLSv1.2
ssl.endpoint.identification.algorithm=https
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
# ANONYMOUS is the broker itself on the loopback-only PLAINTEXT controller listener (KRaft
# cannot use SCRAM there); no client listener maps to it in this mode.
super.users=User:$KAFKA_SASL_ADMIN_USER;User:ANONYMOUS
PROPERTIES
    write_admin_config
  fi
  mv "$CONFIG.tmp" "$CONFIG"

  # Kafka 3.9 logs through log4j 1.x (reload4j); everything goes to stdout, which
  # start() redirects into $LOG. Noisy per-request/per-partition loggers are quieted.
  cat >"$LOG4J" <<EOF
log4j.rootLogger=$KAFKA_LOG_LEVEL, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.network.RequestChannel\$=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.kafka.authorizer.logger=WARN
EOF
}

ADMIN_CONFIG="$KAFKA_DATA_DIR/admin-client.properties"   # sasl_ssl: the admin's client settings

write_admin_config() {
  ( umask 077
    cat >"$ADMIN_CONFIG" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_SASL_ADMIN_USER" password="$KAFKA_SASL_ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_SSL_CAFILE
PROPERTIES
  )
}

# --add-scram arguments for StorageTool format: the admin and $KAFKA_SCRAM_USERS, each with
# both SCRAM mechanisms (the credentials are in the KRaft metadata from the first start on).
scram_args() {
  local pair name password mechanism
  for pair in "$KAFKA_SASL_ADMIN_USER:$KAFKA_SASL_ADMIN_PASSWORD" ${KAFKA_SCRAM_USERS//,/ }; do
    name="${pair%%:*}"; password="${pair#*:}"
    for mechanism in SCRAM-SHA-512 SCRAM-SHA-256; do
      printf '%s\n' --add-scram "$mechanism=[name=$name,password=$password]"
    done
  done
}

# The KRaft cluster id is made once per data dir and kept there (22 chars, base64url of
# 16 random bytes, like `kafka-storage.sh random-uuid`; never starting with '-').
cluster_id() {
  local id=""
  if [[ -s "$CLUSTER_ID_FILE" ]]; then
    cat "$CLUSTER_ID_FILE"; return 0
  fi
  while [[ ${#id} -ne 22 || "$id" == -* ]]; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  echo "$id" >"$CLUSTER_ID_FILE"
  echo "$id"
}

# ---------------------------------------------------------------- commands
wipe_data_dir() {
  [[ -d "$KAFKA_DATA_DIR" ]] || return 0
  local real
  real="$(cd "$KAFKA_DATA_DIR" && pwd -P)"
  case "$real" in /|"$(cd "${HOME:-/}" && pwd -P)") die "refusing to wipe $real";; esac
  # only wipe what looks like a data dir this script made (or an empty one)
  if [[ -n "$(ls -A "$real" | grep -v '^\.broker\.lock$' || true)" && ! -f "$real/cluster.id" ]]; then
    die "KAFKA_FRESH=1: $real has no cluster.id, it does not look like a broker data dir; refusing to wipe it"
  fi
  find "$real" -mindepth 1 -maxdepth 1 ! -name .broker.lock -exec rm -rf {} +
}

wait_ready() {
  local pid="$1" t0="$2"
  while ! answers "$KAFKA_PORT"; do
    if ! is_our_broker "$pid"; then
      rm -f "$PIDFILE"
      echo "---- last lines of $LOG" >&2
      tail -n 25 "$LOG" >&2 || true
      die "the broker exited during start (see $LOG)"
    fi
    if (( SECONDS - t0 >= KAFKA_START_TIMEOUT )); then
      echo "---- last lines of $LOG" >&2
      tail -n 25 "$LOG" >&2 || true
      do_stop >/dev/null || true
      die "the broker did not answer on 127.0.0.1:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s; stopped it (see $LOG)"
    fi
    sleep_a_bit
  done
}

do_start() {
  local java pid running t0=$SECONDS
  check_security
  java="$(java_bin)"
  fetch
  lock_data_dir

  if [[ "$KAFKA_FRESH" == 1 ]]; then
    do_stop >/dev/null
    wipe_data_dir
  fi

  if pid="$(running_pid)"; then
    grep -q "^listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT," "$CONFIG" 2>/dev/null \
      || die "the broker of $KAFKA_DATA_DIR (pid $pid) runs with other ports; stop it first"
    if grep -q "^listeners=SASL_SSL://" "$CONFIG" 2>/dev/null; then running=sasl_ssl; else running=plaintext; fi
    [[ "$running" == "$KAFKA_SECURITY" ]] \
      || die "the broker of $KAFKA_DATA_DIR (pid $pid) runs with KAFKA_SECURITY=$running; stop it first"
    # ours and alive: maybe still starting (concurrent `start`), so wait for it
    wait_ready "$pid" "$t0"
    say "already running: pid $pid on 127.0.0.1:$KAFKA_PORT, log $LOG"
    return 0
  fi

  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is already in use by another process (set KAFKA_PORT)"
  port_open "$KAFKA_CONTROLLER_PORT" \
    && die "port $KAFKA_CONTROLLER_PORT is already in use by another process (set KAFKA_CONTROLLER_PORT)"

  mkdir -p "$KAFKA_DATA_DIR/kraft-logs"
  render_config
  local cid; cid="$(cluster_id)"
  # keep the previous run's log for post-mortems; this run starts a fresh file
  [[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.prev"
  : >"$LOG"

  local jvm=( $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20
              -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
              -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
              "-Dlog4j.configuration=file:$LOG4J" "-Dkafka.logs.dir=$KAFKA_DATA_DIR"
              $KAFKA_JVM_OPTS )

  # Format KRaft storage once per data dir (meta.properties marks it done). The static
  # controller.quorum.voters in the config means no --standalone flag is needed.
  if [[ ! -f "$META" ]]; then
    local scram=()
    [[ "$KAFKA_SECURITY" == sasl_ssl ]] && mapfile -t scram < <(scram_args)
    if ! "$java" -Xmx256m "-Dlog4j.configuration=file:$LOG4J" -cp "$LIBS/*" \
          kafka.tools.StorageTool format -t "$cid" -c "$CONFIG" --ignore-formatted "${scram[@]}" \
          >>"$LOG" 2>&1; then
      tail -n 20 "$LOG" >&2
      die "formatting KRaft storage in $KAFKA_DATA_DIR failed (see $LOG)"
    fi
  fi

  # Start detached (own session: Ctrl-C in the calling terminal / test runner does not
  # reach it). The wrapper writes its own pid and then execs java, so the pid file
  # holds java's pid whether or not setsid had to fork.
  local detach=()
  command -v setsid >/dev/null 2>&1 && detach=(setsid) || detach=(nohup)
  rm -f "$PIDFILE"
  (cd "$KAFKA_DATA_DIR" && exec "${detach[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
      "$java" "${jvm[@]}" -cp "$LIBS/*" kafka.Kafka "$CONFIG" \
      </dev/null >>"$LOG" 2>&1 9>&-) &   # 9>&-: the broker must not inherit our lock
  local i
  for i in $(seq 1 40); do [[ -s "$PIDFILE" ]] && break; sleep 0.05; done
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] || die "could not start java (see $LOG)"

  wait_ready "$pid" "$t0"
  say "Kafka $KAFKA_VERSION (KRaft, $KAFKA_SECURITY) ready on 127.0.0.1:$KAFKA_PORT in $(( SECONDS - t0 ))s (pid $pid), log $LOG"
}

do_stop() {
  local pid t0=$SECONDS
  if ! pid="$(running_pid)"; then
    say "not running (127.0.0.1:$KAFKA_PORT, $KAFKA_DATA_DIR)"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  while is_our_broker "$pid"; do
    if (( SECONDS - t0 >= KAFKA_STOP_TIMEOUT )); then
      say "pid $pid did not exit within ${KAFKA_STOP_TIMEOUT}s of SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do is_our_broker "$pid" || break; sleep_a_bit; done
      break
    fi
    sleep_a_bit
  done
  rm -f "$PIDFILE"
  say "stopped pid $pid (127.0.0.1:$KAFKA_PORT) in $(( SECONDS - t0 ))s"
}

do_status() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "not running (127.0.0.1:$KAFKA_PORT, $KAFKA_DATA_DIR)"
    return 1
  fi
  if answers "$KAFKA_PORT"; then
    echo "running: pid $pid, 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT), data $KAFKA_DATA_DIR, log $LOG"
    return 0
  fi
  echo "pid $pid is alive but 127.0.0.1:$KAFKA_PORT does not answer yet (starting or hung; see $LOG)"
  return 1
}

do_logs() {
  [[ -f "$LOG" ]] || die "no log yet: $LOG"
  if [[ "${1:-}" == "-f" ]]; then
    exec tail -n "${KAFKA_LOG_LINES:-100}" -F "$LOG"
  fi
  tail -n "${KAFKA_LOG_LINES:-100}" "$LOG"
}

# Kafka's own admin tools, as the admin user, against this data dir's running sasl_ssl broker.
admin_tool() {
  [[ "$KAFKA_SECURITY" == sasl_ssl ]] || die "$1 needs KAFKA_SECURITY=sasl_ssl (a plaintext broker has no ACLs)"
  running_pid >/dev/null || die "the broker of $KAFKA_DATA_DIR is not running"
  [[ -r "$ADMIN_CONFIG" ]] || die "missing $ADMIN_CONFIG (start the broker with KAFKA_SECURITY=sasl_ssl first)"
  local java tool="$2" quiet="$KAFKA_DATA_DIR/tools-log4j.properties"
  shift 2
  java="$(java_bin)"
  printf '%s\n' "log4j.rootLogger=WARN, stderr" "log4j.appender.stderr=org.apache.log4j.ConsoleAppender" \
    "log4j.appender.stderr.Target=System.err" "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout" \
    "log4j.appender.stderr.layout.ConversionPattern=%p %m (%c)%n" >"$quiet"
  "$java" -Xmx256m "-Dlog4j.configuration=file:$quiet" -cp "$LIBS/*" "$tool" \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" --command-config "$ADMIN_CONFIG" "$@"
}

do_scram_user() {
  local name="${1:-}" password="${2:-}"
  { is_user "$name" && is_secret "$password"; } \
    || die "usage: scram-user NAME PASSWORD (name [A-Za-z0-9._-], password 8-128 of [A-Za-z0-9._~+_-])"
  local mechanism
  for mechanism in SCRAM-SHA-512 SCRAM-SHA-256; do  # one credential per request
    admin_tool scram-user kafka.admin.ConfigCommand --alter --entity-type users --entity-name "$name" \
      --add-config "$mechanism=[password=$password]"
  done
}

cmd="${1:-help}"
shift || true
case "$cmd" in
  start)   do_start ;;
  stop)    lock_data_dir; do_stop ;;
  restart) lock_data_dir; do_stop; do_start ;;
  status)  do_status ;;
  fetch)   fetch; say "Kafka $KAFKA_VERSION jars in $LIBS" ;;
  logs)    do_logs "$@" ;;
  acl)     admin_tool acl kafka.admin.AclCommand "$@" ;;
  scram-user) do_scram_user "$@" ;;
  help|-h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
