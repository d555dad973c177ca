/* The database layer and the job runner against a real PostgreSQL.
 * TEST_CONCH_DATABASE_URL names an empty database as the runtime role and
 * TEST_CONCH_MIGRATE_URL the same database as its owner, neither a superuser
 * (scripts/test.sh makes them); without them the suite fails. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/unit.h"
#include "conf.h"
#include "db.h"
#include "jobs.h"
#include "util.h"

static atomic_int runs;
static atomic_int fail_first; /* how many attempts of test.flaky fail */
static _Atomic double last_started, last_due;

static enum job_result
count_handler(struct job *job)
{
	last_started = now_seconds();
	last_due = job->due_at;
	atomic_fetch_add(&runs, 1);
	return JOB_DONE;
}

static enum job_result
flaky_handler(struct job *job)
{
	atomic_fetch_add(&runs, 1);
	if (job->attempts <= atomic_load(&fail_first)) {
		snprintf(job->error, sizeof(job->error), "flaky failure %d", job->attempts);
		return JOB_RETRY;
	}
	return JOB_DONE;
}

static enum job_result
later_handler(struct job *job)
{
	atomic_fetch_add(&runs, 1);
	if (job->attempts == 1 && json_integer_value(json_object_get(job->payload, "n")) == 0) {
		job->retry_at = now_seconds() + 30;
		snprintf(job->error, sizeof(job->error), "rate limited");
		return JOB_RETRY_AT;
	}
	return JOB_DONE;
}

/* test.early: starts a "call" (job_suspend, answered 200 ms later from
 * another thread) and then, wrongly, returns a final result at once. */
static atomic_int conts;

static enum job_result
early_cont(struct job *job, void *arg)
{
	(void)job;
	(void)arg;
	atomic_fetch_add(&conts, 1);
	return JOB_DONE;
}

static void *
answer_later(void *arg)
{
	usleep(200000);
	job_resume(arg);
	return NULL;
}

static enum job_result
early_handler(struct job *job)
{
	pthread_t th;

	atomic_fetch_add(&runs, 1);
	ck_assert_int_eq(
	    pthread_create(&th, NULL, answer_later, job_suspend(job, early_cont, NULL)), 0);
	pthread_detach(th);
	return JOB_DONE;
}

static void sql_owner(const char *sql);

static void
setup_once(void)
{
	static int done;
	const char *url = getenv("TEST_CONCH_DATABASE_URL");
	const char *owner = getenv("TEST_CONCH_MIGRATE_URL");
	char err[256];

	if (done)
		return;
	done = 1;
	ck_assert_msg(url && *url, "TEST_CONCH_DATABASE_URL must name a test database");
	ck_assert_msg(owner && *owner, "TEST_CONCH_MIGRATE_URL must name its owner");
	ck_assert_int_eq(conf_load("/dev/null", err, sizeof(err)), 0);
	conf.job_lease_seconds = 2;
	db_init(owner);
	ck_assert_int_ge(db_migrate("migrations"), 0);
	db_thread_close();
	db_init(url);
	ck_assert_int_eq(db_check_migrated("migrations", err, sizeof(err)), 0);
	/* A kind's attempts are its row, as a migration would add it. */
	sql_owner("INSERT INTO job_kinds (kind, max_attempts) VALUES ('test.count', 3), "
	          "('test.flaky', 3), ('test.later', 3), ('test.early', 3) ON CONFLICT DO NOTHING");
	jobs_register("test.count", count_handler);
	jobs_register("test.flaky", flaky_handler);
	jobs_register("test.later", later_handler);
	jobs_register("test.early", early_handler);
}

/* As the schema owner, whom RLS does not bind: set-up of team rows. */
static void
sql_owner(const char *sql)
{
	PGconn *pg = PQconnectdb(getenv("TEST_CONCH_MIGRATE_URL"));
	PGresult *r;

	ck_assert_int_eq(PQstatus(pg), CONNECTION_OK);
	r = PQexec(pg, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(pg));
	PQclear(r);
	PQfinish(pg);
}

/* As the runtime role, in a transaction scoped to no team (the jobs). */
static void
sql_system(const char *sql)
{
	struct tx tx;

	ck_assert_int_eq(tx_begin_system(&tx), 0);
	ck_assert_int_eq(tx_exec(&tx, sql, 0, NULL), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
}

static long
scalar(const char *sql, const char *param)
{
	const char *p[1] = {param};
	struct tx tx;
	PGresult *r;
	long v;

	ck_assert_int_eq(tx_begin_system(&tx), 0);
	r = tx_query(&tx, sql, param ? 1 : 0, p);
	ck_assert_ptr_nonnull(r);
	v = PQgetisnull(r, 0, 0) ? -1 : strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	tx_commit(&tx);
	return v;
}

static int
wait_runs(int n, double seconds)
{
	double end = now_seconds() + seconds;

	while (atomic_load(&runs) < n && now_seconds() < end)
		usleep(10000);
	return atomic_load(&runs);
}

static void
reset(void)
{
	setup_once();
	sql_system("DELETE FROM jobs");
	atomic_store(&runs, 0);
}

/* A handler that returns a final result while its call is in flight
 * (a bug) must not free the job under the call: the runner waits for the
 * answer, and the answer's step finishes the job (once). Under ASan the
 * old behaviour is a heap-use-after-free when the answer comes. */
START_TEST(final_result_with_call_in_flight_waits_for_it)
{
	struct tx tx;
	double end;

	reset();
	atomic_store(&conts, 0);
	ck_assert_int_eq(jobs_start(2), 0);
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	ck_assert_int_gt(job_enqueue(&tx, "test.early", "T1", json_object(), 0, NULL), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	end = now_seconds() + 5;
	while (atomic_load(&conts) < 1 && now_seconds() < end)
		usleep(10000);
	ck_assert_int_eq(atomic_load(&conts), 1);
	end = now_seconds() + 5;
	while (scalar("SELECT count(*) FROM jobs WHERE state = 'done'", NULL) < 1 &&
	       now_seconds() < end)
		usleep(10000);
	jobs_stop();
	ck_assert_int_eq(atomic_load(&runs), 1);
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs WHERE state = 'done'", NULL), 1);
}
END_TEST

START_TEST(enqueue_committed_runs_once)
{
	struct tx tx;
	int64_t id;

	reset();
	ck_assert_int_eq(jobs_start(2), 0);
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	id = job_enqueue(&tx, "test.count", "T1", json_pack("{s:i}", "n", 1), 0, NULL);
	ck_assert_int_gt(id, 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	ck_assert_int_eq(wait_runs(1, 5), 1);
	usleep(300000);
	ck_assert_int_eq(atomic_load(&runs), 1);
	jobs_stop();
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs WHERE state = 'done'", NULL), 1);
}
END_TEST

START_TEST(enqueue_rolled_back_never_runs)
{
	struct tx tx;

	reset();
	ck_assert_int_eq(jobs_start(1), 0);
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	ck_assert_int_gt(job_enqueue(&tx, "test.count", "T1", NULL, 0, NULL), 0);
	tx_rollback(&tx);
	usleep(800000);
	jobs_stop();
	ck_assert_int_eq(atomic_load(&runs), 0);
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs WHERE kind LIKE 'test.%'", NULL), 0);
}
END_TEST

START_TEST(dedupe_key_enqueues_once)
{
	struct tx tx;

	reset();
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	ck_assert_int_gt(job_enqueue(&tx, "test.count", "T1", NULL, now_seconds() + 60, "k1"), 0);
	ck_assert_int_eq(job_enqueue(&tx, "test.count", "T1", NULL, now_seconds() + 60, "k1"), 0);
	/* The same key under another kind is another job. */
	ck_assert_int_gt(job_enqueue(&tx, "test.flaky", "T1", NULL, now_seconds() + 60, "k1"), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs", NULL), 2);
}
END_TEST

START_TEST(due_job_waits_for_its_time)
{
	struct tx tx;
	double due;

	reset();
	ck_assert_int_eq(jobs_start(2), 0);
	due = now_seconds() + 1.0;
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	ck_assert_int_gt(job_enqueue(&tx, "test.count", "T1", NULL, due, NULL), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	ck_assert_int_eq(wait_runs(1, 5), 1);
	jobs_stop();
	ck_assert(last_started >= due - 0.01);
	ck_assert(last_due > due - 0.01 && last_due < due + 0.01);
	printf("jobs: a job due in 1 s started %.1f ms after its due time\n",
	       (last_started - due) * 1000.0);
}
END_TEST

START_TEST(failure_backs_off_then_succeeds)
{
	struct tx tx;

	reset();
	atomic_store(&fail_first, 1);
	ck_assert_int_eq(jobs_start(1), 0);
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	ck_assert_int_gt(job_enqueue(&tx, "test.flaky", "T1", NULL, 0, "flaky1"), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	ck_assert_int_eq(wait_runs(1, 5), 1);
	usleep(200000);
	/* Queued again, later, with the error kept and the attempt counted. */
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs WHERE state = 'queued' AND attempts = 1 "
	                        "AND due_at > now() + interval '1 second' "
	                        "AND last_error = 'flaky failure 1'",
	                        NULL),
	                 1);
	sql_system("UPDATE jobs SET due_at = now()");
	ck_assert_int_eq(wait_runs(2, 5), 2);
	usleep(200000);
	jobs_stop();
	ck_assert_int_eq(
	    scalar("SELECT count(*) FROM jobs WHERE state = 'done' AND attempts = 2", NULL), 1);
}
END_TEST

START_TEST(last_failure_is_dead)
{
	struct tx tx;

	reset();
	atomic_store(&fail_first, 100);
	ck_assert_int_eq(jobs_start(1), 0);
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	ck_assert_int_gt(job_enqueue(&tx, "test.flaky", "T1", NULL, 0, NULL), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	for (int i = 1; i <= 3; i++) {
		ck_assert_int_eq(wait_runs(i, 5), i);
		usleep(200000);
		sql_system("UPDATE jobs SET due_at = now() WHERE state = 'queued'");
	}
	usleep(300000);
	jobs_stop();
	ck_assert_int_eq(atomic_load(&runs), 3);
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs WHERE state = 'dead' AND attempts = 3 "
	                        "AND last_error = 'flaky failure 3' AND finished_at IS NOT NULL",
	                        NULL),
	                 1);
	/* An operator retry gives it one more attempt. */
	long id = scalar("SELECT id FROM jobs WHERE kind = 'test.flaky'", NULL);
	ck_assert_int_eq(tx_begin_system(&tx), 0);
	ck_assert_int_eq(jobs_retry(&tx, id), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs WHERE state = 'queued' "
	                        "AND max_attempts = 4",
	                        NULL),
	                 1);
}
END_TEST

START_TEST(retry_at_does_not_count_an_attempt)
{
	struct tx tx;

	reset();
	ck_assert_int_eq(jobs_start(1), 0);
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	ck_assert_int_gt(job_enqueue(&tx, "test.later", "T1", json_pack("{s:i}", "n", 0), 0, NULL),
	                 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	ck_assert_int_eq(wait_runs(1, 5), 1);
	usleep(200000);
	jobs_stop();
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs WHERE state = 'queued' AND attempts = 0 "
	                        "AND due_at > now() + interval '25 seconds' "
	                        "AND last_error = 'rate limited'",
	                        NULL),
	                 1);
}
END_TEST

START_TEST(expired_lease_is_taken_again)
{
	reset();
	/* A runner that died mid-job leaves it running with a lease. */
	sql_system("INSERT INTO jobs (kind, team_id, state, attempts, lease_until) "
	           "VALUES ('test.count', 'T1', 'running', 1, now() + interval '1 second')");
	ck_assert_int_eq(jobs_start(1), 0);
	usleep(300000);
	ck_assert_int_eq(atomic_load(&runs), 0); /* the lease still holds */
	ck_assert_int_eq(wait_runs(1, 6), 1);
	usleep(200000);
	jobs_stop();
	ck_assert_int_eq(
	    scalar("SELECT count(*) FROM jobs WHERE state = 'done' AND attempts = 2", NULL), 1);
}
END_TEST

START_TEST(rls_scopes_every_query)
{
	struct tx tx;
	const char *t2[1] = {"T2"};

	reset();
	sql_owner("DELETE FROM teams");
	sql_owner("INSERT INTO teams (team_id, name) VALUES ('T1', 'one'), ('T2', 'two')");
	/* No team set: nothing visible, nothing writable. */
	ck_assert_int_eq(tx_begin(&tx, NULL), 0);
	PGresult *r = tx_query(&tx, "SELECT count(*) FROM teams", 0, NULL);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
	tx_commit(&tx);
	/* Nor in the old all-teams mode: no setting lifts the scope. */
	ck_assert_int_eq(tx_begin_system(&tx), 0);
	ck_assert_int_eq(tx_exec(&tx, "SELECT set_config('conch.all_teams', 'on', true)", 0, NULL),
	                 0);
	r = tx_query(&tx, "SELECT count(*) FROM teams", 0, NULL);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
	tx_commit(&tx);
	/* tx_scope narrows a transaction to one team, and back to none. */
	ck_assert_int_eq(tx_begin_system(&tx), 0);
	ck_assert_int_eq(tx_scope(&tx, "T2"), 0);
	r = tx_query(&tx, "SELECT string_agg(team_id, ',') FROM teams", 0, NULL);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "T2");
	PQclear(r);
	ck_assert_int_eq(tx_scope(&tx, NULL), 0);
	r = tx_query(&tx, "SELECT count(*) FROM teams", 0, NULL);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
	tx_commit(&tx);
	/* Team T1 sees itself only, even when it asks for T2. */
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	r = tx_query(&tx, "SELECT team_id FROM teams", 0, NULL);
	ck_assert_int_eq(PQntuples(r), 1);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "T1");
	PQclear(r);
	r = tx_query(&tx, "SELECT count(*) FROM teams WHERE team_id = $1", 1, t2);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
	/* Writing a row of another team is refused by the policy. */
	ck_assert_int_eq(tx_exec(&tx, "INSERT INTO teams (team_id) VALUES ($1)", 1, t2), -1);
	ck_assert_str_eq(tx.sqlstate, "42501");
	tx_rollback(&tx);
	/* Jobs follow the same rule. */
	sql_system("INSERT INTO jobs (kind, team_id, due_at) VALUES "
	           "('test.count', 'T2', now() + interval '1 hour')");
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	r = tx_query(&tx, "SELECT count(*) FROM jobs", 0, NULL);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
	tx_commit(&tx);
}
END_TEST

START_TEST(statement_errors_fail_the_transaction)
{
	struct tx tx;

	setup_once();
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	ck_assert_ptr_null(tx_query(&tx, "SELECT no_such_column FROM teams", 0, NULL));
	ck_assert_int_eq(tx.failed, 1);
	ck_assert_str_eq(tx.sqlstate, "42703");
	/* Later statements are not sent; commit rolls back. */
	ck_assert_ptr_null(tx_query(&tx, "SELECT 1", 0, NULL));
	ck_assert_int_eq(tx_commit(&tx), -1);
	/* The connection is usable again. */
	ck_assert_int_eq(tx_begin(&tx, "T1"), 0);
	ck_assert_int_eq(tx_exec(&tx, "SELECT 1", 0, NULL), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
}
END_TEST

START_TEST(migrate_twice_applies_nothing_new)
{
	char err[256];

	setup_once();
	/* As the runtime role, migrate fails: it may create nothing. */
	ck_assert_int_eq(db_migrate("migrations"), -1);
	db_thread_close();
	db_init(getenv("TEST_CONCH_MIGRATE_URL"));
	ck_assert_int_eq(db_migrate("migrations"), 0);
	/* serve's check refuses the owner; accepts the runtime role. */
	ck_assert_int_eq(db_check_migrated("migrations", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "owns the schema"));
	db_thread_close();
	db_init(getenv("TEST_CONCH_DATABASE_URL"));
	ck_assert_int_eq(db_check_migrated("migrations", err, sizeof(err)), 0);
}
END_TEST

START_TEST(daily_cleanup_keeps_recent_and_dead_jobs)
{
	reset();
	sql_system("INSERT INTO jobs (kind, state, finished_at) VALUES "
	           "('test.count', 'done', now() - interval '8 days'), "
	           "('test.count', 'cancelled', now() - interval '9 days'), "
	           "('test.count', 'done', now() - interval '1 day'), "
	           "('test.count', 'dead', now() - interval '30 days')");
	ck_assert_int_eq(jobs_start(1), 0);
	/* Starting schedules the next run once, at 03:00 UTC. */
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs WHERE kind = 'jobs.cleanup' AND state = "
	                        "'queued' AND extract(hour FROM due_at AT TIME ZONE 'UTC') = 3 "
	                        "AND due_at > now() AND due_at <= now() + interval '1 day'",
	                        NULL),
	                 1);
	/* A run due now (as if it were 03:00) must schedule the next one. */
	sql_system("DELETE FROM jobs WHERE kind = 'jobs.cleanup'");
	sql_system("INSERT INTO jobs (kind, dedupe_key) VALUES ('jobs.cleanup', "
	           "'jobs.cleanup:2000-01-01')");
	for (int i = 0; i < 100 && scalar("SELECT count(*) FROM jobs WHERE kind = 'jobs.cleanup' "
	                                  "AND state = 'done'",
	                                  NULL) == 0;
	     i++)
		usleep(50000);
	jobs_stop();
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs WHERE kind = 'test.count'", NULL), 2);
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs WHERE kind = 'test.count' AND "
	                        "(state = 'dead' OR finished_at > now() - interval '2 days')",
	                        NULL),
	                 2);
	/* The run scheduled the next day's. */
	ck_assert_int_eq(scalar("SELECT count(*) FROM jobs WHERE kind = 'jobs.cleanup' AND state = "
	                        "'queued' AND due_at > now()",
	                        NULL),
	                 1);
}
END_TEST

static Suite *
jobs_suite(void)
{
	Suite *s = suite_create("db and jobs");
	TCase *tc = tcase_create("postgres");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, migrate_twice_applies_nothing_new);
	tcase_add_test(tc, statement_errors_fail_the_transaction);
	tcase_add_test(tc, rls_scopes_every_query);
	tcase_add_test(tc, enqueue_committed_runs_once);
	tcase_add_test(tc, final_result_with_call_in_flight_waits_for_it);
	tcase_add_test(tc, enqueue_rolled_back_never_runs);
	tcase_add_test(tc, dedupe_key_enqueues_once);
	tcase_add_test(tc, due_job_waits_for_its_time);
	tcase_add_test(tc, failure_backs_off_then_succeeds);
	tcase_add_test(tc, last_failure_is_dead);
	tcase_add_test(tc, retry_at_does_not_count_an_attempt);
	tcase_add_test(tc, expired_lease_is_taken_again);
	tcase_add_test(tc, daily_cleanup_keeps_recent_and_dead_jobs);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(jobs_suite)
