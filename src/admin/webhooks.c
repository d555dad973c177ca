/* Stripe webhook deliveries, and a team's billing on its page. The tables
 * belong to src/billing (migrations/006_billing.sql); every query here is
 * guarded by admin_table_exists() so the pages work before billing does.
 * Event payloads are never shown: they carry customers' details. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/lib.h"
#include "admin/redact.h"
#include "admin/webhooks.h"
#include "db.h"
#include "form.h"
#include "util.h"

#define EVENTS_PER_PAGE 50
#define TEAM_EVENTS     20
#define EVENT_ID_MAX    255

#define EVENT_COLUMNS                                                                              \
	"SELECT e.event_id AS id, e.type, e.team_id, admin_ts(to_timestamp(e.created)) AS "        \
	"created, "                                                                                \
	"admin_ts(e.received_at) AS received, admin_ts(e.processed_at) AS processed, e.error, "    \
	"admin_cursor(e.received_at) AS cursor_at FROM stripe_events e "

/* Newest first, keyset-paged on stripe_events_received. */
static const char *const sql_events =
    EVENT_COLUMNS "WHERE (e.received_at, e.event_id) < ($2::timestamptz, $3) "
                  "ORDER BY e.received_at DESC, e.event_id DESC LIMIT $1::int";

/* On stripe_events_team; RLS scopes it to the team as well. */
static const char *const sql_team_events =
    EVENT_COLUMNS "WHERE e.team_id = $1 ORDER BY e.received_at DESC LIMIT $2::int";

static const char *const sql_billing =
    "SELECT subscription_status, stripe_customer, stripe_subscription, "
    "admin_ts(current_period_end) AS current_period_end, cancel_at_period_end, "
    "admin_ts(grace_until) AS grace_until, admin_ts(updated_at) AS updated_at "
    "FROM billing WHERE team_id = $1";

/* state: "applied", "not applied" (error says why) or "received". The
 * state is read before the error is replaced: json_object_set_new frees
 * the old value. */
static void
mark_events(json_t *rows)
{
	json_t *row, *err;
	const char *state;
	char *clean;
	size_t i;

	json_array_foreach(rows, i, row)
	{
		err = json_object_get(row, "error");
		state = json_is_string(err)                               ? "not applied"
		        : json_is_null(json_object_get(row, "processed")) ? "received"
		                                                          : "applied";
		json_object_set_new(row, "state", json_string(state));
		if (json_is_string(err)) {
			clean = admin_scrub(json_string_value(err));
			json_object_set_new(row, "error", json_string(clean));
			free(clean);
		}
	}
}

/* ?at=TIME&id=EVENT, or the start. */
static int
event_cursor(struct request *req, char *at, size_t atcap, char *id, size_t idcap)
{
	const char *a = http_query(req, "at"), *i = http_query(req, "id");

	if (!admin_cursor_valid(a) || i == NULL || strlen(i) >= idcap) {
		snprintf(at, atcap, "infinity");
		id[0] = '\0';
		return 0;
	}
	snprintf(at, atcap, "%s", a);
	snprintf(id, idcap, "%s", i);
	return 1;
}

static void
set_next(json_t *data, json_t *rows)
{
	json_t *last = json_array_get(rows, json_array_size(rows) - 1);
	char *at = url_encode(json_string_value(json_object_get(last, "cursor_at")));
	char *id = url_encode(json_string_value(json_object_get(last, "id")));
	char *href = xasprintf("/admin/webhooks?at=%s&id=%s", at, id);

	json_object_set_new(data, "next_href", json_string(href));
	free(at);
	free(id);
	free(href);
}

static int
events_data(struct tx *tx, struct request *req, json_t *data)
{
	char limit[16], at[40], id[EVENT_ID_MAX + 1];
	const char *p[3] = {limit, at, id};
	json_t *rows;
	int exists = admin_table_exists(tx, "stripe_events");

	if (exists <= 0)
		return exists;
	json_object_set_new(data, "has_events_table", json_true());
	snprintf(limit, sizeof(limit), "%d", EVENTS_PER_PAGE + 1);
	if (event_cursor(req, at, sizeof(at), id, sizeof(id)))
		json_object_set_new(data, "first_href", json_string("/admin/webhooks"));
	rows = admin_rows(tx, sql_events, 3, p);
	if (rows == NULL)
		return -1;
	if (json_array_size(rows) > EVENTS_PER_PAGE) {
		json_array_remove(rows, EVENTS_PER_PAGE);
		set_next(data, rows);
	}
	mark_events(rows);
	json_object_set_new(data, "events", rows);
	return 0;
}

void
admin_page_webhooks(struct request *req, struct response *res, const struct admin_session *s)
{
	json_t *data = json_object();
	struct tx tx;

	if (tx_begin_system(&tx) < 0 || events_data(&tx, req, data) < 0 || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		json_decref(data);
		admin_error(res, 503, s, "The database is unavailable; try again shortly.");
		return;
	}
	admin_page(res, 200, s, "admin_webhooks.html", "Webhooks", data);
}

static int
team_events(struct tx *tx, const char *team_id, json_t *data)
{
	char limit[16];
	const char *p[2] = {team_id, limit};
	json_t *rows;

	snprintf(limit, sizeof(limit), "%d", TEAM_EVENTS);
	rows = admin_rows(tx, sql_team_events, 2, p);
	if (rows == NULL)
		return -1;
	mark_events(rows);
	json_object_set_new(data, "events", rows);
	json_object_set_new(data, "has_events", json_true());
	return 0;
}

int
admin_team_billing(struct tx *tx, const char *team_id, json_t *data)
{
	const char *p[1] = {team_id};
	int billing = admin_table_exists(tx, "billing");
	int events = admin_table_exists(tx, "stripe_events");
	json_t *rows;

	if (billing < 0 || events < 0)
		return -1;
	if (billing) {
		rows = admin_rows(tx, sql_billing, 1, p);
		if (rows == NULL)
			return -1;
		json_object_set(data, "billing",
		                json_array_size(rows) ? json_array_get(rows, 0) : json_false());
		json_object_set_new(data, "has_billing", json_true());
		json_decref(rows);
	}
	return events ? team_events(tx, team_id, data) : 0;
}
