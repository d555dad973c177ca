/* Stripe event JSON into plain structs. Everything is checked for shape
 * here, so the code that applies an event only meets ids that look like
 * ids. Fields moved between API versions are read from both places. */
#include <string.h>

#include "billing/billing.h"
#include "billing/stripe.h"
#include "util.h"

#define EVENT_TYPE_MAX 128
#define STATUS_MAX     32
#define CREATED_MAX    99999999999LL /* year 5138: anything later is not a time */

int
stripe_valid_id(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > STRIPE_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return 0;
	}
	return 1;
}

/* Lower-case words joined by dots or underscores: event types, statuses. */
static int
valid_word(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '.'))
			return 0;
	return 1;
}

static json_t *
path2(json_t *root, const char *a, const char *b)
{
	return json_object_get(json_object_get(root, a), b);
}

/* An id field: a string, or an expanded object with an "id". 0 with *out
 * NULL when absent or null; -1 when present but not an id. */
static int
id_field(json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_object(v))
		v = json_object_get(v, "id");
	if (!json_is_string(v) || !stripe_valid_id(json_string_value(v)))
		return -1;
	*out = json_string_value(v);
	return 0;
}

/* A team id from our own metadata; anything else is not ours: NULL. */
static const char *
team_field(json_t *v)
{
	const char *s = json_string_value(v);

	return slack_id_valid(s, "TE") ? s : NULL;
}

/* A unix time: a non-negative integer, or 0 when absent or null. */
static int
time_field(json_t *v, long long *out)
{
	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > CREATED_MAX)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static int
fail(const char **why, const char *reason)
{
	*why = reason;
	return -1;
}

int
stripe_event_parse(const char *body, size_t len, struct stripe_event *ev, const char **why)
{
	json_t *created;

	memset(ev, 0, sizeof(*ev));
	ev->root = json_loadb(body, len, 0, NULL);
	if (!json_is_object(ev->root))
		return fail(why, "body is not a JSON object");
	ev->id = json_string_value(json_object_get(ev->root, "id"));
	if (!stripe_valid_id(ev->id))
		return fail(why, "missing or malformed event id");
	ev->type = json_string_value(json_object_get(ev->root, "type"));
	if (!valid_word(ev->type, EVENT_TYPE_MAX))
		return fail(why, "missing or malformed event type");
	created = json_object_get(ev->root, "created");
	if (!json_is_integer(created) || time_field(created, &ev->created) < 0)
		return fail(why, "missing or malformed created");
	ev->object = path2(ev->root, "data", "object");
	if (!json_is_object(ev->object))
		return fail(why, "missing data.object");
	return 0;
}

void
stripe_event_free(struct stripe_event *ev)
{
	json_decref(ev->root);
	memset(ev, 0, sizeof(*ev));
}

/* current_period_end sits on the subscription in older API versions and
 * on each item since 2025-03-31. */
static int
period_end(json_t *sub, long long *out)
{
	json_t *top = json_object_get(sub, "current_period_end");
	json_t *item = json_array_get(path2(sub, "items", "data"), 0);

	if (top != NULL && !json_is_null(top))
		return time_field(top, out);
	return time_field(json_object_get(item, "current_period_end"), out);
}

int
stripe_subscription_read(json_t *o, struct stripe_subscription *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	out->id = json_string_value(json_object_get(o, "id"));
	if (!stripe_valid_id(out->id))
		return fail(why, "subscription without an id");
	out->status = json_string_value(json_object_get(o, "status"));
	if (!valid_word(out->status, STATUS_MAX))
		return fail(why, "subscription without a status");
	if (id_field(o, "customer", &out->customer) < 0)
		return fail(why, "malformed customer");
	if (period_end(o, &out->current_period_end) < 0)
		return fail(why, "malformed current_period_end");
	out->team_id = team_field(path2(o, "metadata", "team_id"));
	out->cancel_at_period_end = json_is_true(json_object_get(o, "cancel_at_period_end"));
	return 0;
}

int
stripe_checkout_read(json_t *o, struct stripe_checkout *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	out->id = json_string_value(json_object_get(o, "id"));
	if (!stripe_valid_id(out->id))
		return fail(why, "checkout session without an id");
	out->mode = json_string_value(json_object_get(o, "mode"));
	if (id_field(o, "customer", &out->customer) < 0 ||
	    id_field(o, "subscription", &out->subscription) < 0)
		return fail(why, "malformed customer or subscription");
	out->team_id = team_field(json_object_get(o, "client_reference_id"));
	if (out->team_id == NULL)
		out->team_id = team_field(path2(o, "metadata", "team_id"));
	return 0;
}

/* The subscription of an invoice moved under parent.subscription_details
 * in 2025-03-31; older versions have it at the top. */
int
stripe_invoice_read(json_t *o, struct stripe_invoice *out, const char **why)
{
	json_t *details = path2(o, "parent", "subscription_details");
	json_t *count = json_object_get(o, "attempt_count");

	memset(out, 0, sizeof(*out));
	out->id = json_string_value(json_object_get(o, "id"));
	if (!stripe_valid_id(out->id))
		return fail(why, "invoice without an id");
	if (id_field(o, "customer", &out->customer) < 0)
		return fail(why, "malformed customer");
	if (id_field(details ? details : o, "subscription", &out->subscription) < 0)
		return fail(why, "malformed subscription");
	if (details == NULL)
		details = json_object_get(o, "subscription_details");
	out->team_id = team_field(path2(details, "metadata", "team_id"));
	if (count != NULL && (time_field(count, &out->attempt_count) < 0))
		return fail(why, "malformed attempt_count");
	if (time_field(json_object_get(o, "next_payment_attempt"), &out->next_payment_attempt) < 0)
		return fail(why, "malformed next_payment_attempt");
	return 0;
}
