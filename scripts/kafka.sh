#!/usr/bin/env bash
# A real single-node Apache Kafka broker for the tests: Kafka 4.1.1 in KRaft
# mode (one process is the broker and the only controller), run from Maven
# Central's jars on Debian's OpenJDK 17, since Debian packages no Kafka.
#
#   scripts/kafka.sh fetch                      copy the jars (scripts/kafka/pom.xml) into
#                                               the cache with Maven, once
#   scripts/kafka.sh start DIR PORT             format DIR once, start the broker on
#                                               127.0.0.1:PORT (controller on PORT+1), and
#                                               wait until it serves
#   scripts/kafka.sh topic DIR NAME PARTITIONS  create a topic (replication factor 1)
#                                               unless it exists; wait for its leaders
#   scripts/kafka.sh stop DIR                   stop the broker whose pid is in DIR/kafka.pid
#
# DIR holds everything: server.properties, data/, kafka.log (the broker's
# log), kafka.out (its console: JVM errors only), kafka.pid, port.  A stop
# then a start on the same DIR and PORT is the same broker with its data.
# Only the process in DIR/kafka.pid is ever stopped.
# Environment: KAFKA_CACHE (the jars; default ~/.cache/pg_commerce/kafka-4.1.1,
# under XDG_CACHE_HOME if set), JAVA (/usr/bin/java), KAFKA_HEAP (512m),
# KAFKA_START_TIMEOUT (90 seconds).
set -euo pipefail

version=4.1.1
here=$(cd "$(dirname "$0")" && pwd)
conf=$here/kafka
cache=${KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg_commerce/kafka-$version}
stamp=$cache/.complete
JAVA=${JAVA:-/usr/bin/java}
heap=${KAFKA_HEAP:-512m}
start_timeout=${KAFKA_START_TIMEOUT:-90}

usage() { sed -n '2,21p' "$0" >&2; exit 2; }
die() { echo "kafka: $*" >&2; exit 1; }

# The stamp names the pom it was fetched with: change the pom, and the next
# fetch fetches again.
pom_sum() { sha256sum "$conf/pom.xml" | cut -d' ' -f1; }

cache_ok() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(pom_sum)" ]; }

need_java() {
	[ -x "$JAVA" ] || die "no Java at $JAVA (scripts/setup.sh --tests installs openjdk-17-jre-headless)"
	cache_ok || die "no complete jar cache in $cache: run scripts/kafka.sh fetch first"
}

fetch() {
	if cache_ok; then
		echo "kafka: Kafka $version jars already in $cache" >&2
		return 0
	fi
	command -v mvn >/dev/null || die "no mvn (scripts/setup.sh --tests installs maven)"
	echo "kafka: fetching Kafka $version jars from Maven Central into $cache" >&2
	mkdir -p "$(dirname "$cache")"
	local tmp
	tmp=$(mktemp -d "$cache.fetch.XXXXXX")
	# shellcheck disable=SC2064  # expand $tmp now: it is local
	trap "rm -rf '$tmp'" EXIT
	# Debian's Maven 3.8.7 prints colour resets even with -B -q: strip them
	if ! mvn -B -q -f "$conf/pom.xml" \
		org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 |
		sed 's/\x1b\[[0-9;]*m//g' >&2; then
		die "Maven could not fetch the jars (is Maven Central reachable? its errors are above)"
	fi
	local n
	n=$(find "$tmp" -maxdepth 1 -name '*.jar' | wc -l)
	[ -f "$tmp/kafka_2.13-$version.jar" ] || die "Maven ran, but kafka_2.13-$version.jar is not among the $n jars"
	rm -rf "$cache"
	mv "$tmp" "$cache"
	trap - EXIT
	pom_sum >"$stamp"   # last: only a complete cache has it
	echo "kafka: $n jars, $(du -sm "$cache" | cut -f1) MB in $cache" >&2
}

# The java of a Kafka command-line tool: small, quick to start, quiet.
tool() {
	"$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
		-Dlog4j2.configurationFile="$conf/log4j2-tools.properties" \
		-cp "$cache/*" "$@"
}

# pid of the broker in $dir if it runs: the pid file's process, and only if
# it is a Kafka started on this DIR's server.properties (not a reused pid)
running_pid() {
	local pid
	[ -f "$dir/kafka.pid" ] || return 1
	pid=$(cat "$dir/kafka.pid")
	[ -n "$pid" ] && alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $dir/server.properties" || return 1
	echo "$pid"
}

# alive, and not a zombie that nobody has reaped yet
alive() {
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [ -n "$state" ] && [ "$state" != Z ]
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

show_logs() {
	if [ -s "$dir/kafka.log" ]; then
		echo "--- last lines of $dir/kafka.log:" >&2
		tail -n 30 "$dir/kafka.log" >&2
	fi
	if [ -s "$dir/kafka.out" ]; then
		echo "--- last lines of $dir/kafka.out:" >&2
		tail -n 15 "$dir/kafka.out" >&2
	fi
}

# The broker serves when a metadata request answers with broker 1 in it.
serves() { kcat -b "127.0.0.1:$1" -L -m 2 2>/dev/null | grep -q "broker 1 at 127.0.0.1:$1"; }

start() {
	local port=$1 cport=$(($1 + 1)) pid t0 elapsed
	need_java
	command -v kcat >/dev/null || die "no kcat (scripts/setup.sh --tests installs it)"
	if pid=$(running_pid); then
		echo "kafka: already running in $dir (pid $pid)" >&2
		return 0
	fi
	if [ -f "$dir/data/meta.properties" ] && [ "$(cat "$dir/port" 2>/dev/null)" != "$port" ]; then
		die "$dir was formatted for port $(cat "$dir/port" 2>/dev/null || echo '?'), not $port: use that port, or delete $dir"
	fi
	for p in "$port" "$cport"; do
		if port_busy "$p"; then
			die "port $p on 127.0.0.1 is in use (the broker needs $port and $cport): $(ss -Hltnp "sport = :$p" 2>/dev/null | awk '{print $NF}' | head -n 1)"
		fi
	done
	t0=$EPOCHREALTIME
	echo "$port" >"$dir/port"
	local line
	while IFS= read -r line; do
		line=${line//@DIR@/"$dir"}
		line=${line//@CONTROLLER_PORT@/$cport}
		printf '%s\n' "${line//@PORT@/$port}"
	done <"$conf/server.properties.in" >"$dir/server.properties"
	if [ ! -f "$dir/data/meta.properties" ]; then
		# a cluster id is 16 random bytes, base64url without padding
		head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' >"$dir/cluster.id"
		echo "kafka: formatting $dir/data (cluster $(cat "$dir/cluster.id"))" >&2
		tool kafka.tools.StorageTool format --standalone --cluster-id "$(cat "$dir/cluster.id")" \
			--config "$dir/server.properties" >"$dir/format.log" 2>&1 \
			|| { cat "$dir/format.log" >&2; die "formatting $dir/data failed"; }
	fi
	# G1 with short pauses as Kafka's own start script has it; metaspace and
	# code cache bounded (direct memory is bounded by the heap size already);
	# out of memory ends the broker rather than leaving it half alive.  JVM
	# messages go to kafka.out.
	nohup "$JAVA" -Xms"$heap" -Xmx"$heap" \
		-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
		-XX:+ExplicitGCInvokesConcurrent -XX:MaxMetaspaceSize=256m -XX:ReservedCodeCacheSize=128m \
		-XX:+ExitOnOutOfMemoryError \
		-Djava.awt.headless=true -Dkafka.logs.dir="$dir" \
		-Dlog4j2.configurationFile="$conf/log4j2.properties" \
		-cp "$cache/*" kafka.Kafka "$dir/server.properties" \
		</dev/null >"$dir/kafka.out" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/kafka.pid"
	echo "kafka: starting the broker in $dir (pid $pid) on 127.0.0.1:$port, controller on $cport" >&2
	local deadline=$((SECONDS + start_timeout))
	until serves "$port"; do
		if ! alive "$pid"; then
			rm -f "$dir/kafka.pid"
			show_logs
			die "the broker in $dir exited during start"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			show_logs
			die "the broker in $dir does not serve on 127.0.0.1:$port after ${start_timeout}s (still running as pid $pid: scripts/kafka.sh stop $dir)"
		fi
		sleep 0.25
	done
	elapsed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	echo "kafka: serving on 127.0.0.1:$port after ${elapsed}s" >&2
}

topic() {
	local name=$1 parts=$2 port have deadline
	need_java
	port=$(cat "$dir/port" 2>/dev/null) || die "no $dir/port: start the broker first"
	running_pid >/dev/null || die "no broker running in $dir"
	tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" \
		--create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 \
		>/dev/null || die "could not create topic $name"
	# usable once every partition has its leader
	deadline=$((SECONDS + 30))
	while :; do
		have=$(kcat -b "127.0.0.1:$port" -L -t "$name" -m 5 2>/dev/null || true)
		if grep -q "topic \"$name\" with" <<<"$have" && ! grep -q 'Err\|leader -1' <<<"$have"; then
			break
		fi
		[ "$SECONDS" -lt "$deadline" ] || { echo "$have" >&2; die "topic $name has no leaders after 30s"; }
		sleep 0.25
	done
	have=$(sed -n "s/.*topic \"$name\" with \([0-9]*\) partitions.*/\1/p" <<<"$have")
	[ "$have" = "$parts" ] || die "topic $name exists with $have partitions, not $parts"
	echo "kafka: topic $name ready, $parts partitions" >&2
}

stop() {
	local pid
	if ! pid=$(running_pid); then
		rm -f "$dir/kafka.pid"
		echo "kafka: no broker running in $dir" >&2
		return 0
	fi
	kill -TERM "$pid"
	local deadline=$((SECONDS + 30))
	while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.25
	done
	if alive "$pid"; then
		echo "kafka: broker $pid still running after 30s: SIGKILL" >&2
		kill -KILL "$pid" 2>/dev/null || true
		while alive "$pid"; do sleep 0.1; done
	fi
	rm -f "$dir/kafka.pid"
	echo "kafka: stopped the broker in $dir" >&2
}

cmd=${1:-}
case "$cmd" in
fetch)
	[ $# -eq 1 ] || usage
	fetch
	;;
start | topic | stop)
	[ $# -ge 2 ] || usage
	if [ "$cmd" = start ]; then
		mkdir -p "$2"
	elif [ ! -d "$2" ]; then
		[ "$cmd" = stop ] || die "no directory $2"
		echo "kafka: no broker running in $2" >&2
		exit 0
	fi
	dir=$(cd "$2" && pwd)
	case "$cmd" in
	start)
		[[ $# -eq 3 && $3 =~ ^[0-9]+$ ]] || usage
		start "$3" ;;
	topic)
		[[ $# -eq 4 && $4 =~ ^[1-9][0-9]*$ ]] || usage
		topic "$3" "$4" ;;
	stop)
		[ $# -eq 2 ] || usage
		stop ;;
	esac
	;;
*) usage ;;
esac
