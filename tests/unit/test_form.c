#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"
#include "unit.h"
#include "util.h"

/* body[0..len) (len 0 = strlen) parses to rc and exactly these fields. */
static const struct {
	const char *body;
	size_t len;
	int rc;
	size_t n;
	const char *kv[8]; /* key, value, key, value... */
} cases[] = {
    {"a=1&b=2", 0, 0, 2, {"a", "1", "b", "2"}},
    {"", 0, 0, 0, {NULL}},
    {"a=1&&b=2", 0, 0, 2, {"a", "1", "b", "2"}},
    {"&a=1&", 0, 0, 1, {"a", "1"}},
    {"&&&", 0, 0, 0, {NULL}},
    {"a", 0, 0, 1, {"a", ""}},
    {"a=", 0, 0, 1, {"a", ""}},
    {"=v", 0, 0, 1, {"", "v"}},
    {"a+b=c+d", 0, 0, 1, {"a b", "c d"}},
    {"a=%41%42c", 0, 0, 1, {"a", "ABc"}},
    {"a=%e2%82%ac", 0, 0, 1, {"a", "\xe2\x82\xac"}},
    {"a=%E2%82%AC", 0, 0, 1, {"a", "\xe2\x82\xac"}},
    {"shell=%F0%9F%90%9A", 0, 0, 1, {"shell", "\xf0\x9f\x90\x9a"}},
    {"caf%C3%A9=cr%C3%A8me", 0, 0, 1, {"caf\xc3\xa9", "cr\xc3\xa8me"}},
    {"a=%2B", 0, 0, 1, {"a", "+"}},
    {"a=%20%2b+", 0, 0, 1, {"a", " + "}},
    {"a=%26b%3Dc", 0, 0, 1, {"a", "&b=c"}},
    {"a=1=2", 0, 0, 1, {"a", "1=2"}},
    {"text=on+staging+for+1h&user_id=U1", 0, 0, 2, {"text", "on staging for 1h", "user_id", "U1"}},
    {"a=1&b=2", 3, 0, 1, {"a", "1"}},
    {"a=%25", 0, 0, 1, {"a", "%"}},
    {"a=%", 0, -1, 0, {NULL}},
    {"a=%4", 0, -1, 0, {NULL}},
    {"a=%4&b=1", 0, -1, 0, {NULL}},
    {"a=%G1", 0, -1, 0, {NULL}},
    {"a=%1G", 0, -1, 0, {NULL}},
    {"a=%zz", 0, -1, 0, {NULL}},
    {"a=%00", 0, -1, 0, {NULL}},
    {"a=1&b=%00x", 0, -1, 0, {NULL}},
    {"%=1", 0, -1, 0, {NULL}},
    {"a=1\0b=2", 7, -1, 0, {NULL}},
    {"a=%41", 3, -1, 0, {NULL}}, /* len cuts the escape short: "a=%" */
    {"a=%41", 4, -1, 0, {NULL}}, /* "a=%4" */
};

START_TEST(test_parse)
{
	struct form form;
	size_t len = cases[_i].len ? cases[_i].len : strlen(cases[_i].body);
	int rc = form_parse(cases[_i].body, len, &form);

	ck_assert_msg(rc == cases[_i].rc, "\"%s\": rc %d", cases[_i].body, rc);
	ck_assert_uint_eq(form.n, cases[_i].n);
	for (size_t i = 0; i < form.n; i++) {
		ck_assert_str_eq(form.fields[i].key, cases[_i].kv[2 * i]);
		ck_assert_str_eq(form.fields[i].value, cases[_i].kv[2 * i + 1]);
	}
	if (rc != 0)
		ck_assert_ptr_null(form.fields);
	form_free(&form);
	ck_assert_uint_eq(form.n, 0);
}
END_TEST

START_TEST(test_get)
{
	struct form form;

	ck_assert_int_eq(form_parse("a=1&b=2&a=3", 11, &form), 0);
	ck_assert_str_eq(form_get(&form, "a"), "1");
	ck_assert_str_eq(form_get(&form, "b"), "2");
	ck_assert_ptr_null(form_get(&form, "c"));
	ck_assert_ptr_null(form_get(&form, "A"));
	form_free(&form);
}
END_TEST

static char *
many_fields(int n)
{
	struct buf b;

	buf_init(&b);
	for (int i = 0; i < n; i++)
		buf_printf(&b, "%sk%d=v%d", i ? "&" : "", i, i);
	return buf_steal(&b);
}

START_TEST(test_field_limit)
{
	struct form form;
	char *ok = many_fields(FORM_MAX_FIELDS), *over = many_fields(FORM_MAX_FIELDS + 1);

	ck_assert_int_eq(form_parse(ok, strlen(ok), &form), 0);
	ck_assert_uint_eq(form.n, FORM_MAX_FIELDS);
	ck_assert_str_eq(form_get(&form, "k63"), "v63");
	form_free(&form);
	ck_assert_int_eq(form_parse(over, strlen(over), &form), -1);
	ck_assert_uint_eq(form.n, 0);
	ck_assert_ptr_null(form.fields);
	ck_assert_ptr_null(form_get(&form, "k0"));
	form_free(&form);
	free(ok);
	free(over);
}
END_TEST

static const struct {
	const char *in, *out;
} encode_cases[] = {
    {"", ""},
    {"abcXYZ019-._~", "abcXYZ019-._~"},
    {"a b", "a%20b"},
    {"a+b&c=d/e?f#g", "a%2Bb%26c%3Dd%2Fe%3Ff%23g"},
    {"\xc3\xa9\xf0\x9f\x90\x9a", "%C3%A9%F0%9F%90%9A"},
    {"%", "%25"},
    {"https://x.test/cb?a=1", "https%3A%2F%2Fx.test%2Fcb%3Fa%3D1"},
    {"\x01\x7f\xff", "%01%7F%FF"},
};

START_TEST(test_url_encode)
{
	char *enc = url_encode(encode_cases[_i].in), *body;
	struct form form;

	ck_assert_str_eq(enc, encode_cases[_i].out);
	/* and it decodes back */
	body = xasprintf("k=%s", enc);
	ck_assert_int_eq(form_parse(body, strlen(body), &form), 0);
	ck_assert_str_eq(form_get(&form, "k"), encode_cases[_i].in);
	form_free(&form);
	free(body);
	free(enc);
}
END_TEST

static Suite *
form_suite(void)
{
	Suite *s = suite_create("form");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse, 0, (int)ARRAY_LEN(cases));
	tcase_add_test(tc, test_get);
	tcase_add_test(tc, test_field_limit);
	tcase_add_loop_test(tc, test_url_encode, 0, (int)ARRAY_LEN(encode_cases));
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(form_suite)
