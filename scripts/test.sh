#!/usr/bin/env bash
# The whole of `make test` once everything is built:
#   unit tests (plain and under ASan + UBSan), repository checks
#   (tests/scripts: docs against the code, package sets), the Prometheus
#   alerting rules (promtool), SQL tests and integration tests
#   against one throwaway PostgreSQL cluster (some of them again behind
#   PgBouncer), and a short fuzz run.
# Every suite runs even when an earlier one failed; the exit status is
# non-zero when any failed. Logs go to tests/output/.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
out=$root/tests/output
mkdir -p "$out"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-30}

summary=()
total_pass=0
total_fail=0
started=$SECONDS

# record NAME PASSED FAILED SECONDS
record() {
	local state=ok
	[[ $3 -gt 0 ]] && state=FAIL
	summary+=("$(printf '%-28s %-4s %4d passed %4d failed %5ds' "$1" "$state" "$2" "$3" "$4")")
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
}

# Counts from a log: Check ("NN%: Checks: N, Failures: N, Errors: N"),
# node's runner ("ℹ pass N" / "# pass N"), or "N passed, N failed" (plain,
# and script, where a script that prints no counts is one test).
counts() {
	local log=$1 kind=$2 p f c e
	case $kind in
	check)
		read -r c f e < <(grep -Eo 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" |
			awk -F'[:,] *' '{c+=$2; f+=$4; e+=$6} END {print c+0, f+0, e+0}')
		p=$((c - f - e))
		f=$((f + e))
		;;
	node)
		p=$(grep -Eo '^(ℹ|#) pass [0-9]+' "$log" | tail -n1 | grep -Eo '[0-9]+$' || true)
		f=$(grep -Eo '^(ℹ|#) (fail|cancelled) [0-9]+' "$log" | grep -Eo '[0-9]+$' | awk '{s+=$1} END {print s+0}')
		;;
	plain | script)
		read -r p f < <(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1 | awk '{print $1, $3}')
		;;
	esac
	echo "${p:-0} ${f:-0}"
}

# suite NAME KIND TIMEOUT CMD...: runs CMD, tees its output to a log, and
# records its counts; a non-zero exit with no failure counted is one failure
# (a crash, a timeout, or no test run at all).
suite() {
	local name=$1 kind=$2 limit=$3
	shift 3
	local log=$out/${name//[^A-Za-z0-9_.-]/_}.log t0=$SECONDS rc p f
	echo
	echo "=== $name: $*"
	timeout --kill-after=15 "$limit" "$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	[[ $rc -eq 124 || $rc -eq 137 ]] && echo "=== $name: timed out after ${limit}s"
	read -r p f < <(counts "$log" "$kind")
	if [[ $rc -ne 0 && $f -eq 0 ]]; then
		f=1
	elif [[ $kind == script && $rc -eq 0 && $p -eq 0 && $f -eq 0 ]]; then
		p=1 # a script without counts passes as one test
	elif [[ $rc -eq 0 && $p -eq 0 && $f -eq 0 ]]; then
		echo "=== $name: ran no test"
		f=1
	fi
	record "$name" "$p" "$f" $((SECONDS - t0))
}

fail_suite() {
	echo "=== $1: FAIL: $2" >&2
	record "$1" 0 1 0
}

need_bin() {
	[[ -x $1 ]] && return 0
	fail_suite "$2" "$1 is missing (make $1)"
	return 1
}

# --- unit ---------------------------------------------------------------
need_bin bin/unit-tests unit && suite unit check 300 bin/unit-tests
need_bin bin/unit-tests-asan unit-asan && suite unit-asan check 300 bin/unit-tests-asan

# --- repository checks (docs follow the code; package sets) ---------------
shopt -s nullglob
script_tests=(tests/scripts/*_test.sh)
shopt -u nullglob
for t in "${script_tests[@]}"; do
	suite "scripts/$(basename "$t" .sh)" script 120 bash "$t"
done

# --- alerting rules: valid, and their tests pass -------------------------
if command -v promtool >/dev/null; then
	suite prometheus script 120 bash -c 'cd deploy/prometheus &&
		promtool check rules alerts.yml && promtool test rules alerts_test.yml'
else
	fail_suite prometheus "promtool is missing (scripts/deps.sh test installs the prometheus package)"
fi

# --- one PostgreSQL for the SQL and integration suites ------------------
stop_pg() {
	if [[ -n ${TEST_CONCH_PG_DIR:-} ]]; then
		node tests/lib/pg-cli.mjs stop "$TEST_CONCH_PG_DIR" || echo "test: could not stop PostgreSQL at $TEST_CONCH_PG_DIR" >&2
		unset TEST_CONCH_PG_DIR
	fi
}
trap stop_pg EXIT
trap 'stop_pg; exit 130' INT TERM

pg_ok=0
if coords=$(timeout 120 node tests/lib/pg-cli.mjs start); then
	eval "$coords"
	pg_ok=1
	echo "test: PostgreSQL for this run on 127.0.0.1:$TEST_CONCH_PG_PORT ($TEST_CONCH_PG_DIR)"
else
	fail_suite postgresql "could not start a throwaway cluster (see above)"
fi

# --- SQL tests ------------------------------------------------------------
# Each script gets the run's cluster (TEST_CONCH_PG_*, and PG* for psql as
# the superuser) and makes its own database.
shopt -s nullglob
sql_tests=(tests/sql/*.sh)
shopt -u nullglob
for t in "${sql_tests[@]}"; do
	name=sql/$(basename "$t" .sh)
	if [[ $pg_ok -eq 1 ]]; then
		suite "$name" script 300 env PGHOST="$TEST_CONCH_PG_HOST" PGPORT="$TEST_CONCH_PG_PORT" \
			PGUSER="$TEST_CONCH_PG_SUPERUSER" PGDATABASE=postgres bash "$t"
	else
		fail_suite "$name" "no PostgreSQL"
	fi
done

# --- database layer and job runner (C, against the cluster) ----------------
# Each binary gets a fresh database owned by the schema owner; the suite
# migrates as the owner and runs as the runtime role, as production does.
db_suite() {
	local name=$1 bin=$2 db=conch_${1//-/_}
	need_bin "$bin" "$name" || return
	if [[ $pg_ok -ne 1 ]]; then
		fail_suite "$name" "no PostgreSQL"
		return
	fi
	psql -qX -h "$TEST_CONCH_PG_HOST" -p "$TEST_CONCH_PG_PORT" -U "$TEST_CONCH_PG_SUPERUSER" \
		-d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db OWNER conch_owner" >/dev/null ||
		{ fail_suite "$name" "could not create database $db"; return; }
	suite "$name" check 300 env \
		TEST_CONCH_DATABASE_URL="postgresql://conch@127.0.0.1:$TEST_CONCH_PG_PORT/$db" \
		TEST_CONCH_MIGRATE_URL="postgresql://conch_owner@127.0.0.1:$TEST_CONCH_PG_PORT/$db" "$bin"
}
db_suite db bin/db-tests
db_suite db-asan bin/db-tests-asan

# --- integration ------------------------------------------------------------
if [[ $pg_ok -eq 1 ]]; then
	if [[ ! -d node_modules/pg ]]; then
		fail_suite integration "node_modules is missing (npm ci)"
	else
		suite integration node 540 node --test --test-concurrency=2 --test-timeout=240000 \
			--test-reporter=spec tests/integration/
		# The same Dibs, billing and instances suites with PgBouncer (transaction
		# mode) in front of the database: a statement error in its log or
		# conch's fails them (tests/lib/pgbouncer.mjs).
		suite integration-pgbouncer node 420 env TEST_CONCH_PGBOUNCER=1 node --test \
			--test-concurrency=2 --test-timeout=240000 --test-reporter=spec \
			tests/integration/dibs.test.mjs tests/integration/dibs_slack.test.mjs \
			tests/integration/billing.test.mjs tests/integration/instances.test.mjs
		if [[ -d tests/browser ]]; then
			suite browser node 300 node --test --test-concurrency=1 --test-timeout=240000 \
				--test-reporter=spec tests/browser/
		fi
	fi
else
	fail_suite integration "no PostgreSQL"
fi
stop_pg

# --- fuzz (quick) -----------------------------------------------------------
shopt -s nullglob
fuzz_src=(tests/fuzz/fuzz_*.c)
shopt -u nullglob
fuzz_bins=()
for s in "${fuzz_src[@]}"; do
	fuzz_bins+=("build/fuzz/$(basename "$s" .c)")
done
if [[ ${#fuzz_bins[@]} -gt 0 ]]; then
	suite fuzz plain 600 scripts/fuzz.sh 5 "${fuzz_bins[@]}"
else
	echo "=== fuzz: no targets in tests/fuzz/fuzz_*.c"
fi

# --- summary --------------------------------------------------------------
echo
echo "=== summary ($((SECONDS - started))s; logs in tests/output/)"
for line in "${summary[@]}"; do
	echo "  $line"
done
echo "tests: $total_pass passed, $total_fail failed"
[[ $total_fail -eq 0 ]]
