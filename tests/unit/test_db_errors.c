/* db_classify(): what a failed statement means, as a table of SQLSTATEs. */
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

static Suite *
db_errors_suite(void)
{
	Suite *s = suite_create("db_errors");
	TCase *tc = tcase_create("classify");

	tcase_add_loop_test(tc, test_classify, 0, (int)ARRAY_LEN(cases));
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(db_errors_suite)
