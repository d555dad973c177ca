#!/usr/bin/env bash
# The development PostgreSQL for `make run`: scripts/devdb.sh start|stop|status
#
# start  makes (once) and starts a cluster under var/pg on 127.0.0.1:5433
#        (DEVDB_PORT overrides) with the roles of production: the schema
#        owner `conch_owner` owning database `conch`, and the runtime login
#        `conch` (a member of `conch_runtime`, owning nothing); a cluster made
#        before the split is moved to it once. It writes var/dev.env for the
#        Makefile to source: CONCH_DATABASE_URL (conch) and
#        CONCH_DATABASE_MIGRATE_URL (conch_owner), plus CONCH_TOKEN_KEYS and CONCH_SESSION_SECRET
#        unless the environment sets them (generated once, kept in
#        var/dev-secrets.env so stored tokens stay readable across runs).
#        With CONCH_DATABASE_URL set, it only writes the keys.
# stop   stops the cluster (data stays in var/pg).
# status says whether it runs; exits 0 when it does, 3 when not.
#
# As root the cluster belongs to `postgres` (PostgreSQL refuses to run as
# root), so the project directory must be traversable by that user.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
var=$root/var
pgdata=$var/pg
logfile=$var/pg.log
envfile=$var/dev.env
secrets=$var/dev-secrets.env
port=${DEVDB_PORT:-5433}
bin=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

if [[ $(id -u) -eq 0 ]]; then
	owner=postgres
	as_owner() { runuser -u postgres -- "$@"; }
else
	owner=$(id -un)
	as_owner() { "$@"; }
fi

die() {
	echo "devdb: $*" >&2
	exit 1
}

random_b64() {
	head -c 32 /dev/urandom | base64 | tr -d '\n'
}

# Generated once; later runs reuse them.
ensure_secrets() {
	if [[ ! -f $secrets ]]; then
		(
			umask 077
			{
				echo "# Development secrets made by scripts/devdb.sh; keep them: stored tokens need them."
				echo "CONCH_TOKEN_KEYS=1:$(random_b64)"
				echo "CONCH_SESSION_SECRET=$(random_b64)"
			} >"$secrets.tmp"
			mv "$secrets.tmp" "$secrets"
		)
	fi
	chmod 600 "$secrets"
}

secret_value() {
	grep -E "^$1=" "$secrets" | tail -n1 | cut -d= -f2-
}

# var/dev.env: what the environment does not already set.
write_env() {
	local url=${1:-}
	(
		umask 077
		{
			echo "# Written by scripts/devdb.sh for make run."
			if [[ -n $url ]]; then
				echo "CONCH_DATABASE_URL=$url"
				echo "CONCH_DATABASE_MIGRATE_URL=${url/conch@/conch_owner@}"
			fi
			if [[ -z ${CONCH_TOKEN_KEYS:-} ]]; then
				echo "CONCH_TOKEN_KEYS=$(secret_value CONCH_TOKEN_KEYS)"
			fi
			if [[ -z ${CONCH_SESSION_SECRET:-} ]]; then
				echo "CONCH_SESSION_SECRET=$(secret_value CONCH_SESSION_SECRET)"
			fi
		} >"$envfile.tmp"
		mv "$envfile.tmp" "$envfile"
	)
	chmod 600 "$envfile"
}

running() {
	[[ -f $pgdata/PG_VERSION ]] && as_owner "$bin/pg_ctl" status -D "$pgdata" >/dev/null 2>&1
}

running_port() {
	sed -n 4p "$pgdata/postmaster.pid" 2>/dev/null
}

psql_super() {
	PGOPTIONS="-c client_min_messages=warning" as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdata" -p "$1" -U "$owner" -d postgres -tA -c "$2"
}

init_cluster() {
	[[ -x $bin/initdb ]] || die "$bin/initdb is missing: install postgresql-15 (scripts/deps.sh)"
	if [[ -d $pgdata && -n $(ls -A "$pgdata" 2>/dev/null) ]]; then
		die "$pgdata exists but holds no cluster; remove it to start afresh"
	fi
	mkdir -p "$pgdata"
	chmod 700 "$pgdata"
	if [[ $owner == postgres ]]; then
		chown postgres:postgres "$pgdata"
		runuser -u postgres -- test -x "$var" ||
			die "user postgres cannot reach $var: make the directories above it traversable (chmod o+x)"
	fi
	echo "devdb: creating a PostgreSQL cluster in $pgdata" >&2
	as_owner "$bin/initdb" -D "$pgdata" -U "$owner" --auth-local=peer --auth-host=reject \
		-E UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
	# The superuser only over the unix socket (peer); `conch` and
	# `conch_owner` over TCP from this machine without a password.
	cat >"$pgdata/pg_hba.conf" <<-EOF
		# Written by scripts/devdb.sh.
		local all all peer
		host conch conch,conch_owner 127.0.0.1/32 trust
	EOF
	cat >>"$pgdata/postgresql.conf" <<-EOF

		# scripts/devdb.sh
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$pgdata'
	EOF
}

# The roles of deploy/db-bootstrap.sql, without passwords (trust on
# 127.0.0.1), and the pg_hba line for the owner on older clusters.
roles() {
	psql_super "$1" "DO \$\$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'conch_owner') THEN
			CREATE ROLE conch_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
		END IF;
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'conch_runtime') THEN
			CREATE ROLE conch_runtime NOLOGIN NOSUPERUSER NOBYPASSRLS;
		END IF;
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'conch') THEN
			CREATE ROLE conch LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
		END IF;
	END \$\$"
	psql_super "$1" "GRANT conch_runtime TO conch" >/dev/null
	if ! grep -q conch_owner "$pgdata/pg_hba.conf"; then
		as_owner sed -i 's/^host conch conch 127.0.0.1\/32 trust$/host conch conch,conch_owner 127.0.0.1\/32 trust/' \
			"$pgdata/pg_hba.conf"
		psql_super "$1" "SELECT pg_reload_conf()" >/dev/null
	fi
}

start() {
	mkdir -p "$var"
	ensure_secrets
	if [[ -n ${CONCH_DATABASE_URL:-} ]]; then
		write_env
		echo "devdb: CONCH_DATABASE_URL is set; not starting a development database" >&2
		return 0
	fi
	[[ -f $pgdata/PG_VERSION ]] || init_cluster
	if ! running; then
		touch "$logfile"
		if [[ $owner == postgres ]]; then
			chown postgres:postgres "$logfile"
		fi
		as_owner "$bin/pg_ctl" start -w -t 60 -D "$pgdata" -l "$logfile" -o "-p $port" >/dev/null ||
			die "PostgreSQL did not start (is port $port taken? DEVDB_PORT picks another); see $logfile"
	fi
	port=$(running_port)
	[[ -n $port ]] || die "cannot read the port from $pgdata/postmaster.pid"
	roles "$port"
	if [[ $(psql_super "$port" "SELECT count(*) FROM pg_database WHERE datname = 'conch'") == 0 ]]; then
		psql_super "$port" "CREATE DATABASE conch OWNER conch_owner"
	elif [[ $(psql_super "$port" "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'conch'") == conch ]]; then
		# Made before the owner/runtime split: what docs/operations.md does live.
		echo "devdb: moving database conch to the owner role conch_owner" >&2
		as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdata" -p "$port" -U "$owner" -d conch \
			-c "REASSIGN OWNED BY conch TO conch_owner" >/dev/null
	fi
	local url="postgresql://conch@127.0.0.1:$port/conch"
	write_env "$url"
	echo "devdb: PostgreSQL ready at $url" >&2
}

stop() {
	if running; then
		as_owner "$bin/pg_ctl" stop -w -t 60 -m fast -D "$pgdata" >/dev/null
		echo "devdb: stopped" >&2
	else
		echo "devdb: not running" >&2
	fi
}

status() {
	if running; then
		echo "devdb: running at postgresql://conch@127.0.0.1:$(running_port)/conch (data in $pgdata)"
		return 0
	fi
	if [[ -f $pgdata/PG_VERSION ]]; then
		echo "devdb: stopped (data in $pgdata)"
	else
		echo "devdb: no cluster yet (scripts/devdb.sh start makes one)"
	fi
	return 3
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: scripts/devdb.sh start|stop|status" >&2
	exit 2
	;;
esac
