#!/usr/bin/env bash
# make bench: conch against a real PostgreSQL on this machine (bench/README.md).
#
# Starts its own PostgreSQL cluster and Slack stub under a temp dir, migrates,
# installs teams, serves bin/conch, and measures:
#   1. signed /dibs on + off at 1, 16 and 64 connections (bench/loadgen.c),
#      and the same SQL through pgbench, with 100 teams;
#   2. the same with 100,000 teams and 1,000,000 things;
#   3. the lateness of 1,000 timed releases due within the same 10 seconds;
#   4. background jobs per second (no-op releases, then DMs);
#   5. the server's peak resident memory;
#   6. fan-out against a Slack stand-in with latency and tier limits
#      (bench/fanout.mjs: timed hand-overs, /lunch start with 200 and 500
#      members, 1,000 teams polling at once).
# and beside conch, at 16 and 64 connections with 100 teams, the fixed peer
# (bench/peer: Bolt-js + pg, the same /dibs on|off and hand-over DM) and
# pgbench running exactly the peer's SQL (bench/pgbench_peer.sql), an
# open loop at 1,000 requests/s, and pg_test_fsync's figures for the disk.
# Prints a table and writes bench/results.json. Everything is removed on exit.
#
# Environment: BENCH_CONCH_BIN (default bin/conch), BENCH_LOADGEN (default
# build/bench/loadgen), BENCH_SECONDS (per run, default 10),
# BENCH_REPEAT (rounds of each run, default 3; the median counts),
# BENCH_TEAMS_LARGE (default 100000), BENCH_HTTP_THREADS / BENCH_JOB_THREADS
# (default: conch's defaults),
# BENCH_PERF=1 (perf record of the server during the 16-connection run with
# 100 teams, report in bench/perf-server.txt; BENCH_PERF=all: of the whole
# machine, with PostgreSQL's functions in bench/perf-postgres.txt), BENCH_SQL (a SQL file run as
# the application role after migrating: to try a schema change), BENCH_RESULTS
# (default bench/results.json), BENCH_FANOUT=0 (skip 6), BENCH_FANOUT_TEAMS
# (default 1000), BENCH_SLACK_LATENCY_MS (default 200), BENCH_ONLY=peer (only
# conch beside the peer and pgbench of its SQL at 16 and 64 connections,
# the open loops and pg_test_fsync: a few minutes, for work on the path). PGOPTIONS reaches conch, psql and pgbench alike.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

conch=$(realpath -m "${BENCH_CONCH_BIN:-bin/conch}")
pgbin=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
# Nothing of a developer's conch environment may leak into the run.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^CONCH_' || true)

loadgen=$(realpath -m "${BENCH_LOADGEN:-build/bench/loadgen}")
results=${BENCH_RESULTS:-$root/bench/results.json}
secs=${BENCH_SECONDS:-10}
repeat=${BENCH_REPEAT:-3}
run_warmup=1       # seconds at the start of every run that are not measured
users=50           # per team
things=10          # per team
teams_small=100
teams_large=${BENCH_TEAMS_LARGE:-100000}
timed_count=1000
timed_base=5       # the first release is due this many seconds after its hold
timed_spread=10    # ... and they are spread over this many seconds
noop_jobs=10000
dm_jobs=2000
failed=0

die() {
	echo "bench: $*" >&2
	exit 1
}

note() {
	echo "bench: $*" >&2
}

[[ -x $conch ]] || die "$conch is missing (make bin/conch)"
[[ -x $loadgen ]] || die "$loadgen is missing (make build/bench/loadgen)"
[[ -d bench/peer/node_modules/@slack/bolt ]] || die "the peer's packages are missing (cd bench/peer && npm ci)"
[[ -x $pgbin/initdb ]] || die "$pgbin/initdb is missing: install postgresql-15 (scripts/deps.sh)"
command -v pgbench >/dev/null || die "pgbench is missing: install postgresql-15 (scripts/deps.sh)"
command -v node >/dev/null || die "node is missing (scripts/deps.sh)"

# Other work on this machine skews every figure; say how much there is.
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
b0=$(busy)
sleep 2
busy_cores=$(awk -v a="$b0" -v b="$(busy)" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz / 2}')
if awk -v c="$busy_cores" 'BEGIN {exit !(c > 0.2)}'; then
	note "other work keeps $busy_cores cores busy: the figures will be lower and noisier than on a quiet machine"
fi

work=$(mktemp -d /tmp/conch-bench.XXXXXX)
chmod 755 "$work"
pgdata=$work/pg
server_pid=
peer_pid=
stub_pid=
perf_pid=

if [[ $(id -u) -eq 0 ]]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi

cleanup() {
	local rc=$?
	[[ -n $perf_pid ]] && kill -INT "$perf_pid" 2>/dev/null
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null || true
	fi
	if [[ -n $peer_pid ]] && kill -0 "$peer_pid" 2>/dev/null; then
		kill -TERM "$peer_pid" 2>/dev/null
		wait "$peer_pid" 2>/dev/null || true
	fi
	[[ -n $stub_pid ]] && kill -TERM "$stub_pid" 2>/dev/null && wait "$stub_pid" 2>/dev/null
	if [[ -f $pgdata/postmaster.pid ]]; then
		as_pg "$pgbin/pg_ctl" stop -D "$pgdata" -m immediate -w -t 30 >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

secret() {
	head -c 32 /dev/urandom | base64 | tr -d '\n'
}

# --- PostgreSQL --------------------------------------------------------------
# Durable settings (fsync, synchronous_commit and full_page_writes on, as in
# production); memory for the whole seeded database; no checkpoint inside a
# run (the seeding is followed by an explicit CHECKPOINT); no JIT (it only
# slows the seeding and percentile queries; OLTP plans never reach it).
pg_settings=(
	"listen_addresses = '127.0.0.1'"
	"unix_socket_directories = '$pgdata'"
	"max_connections = 200"
	"shared_buffers = 1GB"
	"fsync = on"
	"synchronous_commit = on"
	"full_page_writes = on"
	"wal_buffers = 16MB"
	"max_wal_size = 8GB"
	"checkpoint_timeout = 30min"
	"maintenance_work_mem = 256MB"
	"jit = off"
	"log_min_messages = warning"
	"log_line_prefix = '%m [%p] %d '"
)
# BENCH_PG_STATS=1: pg_stat_statements of every statement, nested ones
# (inside functions) too, into bench/pg-statements.txt at the end of the
# 100-team section: where PostgreSQL's time per command goes.
if [[ ${BENCH_PG_STATS:-} == 1 ]]; then
	pg_settings+=("shared_preload_libraries = 'pg_stat_statements'" "pg_stat_statements.track = all" "pg_stat_statements.track_planning = on"
		"track_functions = 'pl'")
fi

pgport=$(free_port)
mkdir -p "$pgdata"
chmod 700 "$pgdata"
[[ $(id -u) -eq 0 ]] && chown postgres:postgres "$pgdata"
note "PostgreSQL in $pgdata on 127.0.0.1:$pgport"
as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
	--no-instructions >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; die "initdb failed"; }
printf '\n# scripts/bench.sh\n%s\n' "$(printf '%s\n' "${pg_settings[@]}")" >>"$pgdata/postgresql.conf"
touch "$work/pg.log"
[[ $(id -u) -eq 0 ]] && chown postgres:postgres "$work/pg.log"
as_pg "$pgbin/pg_ctl" start -w -t 60 -D "$pgdata" -l "$work/pg.log" -o "-p $pgport" >/dev/null ||
	{ cat "$work/pg.log" >&2; die "PostgreSQL did not start"; }

sql() { # as the superuser, who bypasses RLS: seeding and measuring only
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres -d "${DB:-conch}" -tA "$@"
}
# The roles of production: conch_owner migrates, conch (conch_runtime) serves.
DB=postgres sql -c "CREATE ROLE conch_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE" \
	-c "CREATE ROLE conch_runtime NOLOGIN NOSUPERUSER NOBYPASSRLS" \
	-c "CREATE ROLE conch LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE IN ROLE conch_runtime" \
	-c "CREATE DATABASE conch OWNER conch_owner" \
	-c "CREATE ROLE peer LOGIN NOSUPERUSER" -c "CREATE DATABASE peer OWNER peer"
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U peer -d peer -f "$root/bench/peer/schema.sql" ||
	die "the peer's schema failed"
peer_url="postgresql://peer@127.0.0.1:$pgport/peer"
db_url="postgresql://conch@127.0.0.1:$pgport/conch"
export CONCH_DATABASE_MIGRATE_URL="postgresql://conch_owner@127.0.0.1:$pgport/conch"
DB=postgres sql -c "SELECT json_object_agg(name, current_setting(name)) FROM pg_settings
	WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_buffers',
	               'max_wal_size', 'checkpoint_timeout', 'max_connections', 'jit', 'wal_level',
	               'autovacuum', 'wal_sync_method')" >"$work/pg_settings.json"

# --- conch and the Slack stub -------------------------------------------------
export CONCH_DATABASE_URL=$db_url
export CONCH_LOG_LEVEL=warn # per-request info lines would be measured too
export CONCH_ASSETS_DIR=$root/assets
export CONCH_MIGRATIONS_DIR=$root/migrations
CONCH_SLACK_SIGNING_SECRET=$(secret)
CONCH_TOKEN_KEYS="1:$(secret)"
CONCH_SESSION_SECRET=$(secret)
export CONCH_SLACK_SIGNING_SECRET CONCH_TOKEN_KEYS CONCH_SESSION_SECRET
export CONCH_SLACK_CLIENT_ID=1111.2222
export CONCH_SLACK_CLIENT_SECRET=bench-client-secret
[[ -n ${BENCH_HTTP_THREADS:-} ]] && export CONCH_HTTP_THREADS=$BENCH_HTTP_THREADS
[[ -n ${BENCH_JOB_THREADS:-} ]] && export CONCH_JOB_THREADS=$BENCH_JOB_THREADS
: >"$work/conch.conf"

"$conch" migrate -c "$work/conch.conf" >"$work/migrate.log" 2>&1 ||
	{ cat "$work/migrate.log" >&2; die "conch migrate failed"; }
if [[ -n ${BENCH_SQL:-} ]]; then # a schema change to try before it becomes a migration
	note "applying $BENCH_SQL as the schema owner"
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U conch_owner -d conch -f "$BENCH_SQL" ||
		die "$BENCH_SQL failed"
fi

node "$root/bench/slack_stub.mjs" "$work/stub.port" >"$work/stub.log" 2>&1 &
stub_pid=$!
for _ in $(seq 100); do [[ -s $work/stub.port ]] && break; sleep 0.1; done
[[ -s $work/stub.port ]] || die "the Slack stub did not start (see $work/stub.log)"
stub_url="http://127.0.0.1:$(cat "$work/stub.port")"
export CONCH_SLACK_API_URL=$stub_url/api

# install_teams FROM TO: teams T<1000000+n> on the pro plan (no limits, timed
# releases allowed) with an active installation whose token is sealed.
install_teams() {
	sql -c "INSERT INTO teams (team_id, name, domain, plan, installed_at)
		SELECT 'T' || (1000000 + g), 'Bench team ' || g, 't' || (1000000 + g), 'pro', now()
		FROM generate_series($1, $2 - 1) g"
	node "$root/bench/seed.mjs" installations "$1" "$2" |
		sql -c "\\copy installations (team_id, app_id, bot_user_id, scopes, bot_token, installer_user_id) FROM STDIN"
}
install_teams 0 "$teams_small"
# extras off|on: the 100 teams' channel announcements and check-ins. The
# peer posts nothing but the hand-over DM, so conch is measured beside it
# doing the same: announcements off in the channels the load comes from
# and check-ins off (rows in dibs_channel_settings and dibs_settings, as
# `/dibs announce off` and `/dibs settings checkin off` make them). One
# more run at 16 connections has conch's defaults (both on).
extras() {
	if [[ $1 == off ]]; then
		sql -c "INSERT INTO dibs_channel_settings (team_id, channel_id, announce)
			SELECT 'T' || (1000000 + g), 'C' || (1000000 + g), false FROM generate_series(0, $teams_small - 1) g
			ON CONFLICT (team_id, channel_id) DO UPDATE SET announce = false" \
			-c "INSERT INTO dibs_settings (team_id, checkin_seconds)
			SELECT 'T' || (1000000 + g), NULL FROM generate_series(0, $teams_small - 1) g
			ON CONFLICT (team_id) DO UPDATE SET checkin_seconds = NULL"
	else
		local small="SELECT 'T' || (1000000 + g) FROM generate_series(0, $teams_small - 1) g"
		sql -c "DELETE FROM dibs_channel_settings WHERE team_id IN ($small)" \
			-c "DELETE FROM dibs_settings WHERE team_id IN ($small)"
	fi
}
extras off
# The peer's installations: the same teams, with tokens the stub accepts.
DB=peer sql -c "INSERT INTO peer_installations (team_id, bot_token, bot_user_id)
	SELECT 'T' || (1000000 + g), 'xoxb-bench-T' || (1000000 + g), 'U0BOT00001'
	FROM generate_series(0, $teams_small - 1) g"

conch_port=$(free_port)
export CONCH_LISTEN=127.0.0.1:$conch_port
export CONCH_PUBLIC_URL=http://127.0.0.1:$conch_port
"$conch" serve -c "$work/conch.conf" >"$work/conch.log" 2>&1 &
server_pid=$!
node "$root/bench/report.mjs" wait-http "http://127.0.0.1:$conch_port/healthz" 20 ||
	{ cat "$work/conch.log" >&2; die "conch did not become healthy"; }
http_threads=${CONCH_HTTP_THREADS:-$(($(nproc) * 2))}
job_threads=${CONCH_JOB_THREADS:-2}
note "conch (pid $server_pid) on 127.0.0.1:$conch_port, Slack stub at $stub_url"
peer_port=$(free_port)
PEER_PORT=$peer_port PEER_DATABASE_URL=$peer_url PEER_SIGNING_SECRET=$CONCH_SLACK_SIGNING_SECRET \
	PEER_SLACK_API_URL=$stub_url/api/ node "$root/bench/peer/app.mjs" >"$work/peer.log" 2>&1 &
peer_pid=$!
node "$root/bench/report.mjs" wait-http "http://127.0.0.1:$peer_port/healthz" 20 ||
	{ cat "$work/peer.log" >&2; die "the peer did not become healthy"; }
note "peer (Bolt-js + pg, 2 workers, pid $peer_pid) on 127.0.0.1:$peer_port"

{
	echo "cpus=$(nproc)"
	echo "busy_cores=$busy_cores"
	echo "kernel=$(uname -r)"
	echo "pg_version=$("$pgbin/postgres" --version | awk '{print $3}')"
	echo "conch_version=$("$conch" version | awk '{print $2}')"
	echo "conch_bin=$conch"
	echo "bench_sql=${BENCH_SQL:-}"
	echo "pgoptions=${PGOPTIONS:-}"
	echo "http_threads=$http_threads"
	echo "job_threads=$job_threads"
	echo "clk_tck=$(getconf CLK_TCK)"
	echo "seconds=$secs"
	echo "repeat=$repeat"
	echo "run_warmup=$run_warmup"
	echo "users=$users"
	echo "things=$things"
	echo "teams_small=$teams_small"
	echo "teams_large=$teams_large"
} >"$work/meta.env"

# --- measuring ------------------------------------------------------------------
postmaster=$(head -n1 "$pgdata/postmaster.pid")

# CPU ticks so far of the application under load: conch, or during a peer
# run the peer (its primary and its workers).
app_ticks() {
	if [[ -n ${measuring_peer:-} ]]; then
		# shellcheck disable=SC2046
		awk '{print $14 + $15}' "/proc/$peer_pid/stat" \
			$(ps --ppid "$peer_pid" -o pid= | sed 's|^ *|/proc/|; s|$|/stat|') 2>/dev/null |
			awk '{s += $1} END {print s + 0}'
	else
		awk '{print $14 + $15}' "/proc/$server_pid/stat"
	fi
}

# CPU ticks so far, on one line: conch (or the peer: app_ticks); this cluster's PostgreSQL processes
# (the postmaster's own, its live children's, and those of children it has
# reaped, such as pgbench's backends); the whole machine (busy, all CPUs);
# and this script's finished children (pgbench, once waited for).
cpu_ticks() {
	local pids
	pids=$(ps --ppid "$postmaster" -o pid= | sed 's|^ *|/proc/|; s|$|/stat|' | tr '\n' ' ')
	{
		app_ticks
		# shellcheck disable=SC2086
		{
			awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat"
			awk '{print $14 + $15}' $pids 2>/dev/null
		} | awk '{s += $1} END {print s + 0}'
		awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
		awk '{print $16 + $17}' "/proc/$$/stat"
	} | tr '\n' ' '
}

# CPU ticks so far of each of conch's threads: "TID NAME TICKS" lines.
task_ticks() {
	local t
	for t in /proc/"$server_pid"/task/*; do
		echo "${t##*/} $(tr -d ' ' <"$t/comm") $(awk '{print $14 + $15}' "$t/stat")"
	done 2>/dev/null
}

# cpu_window FILE BEFORE AFTER WALL_SECONDS: the CPU a run took, by whom.
cpu_window() {
	local b a
	read -r -a b <<<"$2"
	read -r -a a <<<"$3"
	{
		echo "conch_ticks=$((a[0] - b[0]))"
		echo "postgres_ticks=$((a[1] - b[1]))"
		echo "machine_ticks=$((a[2] - b[2]))"
		echo "children_ticks=$((a[3] - b[3]))"
		echo "wall_s=$4"
		echo "hz=$(getconf CLK_TCK)"
	} >"$1"
}

# Waits until no job is due or running (the DMs of the previous step).
drain_jobs() {
	local left
	for _ in $(seq 600); do
		left=$(sql -c "SELECT count(*) FROM jobs WHERE state = 'running'
			OR (state = 'queued' AND due_at <= now())")
		[[ $left == 0 ]] && return 0
		sleep 0.2
	done
	note "jobs still pending after 120 s: $left"
}

# onoff NAME CONNS TEAMS [RATE]: one measured run of the load generator
# (closed loop, or open loop at RATE requests/s), into NAME.json; against
# the peer when measuring_peer is set.
onoff() {
	local name=$1 c=$2 teams=$3 rate=${4:-} before t0 port=$conch_port what=server
	[[ -n ${measuring_peer:-} ]] && port=$peer_port what=peer
	local args=(--port "$port" --secret "$CONCH_SLACK_SIGNING_SECRET" --connections "$c"
		--warmup "$run_warmup" --duration "$secs" --teams "$teams" --users "$users"
		--things "$things" --seed "$RANDOM")
	[[ -n $rate ]] && args+=(--rate "$rate")
	drain_jobs
	task_ticks >"$work/$name.threads.before"
	before=$(cpu_ticks)
	t0=$(date +%s.%N)
	"$loadgen" "${args[@]}" >"$work/$name.json" 2>"$work/loadgen.err" || {
		cat "$work/loadgen.err" >&2
		die "loadgen failed"
	}
	cpu_window "$work/$name.cpu.env" "$before" "$(cpu_ticks)" "$(awk "BEGIN {print $(date +%s.%N) - $t0}")"
	task_ticks >"$work/$name.threads.after"
	head -n 5 "$work/loadgen.err" >&2
	node "$root/bench/report.mjs" line "$what" "$work/$name.json" "$work/$name.cpu.env" \
		"$work/$name.threads" >&2 || failed=1
}

backends() {
	ps --ppid "$postmaster" -o pid= | wc -l
}

# pgbench_run NAME SCRIPT CONNS TEAMS: the same SQL straight to PostgreSQL.
pgbench_run() {
	local name=$1 script=$2 c=$3 teams=$4 before t0 n
	local logs=$work/$name
	mkdir -p "$logs"
	drain_jobs
	n=$(backends)
	before=$(cpu_ticks)
	t0=$(date +%s.%N)
	# The peer's SQL as node-postgres sends it: unnamed statements, as the
	# peer's role on its database; conch's prepared, as conch.
	local mode=prepared role=conch
	[[ $script == peer ]] && mode=extended role=peer
	pgbench -n -M "$mode" -c "$c" -j 1 -T "$secs" -f "$root/bench/pgbench_$script.sql" \
		-D teams="$teams" -D users="$users" -D things="$things" -l --log-prefix="$logs/log" \
		-h 127.0.0.1 -p "$pgport" -U "$role" "$role" >"$logs.out" 2>&1 ||
		{ tail -n 20 "$logs.out" >&2; note "pgbench failed"; failed=1; }
	# Until the postmaster has reaped pgbench's backends, their CPU is nowhere.
	for _ in $(seq 50); do [[ $(backends) -le $n ]] && break; sleep 0.1; done
	cpu_window "$logs.cpu.env" "$before" "$(cpu_ticks)" "$(awk "BEGIN {print $(date +%s.%N) - $t0}")"
	node "$root/bench/report.mjs" pgbench "$logs.out" "$logs" "$c" "$secs" >"$logs.json"
	node "$root/bench/report.mjs" line "pgbench $script" "$logs.json" "$logs.cpu.env" >&2 || failed=1
}

# matrix SIZE TEAMS SCRIPTS...: for 1, 16 and 64 connections, $repeat rounds
# of the server run and a pgbench run per script, interleaved, so that other
# work on the machine weighs on all of them alike.
matrix() {
	local size=$1 teams=$2 c r script conns=(1 16 64)
	shift 2
	[[ ${BENCH_ONLY:-} == peer ]] && conns=(16 64)
	for c in "${conns[@]}"; do
		for r in $(seq "$repeat"); do
			note "$size database, $c connections, round $r of $repeat"
			[[ $size == small && $c == 16 && $r == 1 ]] && perf_start
			onoff "onoff-$size-$c-$r" "$c" "$teams"
			perf_stop
			for script in "$@"; do pgbench_run "pgbench-$size-$script-$c-$r" "$script" "$c" "$teams"; done
			# The peer and its SQL, at the connection counts the targets name.
			if [[ $size == small && $c != 1 ]]; then
				measuring_peer=1
				onoff "peer-$size-$c-$r" "$c" "$teams"
				measuring_peer=
				pgbench_run "pgbench-$size-peer-$c-$r" peer "$c" "$teams"
			fi
		done
	done
}

db_size() { # SIZE: what the database holds
	sql -c "SELECT json_build_object('teams', (SELECT count(*) FROM teams),
		'things', (SELECT count(*) FROM things), 'holds', (SELECT count(*) FROM holds),
		'events', (SELECT count(*) FROM dibs_events), 'jobs', (SELECT count(*) FROM jobs),
		'size_mb', pg_database_size('conch') / 1048576.0)" >"$work/db-$1.json"
}

perf_start() {
	[[ ${BENCH_PERF:-} == 1 || ${BENCH_PERF:-} == all ]] || return 0
	command -v perf >/dev/null || { note "BENCH_PERF=$BENCH_PERF but perf is missing"; return 0; }
	local who=(-p "$server_pid")
	[[ $BENCH_PERF == all ]] && who=(-a)
	perf record -F 499 -g "${who[@]}" -o "$work/perf.data" >/dev/null 2>&1 &
	perf_pid=$!
}

perf_stop() {
	[[ -n $perf_pid ]] || return 0
	kill -INT "$perf_pid" 2>/dev/null
	wait "$perf_pid" 2>/dev/null || true
	perf_pid=
	perf report -i "$work/perf.data" --stdio --no-children --percent-limit 0.5 \
		>"$root/bench/perf-server.txt" 2>/dev/null
	if [[ $BENCH_PERF == all ]]; then # PostgreSQL's processes, by function
		perf report -i "$work/perf.data" --stdio --no-children --comm postgres --sort symbol -g none \
			--percent-limit 0.3 >"$root/bench/perf-postgres.txt" 2>/dev/null
		note "perf profile of PostgreSQL in bench/perf-postgres.txt"
	fi
	note "perf profile of the server in bench/perf-server.txt"
}

# --- 1. 100 teams -----------------------------------------------------------------
note "warm-up: 5 s at 16 connections (creates the things)"
"$loadgen" --port "$conch_port" --secret "$CONCH_SLACK_SIGNING_SECRET" --connections 16 \
	--duration 5 --teams "$teams_small" --users "$users" --things "$things" \
	>"$work/warmup.json" 2>"$work/loadgen.err" || { cat "$work/loadgen.err" >&2; die "warm-up failed"; }
sql -c "VACUUM ANALYZE" -c "CHECKPOINT"
db_size small

note "on/off with $teams_small teams: $secs s per run, $repeat rounds"
if [[ ${BENCH_ONLY:-} == peer ]]; then
	matrix small "$teams_small"
else
	matrix small "$teams_small" command server
	# Latency without coordinated omission: an open loop at half the median
	# rate the closed loop reached at 16 connections.
	half=$(node "$root/bench/report.mjs" half-rate "$work" small 16)
	note "open loop: $half requests/s over 16 connections"
	onoff open-small-16 16 "$teams_small" "$half"
fi
note "open loop: 1000 requests/s over 16 connections"
onoff open1000-small-16 16 "$teams_small" 1000
# conch's defaults: announcements and check-ins on (see extras above).
note "conch with its defaults (channel announcements and check-ins on), 16 connections"
extras on
onoff defaults-small-16 16 "$teams_small"
extras off
measuring_peer=1
onoff open1000-peer-16 16 "$teams_small" 1000
measuring_peer=
kill -TERM "$peer_pid" && wait "$peer_pid" || note "the peer did not stop cleanly (see $work/peer.log)"
peer_pid=
grep -q . "$work/peer.log" && { note "the peer logged:"; head -n 5 "$work/peer.log" >&2; }

# What the disk allows: a durable commit waits for one WAL flush.
note "pg_test_fsync (1 s per test) on the cluster's disk"
as_pg "$pgbin/pg_test_fsync" -s 1 -f "$pgdata/fsync.test" >"$work/fsync.txt" 2>&1 ||
	note "pg_test_fsync failed: $(tail -n 2 "$work/fsync.txt")"

if [[ ${BENCH_PG_STATS:-} == 1 ]]; then
	DB=conch sql -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
	psql -X -h 127.0.0.1 -p "$pgport" -U postgres -d conch -c "
		SELECT calls, round(total_exec_time::numeric, 0) AS exec_ms,
		       round(total_plan_time::numeric, 0) AS plan_ms, plans,
		       round((1000 * total_exec_time / nullif(calls, 0))::numeric, 1) AS us_per_call,
		       left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
		  FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		 WHERE d.datname IN ('conch', 'peer') ORDER BY total_exec_time DESC LIMIT 60" \
		>"$root/bench/pg-statements.txt" 2>&1
	note "statements by PostgreSQL time in bench/pg-statements.txt"
fi
if [[ ${BENCH_ONLY:-} == peer ]]; then
	echo
	node "$root/bench/report.mjs" final "$work" "$results"
	exit "$failed"
fi

# --- 2. 100,000 teams, 1,000,000 things --------------------------------------------
note "seeding $teams_large teams and $((teams_large * things)) things"
t0=$SECONDS
install_teams "$teams_small" "$teams_large"
# Built consistent, so the triggers (foreign keys) may be skipped for speed.
sql -c "SET session_replication_role = replica" \
	-c "INSERT INTO things (team_id, name, display_name, channel_id, created_by)
		SELECT 'T' || (1000000 + g), 'thing-' || k, 'thing-' || k, 'C' || (1000000 + g), 'U1000000'
		FROM generate_series($teams_small, $teams_large - 1) g, generate_series(0, $things - 1) k" \
	-c "INSERT INTO dibs_events (team_id, thing, user_id, action)
		SELECT 'T' || (1000000 + g), 'thing-' || k, 'U1000000', 'create'
		FROM generate_series($teams_small, $teams_large - 1) g, generate_series(0, $things - 1) k"
sql -c "VACUUM ANALYZE" -c "CHECKPOINT"
echo "seed_seconds=$((SECONDS - t0))" >>"$work/meta.env"
db_size large
note "seeded in $((SECONDS - t0)) s: $(cat "$work/db-large.json")"

note "on/off with $teams_large teams"
"$loadgen" --port "$conch_port" --secret "$CONCH_SLACK_SIGNING_SECRET" --connections 16 \
	--duration 3 --teams "$teams_large" --users "$users" --things "$things" \
	>/dev/null 2>"$work/loadgen.err" || { cat "$work/loadgen.err" >&2; die "warm-up failed"; }
matrix large "$teams_large" command

# --- 3. timed releases ----------------------------------------------------------------
note "$timed_count timed releases due within $timed_spread s"
drain_jobs
"$loadgen" --port "$conch_port" --secret "$CONCH_SLACK_SIGNING_SECRET" --connections 16 --timed \
	--count "$timed_count" --teams "$teams_small" --for-base "$timed_base" --for-spread "$timed_spread" \
	>"$work/timed-create.json" 2>"$work/loadgen.err" || { cat "$work/loadgen.err" >&2; die "loadgen failed"; }
lateness_sql="
	SELECT e.at - j.due_at AS late, j.finished_at - j.due_at AS finished
	  FROM jobs j
	  LEFT JOIN dibs_events e ON e.team_id = j.team_id AND e.thing = j.payload->>'thing'
	                         AND e.action = 'expire'
	 WHERE j.kind = 'dibs.release' AND j.payload->>'thing' LIKE 'rel-%'"
for _ in $(seq $(((timed_base + timed_spread + 30) * 5))); do
	released=$(sql -c "SELECT count(late) FROM ($lateness_sql) x")
	[[ $released -ge $timed_count ]] && break
	sleep 0.2
done
sql -c "SELECT json_build_object('count', $timed_count, 'scheduled', count(*), 'released', count(late),
	'p50_ms', 1000 * extract(epoch FROM percentile_disc(0.5) WITHIN GROUP (ORDER BY late)),
	'p99_ms', 1000 * extract(epoch FROM percentile_disc(0.99) WITHIN GROUP (ORDER BY late)),
	'max_ms', 1000 * extract(epoch FROM max(late)),
	'min_ms', 1000 * extract(epoch FROM min(late)),
	'finished_p99_ms', 1000 * extract(epoch FROM percentile_disc(0.99) WITHIN GROUP (ORDER BY finished)))
	FROM ($lateness_sql) x" >"$work/timed.json"
note "timed releases: $(cat "$work/timed.json")"

# --- 4. background jobs -----------------------------------------------------------------
# jobs_rate NAME KIND COUNT PAYLOAD-SQL: enqueues COUNT jobs in one
# transaction (g = 1..COUNT), waits until none is queued or running, and
# rates them from the first claim to the last finish.
jobs_rate() {
	local name=$1 kind=$2 n=$3 payload=$4 left
	drain_jobs
	sql -c "SELECT count(job_enqueue('$kind', 'T' || (1000000 + g % $teams_small), $payload, NULL,
		'bench-$name-' || g)) FROM generate_series(1, $n) g" >/dev/null
	for _ in $(seq 1800); do
		left=$(sql -c "SELECT count(*) FROM jobs WHERE kind = '$kind' AND dedupe_key LIKE 'bench-$name-%'
			AND state IN ('queued', 'running')")
		[[ $left == 0 ]] && break
		sleep 0.1
	done
	sql -c "SELECT json_build_object('kind', '$kind', 'jobs', count(*),
		'done', count(*) FILTER (WHERE state = 'done'), 'dead', count(*) FILTER (WHERE state = 'dead'),
		'pending', count(*) FILTER (WHERE state IN ('queued', 'running')),
		'seconds', extract(epoch FROM max(finished_at) - min(started_at)),
		'per_second', count(*) FILTER (WHERE state = 'done') / nullif(extract(epoch FROM max(finished_at) - min(started_at)), 0),
		'enqueue_to_last_s', extract(epoch FROM max(finished_at) - min(created_at)))
		FROM jobs WHERE kind = '$kind' AND dedupe_key LIKE 'bench-$name-%'" >"$work/jobs-$name.json"
	note "jobs ($name): $(cat "$work/jobs-$name.json")"
}
note "background jobs: $noop_jobs no-op releases, then $dm_jobs DMs"
jobs_rate noop dibs.release "$noop_jobs" "jsonb_build_object('thing', 'gone-' || g, 'hold_id', g)"
jobs_rate dm dibs.notify "$dm_jobs" "jsonb_build_object('event', 'expired', 'thing', 'thing-' || (g % $things),
	'user', 'U' || (1000000 + g % $users), 'hold_id', g)"
node "$root/bench/report.mjs" get "$stub_url/stats" >"$work/stub.json" || true

# --- 5. memory, and a clean stop ---------------------------------------------------------
awk '/^VmHWM:/ {print "vmhwm_kb=" $2} /^VmRSS:/ {print "vmrss_kb=" $2}' \
	"/proc/$server_pid/status" >>"$work/meta.env"
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
[[ $rc -eq 0 ]] || failed=1
# Start-up warnings about features left unconfigured (Stripe) are expected.
grep -v 'is not set' "$work/conch.log" >"$work/conch-run.log" || true
{
	echo "server_exit=$rc"
	echo "log_warnings=$(grep -c '"level":"warn"' "$work/conch-run.log" || true)"
	echo "log_errors=$(grep -c '"level":"error"' "$work/conch-run.log" || true)"
} >>"$work/meta.env"
if grep -q '"level":"\(warn\|error\)"' "$work/conch-run.log"; then
	note "the server logged warnings or errors; the first few:"
	grep '"level":"\(warn\|error\)"' "$work/conch-run.log" | head -n 5 >&2
fi

# --- 6. fan-out against a slow Slack with its tier limits (bench/fanout.mjs) -----------------
# Its own PostgreSQL and server; BENCH_FANOUT=0 skips it.
if [[ ${BENCH_FANOUT:-1} != 0 ]]; then
	note "fan-out: a Slack stand-in answering after ${BENCH_SLACK_LATENCY_MS:-200} ms, with its tier limits"
	BENCH_CONCH_BIN=$conch node "$root/bench/fanout.mjs" --out "$work/fanout.json" "$conch" >&2 || failed=1
fi

echo
node "$root/bench/report.mjs" final "$work" "$results"
echo
echo "bench: figures in $results"
exit "$failed"
