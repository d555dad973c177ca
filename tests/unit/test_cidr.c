/* CIDR lists and the client address behind trusted proxies, as tables. */
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "client.h"
#include "conf.h"
#include "unit.h"
#include "util.h"

/* Does list contain addr? rc -1: the list does not parse. */
static const struct {
	const char *list;
	const char *addr;
	int want;
} match_cases[] = {
    {"10.0.0.0/8", "10.1.2.3", 1},
    {"10.0.0.0/8", "11.0.0.0", 0},
    {"10.0.0.0/8", "::ffff:10.9.9.9", 1}, /* a dual-stack socket's IPv4 peer */
    {"192.168.1.0/24", "192.168.1.255", 1},
    {"192.168.1.0/24", "192.168.2.0", 0},
    {"192.168.1.128/25", "192.168.1.127", 0},
    {"192.168.1.128/25", "192.168.1.128", 1},
    {"172.16.0.0/12", "172.31.255.255", 1},
    {"172.16.0.0/12", "172.32.0.0", 0},
    {"127.0.0.1", "127.0.0.1", 1}, /* a bare address is one host */
    {"127.0.0.1", "127.0.0.2", 0},
    {"0.0.0.0/0", "8.8.8.8", 1},
    {"0.0.0.0/0", "2001:db8::1", 0}, /* IPv4 rules never match IPv6 */
    {"10.0.0.1/32", "10.0.0.1", 1},
    {"10.0.0.5/8", "10.200.0.1", 1}, /* host bits are ignored */
    {"2001:db8::/32", "2001:db8:ffff::1", 1},
    {"2001:db8::/32", "2001:db9::1", 0},
    {"2001:db8::/33", "2001:db8:8000::1", 0},
    {"::1", "::1", 1},
    {"::1/128", "::2", 0},
    {"::/0", "10.0.0.1", 1},
    {"fe80::/10", "febf::1", 1},
    {"fe80::/10", "fec0::1", 0},
    {"10.0.0.0/8, 2001:db8::/32", "2001:db8::5", 1},
    {"10.0.0.0/8,192.168.0.0/16", "192.168.7.7", 1},
    {"  10.0.0.0/8 ,\t192.168.0.0/16 ", "172.16.0.1", 0},
    {"", "10.0.0.1", 0},
    {"10.0.0.0/8", "not-an-ip", 0},
    {"10.0.0.0/8", "10.0.0.1:443", 0},
    {"10.0.0.0/8", "", 0},
    /* lists that do not parse */
    {"10.0.0.0/33", "10.0.0.1", -1},
    {"10.0.0.0/-1", "10.0.0.1", -1},
    {"10.0.0.0/", "10.0.0.1", -1},
    {"10.0.0.0/08", "10.0.0.1", -1},
    {"10.0.0.0/8x", "10.0.0.1", -1},
    {"10.0.0/8", "10.0.0.1", -1},
    {"10.0.0.256", "10.0.0.1", -1},
    {"2001:db8::/129", "2001:db8::1", -1},
    {"2001:db8:::/32", "2001:db8::1", -1},
    {"localhost", "127.0.0.1", -1},
    {"10.0.0.0/8;11.0.0.0/8", "10.0.0.1", -1},
    {"*", "10.0.0.1", -1},
};

START_TEST(test_cidr_match)
{
	struct cidr_list l;
	char why[160] = "";
	int rc = cidr_list_parse(match_cases[_i].list, &l, why, sizeof(why));

	if (match_cases[_i].want < 0) {
		ck_assert_msg(rc == -1, "\"%s\" parsed", match_cases[_i].list);
		ck_assert_msg(why[0] != '\0' && l.n == 0, "no reason for \"%s\"",
		              match_cases[_i].list);
		return;
	}
	ck_assert_msg(rc == 0, "\"%s\": %s", match_cases[_i].list, why);
	ck_assert_msg(cidr_list_has_text(&l, match_cases[_i].addr) == match_cases[_i].want,
	              "\"%s\" has \"%s\": expected %d", match_cases[_i].list, match_cases[_i].addr,
	              match_cases[_i].want);
}
END_TEST

START_TEST(test_cidr_list_limit)
{
	struct buf b;
	struct cidr_list l;
	char why[160];

	buf_init(&b);
	for (int i = 0; i < CIDR_LIST_MAX; i++)
		buf_printf(&b, "10.0.%d.0/24,", i);
	ck_assert_int_eq(cidr_list_parse(b.data, &l, why, sizeof(why)), 0);
	ck_assert_int_eq(l.n, CIDR_LIST_MAX);
	buf_puts(&b, "11.0.0.0/8");
	ck_assert_int_eq(cidr_list_parse(b.data, &l, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "at most"));
	buf_free(&b);
}
END_TEST

/* trusted_proxies is 10.0.0.0/8 and 2001:db8::/32 for these. */
static const struct {
	const char *peer;
	const char *xff; /* NULL: no header */
	const char *want;
} address_cases[] = {
    {"203.0.113.9", NULL, "203.0.113.9"},
    {"203.0.113.9", "198.51.100.1", "203.0.113.9"}, /* an untrusted peer: not believed */
    {"10.0.0.2", NULL, "10.0.0.2"},
    {"10.0.0.2", "198.51.100.1", "198.51.100.1"},
    {"10.0.0.2", " 198.51.100.1 ", "198.51.100.1"},
    {"10.0.0.2", "1.1.1.1, 198.51.100.1", "198.51.100.1"},  /* the left one is the client's word */
    {"10.0.0.2", "198.51.100.1, 10.0.0.3", "198.51.100.1"}, /* two proxies */
    {"10.0.0.2", "10.0.0.4,10.0.0.3", "10.0.0.4"},          /* all trusted: the left-most */
    {"10.0.0.2", "2001:db8::9, 198.51.100.1", "198.51.100.1"},
    {"10.0.0.2", "2001:db9::1", "2001:db9::1"},
    {"2001:db8::1", "198.51.100.1", "198.51.100.1"},
    {"10.0.0.2", "garbage", "10.0.0.2"},               /* malformed: the proxy itself */
    {"10.0.0.2", "198.51.100.1, garbage", "10.0.0.2"}, /* the walk stops at the bad hop */
    {"10.0.0.2", "garbage, 198.51.100.1", "198.51.100.1"},
    {"10.0.0.2", "", "10.0.0.2"},
    {"10.0.0.2", "198.51.100.1,", "10.0.0.2"},
    {"10.0.0.2", "198.51.100.1:4711", "10.0.0.2"},
    {"10.0.0.2", ",,,", "10.0.0.2"},
};

START_TEST(test_client_address)
{
	char err[256], out[CLIENT_ADDR_MAX];

	setenv("CONCH_TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32", 1);
	ck_assert_msg(conf_load(NULL, err, sizeof(err)) == 0, "%s", err);
	client_init();
	client_address(address_cases[_i].peer, address_cases[_i].xff, out, sizeof(out));
	ck_assert_msg(strcmp(out, address_cases[_i].want) == 0,
	              "peer %s, X-Forwarded-For \"%s\": %s", address_cases[_i].peer,
	              address_cases[_i].xff ? address_cases[_i].xff : "(none)", out);
	unsetenv("CONCH_TRUSTED_PROXIES");
	conf_free();
}
END_TEST

START_TEST(test_client_allowed)
{
	char err[256];

	setenv("CONCH_ADMIN_ALLOW", "192.0.2.0/24", 1);
	ck_assert_msg(conf_load(NULL, err, sizeof(err)) == 0, "%s", err);
	client_init();
	ck_assert_int_eq(client_allowed(CLIENT_ADMIN, "192.0.2.7"), 1);
	ck_assert_int_eq(client_allowed(CLIENT_ADMIN, "192.0.3.7"), 0);
	ck_assert_int_eq(client_allowed(CLIENT_ADMIN, "unknown"), 0);
	/* metrics_allow is empty: anyone */
	ck_assert_int_eq(client_allowed(CLIENT_METRICS, "192.0.3.7"), 1);
	ck_assert_int_eq(client_allowed(CLIENT_OPEN, "192.0.3.7"), 1);
	unsetenv("CONCH_ADMIN_ALLOW");
	conf_free();
}
END_TEST

static Suite *
cidr_suite(void)
{
	Suite *s = suite_create("cidr");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_cidr_match, 0, (int)ARRAY_LEN(match_cases));
	tcase_add_test(tc, test_cidr_list_limit);
	tcase_add_loop_test(tc, test_client_address, 0, (int)ARRAY_LEN(address_cases));
	tcase_add_test(tc, test_client_allowed);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(cidr_suite)
