/* db_classify(): what a failed statement means, as a table of SQLSTATEs. */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "unit.h"
#include "util.h"

static const struct {
	const char *sqlstate;
	enum db_error want;
} cases[] = {
    {"57P01", DB_UNAVAILABLE}, /* admin_shutdown: PostgreSQL stopping under a statement */
    {"57P02", DB_UNAVAILABLE}, /* crash_shutdown */
    {"57P03", DB_UNAVAILABLE}, /* cannot_connect_now: still starting */
    {"57014", DB_UNAVAILABLE}, /* query_canceled */
    {"08006", DB_UNAVAILABLE}, /* connection_failure */
    {"08003", DB_UNAVAILABLE}, /* connection_does_not_exist */
    {"08001", DB_UNAVAILABLE}, /* sqlclient_unable_to_establish_sqlconnection */
    {"08P01", DB_UNAVAILABLE}, /* protocol_violation */
    {"53300", DB_UNAVAILABLE}, /* too_many_connections */
    {"53100", DB_UNAVAILABLE}, /* disk_full */
    {NULL, DB_UNAVAILABLE},    /* libpq's own error: the connection was lost */
    {"", DB_UNAVAILABLE},      {"23505", DB_CONFLICT}, /* unique_violation */
    {"23503", DB_CONFLICT},                            /* foreign_key_violation */
    {"23514", DB_CONFLICT},                            /* check_violation */
    {"23P01", DB_CONFLICT},                            /* exclusion_violation */
    {"40001", DB_RETRYABLE},                           /* serialization_failure */
    {"40P01", DB_RETRYABLE},                           /* deadlock_detected */
    {"40002", DB_BUG},     /* transaction_integrity_constraint_violation */
    {"42P01", DB_BUG},     /* undefined_table */
    {"42601", DB_BUG},     /* syntax_error */
    {"22P02", DB_BUG},     /* invalid_text_representation */
    {"42501", DB_BUG},     /* insufficient_privilege */
    {"P0001", DB_BUG},     /* raise_exception */
    {"XX000", DB_BUG},     /* internal_error */
    {"25P02", DB_BUG},     /* in_failed_sql_transaction */
    {"5", DB_UNAVAILABLE}, /* not a SQLSTATE: treated as libpq's own */
};

START_TEST(test_classify)
{
	ck_assert_msg(db_classify(cases[_i].sqlstate) == cases[_i].want, "%s",
	              cases[_i].sqlstate ? cases[_i].sqlstate : "(null)");
}
END_TEST

/* A result as libpq would give it: one row of (text 'abc', NULL, '42',
 * '1765.5', 't', 'true', '12x'). */
static PGresult *
sample_result(void)
{
	PGresAttDesc cols[7];
	const char *vals[7] = {"abc", NULL, "42", "1765.5", "t", "true", "12x"};
	PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

	memset(cols, 0, sizeof(cols));
	for (int i = 0; i < 7; i++) {
		cols[i].name = (char *)"c";
		cols[i].format = 0;
		cols[i].typid = 25;
		cols[i].typlen = -1;
		cols[i].atttypmod = -1;
	}
	ck_assert_int_eq(PQsetResultAttrs(r, 7, cols), 1);
	for (int i = 0; i < 7; i++)
		ck_assert_int_eq(
		    PQsetvalue(r, 0, i, (char *)vals[i], vals[i] ? (int)strlen(vals[i]) : -1), 1);
	return r;
}

START_TEST(test_checked_reads)
{
	PGresult *r = sample_result();
	char small[3], *dup;

	ck_assert_str_eq(db_text(r, 0, 0), "abc");
	ck_assert_ptr_null(db_text(r, 0, 1)); /* SQL NULL */
	ck_assert_ptr_null(db_text(r, 1, 0)); /* no such row */
	ck_assert_ptr_null(db_text(r, 0, 7)); /* no such column */
	ck_assert_ptr_null(db_text(r, -1, 0));
	ck_assert_ptr_null(db_text(NULL, 0, 0));
	dup = db_strdup(r, 0, 0);
	ck_assert_str_eq(dup, "abc");
	free(dup);
	ck_assert_ptr_null(db_strdup(r, 0, 1));
	db_copy(small, sizeof(small), r, 0, 0);
	ck_assert_str_eq(small, "ab"); /* truncated to the buffer */
	db_copy(small, sizeof(small), r, 0, 1);
	ck_assert_str_eq(small, "");
	ck_assert_int_eq(db_int(r, 0, 2, -1), 42);
	ck_assert_int_eq(db_int(r, 0, 1, -1), -1); /* NULL */
	ck_assert_int_eq(db_int(r, 0, 6, -1), -1); /* not a number */
	ck_assert_int_eq(db_int(r, 3, 2, 7), 7);   /* no such row */
	ck_assert_double_eq(db_double(r, 0, 3, 0), 1765.5);
	ck_assert_double_eq(db_double(r, 0, 1, 0.25), 0.25);
	ck_assert_int_eq(db_bool(r, 0, 4), 1);
	ck_assert_int_eq(db_bool(r, 0, 5), 0); /* PostgreSQL's text for true is 't' */
	ck_assert_int_eq(db_bool(r, 0, 1), 0);
	ck_assert_int_eq(db_bool(r, 5, 4), 0);
	PQclear(r);
}
END_TEST

static Suite *
db_errors_suite(void)
{
	Suite *s = suite_create("db_errors");
	TCase *tc = tcase_create("classify");
	TCase *reads = tcase_create("checked reads");

	tcase_add_loop_test(tc, test_classify, 0, (int)ARRAY_LEN(cases));
	suite_add_tcase(s, tc);
	tcase_add_test(reads, test_checked_reads);
	suite_add_tcase(s, reads);
	return s;
}

UNIT_SUITE(db_errors_suite)
