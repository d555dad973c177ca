#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "util.h"

static const struct {
	const char *in;
	long long min, max;
	int rc;
	long long want;
} strnum_cases[] = {
    {"0", 0, 10, 0, 0},
    {"10", 0, 10, 0, 10},
    {"11", 0, 10, -1, 0},
    {"-1", 0, 10, -1, 0},
    {"-5", -10, 10, 0, -5},
    {"", 0, 10, -1, 0},
    {" 5", 0, 10, -1, 0},
    {"5 ", 0, 10, -1, 0},
    {"5x", 0, 10, -1, 0},
    {"x5", 0, 10, -1, 0},
    {"0x10", 0, 100, -1, 0},
    {"9223372036854775807", 0, 9223372036854775807LL, 0, 9223372036854775807LL},
    {"9223372036854775808", 0, 9223372036854775807LL, -1, 0},
    {"007", 0, 10, 0, 7},
    {"1.5", 0, 10, -1, 0},
};

START_TEST(test_strnum)
{
	long long v = -12345;
	int rc = strnum(strnum_cases[_i].in, strnum_cases[_i].min, strnum_cases[_i].max, &v);

	ck_assert_msg(rc == strnum_cases[_i].rc, "strnum(\"%s\") returned %d", strnum_cases[_i].in,
	              rc);
	if (rc == 0)
		ck_assert_int_eq(v, strnum_cases[_i].want);
	else
		ck_assert_int_eq(v, -12345);
}
END_TEST

START_TEST(test_strnum_null)
{
	long long v;

	ck_assert_int_eq(strnum(NULL, 0, 1, &v), -1);
}
END_TEST

/* strnum_digits reads exactly len bytes, digits only. */
static const struct {
	const char *in;
	size_t len;
	int rc;
	long long want;
} digits_cases[] = {
    {"12", 2, 0, 12},
    {"12/x", 2, 0, 12},
    {"12/x", 4, -1, 0},
    {"007", 3, 0, 7},
    {"0", 1, -1, 0},
    {"", 0, -1, 0},
    {"-3", 2, -1, 0},
    {"+3", 2, -1, 0},
    {" 3", 2, -1, 0},
    {"1e3", 3, -1, 0},
    {"999999999999999999", 18, 0, 999999999999999999LL},
    {"9999999999999999999", 19, -1, 0},
};

START_TEST(test_strnum_digits)
{
	long long v = -7;
	int rc = strnum_digits(digits_cases[_i].in, digits_cases[_i].len, 1, INT64_MAX, &v);

	ck_assert_msg(rc == digits_cases[_i].rc, "strnum_digits(\"%s\", %zu) returned %d",
	              digits_cases[_i].in, digits_cases[_i].len, rc);
	ck_assert_int_eq(v, rc == 0 ? digits_cases[_i].want : -7);
}
END_TEST

START_TEST(test_buf)
{
	struct buf b;
	char *s;

	buf_init(&b);
	ck_assert_ptr_nonnull(b.data);
	ck_assert_str_eq(b.data, "");
	ck_assert_uint_eq(b.len, 0);
	buf_puts(&b, "hello");
	buf_putc(&b, ' ');
	buf_printf(&b, "%d-%s", 42, "x");
	buf_append(&b, "\0z", 2);
	ck_assert_uint_eq(b.len, 12);
	ck_assert_str_eq(b.data, "hello 42-x");
	ck_assert_int_eq(b.data[11], 'z');
	ck_assert_int_eq(b.data[12], '\0');
	s = buf_steal(&b);
	ck_assert_int_eq(memcmp(s, "hello 42-x\0z", 13), 0);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_str_eq(b.data, "");
	free(s);
	buf_free(&b);
}
END_TEST

START_TEST(test_buf_grows)
{
	struct buf b;

	buf_init(&b);
	for (int i = 0; i < 10000; i++)
		buf_printf(&b, "%04d", i % 10000);
	ck_assert_uint_eq(b.len, 40000);
	ck_assert_uint_eq(strlen(b.data), 40000);
	ck_assert_int_eq(strncmp(b.data + 39996, "9999", 4), 0);
	buf_free(&b);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(test_buf_zeroed_and_empty_steal)
{
	struct buf b = {0};
	char *s;

	buf_puts(&b, "ok");
	ck_assert_str_eq(b.data, "ok");
	buf_free(&b);
	buf_init(&b);
	s = buf_steal(&b);
	ck_assert_str_eq(s, "");
	free(s);
}
END_TEST

START_TEST(test_strings)
{
	char *a = xstrdup("abc"), *b = xstrndup("abcdef", 4), *c = xstrndup("ab", 10);
	char *d = xasprintf("%s/%d", "x", 7);

	ck_assert_str_eq(a, "abc");
	ck_assert_str_eq(b, "abcd");
	ck_assert_str_eq(c, "ab");
	ck_assert_str_eq(d, "x/7");
	free(a);
	free(b);
	free(c);
	free(d);
}
END_TEST

static const struct {
	const char *a, *b;
	size_t d;
} distance_cases[] = {
    {"", "", 0},
    {"", "abc", 3},
    {"abc", "", 3},
    {"abc", "abc", 0},
    {"kitten", "sitting", 3},
    {"DATABSE_URL", "DATABASE_URL", 1},
    {"LISTN", "LISTEN", 1},
    {"flaw", "lawn", 2},
    {"ab", "ba", 2},
    {"abc", "xyz", 3},
};

START_TEST(test_edit_distance)
{
	ck_assert_uint_eq(edit_distance(distance_cases[_i].a, distance_cases[_i].b),
	                  distance_cases[_i].d);
	ck_assert_uint_eq(edit_distance(distance_cases[_i].b, distance_cases[_i].a),
	                  distance_cases[_i].d);
}
END_TEST

START_TEST(test_fatal_aborts)
{
	ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));
	fatal("broken invariant %d", 1);
}
END_TEST

START_TEST(test_clocks)
{
	int64_t a = mono_usec(), b;
	double now = now_seconds();

	ck_assert(now > 1.7e9 && now < 4e9);
	b = mono_usec();
	ck_assert(b >= a);
}
END_TEST

/* Slack's escaping rules for quoted user text: & < > and nothing else. */
static const struct {
	const char *in, *want;
} escape_cases[] = {
    {"", ""},
    {"plain text", "plain text"},
    {"a & b", "a &amp; b"},
    {"<@U123>", "&lt;@U123&gt;"},
    {"&amp;", "&amp;amp;"},
    {"<!channel> & <http://x|y>", "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"},
    {"caf\xc3\xa9 *bold*", "caf\xc3\xa9 *bold*"},
    {"`<!here>` is not a time", "`&lt;!here&gt;` is not a time"},
    {"<<>>&&", "&lt;&lt;&gt;&gt;&amp;&amp;"},
    {NULL, ""},
};

START_TEST(test_escape)
{
	char *got = slack_escape(escape_cases[_i].in);

	ck_assert_str_eq(got, escape_cases[_i].want);
	free(got);
}
END_TEST

/* The one rule for Slack ids: a type letter from the caller's set, then 2
 * to 20 of A-Z and 0-9. */
static const struct {
	const char *id;
	const char *first;
	int ok;
} slack_ids[] = {
    {"T0TEAM0001", "TE", 1},
    {"E0ABC123", "TE", 1},
    {"E12", "E", 1},
    {"U0B", "UW", 1},
    {"W0ABCDEF", "UW", 1},
    {"A0CONCH01", "A", 1},
    {"C0CHANNEL1", "CGD", 1},
    {"T12345678901234567890", "TE", 1},  /* 20 after the type letter */
    {"T123456789012345678901", "TE", 0}, /* 21 */
    {"T1", "TE", 0},
    {"T", "TE", 0},
    {"", "TE", 0},
    {NULL, "TE", 0},
    {"T0TEAM", NULL, 0},
    {"t0team", "TE", 0},
    {"tOTEAM", "t", 0}, /* a lower-case type letter is never one */
    {"T0abc123", "TE", 0},
    {"U0B", "TE", 0},
    {"T0TEAM 01", "TE", 0},
    {"T0-TEAM", "TE", 0},
    {"T0_TEAM", "TE", 0},
    {"T0TEAM\n", "TE", 0},
    {"bad id", "TE", 0},
};

START_TEST(test_slack_id_valid)
{
	ck_assert_msg(slack_id_valid(slack_ids[_i].id, slack_ids[_i].first) == slack_ids[_i].ok,
	              "%s in %s", slack_ids[_i].id ? slack_ids[_i].id : "(null)",
	              slack_ids[_i].first ? slack_ids[_i].first : "(null)");
}
END_TEST

static Suite *
util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");
	TCase *abort_case = tcase_create("fatal"); /* needs fork mode */

	tcase_add_loop_test(tc, test_strnum, 0, (int)ARRAY_LEN(strnum_cases));
	tcase_add_test(tc, test_strnum_null);
	tcase_add_loop_test(tc, test_strnum_digits, 0, (int)ARRAY_LEN(digits_cases));
	tcase_add_test(tc, test_buf);
	tcase_add_test(tc, test_buf_grows);
	tcase_add_test(tc, test_buf_zeroed_and_empty_steal);
	tcase_add_test(tc, test_strings);
	tcase_add_test(tc, test_clocks);
	tcase_add_loop_test(tc, test_escape, 0, (int)ARRAY_LEN(escape_cases));
	tcase_add_loop_test(tc, test_slack_id_valid, 0, (int)ARRAY_LEN(slack_ids));
	tcase_add_loop_test(tc, test_edit_distance, 0, (int)ARRAY_LEN(distance_cases));
	suite_add_tcase(s, tc);
	tcase_add_test_raise_signal(abort_case, test_fatal_aborts, SIGABRT);
	suite_add_tcase(s, abort_case);
	return s;
}

UNIT_SUITE(util_suite)
