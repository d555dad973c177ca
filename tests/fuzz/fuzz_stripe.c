/* libFuzzer target for what Stripe and browsers send billing: the input's
 * first line is a Stripe-Signature header (and, as a second try, a signed
 * link token), the rest the raw webhook body. Any bytes must verify or fail
 * cleanly; a verified signature never survives a changed body; an event
 * that parses yields only well-formed ids. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "billing/billing.h"
#include "billing/stripe.h"
#include "conf.h"
#include "util.h"

#define SECRET "whsec_test_secret"
#define NOW    1700000000L

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *
first_line(const uint8_t *data, size_t size, size_t *used)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t n = nl ? (size_t)(nl - data) : size;
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, n);
	s[n] = '\0';
	*used = nl ? n + 1 : n;
	return s;
}

static void
check_id(const char *id)
{
	if (id != NULL && !stripe_valid_id(id))
		abort();
}

static void
check_objects(json_t *object)
{
	struct stripe_subscription s;
	struct stripe_checkout c;
	struct stripe_invoice inv;
	const char *why;

	if (stripe_subscription_read(object, &s, &why) == 0) {
		check_id(s.id);
		check_id(s.customer);
		if (s.id == NULL || s.status == NULL || s.current_period_end < 0)
			abort();
	}
	if (stripe_checkout_read(object, &c, &why) == 0) {
		check_id(c.customer);
		check_id(c.subscription);
		if (c.team_id != NULL && !slack_id_valid(c.team_id, "TE"))
			abort();
	}
	if (stripe_invoice_read(object, &inv, &why) == 0) {
		check_id(inv.customer);
		check_id(inv.subscription);
	}
}

static void
check_event(const char *body, size_t len)
{
	struct stripe_event ev;
	const char *why = NULL;

	if (stripe_event_parse(body, len, &ev, &why) == 0) {
		if (!stripe_valid_id(ev.id) || ev.type == NULL || ev.created < 0 ||
		    !json_is_object(ev.object))
			abort();
		check_objects(ev.object);
	} else if (why == NULL) {
		abort();
	}
	stripe_event_free(&ev);
}

static void
check_signature(const char *header, const char *body, size_t len)
{
	enum stripe_sig got = stripe_verify(SECRET, header, body, len, NOW);
	char *changed;

	if (got < STRIPE_SIG_OK || got > STRIPE_SIG_MISMATCH)
		abort();
	if (got != STRIPE_SIG_OK || len == 0)
		return;
	changed = malloc(len);
	if (changed == NULL)
		abort();
	memcpy(changed, body, len);
	changed[len / 2] ^= 0x01;
	if (stripe_verify(SECRET, header, changed, len, NOW) == STRIPE_SIG_OK)
		abort();
	free(changed);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct billing_link link;
	size_t used;
	char *header = first_line(data, size, &used);
	const char *body = (const char *)data + used;
	size_t len = size - used;

	conf.session_secret = "fuzz-session-secret";
	check_signature(header, body, len);
	check_event(body, len);
	if (billing_link_check(BILLING_PURPOSE_UPGRADE, header, NOW, &link) == BILLING_LINK_OK &&
	    (!slack_id_valid(link.team_id, "TE") || !slack_id_valid(link.user_id, "UW")))
		abort();
	free(header);
	return 0;
}
