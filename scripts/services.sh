#!/usr/bin/env bash
# Makes sure Redis and MariaDB answer where eventsource expects them.
#
#   REDIS_HOST/REDIS_PORT  default 127.0.0.1:6379
#   MYSQL_HOST/MYSQL_PORT  default 127.0.0.1:3306
#   MYSQL_USER/MYSQL_PASS  default root / empty (what the server and tests use)
#   SERVICES_WAIT          seconds to wait for a started service (default 30)
#   MYSQL_DATADIR, MYSQL_SOCKET, MYSQL_LOG
#                          where a MariaDB started here keeps its data, socket
#                          and start-up log (defaults: Debian's places)
#   SERVICES_FIX_ROOT=1    also let root in over TCP with an empty password on
#                          a local MariaDB that was already running
#
# A service that already answers is left alone. Otherwise, when its host is
# this machine, the script installs it with apt-get if its binary is missing,
# starts it without systemd, and waits until it answers. For a MariaDB it
# installed or started, it also makes root log in over TCP with an empty
# password (Debian's root uses unix_socket auth only), unless root already
# has a real password. Safe to run any number of times.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
MYSQL_HOST=${MYSQL_HOST:-127.0.0.1}
MYSQL_PORT=${MYSQL_PORT:-3306}
MYSQL_USER=${MYSQL_USER:-root}
MYSQL_PASS=${MYSQL_PASS:-}
SERVICES_WAIT=${SERVICES_WAIT:-30}

MYSQL_DATADIR=${MYSQL_DATADIR:-/var/lib/mysql}
MYSQL_SOCKET=${MYSQL_SOCKET:-/run/mysqld/mysqld.sock}
MYSQL_RUNDIR=$(dirname "$MYSQL_SOCKET")
MYSQL_PIDFILE=$MYSQL_RUNDIR/mysqld.pid
MYSQL_LOG=${MYSQL_LOG:-/var/log/mysql/ci.log}
REDIS_LOG=/var/log/redis/ci.log

log() { printf 'services: %s\n' "$*"; }
die() {
	printf 'services: ERROR: %s\n' "$*" >&2
	exit 1
}

# as_root runs a command as root: directly when we are root, else with sudo.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root for: $* (run as root or install sudo)"
	fi
}

apt_updated=0
apt_install() {
	if [ "$apt_updated" -eq 0 ]; then
		log "apt-get update"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update
		apt_updated=1
	fi
	log "apt-get install -y $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

is_local() {
	case "$1" in
	127.0.0.1 | localhost | ::1 | '[::1]') return 0 ;;
	*) return 1 ;;
	esac
}

# tcp_open HOST PORT: something accepts connections there.
tcp_open() {
	local host=${1#[} port=$2
	host=${host%]}
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

# tail_log FILE: show the end of a log, if we can read it.
tail_log() {
	if [ -r "$1" ]; then
		printf 'services: --- last lines of %s ---\n' "$1" >&2
		tail -n 25 "$1" >&2 || true
	fi
}

# wait_for NAME CHECK...: poll CHECK once a second for SERVICES_WAIT seconds.
wait_for() {
	local name=$1 i
	shift
	for ((i = 0; i < SERVICES_WAIT; i++)); do
		if "$@"; then
			log "$name is up"
			return 0
		fi
		sleep 1
	done
	return 1
}

# --- Redis ------------------------------------------------------------------

redis_up() {
	if command -v redis-cli >/dev/null 2>&1; then
		local out
		if [ -n "${REDIS_PASSWORD:-}" ]; then
			out=$(REDISCLI_AUTH=$REDIS_PASSWORD timeout 3 redis-cli --no-auth-warning -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>&1) || true
		else
			out=$(timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>&1) || true
		fi
		case "$out" in
		*PONG*) return 0 ;;
		*NOAUTH* | *WRONGPASS*) return 0 ;; # it answers; the password is the server's business
		*) return 1 ;;
		esac
	fi
	tcp_open "$REDIS_HOST" "$REDIS_PORT"
}

ensure_redis() {
	if redis_up; then
		log "redis answers on $REDIS_HOST:$REDIS_PORT, nothing to do"
		return
	fi
	is_local "$REDIS_HOST" || die "redis does not answer on $REDIS_HOST:$REDIS_PORT and that host is not this machine; start it there or set REDIS_HOST/REDIS_PORT"

	log "redis does not answer on $REDIS_HOST:$REDIS_PORT"
	if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
		log "redis-server is not installed"
		apt_install redis-server
		# A package script may have started it already.
		if redis_up; then
			log "redis is up after install"
			return
		fi
	fi
	local bin
	bin=$(command -v redis-server || echo /usr/bin/redis-server)

	log "starting $bin on port $REDIS_PORT (log: $REDIS_LOG)"
	as_root mkdir -p /var/lib/redis /var/log/redis
	as_root "$bin" --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
		--save "" --appendonly no --dir /var/lib/redis --logfile "$REDIS_LOG" ||
		{
			tail_log "$REDIS_LOG"
			die "redis-server failed to start"
		}
	if ! wait_for redis redis_up; then
		tail_log "$REDIS_LOG"
		die "redis started but does not answer on $REDIS_HOST:$REDIS_PORT after ${SERVICES_WAIT}s"
	fi
}

# --- MariaDB ----------------------------------------------------------------

mysql_up() {
	if command -v mariadb-admin >/dev/null 2>&1; then
		# ping exits 0 when the server answers, even with "access denied";
		# "host is not allowed" (a fresh server with no user for 127.0.0.1)
		# fails it, yet the server is up.
		local out
		if out=$(timeout 5 mariadb-admin --no-defaults --protocol=TCP -h "$MYSQL_HOST" -P "$MYSQL_PORT" \
			--connect-timeout=3 ping 2>&1); then
			return 0
		fi
		case "$out" in
		*"is not allowed to connect"* | *"Access denied"*) return 0 ;;
		*) return 1 ;;
		esac
	fi
	tcp_open "$MYSQL_HOST" "$MYSQL_PORT"
}

# mysql_tcp_login: the configured user logs in over TCP.
mysql_tcp_login() {
	command -v mariadb >/dev/null 2>&1 || return 0 # cannot check without the client
	MYSQL_PWD=$MYSQL_PASS timeout 10 mariadb --no-defaults --protocol=TCP -h "$MYSQL_HOST" -P "$MYSQL_PORT" \
		-u "$MYSQL_USER" --connect-timeout=3 -e 'SELECT 1' >/dev/null 2>&1
}

# mysql_socket SQL: run SQL as root over the unix socket (unix_socket auth).
mysql_socket() {
	as_root mariadb --no-defaults --protocol=SOCKET --socket="$MYSQL_SOCKET" -u root -N -B -e "$1"
}

mariadbd_bin() {
	local b
	for b in /usr/sbin/mariadbd /usr/sbin/mysqld; do
		if [ -x "$b" ]; then
			echo "$b"
			return 0
		fi
	done
	return 1
}

# fix_root_login makes root log in over TCP with an empty password, as the
# original eventsource defaults expect, on a MariaDB we installed or started.
fix_root_login() {
	if mysql_tcp_login; then
		log "mariadb: $MYSQL_USER logs in over TCP"
		return
	fi
	if [ "$MYSQL_USER" != root ] || [ -n "$MYSQL_PASS" ]; then
		die "mariadb answers but $MYSQL_USER cannot log in over TCP with the given MYSQL_PASS; create that user or unset MYSQL_USER/MYSQL_PASS"
	fi
	local current
	current=$(mysql_socket "SELECT authentication_string FROM mysql.user WHERE User='root' AND Host='localhost'") ||
		die "mariadb: root cannot log in over TCP with an empty password, and root login over $MYSQL_SOCKET failed too"
	case "$current" in
	\**) die "mariadb: root@localhost has a password; set MYSQL_PASS to it (this script will not change it)" ;;
	esac
	log "mariadb: letting root log in over TCP with an empty password (keeping unix_socket auth)"
	mysql_socket "
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'root'@'::1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
FLUSH PRIVILEGES;" >/dev/null || die "mariadb: could not change root's authentication"
	mysql_tcp_login || die "mariadb: root still cannot log in over TCP with an empty password"
	log "mariadb: root logs in over TCP"
}

ensure_mysql() {
	if mysql_up; then
		log "mariadb answers on $MYSQL_HOST:$MYSQL_PORT, nothing to do"
		if ! mysql_tcp_login; then
			if [ "${SERVICES_FIX_ROOT:-0}" = 1 ] && is_local "$MYSQL_HOST"; then
				fix_root_login
			else
				log "WARNING: $MYSQL_USER cannot log in over TCP to $MYSQL_HOST:$MYSQL_PORT with MYSQL_PASS; eventsource and its tests will fail to connect"
				log "WARNING: set MYSQL_USER/MYSQL_PASS, or run SERVICES_FIX_ROOT=1 $0 to let root in with an empty password"
			fi
		fi
		return
	fi
	is_local "$MYSQL_HOST" || die "mariadb does not answer on $MYSQL_HOST:$MYSQL_PORT and that host is not this machine; start it there or set MYSQL_HOST/MYSQL_PORT"

	log "mariadb does not answer on $MYSQL_HOST:$MYSQL_PORT"
	local bin
	if ! bin=$(mariadbd_bin); then
		log "mariadb-server is not installed"
		apt_install mariadb-server
		bin=$(mariadbd_bin) || die "mariadb-server installed but neither /usr/sbin/mariadbd nor /usr/sbin/mysqld exists"
	fi

	if ! mysql_up; then # a package script may have started it already
		getent passwd mysql >/dev/null || die "mariadb: there is no mysql system user; reinstall mariadb-server"
		as_root install -d -o mysql -g mysql -m 0755 "$MYSQL_RUNDIR"
		[ -d "$(dirname "$MYSQL_LOG")" ] || as_root install -d -o mysql -g mysql -m 0750 "$(dirname "$MYSQL_LOG")"
		if ! as_root test -d "$MYSQL_DATADIR/mysql"; then
			log "initialising the data directory $MYSQL_DATADIR (mariadb-install-db)"
			as_root mariadb-install-db --user=mysql --datadir="$MYSQL_DATADIR" --skip-test-db >/dev/null ||
				die "mariadb-install-db failed"
		fi
		log "starting $bin on port $MYSQL_PORT (log: $MYSQL_LOG)"
		as_root start-stop-daemon --start --oknodo --background --output "$MYSQL_LOG" \
			--pidfile "$MYSQL_PIDFILE" --exec "$bin" -- \
			--user=mysql --port="$MYSQL_PORT" --datadir="$MYSQL_DATADIR" \
			--socket="$MYSQL_SOCKET" --pid-file="$MYSQL_PIDFILE" ||
			die "start-stop-daemon could not start $bin"
		if ! wait_for mariadb mysql_up; then
			tail_log "$MYSQL_LOG"
			tail_log /var/log/mysql/error.log
			die "mariadb started but does not answer on $MYSQL_HOST:$MYSQL_PORT after ${SERVICES_WAIT}s (is another mariadbd running on a different port?)"
		fi
	else
		log "mariadb is up after install"
	fi
	fix_root_login
}

ensure_redis
ensure_mysql
log "redis $REDIS_HOST:$REDIS_PORT and mariadb $MYSQL_HOST:$MYSQL_PORT are ready"
