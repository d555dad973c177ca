#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "unit.h"
#include "util.h"
#include "vault.h"

/* "ID:base64(32 bytes of fill)". */
static char *
key_entry(int id, unsigned char fill, size_t len)
{
	unsigned char raw[64];
	char *b64, *entry;

	memset(raw, fill, len);
	b64 = base64_encode(raw, len);
	entry = xasprintf("%d:%s", id, b64);
	free(b64);
	return entry;
}

static void
init_ok(const char *keys)
{
	char err[256] = "";

	ck_assert_msg(vault_init(keys, err, sizeof(err)) == 0, "vault_init: %s", err);
}

static char *k1, *k2, *k3;

static void
setup(void)
{
	k1 = key_entry(1, 0x11, 32);
	k2 = key_entry(2, 0x22, 32);
	k3 = key_entry(3, 0x33, 32);
}

static void
teardown(void)
{
	vault_clear();
	free(k1);
	free(k2);
	free(k3);
}

START_TEST(test_round_trip)
{
	char *sealed, *plain;

	init_ok(k1);
	ck_assert_int_eq(vault_ready(), 1);
	ck_assert_int_eq(vault_current_key(), 1);
	sealed = vault_seal("xoxb-1234-secret", "T1", "bot_token");
	ck_assert_ptr_nonnull(sealed);
	ck_assert_int_eq(strncmp(sealed, "v1.1.", 5), 0);
	ck_assert_ptr_null(strstr(sealed, "xoxb"));
	ck_assert_int_eq(vault_key_of(sealed), 1);
	plain = vault_open(sealed, "T1", "bot_token");
	ck_assert_ptr_nonnull(plain);
	ck_assert_str_eq(plain, "xoxb-1234-secret");
	vault_free_secret(plain);
	free(sealed);

	sealed = vault_seal("", "T1", "bot_token");
	plain = vault_open(sealed, "T1", "bot_token");
	ck_assert_ptr_nonnull(plain);
	ck_assert_str_eq(plain, "");
	vault_free_secret(plain);
	free(sealed);
}
END_TEST

START_TEST(test_binding)
{
	char *sealed, *plain;

	init_ok(k1);
	sealed = vault_seal("xoxb-secret", "T1", "bot_token");
	/* moved to another team's row */
	ck_assert_ptr_null(vault_open(sealed, "T2", "bot_token"));
	ck_assert_ptr_null(vault_open(sealed, "", "bot_token"));
	ck_assert_ptr_null(vault_open(sealed, NULL, "bot_token"));
	/* used for another purpose */
	ck_assert_ptr_null(vault_open(sealed, "T1", "refresh_token"));
	ck_assert_ptr_null(vault_open(sealed, "T1", ""));
	/* a boundary shift between team and purpose must not line up */
	ck_assert_ptr_null(vault_open(sealed, "T1\nbot", "_token"));
	plain = vault_open(sealed, "T1", "bot_token");
	ck_assert_str_eq(plain, "xoxb-secret");
	vault_free_secret(plain);
	free(sealed);
}
END_TEST

/* Flipping any bit of nonce, ciphertext or tag makes opening fail. */
START_TEST(test_tampered)
{
	unsigned char blob[256];
	char *sealed, *b64, *forged;
	int n;

	init_ok(k1);
	sealed = vault_seal("xoxb-secret", "T1", "bot_token");
	n = base64_decode(sealed + 5, blob, sizeof(blob));
	ck_assert_int_eq(n, 12 + 11 + 16);
	for (int i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			blob[i] ^= (unsigned char)(1 << bit);
			b64 = base64_encode(blob, (size_t)n);
			forged = xasprintf("v1.1.%s", b64);
			ck_assert_msg(vault_open(forged, "T1", "bot_token") == NULL,
			              "byte %d bit %d", i, bit);
			free(forged);
			free(b64);
			blob[i] ^= (unsigned char)(1 << bit);
		}
	}
	/* truncated, extended, re-labelled and malformed texts */
	b64 = base64_encode(blob, (size_t)n - 1);
	forged = xasprintf("v1.1.%s", b64);
	ck_assert_ptr_null(vault_open(forged, "T1", "bot_token"));
	free(forged);
	free(b64);
	forged = xasprintf("%sAAAA", sealed);
	ck_assert_ptr_null(vault_open(forged, "T1", "bot_token"));
	free(forged);
	ck_assert_ptr_null(vault_open("v1.1.", "T1", "bot_token"));
	ck_assert_ptr_null(vault_open("v1.1.AAAA", "T1", "bot_token"));
	ck_assert_ptr_null(vault_open("v2.1.AAAA", "T1", "bot_token"));
	ck_assert_ptr_null(vault_open("garbage", "T1", "bot_token"));
	ck_assert_ptr_null(vault_open("", "T1", "bot_token"));
	ck_assert_ptr_null(vault_open(NULL, "T1", "bot_token"));
	forged = xasprintf("v1.01.%s", sealed + 5);
	ck_assert_ptr_null(vault_open(forged, "T1", "bot_token"));
	free(forged);
	free(sealed);
}
END_TEST

/* A ciphertext relabelled with another known key id must not open. */
START_TEST(test_key_id_bound)
{
	char *keys = xasprintf("%s,%s", k1, k2);
	char *sealed, *forged;

	init_ok(keys);
	sealed = vault_seal("s", "T1", "p");
	ck_assert_int_eq(vault_key_of(sealed), 2);
	forged = xasprintf("v1.1.%s", sealed + 5);
	ck_assert_ptr_null(vault_open(forged, "T1", "p"));
	free(forged);
	free(sealed);
	free(keys);
}
END_TEST

START_TEST(test_rotation)
{
	char *both = xasprintf("%s,%s", k2, k1); /* order does not matter */
	char *old, *new, *plain;

	init_ok(k1);
	old = vault_seal("old secret", "T1", "bot_token");
	ck_assert_int_eq(vault_key_of(old), 1);

	init_ok(both);
	ck_assert_int_eq(vault_current_key(), 2);
	new = vault_seal("new secret", "T1", "bot_token");
	ck_assert_int_eq(vault_key_of(new), 2);
	ck_assert_int_eq(strncmp(new, "v1.2.", 5), 0);
	plain = vault_open(old, "T1", "bot_token");
	ck_assert_str_eq(plain, "old secret");
	vault_free_secret(plain);

	init_ok(k2);
	ck_assert_ptr_null(vault_open(old, "T1", "bot_token"));
	plain = vault_open(new, "T1", "bot_token");
	ck_assert_str_eq(plain, "new secret");
	vault_free_secret(plain);

	init_ok("");
	ck_assert_int_eq(vault_ready(), 0);
	ck_assert_ptr_null(vault_seal("x", "T1", "bot_token"));
	ck_assert_ptr_null(vault_open(new, "T1", "bot_token"));
	free(old);
	free(new);
	free(both);
}
END_TEST

START_TEST(test_seals_differ)
{
	char *a, *b;

	init_ok(k3);
	a = vault_seal("same", "T1", "p");
	b = vault_seal("same", "T1", "p");
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(strncmp(a, "v1.3.", 5), 0);
	free(a);
	free(b);
}
END_TEST

static const struct {
	const char *keys; /* %1$s = a good 32-byte key's base64 */
	const char *reason;
} bad_keys[] = {
    {"1:%1$s*", "base64"},
    {"1:c2hvcnQ", "base64"},
    {"0:%1$s", "positive"},
    {"-1:%1$s", "positive"},
    {"01:%1$s", "positive"},
    {"x:%1$s", "positive"},
    {"%1$s", "positive"},
    {"1:%1$s,1:%1$s", "duplicate key id 1"},
    {"1:%1$s,,2:%1$s", "entry 2 is empty"},
    {"1:%1$s,", "entry 2 is empty"},
    {",1:%1$s", "entry 1 is empty"},
    {"1:", "32 bytes"},
    {"1:%1$s, 2:%1$s", "entry 2"},
};

START_TEST(test_bad_token_keys)
{
	char *good = base64_encode((const unsigned char *)"0123456789abcdef0123456789abcdef", 32);
	char text[256], err[256] = "";

	init_ok(k1);
	snprintf(text, sizeof(text), bad_keys[_i].keys, good);
	ck_assert_int_eq(vault_init(text, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, bad_keys[_i].reason) != NULL, "\"%s\" lacks \"%s\"", err,
	              bad_keys[_i].reason);
	ck_assert_msg(strstr(err, good) == NULL, "leaks the key: %s", err);
	ck_assert_int_eq(vault_ready(), 0);
	free(good);
}
END_TEST

/* 31 and 33 bytes are rejected with the length. */
START_TEST(test_key_length)
{
	char err[256] = "";
	char *k31 = key_entry(5, 0x55, 31), *k33 = key_entry(5, 0x55, 33);

	ck_assert_int_eq(vault_init(k31, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "key 5 must be 32 bytes"));
	ck_assert_ptr_nonnull(strstr(err, "got 31"));
	ck_assert_int_eq(vault_init(k33, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "32 bytes"));
	free(k31);
	free(k33);
}
END_TEST

START_TEST(test_key_of)
{
	ck_assert_int_eq(vault_key_of("v1.7.AAAA"), 7);
	ck_assert_int_eq(vault_key_of("v1.123.x"), 123);
	ck_assert_int_eq(vault_key_of("v1.0.AAAA"), -1);
	ck_assert_int_eq(vault_key_of("v1..AAAA"), -1);
	ck_assert_int_eq(vault_key_of("v1.7"), -1);
	ck_assert_int_eq(vault_key_of("v2.7.AAAA"), -1);
	ck_assert_int_eq(vault_key_of(NULL), -1);
}
END_TEST

static void *
seal_open_loop(void *arg)
{
	char team[16];

	snprintf(team, sizeof(team), "T%d", (int)(intptr_t)arg);
	for (int i = 0; i < 300; i++) {
		char *sealed = vault_seal(team, team, "p");
		char *plain = vault_open(sealed, team, "p");

		if (plain == NULL || strcmp(plain, team) != 0)
			return (void *)1;
		vault_free_secret(plain);
		free(sealed);
	}
	return NULL;
}

START_TEST(test_concurrent)
{
	char *keys = xasprintf("%s,%s", k1, k2);
	pthread_t th[4];
	void *rc;

	init_ok(keys);
	for (intptr_t i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, seal_open_loop, (void *)i), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], &rc);
		ck_assert_ptr_null(rc);
	}
	free(keys);
}
END_TEST

static Suite *
vault_suite(void)
{
	Suite *s = suite_create("vault");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_binding);
	tcase_add_test(tc, test_tampered);
	tcase_add_test(tc, test_key_id_bound);
	tcase_add_test(tc, test_rotation);
	tcase_add_test(tc, test_seals_differ);
	tcase_add_loop_test(tc, test_bad_token_keys, 0, (int)ARRAY_LEN(bad_keys));
	tcase_add_test(tc, test_key_length);
	tcase_add_test(tc, test_key_of);
	tcase_add_test(tc, test_concurrent);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(vault_suite)
