#!/usr/bin/env bash
# Tests the Dibs state in SQL (migrations/003_dibs.sql) against a throwaway
# PostgreSQL cluster: every function outcome, timers and their jobs, RLS,
# 50 clients racing for one thing, and random interleavings of many users
# on many things checked against a replay of the event log.
#
#   tests/sql/dibs_test.sh        (as root, or as a user who can run initdb)
#
# Exits non-zero on any failure; the cluster is removed on exit.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
[ -x "${PGBIN:-}/initdb" ] || PGBIN=$(dirname "$(command -v initdb)")
TMP=$(mktemp -d /tmp/dibs-sql.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
PASS=0
FAIL=0

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
	as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -m immediate stop >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT

die() {
	echo "dibs_test: $*" >&2
	[ -f "$TMP/log" ] && tail -n 20 "$TMP/log" >&2
	echo "0 passed, 1 failed"
	exit 1
}

# --- the cluster ------------------------------------------------------------

[ "$(id -u)" = 0 ] && chown postgres "$TMP"
as_pg "$PGBIN/initdb" -D "$TMP/data" -U postgres -A trust -E UTF8 --no-locale >"$TMP/initdb.log" 2>&1 ||
	die "initdb failed: $(tail -n 5 "$TMP/initdb.log")"
as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/log" -w -t 30 \
	-o "-k $TMP -c listen_addresses='' -p $PORT -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=150" \
	start >/dev/null || die "pg_ctl start failed"

PSQL=(psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$TMP" -p "$PORT")
su_sql() { "${PSQL[@]}" -U postgres -d postgres "$@"; }
app() { "${PSQL[@]}" -U dibs_app -d dibs_app "$@"; }
owner() { "${PSQL[@]}" -U dibs_owner -d dibs_app "$@"; }

# The roles of production: the schema owner runs the migrations; the
# application role (a member of conch_runtime) owns nothing.
su_sql -c "CREATE ROLE dibs_owner LOGIN NOSUPERUSER NOBYPASSRLS" \
	-c "CREATE ROLE conch_runtime NOLOGIN" \
	-c "CREATE ROLE dibs_app LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE conch_runtime" \
	-c "CREATE DATABASE dibs_app OWNER dibs_owner" ||
	die "cannot create the roles"
for f in "$ROOT"/migrations/[0-9][0-9][0-9]_*.sql; do
	owner -1 -f "$f" >/dev/null || die "migration $(basename "$f") failed"
done

# --- helpers ----------------------------------------------------------------

# Runs SQL in one transaction scoped to a team (as tx_begin does).
in_team() {
	local team=$1
	shift
	printf "BEGIN;\nSELECT set_config('conch.team_id', '%s', true) \\\\g /dev/null\n%s\nCOMMIT;\n" \
		"$team" "$*" | app -f - 2>&1
}

# Runs SQL as the schema owner, whom RLS does not bind (set-up, inspection).
as_owner() {
	printf "BEGIN;\n%s\nCOMMIT;\n" "$*" | owner -f - 2>&1
}

check() { # name want got
	if [ "$2" == "$3" ]; then
		PASS=$((PASS + 1))
	else
		FAIL=$((FAIL + 1))
		printf 'FAIL %s\n  want: %s\n  got:  %s\n' "$1" "$2" "$3"
	fi
}

t() { # name team want sql
	check "$1" "$3" "$(in_team "$2" "$4")"
}

fails() { # name team error-substring sql: the statement must fail
	local got
	if ! got=$(in_team "$2" "$4") && [[ $got == *"$3"* ]]; then
		PASS=$((PASS + 1))
	else
		FAIL=$((FAIL + 1))
		printf 'FAIL %s\n  want an error with: %s\n  got:  %s\n' "$1" "$3" "$got"
	fi
}

ON="SELECT status, position, holder, hold_id IS NOT NULL, release_at IS NOT NULL FROM dibs_on"
HOLD="SELECT h.hold_id FROM holds h WHERE h.team_id = 'T1' AND h.thing"

as_owner "INSERT INTO teams (team_id) VALUES ('T1'), ('T2'), ('T3'), ('T4');" >/dev/null ||
	die "cannot create teams"

check "the app role is not superuser and cannot bypass RLS" "f" \
	"$(app -c "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")"

# --- on, off, queue ---------------------------------------------------------

t "on a free thing holds it" T1 "holding||alice|t|f" \
	"$ON('T1', 'Staging', 'alice', 'C1', NULL, NULL, NULL);"
t "the thing is created once, canonical name, display as typed" T1 "staging|Staging|C1|alice" \
	"SELECT name, display_name, channel_id, created_by FROM things WHERE team_id = 'T1';"
t "on again by the holder is a no-op" T1 "already_holding||alice|t|f" \
	"$ON('T1', 'STAGING', 'alice', 'C1', NULL, NULL, NULL);"
t "a second user queues at 1" T1 "queued|1|alice|f|f" \
	"$ON('T1', 'staging', 'bob', 'C1', NULL, NULL, NULL);"
t "a third user queues at 2 with for and because" T1 "queued|2|alice|f|f" \
	"$ON('T1', 'staging', 'carol', 'C1', 600, 'review', NULL);"
t "queueing again is a no-op that says the position" T1 "already_queued|1|alice|f|f" \
	"$ON('T1', 'staging', 'bob', 'C1', NULL, NULL, NULL);"
t "the queue keeps both, in order" T1 "bob:1:|carol:2:600" \
	"SELECT string_agg(user_id || ':' || position || ':' || coalesce(requested_for_seconds::text, ''), '|' ORDER BY position) FROM queue WHERE team_id = 'T1';"
t "an untimed hold writes only its check-in job" T1 "dibs.checkin:1" \
	"SELECT string_agg(kind || ':' || count, ',') FROM (SELECT kind, count(*) FROM jobs GROUP BY kind) k;"
t "off by the holder promotes the head of the queue" T1 "released|bob|t|f" \
	"SELECT status, next_user, next_hold_id IS NOT NULL, next_release_at IS NOT NULL FROM dibs_off('T1', 'staging', 'alice');"
t "the new holder gets a your_turn job keyed by the hold" T1 "dibs.notify|your_turn|bob|staging|t|queued" \
	"SELECT j.kind, j.payload->>'event', j.payload->>'user', j.payload->>'thing', j.dedupe_key = 'notify:your_turn:' || ($HOLD = 'staging'), j.state FROM jobs j WHERE j.kind = 'dibs.notify';"
t "the queue moved up" T1 "already_queued|1|bob|f|f" \
	"$ON('T1', 'staging', 'carol', 'C1', NULL, NULL, NULL);"
t "off by a queued user leaves the queue" T1 "left_queue|||" \
	"SELECT * FROM dibs_off('T1', 'staging', 'carol');"
t "off by a stranger" T1 "not_holding|||" "SELECT * FROM dibs_off('T1', 'staging', 'dave');"
t "off on an unknown thing" T1 "no_such_thing|||" "SELECT * FROM dibs_off('T1', 'nothing', 'dave');"
t "rejoining goes to the back with a new, larger position" T1 $'queued|1\n3' \
	"SELECT status, position FROM dibs_on('T1', 'staging', 'carol', 'C1', 600, 'review', NULL);
SELECT position FROM queue WHERE team_id = 'T1' AND user_id = 'carol';"

# --- timers -----------------------------------------------------------------

t "a queued for starts its timer on promotion" T1 "released|carol|t" \
	"SELECT status, next_user, next_release_at BETWEEN now() + interval '599 s' AND now() + interval '601 s' FROM dibs_off('T1', 'staging', 'bob');"
t "the promoted hold keeps duration and reason and starts now" T1 "carol|600|review|t" \
	"SELECT user_id, duration_seconds, reason, since > now() - interval '1 minute' AND release_at = since + interval '600 s' FROM holds WHERE team_id = 'T1' AND thing = 'staging';"
t "a timed hold has a release job due at release_at" T1 "1" \
	"SELECT count(*) FROM jobs j, holds h WHERE h.team_id = 'T1' AND h.thing = 'staging' AND j.kind = 'dibs.release' AND j.dedupe_key = 'release:' || h.hold_id AND j.due_at = h.release_at AND j.state = 'queued' AND j.team_id = 'T1' AND (j.payload->>'hold_id')::bigint = h.hold_id AND j.payload->>'thing' = 'staging';"
t "and a reminder five minutes before" T1 "1" \
	"SELECT count(*) FROM jobs j, holds h WHERE h.team_id = 'T1' AND h.thing = 'staging' AND j.kind = 'dibs.remind' AND j.dedupe_key = 'remind:' || h.hold_id AND j.due_at = h.release_at - interval '5 minutes' AND j.payload->>'user' = 'carol';"
t "a short timed hold" T1 "holding||dave|t|t" "$ON('T1', 'short', 'dave', 'C1', 120, NULL, NULL);"
t "gets a release job but no reminder" T1 "1|0" \
	"SELECT count(*) FILTER (WHERE kind = 'dibs.release'), count(*) FILTER (WHERE kind = 'dibs.remind') FROM jobs WHERE dedupe_key LIKE '%:' || ($HOLD = 'short');"
t "remind_due finds the current hold" T1 "dave" \
	"SELECT user_id FROM dibs_remind_due('T1', 'short', ($HOLD = 'short'));"
t "remind_due ignores another hold id" T1 "" "SELECT user_id FROM dibs_remind_due('T1', 'short', -1);"
t "release_due for another hold is stale" T1 "stale|" \
	"SELECT status, user_id FROM dibs_release_due('T1', 'short', -1);"
t "release_due before the time is not_due" T1 "not_due|dave|t" \
	"SELECT status, user_id, release_at > now() FROM dibs_release_due('T1', 'short', ($HOLD = 'short'));"
in_team T1 "UPDATE holds SET release_at = now() - interval '1 second' WHERE team_id = 'T1' AND thing = 'short';" >/dev/null
check "release_due twice releases once" "released|dave|||stale|" \
	"$(in_team T1 "CREATE TEMP TABLE h AS $HOLD = 'short';
SELECT status, user_id, next_user, next_hold_id FROM dibs_release_due('T1', 'short', (SELECT hold_id FROM h));
SELECT status, user_id FROM dibs_release_due('T1', 'short', (SELECT hold_id FROM h));" | paste -sd '|')"
t "kick a free thing" T1 "not_held|" "SELECT status, kicked_user FROM dibs_kick('T1', 'short', 'bob', 'C9');"
t "one expire event and one expired message" T1 "1|1" \
	"SELECT (SELECT count(*) FROM dibs_events WHERE action = 'expire' AND thing = 'short'), (SELECT count(*) FROM jobs WHERE payload->>'event' = 'expired' AND payload->>'user' = 'dave');"
t "the thing is free again" T1 "holding||erin|t|f" "$ON('T1', 'short', 'erin', 'C1', NULL, NULL, NULL);"

# --- extend -----------------------------------------------------------------

# Scratch tables are the owner's: the application role may create nothing.
as_owner "CREATE TABLE old_hold AS SELECT hold_id, release_at FROM holds WHERE team_id = 'T1' AND thing = 'staging';" >/dev/null
t "extend moves the release out under a new hold id" T1 "extended|t|t" \
	"SELECT e.status, e.hold_id <> o.hold_id, e.release_at = o.release_at + interval '1800 s' FROM dibs_extend('T1', 'staging', 'carol', 1800) e, old_hold o;"
t "the old timer jobs are cancelled, new ones queued" T1 "cancelled|cancelled|queued|queued" \
	"SELECT string_agg(j.state, '|' ORDER BY j.dedupe_key LIKE '%:' || o.hold_id DESC, j.kind) FROM jobs j, old_hold o WHERE j.kind IN ('dibs.release', 'dibs.remind') AND (j.dedupe_key LIKE '%:' || o.hold_id OR j.dedupe_key LIKE '%:' || ($HOLD = 'staging'));"
t "the old release job, due by now in real life, is stale" T1 "stale|carol" \
	"SELECT r.status, h.user_id FROM dibs_release_due('T1', 'staging', (SELECT hold_id FROM old_hold)) r, holds h WHERE h.team_id = 'T1' AND h.thing = 'staging';"
t "the new release job is the live one" T1 "not_due" \
	"SELECT status FROM dibs_release_due('T1', 'staging', ($HOLD = 'staging'));"
t "extend by someone else" T1 "not_holding" "SELECT status FROM dibs_extend('T1', 'staging', 'bob', 60);"
t "extend an untimed hold is refused" T1 "not_timed|t|t" \
	"SELECT status, hold_id IS NOT NULL, release_at IS NULL FROM dibs_extend('T1', 'short', 'erin', 60);"
t "extend past 30 days from now is refused" T1 "too_long" "SELECT status FROM dibs_extend('T1', 'staging', 'carol', 2592000);"
t "extend an unknown thing" T1 "no_such_thing" "SELECT status FROM dibs_extend('T1', 'nothing', 'carol', 60);"
fails "extend by zero is an error" T1 "seconds must be positive" "SELECT * FROM dibs_extend('T1', 'staging', 'carol', 0);"

# --- kick -------------------------------------------------------------------

t "a queued user" T1 "queued|1|carol|f|f" "$ON('T1', 'staging', 'dave', 'C1', 60, NULL, NULL);"
as_owner "CREATE TABLE kicked_hold AS $HOLD = 'staging';" >/dev/null
t "kick ends anyone's hold and promotes the next" T1 "kicked|carol|dave|t|t" \
	"SELECT status, kicked_user, next_user, next_hold_id IS NOT NULL, next_release_at BETWEEN now() + interval '59 s' AND now() + interval '61 s' FROM dibs_kick('T1', 'staging', 'bob', 'C9');"
t "kick messages the kicked user, announces in the channel, tells the next" T1 "kick_announce:carol:bob:C9|kicked:carol:bob:C9|your_turn:dave::" \
	"SELECT string_agg(concat_ws(':', payload->>'event', payload->>'user', coalesce(payload->>'by', ''), coalesce(payload->>'channel', '')), '|' ORDER BY payload->>'event') FROM jobs j, kicked_hold k WHERE kind = 'dibs.notify' AND (dedupe_key LIKE '%:' || k.hold_id OR dedupe_key = 'notify:your_turn:' || ($HOLD = 'staging'));"
t "the kicked hold's timers are cancelled" T1 "0" \
	"SELECT count(*) FROM jobs j, kicked_hold k WHERE j.state = 'queued' AND j.kind <> 'dibs.notify' AND j.dedupe_key LIKE '%:' || k.hold_id;"
t "kick an unknown thing" T1 "no_such_thing|" "SELECT status, kicked_user FROM dibs_kick('T1', 'nothing', 'bob', 'C9');"
t "kicking yourself sends no kicked message" T1 "kicked|dave|0|1" \
	"CREATE TEMP TABLE k AS $HOLD = 'staging';
CREATE TEMP TABLE r AS SELECT * FROM dibs_kick('T1', 'staging', 'dave', 'C9');
SELECT r.status, r.kicked_user, (SELECT count(*) FROM jobs WHERE dedupe_key = 'notify:kicked:' || k.hold_id), (SELECT count(*) FROM jobs WHERE dedupe_key = 'notify:kick_announce:' || k.hold_id) FROM k, r;"
t "kick of the now free thing" T1 "not_held|" "SELECT status, kicked_user FROM dibs_kick('T1', 'staging', 'bob', NULL);"

# --- remove -----------------------------------------------------------------

t "remove a held thing is refused" T1 "held" "SELECT dibs_remove('T1', 'short', 'bob');"
t "remove a free thing" T1 $'removed\n0' "SELECT dibs_remove('T1', 'Staging', 'bob'); SELECT count(*) FROM things WHERE name = 'staging';"
t "remove it again" T1 "no_such_thing" "SELECT dibs_remove('T1', 'staging', 'bob');"
t "a removed thing can be taken again (created anew)" T1 "holding||bob|t|f" "$ON('T1', 'staging', 'bob', 'C2', NULL, NULL, NULL);"

# --- listing ----------------------------------------------------------------

t "on with a queue for the listing" T1 "queued|1|bob|f|f" "$ON('T1', 'staging', 'carol', 'C2', 90, 'tests', NULL);"
t "dibs_things lists every thing with holder and queue" T1 'short|erin|[]
staging|bob|[{"user": "carol", "reason": "tests", "for_seconds": 90}]' \
	"SELECT name, holder, (SELECT coalesce(jsonb_agg(e - 'queued_at'), '[]') FROM jsonb_array_elements(queue) e) FROM dibs_things('T1');"
t "dibs_things for one thing, any case" T1 "staging|bob|1" "SELECT name, holder, jsonb_array_length(queue) FROM dibs_things('T1', 'STAGING');"

# --- plan limits and bad input ------------------------------------------------

for i in 1 2 3; do in_team T2 "SELECT * FROM dibs_on('T2', 'lim$i', 'u', 'C', NULL, NULL, 3);" >/dev/null; done
t "a thing beyond max_things is refused" T2 "limit||||" "SELECT * FROM dibs_on('T2', 'lim4', 'u', 'C', NULL, NULL, 3);"
t "and not created" T2 "3" "SELECT count(*) FROM things WHERE team_id = 'T2';"
t "existing things stay usable at the limit" T2 "queued|1" "SELECT status, position FROM dibs_on('T2', 'lim1', 'v', 'C', NULL, NULL, 3);"
t "without a limit more things may be created" T2 "holding" "SELECT status FROM dibs_on('T2', 'lim4', 'u', 'C', NULL, NULL, NULL);"
fails "a bad thing name is refused by the database too" T1 "things_name_check" "SELECT * FROM dibs_on('T1', 'bad name', 'u', 'C', NULL, NULL, NULL);"
fails "a reason over 300 characters is refused" T1 "reason_check" "SELECT * FROM dibs_on('T1', 'longreason', 'u', 'C', NULL, repeat('r', 301), NULL);"
fails "a duration over 30 days is refused" T1 "duration_seconds_check" "SELECT * FROM dibs_on('T1', 'toolong', 'u', 'C', 2592001, NULL, NULL);"

# --- API tokens ---------------------------------------------------------------

TOKEN=$(printf 'a%.0s' {1..64})
t "a token is stored" T1 "" "INSERT INTO api_tokens (team_id, token_hash, user_id) VALUES ('T1', '$TOKEN', 'alice');"
check "its team is found by hash alone" "T1" "$(app -c "SELECT conch_api_token_team('$TOKEN')")"
check "an unknown hash names no team" "" "$(app -c "SELECT conch_api_token_team(repeat('c', 64))")"
t "then, in that team, by hash" T1 "T1|alice" \
	"UPDATE api_tokens SET last_used_at = now() WHERE token_hash = '$TOKEN' RETURNING team_id, user_id;"
fails "a token hash must be SHA-256 hex" T1 "token_hash_check" "INSERT INTO api_tokens (team_id, token_hash, user_id) VALUES ('T1', 'short', 'alice');"

# --- row-level security -------------------------------------------------------

check "without conch.team_id no row of a team table is visible" "0|0|0|0|0" \
	"$(app -c "SELECT (SELECT count(*) FROM things), (SELECT count(*) FROM holds), (SELECT count(*) FROM queue), (SELECT count(*) FROM dibs_events), (SELECT count(*) FROM api_tokens)")"
check "conch.all_teams lifts nothing any more" "0|0|0" \
	"$(printf "SELECT set_config('conch.all_teams', 'on', false) \\g /dev/null\nSELECT (SELECT count(*) FROM things), (SELECT count(*) FROM holds), (SELECT count(*) FROM api_tokens);\n" | app -f -)"
check "the rows are there for the owner" "t" \
	"$(as_owner "SELECT (SELECT count(*) FROM things WHERE team_id = 'T1') > 0 AND (SELECT count(*) FROM queue) > 0;")"
check "the jobs, global by nature, are the runner's with no team set" "t" \
	"$(app -c "SELECT count(*) > 0 FROM jobs WHERE team_id = 'T1'")"
t "team T2 sees none of T1's rows" T2 "0|0|0|0|0|0" \
	"SELECT (SELECT count(*) FROM things WHERE team_id = 'T1'), (SELECT count(*) FROM holds WHERE team_id = 'T1'), (SELECT count(*) FROM queue WHERE team_id = 'T1'), (SELECT count(*) FROM dibs_events WHERE team_id = 'T1'), (SELECT count(*) FROM api_tokens WHERE team_id = 'T1'), (SELECT count(*) FROM jobs WHERE team_id = 'T1');"
t "T2 calling off on T1's thing finds nothing" T2 "no_such_thing" "SELECT status FROM dibs_off('T1', 'staging', 'bob');"
t "T2 listing T1 gets nothing" T2 "0" "SELECT count(*) FROM dibs_things('T1');"
fails "T2 cannot create things for T1" T2 "row-level security" "SELECT * FROM dibs_on('T1', 'sneaky', 'u', 'C', NULL, NULL, NULL);"
fails "T2 cannot write T1's rows" T2 "row-level security" "INSERT INTO queue (team_id, thing, user_id, position) VALUES ('T1', 'staging', 'x', 99);"
fails "no team, no writes" "" "row-level security" "INSERT INTO api_tokens (team_id, token_hash, user_id) VALUES ('T1', '$(printf 'b%.0s' {1..64})', 'x');"

# --- 50 users race for one thing --------------------------------------------

# A gate session holds an advisory lock until all 50 clients wait on it, so
# they really arrive together. Run once for a new thing (the racers also
# race to create it) and once for an existing free one.
gate_waiting() {
	app -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND $1"
}

race() { # thing
	local t0=$SECONDS
	rm -f "$TMP"/race.*
	app -c "SELECT pg_advisory_lock(4242)" -c "DO \$\$ BEGIN FOR i IN 1 .. 400 LOOP EXIT WHEN (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted) >= 50; PERFORM pg_sleep(0.05); END LOOP; END \$\$" -c "SELECT pg_advisory_unlock(4242)" >/dev/null &
	for _ in $(seq 100); do [ "$(gate_waiting granted)" = 1 ] && break; sleep 0.05; done
	for i in $(seq 1 50); do
		in_team T3 "SELECT pg_advisory_xact_lock_shared(4242) \\g /dev/null
SELECT status, position FROM dibs_on('T3', '$1', 'user$i', 'C', NULL, NULL, NULL);" >"$TMP/race.$i" &
	done
	wait
	cat "$TMP"/race.* >"$TMP/race.all"
	check "50 racers for $1: one holds, 49 queue" "1|49" \
		"$(printf '%s|%s' "$(grep -c '^holding|' "$TMP/race.all")" "$(grep -c '^queued|' "$TMP/race.all")")"
	check "50 racers for $1 were told 49 distinct places, 1 to 49" "$(seq 1 49 | paste -sd ' ')" \
		"$(grep '^queued|' "$TMP/race.all" | cut -d'|' -f2 | sort -n | paste -sd ' ')"
	echo "# race for $1 took $((SECONDS - t0))s"
	t "50 racers for $1: the tables agree" T3 "1|49|49|50" \
		"SELECT (SELECT count(*) FROM holds WHERE team_id = 'T3' AND thing = '$1'), (SELECT count(*) FROM queue WHERE team_id = 'T3' AND thing = '$1'), (SELECT count(DISTINCT position) FROM queue WHERE team_id = 'T3' AND thing = '$1'), (SELECT count(DISTINCT u) FROM (SELECT user_id FROM holds WHERE team_id = 'T3' AND thing = '$1' UNION ALL SELECT user_id FROM queue WHERE team_id = 'T3' AND thing = '$1') x(u));"
}

race new-thing
in_team T3 "SELECT status FROM dibs_on('T3', 'old-thing', 'x', 'C', NULL, NULL, NULL); SELECT status FROM dibs_off('T3', 'old-thing', 'x');" >/dev/null
race old-thing
t "racing created each thing once" T3 "2" "SELECT count(*) FROM things WHERE team_id = 'T3';"

# Concurrent creation cannot overshoot the plan's limit.
for i in $(seq 1 12); do
	in_team T4 "SELECT status FROM dibs_on('T4', 'lim$i', 'u$i', 'C', NULL, NULL, 5);" >"$TMP/lim.$i" &
done
wait
check "12 racing creations under a limit of 5: 5 created, 7 refused" "5|7|5" \
	"$(cat "$TMP"/lim.* | grep -c '^holding$')|$(cat "$TMP"/lim.* | grep -c '^limit$')|$(in_team T4 "SELECT count(*) FROM things WHERE team_id = 'T4';")"

# --- random interleavings -----------------------------------------------------

CLIENTS=20
OPS=50
for c in $(seq 1 $CLIENTS); do
	{
		for _ in $(seq 1 $OPS); do
			th="t$((RANDOM % 5))"
			u="u$((RANDOM % 8))"
			case $((RANDOM % 20)) in
			0 | 1 | 2 | 3 | 4 | 5) op="SELECT status FROM dibs_on('T5', '$th', '$u', 'C', NULL, NULL, NULL)" ;;
			6 | 7) op="SELECT status FROM dibs_on('T5', '$th', '$u', 'C', 1, 'quick', NULL)" ;;
			8 | 9 | 10 | 11) op="SELECT status FROM dibs_off('T5', '$th', '$u')" ;;
			12 | 13) op="SELECT status FROM dibs_kick('T5', '$th', '$u', 'C')" ;;
			14) op="SELECT status FROM dibs_extend('T5', '$th', '$u', 1)" ;;
			15) op="SELECT dibs_remove('T5', '$th', '$u')" ;;
			*) op="SELECT status FROM dibs_release_due('T5', '$th', (SELECT hold_id FROM holds WHERE team_id = 'T5' AND thing = '$th'))" ;;
			esac
			printf "BEGIN;\nSELECT set_config('conch.team_id', 'T5', true);\n%s;\nCOMMIT;\n" "$op"
			[ $((RANDOM % 4)) = 0 ] && printf "SELECT pg_sleep(0.02);\n"
		done
	} >"$TMP/mix.$c.sql"
done
as_owner "INSERT INTO teams (team_id) VALUES ('T5');" >/dev/null
START=$SECONDS
MIXFAIL=0
for c in $(seq 1 $CLIENTS); do app -f "$TMP/mix.$c.sql" >"$TMP/mix.$c.out" 2>&1 & done
for job in $(jobs -p); do wait "$job" || MIXFAIL=$((MIXFAIL + 1)); done
check "$CLIENTS clients x $OPS random commands ran without an error (deadlock, constraint)" "0" \
	"$MIXFAIL$(cat "$TMP"/mix.*.out | grep -m 3 -i error)"

# Phase two: every thing emptied, then timed holds of one second and many
# clients racing to release them when due (a release job firing on several
# runners at once), while others queue behind with timers of their own.
in_team T5 "DO \$\$ DECLARE t text; BEGIN FOR t IN SELECT name FROM things WHERE team_id = 'T5' LOOP
	WHILE (SELECT status FROM dibs_kick('T5', t, 'admin', NULL)) = 'kicked' LOOP END LOOP; END LOOP; END \$\$;" >/dev/null
for c in $(seq 1 $CLIENTS); do
	{
		for _ in 1 2 3; do
			printf "BEGIN;\nSELECT set_config('conch.team_id', 'T5', true);\nSELECT status FROM dibs_on('T5', 't%d', 'u%d', 'C', 1, NULL, NULL);\nCOMMIT;\n" $((RANDOM % 5)) $((RANDOM % 8))
		done
		printf "SELECT pg_sleep(1.1);\n"
		for _ in $(seq 1 12); do
			th="t$((RANDOM % 5))"
			printf "BEGIN;\nSELECT set_config('conch.team_id', 'T5', true);\nSELECT status FROM dibs_release_due('T5', '%s', (SELECT hold_id FROM holds WHERE team_id = 'T5' AND thing = '%s'));\nCOMMIT;\n" "$th" "$th"
			printf "BEGIN;\nSELECT set_config('conch.team_id', 'T5', true);\nSELECT status FROM dibs_on('T5', 't%d', 'u%d', 'C', 1, NULL, NULL);\nCOMMIT;\nSELECT pg_sleep(0.1);\n" $((RANDOM % 5)) $((RANDOM % 8))
		done
	} >"$TMP/due.$c.sql"
done
MIXFAIL=0
for c in $(seq 1 $CLIENTS); do app -f "$TMP/due.$c.sql" >"$TMP/due.$c.out" 2>&1 & done
for job in $(jobs -p); do wait "$job" || MIXFAIL=$((MIXFAIL + 1)); done
check "$CLIENTS clients racing timed releases ran without an error" "0" \
	"$MIXFAIL$(cat "$TMP"/due.*.out | grep -m 3 -i error)"

t "invariants: one hold per thing, holder not queued, no waiting on a free thing, distinct positions and users" T5 "0|0|0|t|t" \
	"SELECT (SELECT count(*) FROM (SELECT thing FROM holds WHERE team_id = 'T5' GROUP BY thing HAVING count(*) > 1) x),
	        (SELECT count(*) FROM holds h JOIN queue q USING (team_id, thing, user_id) WHERE h.team_id = 'T5'),
	        (SELECT count(*) FROM queue q WHERE q.team_id = 'T5' AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.team_id = q.team_id AND h.thing = q.thing)),
	        (SELECT count(*) = count(DISTINCT (thing, position)) FROM queue WHERE team_id = 'T5'),
	        (SELECT count(*) = count(DISTINCT (thing, user_id)) FROM queue WHERE team_id = 'T5');"
t "invariants: every timed hold has exactly its live release job, and no other is queued" T5 "0|0" \
	"SELECT (SELECT count(*) FROM holds h WHERE h.team_id = 'T5' AND h.release_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'dibs.release' AND j.state = 'queued' AND j.dedupe_key = 'release:' || h.hold_id)),
	        (SELECT count(*) FROM jobs j WHERE j.team_id = 'T5' AND j.kind = 'dibs.release' AND j.state = 'queued' AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.team_id = 'T5' AND 'release:' || h.hold_id = j.dedupe_key));"
t "every promotion told its user exactly once" T5 "t" \
	"SELECT (SELECT count(*) FROM dibs_events WHERE team_id = 'T5' AND action = 'promote') = (SELECT count(*) FROM jobs WHERE team_id = 'T5' AND payload->>'event' = 'your_turn');"
t "the mix exercised queueing, promotion, kicks and timed releases" T5 "t|t|t|t" \
	"SELECT count(*) FILTER (WHERE action = 'queue') > 0, count(*) FILTER (WHERE action = 'promote') > 0, count(*) FILTER (WHERE action = 'kick') > 0, count(*) FILTER (WHERE action = 'expire') > 0 FROM dibs_events WHERE team_id = 'T5';"

# Replays each thing's event log (ids follow commit order per thing) through
# a model of holder + FIFO queue: every event must be legal in the model, a
# freed thing must go to the head of its queue at once, and the model must
# end equal to the tables. Nobody is lost, duplicated or overtaken.
REPLAY=$(
	cat <<'EOF'
DO $$
DECLARE
	t text;
	e record;
	holder text;
	ended text;
	q text[];
	must_promote boolean;
BEGIN
	FOR t IN SELECT DISTINCT thing FROM dibs_events WHERE team_id = 'T5' LOOP
		holder := NULL; q := '{}'; must_promote := false;
		FOR e IN SELECT * FROM dibs_events WHERE team_id = 'T5' AND thing = t ORDER BY id LOOP
			IF must_promote AND e.action <> 'promote' THEN
				RAISE EXCEPTION '%: event % (%) while % waited on a free thing', t, e.id, e.action, q;
			END IF;
			CASE e.action
			WHEN 'create', 'remove' THEN
				IF holder IS NOT NULL OR cardinality(q) > 0 THEN
					RAISE EXCEPTION '%: % of a thing in use (event %)', t, e.action, e.id;
				END IF;
			WHEN 'hold' THEN
				IF holder IS NOT NULL OR cardinality(q) > 0 THEN
					RAISE EXCEPTION '%: % took a thing held by % (event %)', t, e.user_id, holder, e.id;
				END IF;
				holder := e.user_id;
			WHEN 'queue' THEN
				IF holder IS NULL OR holder = e.user_id OR e.user_id = ANY (q) THEN
					RAISE EXCEPTION '%: bad queue of % (event %)', t, e.user_id, e.id;
				END IF;
				q := q || e.user_id;
			WHEN 'leave' THEN
				IF NOT e.user_id = ANY (q) THEN
					RAISE EXCEPTION '%: % left a queue it was not in (event %)', t, e.user_id, e.id;
				END IF;
				q := array_remove(q, e.user_id);
			WHEN 'release', 'expire', 'kick' THEN
				ended := CASE e.action WHEN 'kick' THEN e.other_user ELSE e.user_id END;
				IF holder IS DISTINCT FROM ended THEN
					RAISE EXCEPTION '%: % of a hold by % (event %)', t, e.action, holder, e.id;
				END IF;
				holder := NULL;
				must_promote := cardinality(q) > 0;
			WHEN 'promote' THEN
				IF holder IS NOT NULL OR q[1] IS DISTINCT FROM e.user_id THEN
					RAISE EXCEPTION '%: promoted % but the head was % (event %)', t, e.user_id, q[1], e.id;
				END IF;
				holder := e.user_id;
				q := q[2:];
				must_promote := false;
			WHEN 'extend' THEN
				IF holder IS DISTINCT FROM e.user_id THEN
					RAISE EXCEPTION '%: % extended a hold of % (event %)', t, e.user_id, holder, e.id;
				END IF;
			ELSE
				RAISE EXCEPTION 'unknown action %', e.action;
			END CASE;
		END LOOP;
		IF holder IS DISTINCT FROM (SELECT h.user_id FROM holds h WHERE h.team_id = 'T5' AND h.thing = t)
		   OR q IS DISTINCT FROM (SELECT coalesce(array_agg(x.user_id ORDER BY x.position), '{}') FROM queue x WHERE x.team_id = 'T5' AND x.thing = t) THEN
			RAISE EXCEPTION '%: replay ends with % and %, the tables differ', t, holder, q;
		END IF;
	END LOOP;
END $$;
SELECT 'replayed';
EOF
)
t "replaying the event log reproduces the tables" T5 "replayed" "$REPLAY"
echo "# the random mixes took $((SECONDS - START))s, $(in_team T5 "SELECT count(*) FROM dibs_events WHERE team_id = 'T5';") events"

# --- done ---------------------------------------------------------------------

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
