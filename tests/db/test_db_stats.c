/* The connection figures of /metrics against a real PostgreSQL: open
 * connections, those inside a transaction, and threads waiting for one to
 * open. Each test runs in a process of its own (Check forks), and compares
 * figures before and after, so nothing else's connections matter. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../unit/unit.h"
#include "db.h"
#include "util.h"

static void
connect_test_db(void)
{
	const char *url = getenv("TEST_CONCH_DATABASE_URL");

	ck_assert_msg(url && *url, "TEST_CONCH_DATABASE_URL must name a test database");
	db_init(url);
}

static struct db_conn_stats
stats(void)
{
	struct db_conn_stats st;

	db_conn_stats(&st);
	return st;
}

START_TEST(transactions_are_counted_until_they_end)
{
	struct db_conn_stats before, st;
	struct tx tx;

	connect_test_db();
	before = stats();
	ck_assert_int_eq(tx_begin(&tx, NULL), 0);
	st = stats();
	ck_assert_int_eq(st.open, before.open + 1);
	ck_assert_int_eq(st.in_transaction, before.in_transaction + 1);
	ck_assert_int_eq(tx_commit(&tx), 0);
	ck_assert_int_eq(stats().in_transaction, before.in_transaction);

	ck_assert_int_eq(tx_begin(&tx, "T0STATS001"), 0);
	ck_assert_int_eq(stats().in_transaction, before.in_transaction + 1);
	tx_rollback(&tx);
	ck_assert_int_eq(stats().in_transaction, before.in_transaction);

	/* A failed statement: commit rolls back, and the count follows. */
	ck_assert_int_eq(tx_begin_system(&tx), 0);
	ck_assert_int_eq(tx_exec(&tx, "SELECT 1/0", 0, NULL), -1);
	ck_assert_int_eq(tx_commit(&tx), -1);
	ck_assert_int_eq(stats().in_transaction, before.in_transaction);

	/* A ping and a lone read are no transaction of ours to count. */
	ck_assert_int_eq(db_ping(), 0);
	PQclear(db_query_once("SELECT 1", 0, NULL, NULL));
	st = stats();
	ck_assert_int_eq(st.in_transaction, before.in_transaction);
	ck_assert_int_eq(st.open, before.open + 1); /* the same connection throughout */

	/* Closing a connection inside a transaction uncounts both. */
	ck_assert_int_eq(tx_begin(&tx, NULL), 0);
	db_thread_close();
	st = stats();
	ck_assert_int_eq(st.open, before.open);
	ck_assert_int_eq(st.in_transaction, before.in_transaction);
	ck_assert_int_eq(st.connecting, 0);
}
END_TEST

static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;
static int hold_state; /* 1: in a transaction; 2: told to finish */

static void *
hold_transaction(void *arg)
{
	struct tx tx;

	(void)arg;
	ck_assert_int_eq(tx_begin(&tx, NULL), 0);
	pthread_mutex_lock(&hold_lock);
	hold_state = 1;
	pthread_cond_broadcast(&hold_cond);
	while (hold_state != 2)
		pthread_cond_wait(&hold_cond, &hold_lock);
	pthread_mutex_unlock(&hold_lock);
	tx_commit(&tx);
	db_thread_close();
	return NULL;
}

START_TEST(each_thread_has_its_own_connection)
{
	struct db_conn_stats before, st;
	struct tx tx;
	pthread_t th;

	connect_test_db();
	before = stats();
	ck_assert_int_eq(tx_begin(&tx, NULL), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, hold_transaction, NULL), 0);
	pthread_mutex_lock(&hold_lock);
	while (hold_state != 1)
		pthread_cond_wait(&hold_cond, &hold_lock);
	pthread_mutex_unlock(&hold_lock);
	st = stats();
	ck_assert_int_eq(st.open, before.open + 2);
	ck_assert_int_eq(st.in_transaction, before.in_transaction + 2);
	pthread_mutex_lock(&hold_lock);
	hold_state = 2;
	pthread_cond_broadcast(&hold_cond);
	pthread_mutex_unlock(&hold_lock);
	pthread_join(th, NULL);
	st = stats();
	ck_assert_int_eq(st.open, before.open + 1);
	ck_assert_int_eq(st.in_transaction, before.in_transaction + 1);
	ck_assert_int_eq(tx_commit(&tx), 0);
	db_thread_close();
}
END_TEST

static atomic_int connect_done;

static void *
connect_once(void *arg)
{
	(void)arg;
	ck_assert_ptr_null(db_thread_conn());
	atomic_store(&connect_done, 1);
	return NULL;
}

/* A server that accepts TCP but never speaks: libpq waits out its
 * connect_timeout (3 s), and meanwhile the thread counts as waiting. */
START_TEST(a_thread_opening_a_connection_is_waiting)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), seen = 0;
	long errors = db_error_count();
	pthread_t th;
	char *url;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	url = xasprintf("postgresql://conch@127.0.0.1:%d/none", ntohs(a.sin_port));
	db_init(url);
	ck_assert_int_eq(stats().connecting, 0);
	ck_assert_int_eq(pthread_create(&th, NULL, connect_once, NULL), 0);
	while (!seen && !atomic_load(&connect_done)) {
		seen = stats().connecting == 1;
		usleep(1000);
	}
	pthread_join(th, NULL);
	ck_assert_msg(seen, "the connecting thread was never counted");
	ck_assert_int_eq(stats().connecting, 0);
	ck_assert_int_eq(stats().open, 0);
	ck_assert_int_eq(db_error_count(), errors + 1);
	close(fd);
	free(url);
}
END_TEST

/* Runs sql on the thread's connection (its session: temp objects). */
static void
session_exec(const char *sql)
{
	PGresult *r = PQexec(db_thread_conn(), sql);

	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
	              "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

static long
tries(void)
{
	PGresult *r = PQexec(db_thread_conn(), "SELECT last_value FROM tries");
	long n = (long)db_int(r, 0, 0, -1);

	PQclear(r);
	return n;
}

/* pg_temp.flaky(code, fails) fails with SQLSTATE code on its first `fails`
 * calls of the session (the sequence counts across rollbacks), then
 * returns its call number. */
static void
flaky_setup(void)
{
	connect_test_db();
	session_exec("CREATE TEMP SEQUENCE tries");
	session_exec("CREATE FUNCTION pg_temp.flaky(p_code text, p_fails int) RETURNS bigint "
	             "LANGUAGE plpgsql AS $$ DECLARE n bigint := nextval('tries'); BEGIN "
	             "IF n <= p_fails THEN RAISE EXCEPTION 'try %', n USING ERRCODE = p_code; "
	             "END IF; RETURN n; END $$");
}

START_TEST(serialization_failures_and_deadlocks_run_again_once)
{
	const char *codes[] = {"40001", "40P01"};
	enum db_error error;
	PGresult *r;

	flaky_setup();
	for (int i = 0; i < 2; i++) {
		const char *p[1] = {codes[i]};
		session_exec("SELECT setval('tries', 1, false)");
		/* A change (never run twice after a lost connection) and a read alike. */
		r = i == 0 ? db_change_once("SELECT pg_temp.flaky($1, 1)", 1, p, &error)
		           : db_query_once("SELECT pg_temp.flaky($1, 1)", 1, p, &error);
		ck_assert_msg(r != NULL, "%s was not run again", codes[i]);
		ck_assert_int_eq(error, DB_OK);
		ck_assert_int_eq(db_int(r, 0, 0, 0), 2);
		PQclear(r);
		/* Only once: a second failure is the caller's. */
		session_exec("SELECT setval('tries', 1, false)");
		r = db_change_once("SELECT pg_temp.flaky($1, 5)", 1, p, &error);
		ck_assert_ptr_null(r);
		ck_assert_int_eq(error, DB_RETRYABLE);
		ck_assert_int_eq(tries(), 2);
	}
	db_thread_close();
}
END_TEST

START_TEST(other_failures_are_not_run_again)
{
	const char *p[1] = {"P0001"};
	enum db_error error;

	flaky_setup();
	session_exec("SELECT setval('tries', 1, false)");
	ck_assert_ptr_null(db_query_once("SELECT pg_temp.flaky($1, 1)", 1, p, &error));
	ck_assert_int_eq(error, DB_BUG);
	ck_assert_int_eq(tries(), 1);
	db_thread_close();
}
END_TEST

/* BEGIN and the team scope go in one pipeline: when the scope fails (here
 * a team id that is not UTF-8), tx_begin leaves no transaction open on
 * the thread's connection, and the next one starts clean. */
START_TEST(a_failed_begin_leaves_nothing_open)
{
	struct db_conn_stats before;
	struct tx tx;

	connect_test_db();
	ck_assert_int_eq(tx_begin(&tx, NULL), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	before = stats();
	ck_assert_int_eq(tx_begin(&tx, "T\xff\xfe"), -1);
	ck_assert_int_eq(tx.error, DB_BUG);
	ck_assert_int_eq(PQtransactionStatus(db_thread_conn()), PQTRANS_IDLE);
	ck_assert_int_eq(stats().in_transaction, before.in_transaction);
	ck_assert_int_eq(tx_begin(&tx, "T0STATS002"), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	db_thread_close();
}
END_TEST

/* The request dispatchers open their transaction with a first statement
 * in the same round trip (tx_begin_with): its result comes back, the
 * transaction is open and scoped, and a failure of that statement leaves
 * nothing open. */
START_TEST(a_first_statement_rides_with_begin)
{
	const char *p[1] = {"41"};
	struct db_conn_stats before;
	struct tx tx;
	PGresult *r;

	connect_test_db();
	ck_assert_int_eq(tx_begin(&tx, NULL), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	before = stats();
	r = tx_begin_with(&tx, "T0STATS003",
	                  "SELECT current_setting('conch.team_id'), $1::int + 1, "
	                  "current_setting('plan_cache_mode')",
	                  1, p);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(db_text(r, 0, 0), "T0STATS003");
	ck_assert_int_eq(db_int(r, 0, 1, 0), 42);
	ck_assert_str_eq(db_text(r, 0, 2), "force_generic_plan");
	PQclear(r);
	ck_assert_int_eq(PQtransactionStatus(db_thread_conn()), PQTRANS_INTRANS);
	ck_assert_int_eq(stats().in_transaction, before.in_transaction + 1);
	ck_assert_int_eq(tx_commit(&tx), 0);
	ck_assert_int_eq(stats().in_transaction, before.in_transaction);

	ck_assert_ptr_null(tx_begin_with(&tx, "T0STATS003", "SELECT 1 / ($1::int - 41)", 1, p));
	ck_assert_int_eq(tx.error, DB_BUG);
	ck_assert_int_eq(tx.done, 1);
	ck_assert_int_eq(PQtransactionStatus(db_thread_conn()), PQTRANS_IDLE);
	ck_assert_int_eq(stats().in_transaction, before.in_transaction);
	db_thread_close();
}
END_TEST

static long
count_of(const char *table)
{
	char sql[64];
	PGresult *r;
	long n;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	r = PQexec(db_thread_conn(), sql);
	n = (long)db_int(r, 0, 0, -1);
	PQclear(r);
	return n;
}

/* tx_query_commit: the last statement and COMMIT in one round trip. Its
 * rows once both succeeded; NULL and nothing kept when either failed,
 * including a COMMIT refused after the statement went through (a
 * deferred constraint). */
START_TEST(the_last_statement_commits_with_it)
{
	const char *one[1] = {"1"}, *five[1] = {"5"};
	struct db_conn_stats before;
	struct tx tx;
	PGresult *r;

	connect_test_db();
	session_exec("CREATE TEMP TABLE kv (k int PRIMARY KEY)");
	session_exec("CREATE TEMP TABLE late (k int UNIQUE DEFERRABLE INITIALLY DEFERRED)");
	before = stats();

	ck_assert_int_eq(tx_begin_system(&tx), 0);
	r = tx_query_commit(&tx, "INSERT INTO kv VALUES ($1::int) RETURNING k * 10", 1, one);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(db_int(r, 0, 0, 0), 10);
	PQclear(r);
	ck_assert_int_eq(tx.done, 1);
	ck_assert_int_eq(PQtransactionStatus(db_thread_conn()), PQTRANS_IDLE);
	ck_assert_int_eq(stats().in_transaction, before.in_transaction);
	ck_assert_int_eq(count_of("kv"), 1);

	/* The statement fails: COMMIT is skipped, the transaction rolled back. */
	ck_assert_int_eq(tx_begin_system(&tx), 0);
	ck_assert_int_eq(tx_exec(&tx, "INSERT INTO kv VALUES (2)", 0, NULL), 0);
	ck_assert_ptr_null(tx_query_commit(&tx, "INSERT INTO kv VALUES ($1::int)", 1, one));
	ck_assert_int_eq(tx.error, DB_CONFLICT);
	ck_assert_int_eq(PQtransactionStatus(db_thread_conn()), PQTRANS_IDLE);
	ck_assert_int_eq(count_of("kv"), 1);

	/* The statement succeeds and COMMIT fails. */
	ck_assert_int_eq(tx_begin_system(&tx), 0);
	ck_assert_int_eq(tx_exec(&tx, "INSERT INTO late VALUES (5)", 0, NULL), 0);
	ck_assert_ptr_null(
	    tx_query_commit(&tx, "INSERT INTO late VALUES ($1::int) RETURNING k", 1, five));
	ck_assert_int_eq(tx.error, DB_CONFLICT);
	ck_assert_int_eq(PQtransactionStatus(db_thread_conn()), PQTRANS_IDLE);
	ck_assert_int_eq(stats().in_transaction, before.in_transaction);
	ck_assert_int_eq(count_of("late"), 0);
	db_thread_close();
}
END_TEST

/* A handler may close the transaction it was handed; the dispatcher's
 * commit after it then only says how it ended, and nothing more runs in
 * it. */
START_TEST(a_closed_transaction_says_how_it_ended)
{
	struct tx tx;

	connect_test_db();
	ck_assert_int_eq(tx_begin(&tx, "T0STATS004"), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	ck_assert_int_eq(tx_commit(&tx), 0);
	tx_rollback(&tx); /* nothing to roll back: it stays committed */
	ck_assert_int_eq(tx_commit(&tx), 0);
	ck_assert_ptr_null(tx_query(&tx, "SELECT 1", 0, NULL));
	ck_assert_int_eq(PQtransactionStatus(db_thread_conn()), PQTRANS_IDLE);

	ck_assert_int_eq(tx_begin(&tx, "T0STATS004"), 0);
	ck_assert_int_eq(tx_exec(&tx, "SELECT 1/0", 0, NULL), -1);
	ck_assert_int_eq(tx_commit(&tx), -1);
	ck_assert_int_eq(tx_commit(&tx), -1);
	ck_assert_int_eq(PQtransactionStatus(db_thread_conn()), PQTRANS_IDLE);
	db_thread_close();
}
END_TEST

/* The server ends the connection while a transaction is open (a restart,
 * an operator's pg_terminate_backend): the last statement and its COMMIT
 * fail as unavailable, nothing is kept, and the next transaction starts on
 * a new connection, with nothing left open. */
START_TEST(a_connection_lost_in_a_transaction_is_replaced)
{
	const char *url = getenv("TEST_CONCH_DATABASE_URL");
	char sql[64];
	struct tx tx;
	PGconn *other;
	PGresult *r;
	int pid;

	connect_test_db();
	ck_assert_int_eq(tx_begin(&tx, "T0STATS005"), 0);
	pid = PQbackendPID(db_thread_conn());
	other = PQconnectdb(url);
	ck_assert_int_eq(PQstatus(other), CONNECTION_OK);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
	r = PQexec(other, sql);
	ck_assert_str_eq(db_str(r, 0, 0), "t");
	PQclear(r);
	PQfinish(other);
	usleep(100 * 1000); /* the server closes the socket */

	ck_assert_ptr_null(tx_query_commit(&tx, "SELECT 1", 0, NULL));
	ck_assert_int_eq(tx.error, DB_UNAVAILABLE);
	ck_assert_int_eq(tx_commit(&tx), -1);
	ck_assert_int_eq(stats().in_transaction, 0);

	ck_assert_int_eq(tx_begin(&tx, "T0STATS005"), 0);
	ck_assert_int_ne(PQbackendPID(db_thread_conn()), pid);
	ck_assert_int_eq(tx_commit(&tx), 0);
	ck_assert_int_eq(PQtransactionStatus(db_thread_conn()), PQTRANS_IDLE);
	db_thread_close();
}
END_TEST

/* tx_end: what a dispatcher does after the request's work. */
START_TEST(a_request_transaction_ends_once_or_runs_again)
{
	const char *p[1] = {"40001"};
	struct tx tx;

	flaky_setup();
	session_exec("CREATE TEMP TABLE late_end (k int UNIQUE DEFERRABLE INITIALLY DEFERRED)");
	/* Work that went through: committed. */
	ck_assert_int_eq(tx_begin(&tx, "T0STATS006"), 0);
	ck_assert_int_eq(tx_end(&tx, 0), TX_ENDED);
	/* A serialization failure the work saw: again on the first attempt only. */
	session_exec("SELECT setval('tries', 1, false)");
	ck_assert_int_eq(tx_begin(&tx, "T0STATS006"), 0);
	ck_assert_int_eq(tx_exec(&tx, "SELECT pg_temp.flaky($1, 5)", 1, p), -1);
	ck_assert_int_eq(tx_end(&tx, 0), TX_AGAIN);
	ck_assert_int_eq(tx_begin(&tx, "T0STATS006"), 0);
	ck_assert_int_eq(tx_exec(&tx, "SELECT pg_temp.flaky($1, 5)", 1, p), -1);
	ck_assert_int_eq(tx_end(&tx, 1), TX_ENDED);
	/* Another failure the work saw: ended, it has answered for it. */
	ck_assert_int_eq(tx_begin(&tx, "T0STATS006"), 0);
	ck_assert_int_eq(tx_exec(&tx, "SELECT 1/0", 0, NULL), -1);
	ck_assert_int_eq(tx_end(&tx, 0), TX_ENDED);
	/* The commit fails after the work went through: lost. */
	ck_assert_int_eq(tx_begin(&tx, "T0STATS006"), 0);
	ck_assert_int_eq(tx_exec(&tx, "INSERT INTO late_end VALUES (1), (1)", 0, NULL), 0);
	ck_assert_int_eq(tx_end(&tx, 0), TX_LOST);
	ck_assert_int_eq(PQtransactionStatus(db_thread_conn()), PQTRANS_IDLE);
	db_thread_close();
}
END_TEST

static Suite *
db_stats_suite(void)
{
	Suite *s = suite_create("db connection figures");
	TCase *tc = tcase_create("postgres");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, transactions_are_counted_until_they_end);
	tcase_add_test(tc, each_thread_has_its_own_connection);
	tcase_add_test(tc, a_thread_opening_a_connection_is_waiting);
	tcase_add_test(tc, serialization_failures_and_deadlocks_run_again_once);
	tcase_add_test(tc, other_failures_are_not_run_again);
	tcase_add_test(tc, a_failed_begin_leaves_nothing_open);
	tcase_add_test(tc, a_first_statement_rides_with_begin);
	tcase_add_test(tc, the_last_statement_commits_with_it);
	tcase_add_test(tc, a_closed_transaction_says_how_it_ended);
	tcase_add_test(tc, a_connection_lost_in_a_transaction_is_replaced);
	tcase_add_test(tc, a_request_transaction_ends_once_or_runs_again);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(db_stats_suite)
