/* Billing without the network or a database: signed links and the Stripe
 * event JSON reader. */
#include <stdlib.h>
#include <string.h>

#include "billing/billing.h"
#include "billing/stripe.h"
#include "conf.h"
#include "crypto.h"
#include "unit.h"

#define NOW 1700000000L

static char *saved_secret, *saved_url;

static void
setup(void)
{
	saved_secret = conf.session_secret;
	saved_url = conf.public_url;
	conf.session_secret = "unit-test-session-secret";
	conf.public_url = "https://conch.example";
}

static void
teardown(void)
{
	conf.session_secret = saved_secret;
	conf.public_url = saved_url;
}

/* --- signed links --------------------------------------------------------- */

START_TEST(link_round_trip)
{
	char *t = billing_link_token(BILLING_PURPOSE_UPGRADE, "T0ABC123", "U0XYZ789", NOW);
	struct billing_link l;

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(billing_link_check(BILLING_PURPOSE_UPGRADE, t, NOW, &l), BILLING_LINK_OK);
	ck_assert_str_eq(l.team_id, "T0ABC123");
	ck_assert_str_eq(l.user_id, "U0XYZ789");
	ck_assert_int_eq(l.expires, NOW + BILLING_LINK_TTL);
	ck_assert_int_eq(billing_link_check(BILLING_PURPOSE_UPGRADE, t, NOW + BILLING_LINK_TTL, &l),
	                 BILLING_LINK_OK);
	ck_assert_int_eq(
	    billing_link_check(BILLING_PURPOSE_UPGRADE, t, NOW + BILLING_LINK_TTL + 1, &l),
	    BILLING_LINK_EXPIRED);
	free(t);
}
END_TEST

START_TEST(link_is_bound_to_its_purpose_and_secret)
{
	char *t = billing_link_token(BILLING_PURPOSE_UPGRADE, "T0ABC123", "U0XYZ789", NOW);
	struct billing_link l;

	ck_assert_int_eq(billing_link_check(BILLING_PURPOSE_PORTAL, t, NOW, &l), BILLING_LINK_BAD);
	ck_assert_str_eq(l.team_id, "");
	conf.session_secret = "another-secret";
	ck_assert_int_eq(billing_link_check(BILLING_PURPOSE_UPGRADE, t, NOW, &l), BILLING_LINK_BAD);
	free(t);
}
END_TEST

/* Every single-character change anywhere in the token is refused. */
START_TEST(link_altered_anywhere_is_refused)
{
	char *t = billing_link_token(BILLING_PURPOSE_PORTAL, "T0ABC123", "U0XYZ789", NOW);
	struct billing_link l;
	size_t n = strlen(t);

	for (size_t i = 0; i < n; i++) {
		char was = t[i];

		t[i] = was == 'A' ? 'B' : 'A';
		ck_assert_msg(billing_link_check(BILLING_PURPOSE_PORTAL, t, NOW, &l) ==
		                  BILLING_LINK_BAD,
		              "changed byte %zu accepted", i);
		t[i] = was;
	}
	t[n - 1] = '\0';
	ck_assert_int_eq(billing_link_check(BILLING_PURPOSE_PORTAL, t, NOW, &l), BILLING_LINK_BAD);
	free(t);
}
END_TEST

START_TEST(link_refuses_malformed_input)
{
	struct billing_link l;
	char *two_parts =
	    sign_value(conf.session_secret, BILLING_PURPOSE_UPGRADE, "T0ABC123.9999999999");
	char *bad_team =
	    sign_value(conf.session_secret, BILLING_PURPOSE_UPGRADE, "x0abc.U0XYZ789.9999999999");
	char *bad_time =
	    sign_value(conf.session_secret, BILLING_PURPOSE_UPGRADE, "T0ABC123.U0XYZ789.-5");

	ck_assert_int_eq(billing_link_check(BILLING_PURPOSE_UPGRADE, NULL, NOW, &l),
	                 BILLING_LINK_BAD);
	ck_assert_int_eq(billing_link_check(BILLING_PURPOSE_UPGRADE, "", NOW, &l),
	                 BILLING_LINK_BAD);
	ck_assert_int_eq(
	    billing_link_check(BILLING_PURPOSE_UPGRADE, "T0ABC123.U0XYZ789.9999999999", NOW, &l),
	    BILLING_LINK_BAD);
	ck_assert_int_eq(billing_link_check(BILLING_PURPOSE_UPGRADE, two_parts, NOW, &l),
	                 BILLING_LINK_BAD);
	ck_assert_int_eq(billing_link_check(BILLING_PURPOSE_UPGRADE, bad_team, NOW, &l),
	                 BILLING_LINK_BAD);
	ck_assert_int_eq(billing_link_check(BILLING_PURPOSE_UPGRADE, bad_time, NOW, &l),
	                 BILLING_LINK_BAD);
	free(two_parts);
	free(bad_team);
	free(bad_time);
}
END_TEST

START_TEST(link_needs_ids_and_a_secret)
{
	char *t;

	ck_assert_ptr_null(billing_link_token(BILLING_PURPOSE_UPGRADE, "T0ABC123", "u0x", NOW));
	ck_assert_ptr_null(billing_link_token(BILLING_PURPOSE_UPGRADE, "T0A.B", "U0XYZ789", NOW));
	ck_assert_ptr_null(billing_link_token(BILLING_PURPOSE_UPGRADE, NULL, "U0XYZ789", NOW));
	ck_assert_ptr_null(billing_upgrade_link("T0ABC123", "C0CHANNEL1"));
	conf.session_secret = "";
	t = billing_link_token(BILLING_PURPOSE_UPGRADE, "T0ABC123", "U0XYZ789", NOW);
	ck_assert_ptr_null(t);
}
END_TEST

START_TEST(links_are_absolute_and_url_safe)
{
	char *up = billing_upgrade_link("T0ABC123", "U0XYZ789");
	char *portal = billing_portal_link("E0ORG1", "W0USER1");
	const char *prefix = "https://conch.example/billing/upgrade?t=";
	struct billing_link l;

	ck_assert_ptr_nonnull(up);
	ck_assert_ptr_nonnull(portal);
	ck_assert_int_eq(strncmp(up, prefix, strlen(prefix)), 0);
	ck_assert_int_eq(strncmp(portal, "https://conch.example/billing/portal?t=", 39), 0);
	ck_assert_int_eq(
	    strspn(up + strlen(prefix),
	           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
	    strlen(up + strlen(prefix)));
	ck_assert_int_eq(billing_link_check(BILLING_PURPOSE_PORTAL, strchr(portal, '=') + 1,
	                                    NOW + 1000000000, &l),
	                 BILLING_LINK_EXPIRED);
	free(up);
	free(portal);
}
END_TEST

/* --- events ----------------------------------------------------------------- */

static const struct {
	const char *name;
	const char *json;
	int ok;
} events[] = {
    {"minimal",
     "{\"id\":\"evt_1\",\"type\":\"invoice.paid\",\"created\":1700000000,"
     "\"data\":{\"object\":{}}}",
     1},
    {"not JSON", "{\"id\":", 0},
    {"an array", "[1,2]", 0},
    {"no id", "{\"type\":\"a.b\",\"created\":1,\"data\":{\"object\":{}}}", 0},
    {"id with a slash",
     "{\"id\":\"evt/1\",\"type\":\"a.b\",\"created\":1,\"data\":{\"object\":{}}}", 0},
    {"id a number", "{\"id\":5,\"type\":\"a.b\",\"created\":1,\"data\":{\"object\":{}}}", 0},
    {"type upper-case",
     "{\"id\":\"evt_1\",\"type\":\"A.B\",\"created\":1,\"data\":{\"object\":{}}}", 0},
    {"created a string",
     "{\"id\":\"evt_1\",\"type\":\"a.b\",\"created\":\"1\",\"data\":{\"object\":{}}}", 0},
    {"created negative",
     "{\"id\":\"evt_1\",\"type\":\"a.b\",\"created\":-1,\"data\":{\"object\":{}}}", 0},
    {"created a float",
     "{\"id\":\"evt_1\",\"type\":\"a.b\",\"created\":1.5,\"data\":{\"object\":{}}}", 0},
    {"no data.object", "{\"id\":\"evt_1\",\"type\":\"a.b\",\"created\":1,\"data\":{}}", 0},
    {"object a string",
     "{\"id\":\"evt_1\",\"type\":\"a.b\",\"created\":1,\"data\":{\"object\":\"x\"}}", 0},
    {"NUL escape",
     "{\"id\":\"evt_1\\u0000\",\"type\":\"a.b\",\"created\":1,\"data\":{\"object\":{}}}", 0},
};

START_TEST(event_table)
{
	struct stripe_event ev;
	const char *why = NULL;
	int rc = stripe_event_parse(events[_i].json, strlen(events[_i].json), &ev, &why);

	ck_assert_msg((rc == 0) == events[_i].ok, "case \"%s\": %s", events[_i].name,
	              why ? why : "accepted");
	if (rc == 0) {
		ck_assert_str_eq(ev.id, "evt_1");
		ck_assert_int_eq(ev.created, 1700000000);
		ck_assert(json_is_object(ev.object));
	} else {
		ck_assert_ptr_nonnull(why);
	}
	stripe_event_free(&ev);
}
END_TEST

static json_t *
object_of(const char *json)
{
	json_t *o = json_loads(json, 0, NULL);

	ck_assert_ptr_nonnull(o);
	return o;
}

START_TEST(subscription_current_api)
{
	json_t *o = object_of(
	    "{\"id\":\"sub_1\",\"object\":\"subscription\",\"customer\":\"cus_9\",\"status\":"
	    "\"past_due\",\"cancel_at_period_end\":true,\"metadata\":{\"team_id\":\"T0ABC123\"},"
	    "\"items\":{\"data\":[{\"price\":{\"id\":\"price_pro\"},\"current_period_end\":"
	    "1702592000}]}}");
	struct stripe_subscription s;
	const char *why;

	ck_assert_int_eq(stripe_subscription_read(o, &s, &why), 0);
	ck_assert_str_eq(s.id, "sub_1");
	ck_assert_str_eq(s.customer, "cus_9");
	ck_assert_str_eq(s.status, "past_due");
	ck_assert_str_eq(s.team_id, "T0ABC123");
	ck_assert_int_eq(s.current_period_end, 1702592000);
	ck_assert_int_eq(s.cancel_at_period_end, 1);
	json_decref(o);
}
END_TEST

START_TEST(subscription_older_api_and_expanded_customer)
{
	json_t *o =
	    object_of("{\"id\":\"sub_2\",\"customer\":{\"id\":\"cus_7\",\"object\":"
	              "\"customer\"},\"status\":\"active\",\"current_period_end\":1702000000,"
	              "\"metadata\":{\"team_id\":\"not a team\"}}");
	struct stripe_subscription s;
	const char *why;

	ck_assert_int_eq(stripe_subscription_read(o, &s, &why), 0);
	ck_assert_str_eq(s.customer, "cus_7");
	ck_assert_int_eq(s.current_period_end, 1702000000);
	ck_assert_ptr_null(s.team_id);
	ck_assert_int_eq(s.cancel_at_period_end, 0);
	json_decref(o);
}
END_TEST

START_TEST(subscription_refusals)
{
	static const char *const bad[] = {
	    "{\"status\":\"active\"}",
	    "{\"id\":\"sub_1\"}",
	    "{\"id\":\"sub_1\",\"status\":\"Active!\"}",
	    "{\"id\":\"sub_1\",\"status\":\"active\",\"customer\":\"cus 1\"}",
	    "{\"id\":\"sub_1\",\"status\":\"active\",\"customer\":7}",
	    "{\"id\":\"sub_1\",\"status\":\"active\",\"current_period_end\":\"soon\"}",
	};
	struct stripe_subscription s;
	const char *why;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *o = object_of(bad[i]);

		ck_assert_msg(stripe_subscription_read(o, &s, &why) == -1, "accepted %s", bad[i]);
		json_decref(o);
	}
}
END_TEST

START_TEST(checkout_fields)
{
	json_t *a =
	    object_of("{\"id\":\"cs_test_1\",\"mode\":\"subscription\",\"client_reference_id\":"
	              "\"T0ABC123\",\"customer\":\"cus_1\",\"subscription\":\"sub_1\","
	              "\"metadata\":{\"team_id\":\"T0OTHER1\"}}");
	json_t *b =
	    object_of("{\"id\":\"cs_test_2\",\"mode\":\"subscription\",\"client_reference_id\":"
	              "null,\"customer\":null,\"subscription\":null,"
	              "\"metadata\":{\"team_id\":\"T0OTHER1\"}}");
	struct stripe_checkout c;
	const char *why;

	ck_assert_int_eq(stripe_checkout_read(a, &c, &why), 0);
	ck_assert_str_eq(c.team_id, "T0ABC123");
	ck_assert_str_eq(c.customer, "cus_1");
	ck_assert_str_eq(c.subscription, "sub_1");
	ck_assert_str_eq(c.mode, "subscription");
	ck_assert_int_eq(stripe_checkout_read(b, &c, &why), 0);
	ck_assert_str_eq(c.team_id, "T0OTHER1");
	ck_assert_ptr_null(c.customer);
	ck_assert_ptr_null(c.subscription);
	json_decref(a);
	json_decref(b);
}
END_TEST

START_TEST(invoice_both_api_versions)
{
	json_t *now = object_of(
	    "{\"id\":\"in_1\",\"customer\":\"cus_1\",\"attempt_count\":2,\"next_payment_attempt\":"
	    "1700500000,\"parent\":{\"type\":\"subscription_details\",\"subscription_details\":"
	    "{\"subscription\":\"sub_1\",\"metadata\":{\"team_id\":\"T0ABC123\"}}}}");
	json_t *old =
	    object_of("{\"id\":\"in_2\",\"customer\":\"cus_2\",\"subscription\":\"sub_2\","
	              "\"next_payment_attempt\":null}");
	struct stripe_invoice inv;
	const char *why;

	ck_assert_int_eq(stripe_invoice_read(now, &inv, &why), 0);
	ck_assert_str_eq(inv.subscription, "sub_1");
	ck_assert_str_eq(inv.team_id, "T0ABC123");
	ck_assert_int_eq(inv.attempt_count, 2);
	ck_assert_int_eq(inv.next_payment_attempt, 1700500000);
	ck_assert_int_eq(stripe_invoice_read(old, &inv, &why), 0);
	ck_assert_str_eq(inv.subscription, "sub_2");
	ck_assert_str_eq(inv.customer, "cus_2");
	ck_assert_ptr_null(inv.team_id);
	ck_assert_int_eq(inv.next_payment_attempt, 0);
	json_decref(now);
	json_decref(old);
}
END_TEST

START_TEST(ids)
{
	ck_assert(stripe_valid_id("cus_NffrFeUfNV2Hib"));
	ck_assert(!stripe_valid_id(""));
	ck_assert(!stripe_valid_id(NULL));
	ck_assert(!stripe_valid_id("cus-1"));
}
END_TEST

static Suite *
billing_suite(void)
{
	Suite *s = suite_create("billing");
	TCase *links = tcase_create("links");
	TCase *ev = tcase_create("events");

	tcase_add_checked_fixture(links, setup, teardown);
	tcase_add_test(links, link_round_trip);
	tcase_add_test(links, link_is_bound_to_its_purpose_and_secret);
	tcase_add_test(links, link_altered_anywhere_is_refused);
	tcase_add_test(links, link_refuses_malformed_input);
	tcase_add_test(links, link_needs_ids_and_a_secret);
	tcase_add_test(links, links_are_absolute_and_url_safe);
	tcase_add_loop_test(ev, event_table, 0, (int)(sizeof(events) / sizeof(events[0])));
	tcase_add_test(ev, subscription_current_api);
	tcase_add_test(ev, subscription_older_api_and_expanded_customer);
	tcase_add_test(ev, subscription_refusals);
	tcase_add_test(ev, checkout_fields);
	tcase_add_test(ev, invoice_both_api_versions);
	tcase_add_test(ev, ids);
	suite_add_tcase(s, links);
	suite_add_tcase(s, ev);
	return s;
}

UNIT_SUITE(billing_suite)
