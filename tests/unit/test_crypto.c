#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "unit.h"
#include "util.h"

/* HMAC-SHA256 vectors: RFC 4231 cases 1 and 2, and Slack's signing example
 * (from Slack's documentation). Keys and messages given as text or hex. */
static const struct {
	const char *key_hex, *key, *msg, *mac;
} hmac_cases[] = {
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", NULL, "Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {NULL, "Jefe", "what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {NULL, "8f742231b10e8888abcd99yyyzzz85a5",
     "v0:1531420618:token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
     "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
     "command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%"
     "2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015."
     "47445629121.803a0bc887a14d10d2c447fce8b6703c",
     "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
    {NULL, "whsec_test_secret", "1700000000.{\"id\":\"evt_test_webhook\",\"object\":\"event\"}",
     "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"},
};

START_TEST(test_hmac)
{
	unsigned char key[64], mac[32];
	char hex[65];
	size_t keylen;

	if (hmac_cases[_i].key_hex != NULL) {
		int n = hex_decode(hmac_cases[_i].key_hex, key, sizeof(key));

		ck_assert_int_gt(n, 0);
		keylen = (size_t)n;
	} else {
		keylen = strlen(hmac_cases[_i].key);
		memcpy(key, hmac_cases[_i].key, keylen);
	}
	hmac_sha256(key, keylen, hmac_cases[_i].msg, strlen(hmac_cases[_i].msg), mac);
	hex_encode(mac, sizeof(mac), hex);
	ck_assert_str_eq(hex, hmac_cases[_i].mac);
}
END_TEST

START_TEST(test_sha256)
{
	char hex[65];

	sha256_hex("", hex);
	ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_hex("abc", hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_hex)
{
	unsigned char out[4];
	char hex[9];

	ck_assert_int_eq(hex_decode("00fFa1", out, sizeof(out)), 3);
	ck_assert_int_eq(out[0], 0x00);
	ck_assert_int_eq(out[1], 0xff);
	ck_assert_int_eq(out[2], 0xa1);
	hex_encode(out, 3, hex);
	ck_assert_str_eq(hex, "00ffa1");
	ck_assert_int_eq(hex_decode("", out, sizeof(out)), 0);
	ck_assert_int_eq(hex_decode("abc", out, sizeof(out)), -1);
	ck_assert_int_eq(hex_decode("zz", out, sizeof(out)), -1);
	ck_assert_int_eq(hex_decode("0011223344", out, sizeof(out)), -1);
}
END_TEST

/* RFC 4648 section 10, plus bytes that differ between the alphabets. */
static const struct {
	const char *raw;
	size_t len;
	const char *std, *url;
} b64_cases[] = {
    {"", 0, "", ""},
    {"f", 1, "Zg==", "Zg"},
    {"fo", 2, "Zm8=", "Zm8"},
    {"foo", 3, "Zm9v", "Zm9v"},
    {"foob", 4, "Zm9vYg==", "Zm9vYg"},
    {"fooba", 5, "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", 6, "Zm9vYmFy", "Zm9vYmFy"},
    {"\xfb\xff", 2, "+/8=", "-_8"},
    {"\x00\x00\x00", 3, "AAAA", "AAAA"},
    {"\xff\xfe\xfd\xfc", 4, "//79/A==", "__79_A"},
};

START_TEST(test_base64_round_trip)
{
	unsigned char out[16];
	char *s;

	s = base64_encode((const unsigned char *)b64_cases[_i].raw, b64_cases[_i].len);
	ck_assert_str_eq(s, b64_cases[_i].std);
	free(s);
	s = base64url_encode((const unsigned char *)b64_cases[_i].raw, b64_cases[_i].len);
	ck_assert_str_eq(s, b64_cases[_i].url);
	free(s);
	ck_assert_int_eq(base64_decode(b64_cases[_i].std, out, sizeof(out)),
	                 (int)b64_cases[_i].len);
	ck_assert_int_eq(memcmp(out, b64_cases[_i].raw, b64_cases[_i].len), 0);
	ck_assert_int_eq(base64url_decode(b64_cases[_i].url, out, sizeof(out)),
	                 (int)b64_cases[_i].len);
	ck_assert_int_eq(memcmp(out, b64_cases[_i].raw, b64_cases[_i].len), 0);
}
END_TEST

static const char *const bad_std[] = {
    "Zg=",      "Zg",   "Z===",  "====", "Zm9v\n", "Zm 9v", "Zh==",     "Zm9=", "Zg==Zg==",
    "Zm9v====", "-_8=", "Zm9v=", "Z",    "Zg=a",   " Zm9v", "Zm9v\r\n", "Zm8*",
};
static const char *const bad_url[] = {
    "Zg==", "Zm8=", "+/8", "Z", "Zh", "Zm9", "Zm 9", "Zm9v\n", "Zm9vY", "=",
};

START_TEST(test_base64_rejects_std)
{
	unsigned char out[16];

	ck_assert_msg(base64_decode(bad_std[_i], out, sizeof(out)) == -1, "accepted \"%s\"",
	              bad_std[_i]);
}
END_TEST

START_TEST(test_base64_rejects_url)
{
	unsigned char out[16];

	ck_assert_msg(base64url_decode(bad_url[_i], out, sizeof(out)) == -1, "accepted \"%s\"",
	              bad_url[_i]);
}
END_TEST

START_TEST(test_base64_capacity)
{
	unsigned char out[3];

	ck_assert_int_eq(base64_decode("Zm9v", out, 3), 3);
	ck_assert_int_eq(base64_decode("Zm9vYg==", out, 3), -1);
	ck_assert_int_eq(base64url_decode("Zm9vYg", out, 3), -1);
}
END_TEST

START_TEST(test_ct_equal)
{
	ck_assert_int_eq(ct_equal("abc", 3, "abc", 3), 1);
	ck_assert_int_eq(ct_equal("abc", 3, "abd", 3), 0);
	ck_assert_int_eq(ct_equal("abc", 3, "abcd", 4), 0);
	ck_assert_int_eq(ct_equal("", 0, "", 0), 1);
}
END_TEST

START_TEST(test_random)
{
	unsigned char raw[32];
	char *a = random_token(32), *b = random_token(32), hex[33];

	ck_assert_uint_eq(strlen(a), 43);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(base64url_decode(a, raw, sizeof(raw)), 32);
	random_hex16(hex);
	ck_assert_uint_eq(strlen(hex), 32);
	ck_assert_uint_eq(strspn(hex, "0123456789abcdef"), 32);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_sign_verify)
{
	char *signed_value = sign_value("secret", "upgrade", "T123.1700000000.x");
	char *payload = verify_value("secret", "upgrade", signed_value);

	ck_assert_ptr_nonnull(payload);
	ck_assert_str_eq(payload, "T123.1700000000.x");
	ck_assert_int_eq(strncmp(signed_value, "T123.1700000000.x.", 18), 0);
	free(payload);
	free(signed_value);

	signed_value = sign_value("secret", "p", "");
	payload = verify_value("secret", "p", signed_value);
	ck_assert_ptr_nonnull(payload);
	ck_assert_str_eq(payload, "");
	free(payload);
	free(signed_value);
}
END_TEST

/* Each edit of a good signed value must fail verification. */
START_TEST(test_verify_rejects)
{
	char *good = sign_value("secret", "upgrade", "T123");
	size_t len = strlen(good);
	char *bad = xmalloc(len + 2);

	ck_assert_ptr_null(verify_value("secret", "portal", good));
	ck_assert_ptr_null(verify_value("other", "upgrade", good));
	ck_assert_ptr_null(verify_value("secret", "upgrade", "T123"));
	ck_assert_ptr_null(verify_value("secret", "upgrade", ""));
	ck_assert_ptr_null(verify_value("secret", "upgrade", "."));
	ck_assert_ptr_null(verify_value("secret", "upgrade", NULL));
	for (size_t i = 0; i < len; i++) {
		memcpy(bad, good, len + 1);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		ck_assert_msg(verify_value("secret", "upgrade", bad) == NULL, "accepted %s", bad);
	}
	memcpy(bad, good, len);
	memcpy(bad + len, "A", 2);
	ck_assert_ptr_null(verify_value("secret", "upgrade", bad));
	bad[len - 1] = '\0';
	ck_assert_ptr_null(verify_value("secret", "upgrade", bad));
	free(bad);
	free(good);
}
END_TEST

static Suite *
crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_hmac, 0, (int)ARRAY_LEN(hmac_cases));
	tcase_add_test(tc, test_sha256);
	tcase_add_test(tc, test_hex);
	tcase_add_loop_test(tc, test_base64_round_trip, 0, (int)ARRAY_LEN(b64_cases));
	tcase_add_loop_test(tc, test_base64_rejects_std, 0, (int)ARRAY_LEN(bad_std));
	tcase_add_loop_test(tc, test_base64_rejects_url, 0, (int)ARRAY_LEN(bad_url));
	tcase_add_test(tc, test_base64_capacity);
	tcase_add_test(tc, test_ct_equal);
	tcase_add_test(tc, test_random);
	tcase_add_test(tc, test_sign_verify);
	tcase_add_test(tc, test_verify_rejects);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(crypto_suite)
