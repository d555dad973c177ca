/* Stripe webhook signatures: a vector computed with openssl,
 * then one row per way a header can be right or wrong. */
#include <stdio.h>
#include <string.h>

#include "billing/stripe.h"
#include "unit.h"

#define SECRET "whsec_test_secret"
#define T      1700000000L
#define BODY   "{\"id\":\"evt_test_webhook\",\"object\":\"event\"}"
#define GOOD   "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"
#define WRONG  "0000000000000000000000000000000000000000000000000000000000000000"
#define UPPER  "D95C6B7477FBD7E9F90B1B0EF5F9C7AC25ABCA5382460E0D988C2B2A5B71B990"

START_TEST(sign_matches_the_vector)
{
	char out[65];

	stripe_sign(SECRET, "1700000000", BODY, strlen(BODY), out);
	ck_assert_str_eq(out, GOOD);
}
END_TEST

static const struct {
	const char *name;
	const char *secret;
	const char *header;
	const char *body;
	long now;
	enum stripe_sig want;
} cases[] = {
    {"the vector", SECRET, "t=1700000000,v1=" GOOD, BODY, T, STRIPE_SIG_OK},
    {"wrong secret", "whsec_other", "t=1700000000,v1=" GOOD, BODY, T, STRIPE_SIG_MISMATCH},
    {"secret without whsec_", "test_secret", "t=1700000000,v1=" GOOD, BODY, T, STRIPE_SIG_MISMATCH},
    {"tampered body", SECRET, "t=1700000000,v1=" GOOD,
     "{\"id\":\"evt_test_webhook\",\"object\":\"evenT\"}", T, STRIPE_SIG_MISMATCH},
    {"body with a trailing newline", SECRET, "t=1700000000,v1=" GOOD, BODY "\n", T,
     STRIPE_SIG_MISMATCH},
    {"timestamp changed", SECRET, "t=1700000001,v1=" GOOD, BODY, T, STRIPE_SIG_MISMATCH},
    {"second v1 matches", SECRET, "t=1700000000,v1=" WRONG ",v1=" GOOD, BODY, T, STRIPE_SIG_OK},
    {"first v1 matches", SECRET, "t=1700000000,v1=" GOOD ",v1=" WRONG, BODY, T, STRIPE_SIG_OK},
    {"no v1 matches", SECRET, "t=1700000000,v1=" WRONG ",v1=" WRONG, BODY, T, STRIPE_SIG_MISMATCH},
    {"v0 ignored beside v1", SECRET, "t=1700000000,v0=" WRONG ",v1=" GOOD, BODY, T, STRIPE_SIG_OK},
    {"v1 before t", SECRET, "v1=" GOOD ",t=1700000000", BODY, T, STRIPE_SIG_OK},
    {"v0 only", SECRET, "t=1700000000,v0=" GOOD, BODY, T, STRIPE_SIG_MISSING},
    {"short v1", SECRET, "t=1700000000,v1=d95c6b74", BODY, T, STRIPE_SIG_MISMATCH},
    {"upper-case hex", SECRET, "t=1700000000,v1=" UPPER, BODY, T, STRIPE_SIG_MISMATCH},
    {"300 s old", SECRET, "t=1700000000,v1=" GOOD, BODY, T + 300, STRIPE_SIG_OK},
    {"301 s old", SECRET, "t=1700000000,v1=" GOOD, BODY, T + 301, STRIPE_SIG_STALE},
    {"a day old", SECRET, "t=1700000000,v1=" GOOD, BODY, T + 86400, STRIPE_SIG_STALE},
    {"300 s ahead", SECRET, "t=1700000000,v1=" GOOD, BODY, T - 300, STRIPE_SIG_OK},
    {"301 s ahead", SECRET, "t=1700000000,v1=" GOOD, BODY, T - 301, STRIPE_SIG_STALE},
    {"no header", SECRET, NULL, BODY, T, STRIPE_SIG_MISSING},
    {"empty header", SECRET, "", BODY, T, STRIPE_SIG_MISSING},
    {"no timestamp", SECRET, "v1=" GOOD, BODY, T, STRIPE_SIG_MISSING},
    {"no signature", SECRET, "t=1700000000", BODY, T, STRIPE_SIG_MISSING},
    {"empty timestamp", SECRET, "t=,v1=" GOOD, BODY, T, STRIPE_SIG_MISSING},
    {"letters in timestamp", SECRET, "t=17000000x0,v1=" GOOD, BODY, T, STRIPE_SIG_MISSING},
    {"negative timestamp", SECRET, "t=-1700000000,v1=" GOOD, BODY, T, STRIPE_SIG_MISSING},
    {"timestamp too long", SECRET, "t=1700000000000000,v1=" GOOD, BODY, T, STRIPE_SIG_MISSING},
    {"two timestamps", SECRET, "t=1700000000,t=1700000000,v1=" GOOD, BODY, T, STRIPE_SIG_MISSING},
    {"space after comma", SECRET, "t=1700000000, v1=" GOOD, BODY, T, STRIPE_SIG_MISSING},
    {"trailing comma", SECRET, "t=1700000000,v1=" GOOD ",", BODY, T, STRIPE_SIG_MISSING},
    {"empty item", SECRET, "t=1700000000,,v1=" GOOD, BODY, T, STRIPE_SIG_MISSING},
    {"item without =", SECRET, "t=1700000000,v1,v1=" GOOD, BODY, T, STRIPE_SIG_MISSING},
    {"empty v1", SECRET, "t=1700000000,v1=", BODY, T, STRIPE_SIG_MISSING},
    {"empty key", SECRET, "t=1700000000,=x,v1=" GOOD, BODY, T, STRIPE_SIG_MISSING},
    {"no secret configured", "", "t=1700000000,v1=" GOOD, BODY, T, STRIPE_SIG_MISSING},
};

START_TEST(verify_table)
{
	const char *body = cases[_i].body;

	ck_assert_msg(stripe_verify(cases[_i].secret, cases[_i].header, body, strlen(body),
	                            cases[_i].now) == cases[_i].want,
	              "case \"%s\"", cases[_i].name);
}
END_TEST

/* The signed text is the raw body by length: bytes after a NUL count. */
START_TEST(verify_uses_the_whole_body)
{
	const char body[] = "{\"a\":1}\0tail";
	char sig[65], header[128];

	stripe_sign(SECRET, "1700000000", body, sizeof(body) - 1, sig);
	snprintf(header, sizeof(header), "t=1700000000,v1=%s", sig);
	ck_assert_int_eq(stripe_verify(SECRET, header, body, sizeof(body) - 1, T), STRIPE_SIG_OK);
	ck_assert_int_eq(stripe_verify(SECRET, header, body, 7, T), STRIPE_SIG_MISMATCH);
}
END_TEST

/* A valid header padded with ignored v0 items to about len bytes. */
static void
padded_header(char *out, size_t len)
{
	size_t n = (size_t)sprintf(out, "t=1700000000,v1=%s", GOOD);

	while (n + 5 <= len) {
		memcpy(out + n, ",v0=a", 5);
		n += 5;
	}
	out[n] = '\0';
}

START_TEST(verify_bounds_the_header)
{
	static char header[STRIPE_SIG_HEADER_MAX + 64];

	padded_header(header, STRIPE_SIG_HEADER_MAX - 4);
	ck_assert_int_eq(stripe_verify(SECRET, header, BODY, strlen(BODY), T), STRIPE_SIG_OK);
	padded_header(header, STRIPE_SIG_HEADER_MAX + 60);
	ck_assert_int_eq(stripe_verify(SECRET, header, BODY, strlen(BODY), T), STRIPE_SIG_MISSING);
}
END_TEST

static Suite *
stripe_sig_suite(void)
{
	Suite *s = suite_create("stripe_sig");
	TCase *tc = tcase_create("verify");

	tcase_add_test(tc, sign_matches_the_vector);
	tcase_add_loop_test(tc, verify_table, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, verify_uses_the_whole_body);
	tcase_add_test(tc, verify_bounds_the_header);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(stripe_sig_suite)
