/* Operator accounts and what operator pages may show: scrypt hashes,
 * account names, payload redaction, credential scrubbing, truncation. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "admin/password.h"
#include "admin/redact.h"

START_TEST(password_round_trip)
{
	char *h = admin_password_hash("correct horse battery");
	char *h2 = admin_password_hash("correct horse battery");

	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(strncmp(h, "scrypt$32768$8$1$", 17), 0);
	ck_assert_str_ne(h, h2); /* fresh salt each time */
	ck_assert_int_eq(admin_password_verify("correct horse battery", h), 1);
	ck_assert_int_eq(admin_password_verify("correct horse batterY", h), 0);
	ck_assert_int_eq(admin_password_verify("", h), 0);
	ck_assert_int_eq(admin_password_verify("correct horse battery", h2), 1);
	free(h);
	free(h2);
}
END_TEST

/* RFC 7914 section 12's second vector (N=1024, r=8, p=16, "NaCl"), in the
 * stored format: checks the KDF and the parser together. */
START_TEST(password_rfc7914_vector)
{
	const char *stored = "scrypt$1024$8$16$TmFDbA==$"
	                     "/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWIurzDZLiKjiG/xCSedmDDa"
	                     "xyevuUqD7m2DYMvfoswGQA==";

	ck_assert_int_eq(admin_password_verify("password", stored), 1);
	ck_assert_int_eq(admin_password_verify("passwore", stored), 0);
}
END_TEST

START_TEST(password_malformed)
{
	static const char *const bad[] = {
	    NULL,
	    "",
	    "plain",
	    "bcrypt$10$abc",
	    "scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",    /* N not a power of 2 */
	    "scrypt$4194304$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==", /* N too large */
	    "scrypt$1024$0$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",    /* r = 0 */
	    "scrypt$1024$8$1$!!!$aGFzaGhhc2hoYXNoaGFzaA==",             /* bad base64 */
	    "scrypt$1024$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==$x",  /* extra field */
	    "scrypt$1024$8$1$c2FsdHNhbHQ=",                             /* no hash */
	    "scrypt$1024$8$1$$aGFzaGhhc2hoYXNoaGFzaA==",                /* empty salt */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(admin_password_verify("whatever-password", bad[i]) == -1, "case %zu",
		              i);
}
END_TEST

START_TEST(password_dummy_is_well_formed)
{
	/* Unknown names are checked against it: it must parse (same cost as a
	 * real hash) and match nothing likely. */
	ck_assert_int_eq(admin_password_verify("password", admin_dummy_hash), 0);
	ck_assert_int_eq(admin_password_verify("", admin_dummy_hash), 0);
}
END_TEST

START_TEST(names)
{
	static const struct {
		const char *name;
		int ok;
	} rows[] = {
	    {"ops", 1},
	    {"a", 1},
	    {"jane.doe_2-x", 1},
	    {"", 0},
	    {"Ops", 0},
	    {"ops admin", 0},
	    {"ops/..", 0},
	    {"op$", 0},
	    {"\xc3\xa9t\xc3\xa9", 0},
	    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1},  /* 64 */
	    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0}, /* 65 */
	};

	ck_assert_int_eq(admin_name_valid(NULL), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ck_assert_msg(admin_name_valid(rows[i].name) == rows[i].ok, "%s", rows[i].name);
}
END_TEST

START_TEST(redact_payloads)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
	    {"{\"thing\":\"staging\",\"hold_id\":7}", "{\"thing\":\"staging\",\"hold_id\":7}"},
	    {"{\"bot_token\":\"abc\",\"x\":1}", "{\"bot_token\":\"[redacted]\",\"x\":1}"},
	    {"{\"Client_Secret\":{\"a\":1}}", "{\"Client_Secret\":\"[redacted]\"}"},
	    {"{\"api_key\":5,\"password\":null}",
	     "{\"api_key\":\"[redacted]\",\"password\":\"[redacted]\"}"},
	    {"{\"a\":[{\"refresh_token\":\"r\"},\"xoxb-123-abc\"]}",
	     "{\"a\":[{\"refresh_token\":\"[redacted]\"},\"[redacted]\"]}"},
	    {"{\"text\":\"use sk_test_51Habc now\"}", "{\"text\":\"use [redacted] now\"}"},
	    {"{\"response_url\":\"https://hooks.slack.com/commands/T1/2/x\",\"response_url_at\":1}",
	     "{\"response_url\":\"[redacted]\",\"response_url_at\":\"[redacted]\"}"},
	    {"[1,\"two\",true]", "[1,\"two\",true]"},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		json_t *in = json_loads(rows[i].in, JSON_DECODE_ANY, NULL);
		json_t *want = json_loads(rows[i].out, JSON_DECODE_ANY, NULL);
		json_t *got = admin_redact(in);

		ck_assert_ptr_nonnull(in);
		ck_assert_msg(json_equal(got, want), "case %zu", i);
		json_decref(in);
		json_decref(want);
		json_decref(got);
	}
}
END_TEST

START_TEST(scrub_text)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
	    {"invalid_auth", "invalid_auth"},
	    {"token xoxb-1234-5678-abcDEF rejected", "token [redacted] rejected"},
	    {"XOXP-1-2", "[redacted]"},
	    {"key whsec_abc123, then", "key [redacted], then"},
	    {"sealed v1.3.QUJDREVGR0hJSktMTU5PUFFSU1RVVldY end", "sealed [redacted] end"},
	    {"version v1.2.3 is fine", "version v1.2.3 is fine"},
	    {"nov1.3.QUJDREVGR0hJSktMTU5PUFFSU1RVVldY", "nov1.3.QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"},
	    {"", ""},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *got = admin_scrub(rows[i].in);

		ck_assert_str_eq(got, rows[i].out);
		free(got);
	}
}
END_TEST

START_TEST(truncate_text)
{
	char *a = admin_truncate("short", 10);
	char *b = admin_truncate("abcdefghij", 4);
	char *c = admin_truncate("ab\xc3\xa9z", 3); /* would split the é */
	char *d = admin_truncate(NULL, 3);

	ck_assert_str_eq(a, "short");
	ck_assert_str_eq(b, "abcd\xe2\x80\xa6");
	ck_assert_str_eq(c, "ab\xe2\x80\xa6");
	ck_assert_str_eq(d, "");
	free(a);
	free(b);
	free(c);
	free(d);
}
END_TEST

START_TEST(clean_job_rows)
{
	json_t *rows =
	    json_pack("[{s:s, s:s}]", "payload", "{\"token\":\"xoxb-1-2\",\"thing\":\"db\"}",
	              "last_error", "slack said invalid_auth for xoxb-9-9");
	json_t *row;

	admin_clean_job_rows(rows);
	row = json_array_get(rows, 0);
	ck_assert_str_eq(json_string_value(json_object_get(row, "payload")),
	                 "{\"token\":\"[redacted]\",\"thing\":\"db\"}");
	ck_assert_str_eq(json_string_value(json_object_get(row, "last_error")),
	                 "slack said invalid_auth for [redacted]");
	json_decref(rows);
}
END_TEST

START_TEST(cursors)
{
	static const struct {
		const char *s;
		int ok;
	} rows[] = {
	    {"2026-11-23T14:59:56.300461Z", 1},
	    {"2026-11-23T14:59:56.300461", 0},
	    {"2026-11-23 14:59:56.300461Z", 0},
	    {"2026-11-23T14:59:56Z", 0},
	    {"2026-11-23T14:59:56.3004610Z", 0},
	    {"2026-1a-23T14:59:56.300461Z", 0},
	    {"infinity", 0},
	    {"", 0},
	};

	ck_assert_int_eq(admin_cursor_valid(NULL), 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ck_assert_msg(admin_cursor_valid(rows[i].s) == rows[i].ok, "%s", rows[i].s);
}
END_TEST

static Suite *
admin_suite(void)
{
	Suite *s = suite_create("admin");
	TCase *tc = tcase_create("admin");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, password_round_trip);
	tcase_add_test(tc, password_rfc7914_vector);
	tcase_add_test(tc, password_malformed);
	tcase_add_test(tc, password_dummy_is_well_formed);
	tcase_add_test(tc, names);
	tcase_add_test(tc, redact_payloads);
	tcase_add_test(tc, scrub_text);
	tcase_add_test(tc, truncate_text);
	tcase_add_test(tc, clean_job_rows);
	tcase_add_test(tc, cursors);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(admin_suite)
