/* The overview, the teams list and one team's page. Cross-team reads are
 * SECURITY DEFINER functions (migrations/013_roles.sql), called from
 * transactions scoped to no team; one team's page runs scoped to that
 * team. Every list is paged with LIMIT on an index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/lib.h"
#include "admin/pages.h"
#include "admin/redact.h"
#include "admin/webhooks.h"
#include "db.h"
#include "form.h"
#include "util.h"

#define TEAMS_PER_PAGE 50
#define PAGE_MAX       100000
#define THINGS_SHOWN   200

static const char *const unavailable = "The database is unavailable; try again shortly.";

static long long
page_param(struct request *req)
{
	long long page;

	if (strnum(http_query(req, "page") ? http_query(req, "page") : "", 1, PAGE_MAX, &page) < 0)
		page = 1;
	return page;
}

/* Adds key: rows to data, or fails the transaction's page. */
static int
add_rows(json_t *data, const char *key, json_t *rows)
{
	if (rows == NULL)
		return -1;
	json_object_set_new(data, key, rows);
	return 0;
}

/* --- overview ----------------------------------------------------------- */

/* One pass over teams (O(teams), about 40 ms for 100,000), then the plans.
 * The reads across teams are SECURITY DEFINER functions of 013_roles.sql:
 * the runtime role sees no team's rows outside that team's scope. */
static const char *const sql_plans =
    "SELECT p.name AS plan, p.display_name, coalesce(c.teams, 0) AS teams, "
    "coalesce(c.installed, 0) AS installed, coalesce(c.uninstalled, 0) AS uninstalled "
    "FROM plans p LEFT JOIN admin_plan_counts() c ON c.plan = p.name ORDER BY p.sort";

/* Counts stop at the cap so a table of millions of done jobs stays cheap. */
static const char *const sql_job_states =
    "SELECT s.state, (SELECT count(*) FROM (SELECT 1 FROM jobs j WHERE j.state = s.state "
    "LIMIT $1::int) c) AS n FROM unnest(ARRAY['queued', 'running', 'dead', 'cancelled', "
    "'done']) AS s(state)";

/* Every day of the last 14 (UTC), zero when quiet; dibs_events_at_all. */
#define DAYS_SINCE                                                                                 \
	"(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '13 days') AT TIME ZONE 'UTC'"
#define DAYS_SERIES                                                                                \
	"FROM generate_series(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '13 days', "  \
	"date_trunc('day', now() AT TIME ZONE 'UTC'), interval '1 day') AS d(day) "
static const char *const sql_dibs_days =
    "SELECT to_char(d.day, 'YYYY-MM-DD') AS day, coalesce(a.events, 0) AS events, "
    "coalesce(a.holds, 0) AS holds, coalesce(a.teams, 0) AS teams " DAYS_SERIES
    "LEFT JOIN admin_dibs_days(" DAYS_SINCE ") a ON a.day = d.day ORDER BY d.day DESC";

/* Lunch polls opened per day (UTC) over 14 days, on lunch_polls_created_all. */
static const char *const sql_poll_days =
    "SELECT to_char(d.day, 'YYYY-MM-DD') AS day, coalesce(a.polls, 0) AS polls, "
    "coalesce(a.grouped, 0) AS grouped, coalesce(a.teams, 0) AS teams " DAYS_SERIES
    "LEFT JOIN admin_poll_days(" DAYS_SINCE ") a ON a.day = d.day ORDER BY d.day DESC";

/* Totals over the plan rows, for the installed/uninstalled line. */
static void
add_totals(json_t *data, json_t *plans)
{
	json_int_t teams = 0, installed = 0, uninstalled = 0;
	json_t *p;
	size_t i;

	json_array_foreach(plans, i, p)
	{
		teams += json_integer_value(json_object_get(p, "teams"));
		installed += json_integer_value(json_object_get(p, "installed"));
		uninstalled += json_integer_value(json_object_get(p, "uninstalled"));
	}
	json_object_set_new(data, "total_teams", json_integer(teams));
	json_object_set_new(data, "total_installed", json_integer(installed));
	json_object_set_new(data, "total_uninstalled", json_integer(uninstalled));
}

/* Marks the capped counts so the page can print "10000+". */
static void
mark_capped(json_t *states)
{
	json_t *s;
	size_t i;

	json_array_foreach(states, i, s)
	{
		if (json_integer_value(json_object_get(s, "n")) > ADMIN_COUNT_CAP) {
			json_object_set_new(s, "n", json_integer(ADMIN_COUNT_CAP));
			json_object_set_new(s, "capped", json_true());
		}
	}
}

static int
home_data(struct tx *tx, json_t *data)
{
	char cap[16];
	const char *p[1] = {cap};
	json_t *plans, *states;
	int dibs, polls;

	snprintf(cap, sizeof(cap), "%d", ADMIN_COUNT_CAP + 1);
	plans = admin_rows(tx, sql_plans, 0, NULL);
	if (add_rows(data, "plans", plans) < 0)
		return -1;
	add_totals(data, plans);
	states = admin_rows(tx, sql_job_states, 1, p);
	if (add_rows(data, "job_states", states) < 0)
		return -1;
	mark_capped(states);
	dibs = admin_table_exists(tx, "dibs_events");
	polls = admin_table_exists(tx, "lunch_polls");
	if (dibs < 0 || polls < 0)
		return -1;
	json_object_set_new(data, "has_dibs", json_boolean(dibs));
	json_object_set_new(data, "has_polls", json_boolean(polls));
	if (dibs && add_rows(data, "dibs_days", admin_rows(tx, sql_dibs_days, 0, NULL)) < 0)
		return -1;
	return polls ? add_rows(data, "poll_days", admin_rows(tx, sql_poll_days, 0, NULL)) : 0;
}

void
admin_page_home(struct request *req, struct response *res, const struct admin_session *s)
{
	json_t *data = json_object();
	struct tx tx;

	if (tx_begin_system(&tx) < 0 || home_data(&tx, data) < 0 || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		json_decref(data);
		admin_error(res, 503, s, unavailable);
		return;
	}
	admin_page(res, 200, s, "admin_home.html", "Overview", data);
}

/* --- teams -------------------------------------------------------------- */

/* Team rows come from teams alone; plans, installations and thing counts
 * are fetched for the page's ids and merged in. */

/* Newest first, keyset-paged on teams_created: any page costs the same. */
static const char *const sql_teams_all =
    "SELECT * FROM admin_teams_page($1::int, $2::timestamptz, $3)";

/* Prefix of the id or of the lower-case name (see admin_teams_search in
 * migrations/013_roles.sql): a broad prefix ("team") still costs one page;
 * results are ordered bytewise, as the index is. */
static const char *const sql_teams_search =
    "SELECT * FROM admin_teams_search($1::int, $2::bigint, $3)";

static const char *const sql_plan_limits =
    "SELECT name AS plan, display_name AS plan_name, max_things FROM plans";

static const char *const sql_installed = "SELECT * FROM admin_team_installed($1::text[])";

static const char *const sql_subscriptions = "SELECT * FROM admin_team_subscriptions($1::text[])";

static const char *const sql_things_count = "SELECT * FROM admin_team_things($1::text[])";

/* A text[] literal of the rows' team ids, quoted for array syntax. */
static char *
team_id_array(json_t *rows)
{
	struct buf b;
	json_t *row;
	size_t i;

	buf_init(&b);
	buf_putc(&b, '{');
	json_array_foreach(rows, i, row)
	{
		const char *id = json_string_value(json_object_get(row, "team_id"));

		buf_puts(&b, i ? ",\"" : "\"");
		for (const char *c = id ? id : ""; *c; c++) {
			if (*c == '"' || *c == '\\')
				buf_putc(&b, '\\');
			buf_putc(&b, *c);
		}
		buf_putc(&b, '"');
	}
	buf_putc(&b, '}');
	return buf_steal(&b);
}

/* Copies the fields of each extra row into the rows with the same key.
 * O(rows x extra), both at most a page. */
static void
merge_rows(json_t *rows, json_t *extra, const char *key)
{
	json_t *row, *x;
	size_t i, k;

	json_array_foreach(rows, i, row)
	{
		json_array_foreach(extra, k, x)
		{
			if (json_equal(json_object_get(x, key), json_object_get(row, key)))
				json_object_update(row, x);
		}
	}
}

/* Runs sql with the page's team ids as $1 and merges its rows in. */
static int
merge_by_team(struct tx *tx, json_t *rows, const char *sql)
{
	char *ids = team_id_array(rows);
	const char *p[1] = {ids};
	json_t *extra = admin_rows(tx, sql, 1, p);

	free(ids);
	if (extra == NULL)
		return -1;
	merge_rows(rows, extra, "team_id");
	json_decref(extra);
	return 0;
}

/* status (installed, uninstalled, inactive, not-installed) and at_limit. */
static void
mark_teams(json_t *rows)
{
	json_t *row, *active, *max, *things;
	const char *status;
	size_t i;

	json_array_foreach(rows, i, row)
	{
		active = json_object_get(row, "active");
		if (json_is_true(json_object_get(row, "uninstalled")))
			status = "uninstalled";
		else if (active == NULL)
			status = "not-installed";
		else
			status = json_is_true(active) ? "installed" : "inactive";
		json_object_set_new(row, "status", json_string(status));
		max = json_object_get(row, "max_things");
		things = json_object_get(row, "things");
		if (things == NULL)
			json_object_set_new(row, "things", things = json_integer(0));
		if (json_is_integer(max) && json_integer_value(things) >= json_integer_value(max))
			json_object_set_new(row, "at_limit", json_true());
	}
}

static int
team_details(struct tx *tx, json_t *rows, json_t *data)
{
	int things = admin_table_exists(tx, "things");
	int billing = admin_table_exists(tx, "billing");
	json_t *plans;

	if (things < 0 || billing < 0)
		return -1;
	json_object_set_new(data, "has_things", json_boolean(things));
	json_object_set_new(data, "has_billing", json_boolean(billing));
	plans = admin_rows(tx, sql_plan_limits, 0, NULL);
	if (plans == NULL)
		return -1;
	merge_rows(rows, plans, "plan");
	json_decref(plans);
	if (json_array_size(rows) > 0 &&
	    (merge_by_team(tx, rows, sql_installed) < 0 ||
	     (things && merge_by_team(tx, rows, sql_things_count) < 0) ||
	     (billing && merge_by_team(tx, rows, sql_subscriptions) < 0)))
		return -1;
	mark_teams(rows);
	return 0;
}

/* The next-page link of the unfiltered list: the last row's cursor. */
static void
set_team_cursor(json_t *data, json_t *rows, int more, int first)
{
	json_t *last = json_array_get(rows, json_array_size(rows) - 1);
	char *at, *id, *href;

	if (!first)
		json_object_set_new(data, "first_href", json_string("/admin/teams"));
	if (!more || last == NULL)
		return;
	at = url_encode(json_string_value(json_object_get(last, "cursor_at")));
	id = url_encode(json_string_value(json_object_get(last, "team_id")));
	href = xasprintf("/admin/teams?at=%s&id=%s", at, id);
	json_object_set_new(data, "next_href", json_string(href));
	free(at);
	free(id);
	free(href);
}

/* Search results, paged by offset. */
static void
set_search_pages(json_t *data, const char *q, long long page, int more)
{
	char *q_url = url_encode(q), *href;

	json_object_set_new(data, "page", json_integer(page));
	if (page > 1) {
		href = xasprintf("/admin/teams?q=%s&page=%lld", q_url, page - 1);
		json_object_set_new(data, "prev_href", json_string(href));
		free(href);
	}
	if (more) {
		href = xasprintf("/admin/teams?q=%s&page=%lld", q_url, page + 1);
		json_object_set_new(data, "next_href", json_string(href));
		free(href);
	}
	free(q_url);
}

/* A keyset cursor from ?at=TIME&id=TEAM, or the start when absent or
 * malformed. */
static int
team_cursor(struct request *req, char *at, size_t atcap, char *id, size_t idcap)
{
	const char *a = http_query(req, "at"), *i = http_query(req, "id");

	if (a == NULL || i == NULL || !admin_cursor_valid(a) || strlen(i) >= idcap ||
	    !slack_id_valid(i, "TE")) {
		snprintf(at, atcap, "infinity");
		id[0] = '\0';
		return 0;
	}
	snprintf(at, atcap, "%s", a);
	snprintf(id, idcap, "%s", i);
	return 1;
}

static int
teams_data(struct tx *tx, struct request *req, const char *q, json_t *data)
{
	char limit[16], offset[24], at[40], id[40];
	const char *p[3] = {limit, offset, q};
	long long page = page_param(req);
	json_t *rows;
	int more, later = 0;

	snprintf(limit, sizeof(limit), "%d", TEAMS_PER_PAGE + 1);
	snprintf(offset, sizeof(offset), "%lld", (page - 1) * TEAMS_PER_PAGE);
	if (q[0] == '\0') {
		later = team_cursor(req, at, sizeof(at), id, sizeof(id));
		p[1] = at;
		p[2] = id;
	}
	rows = admin_rows(tx, q[0] ? sql_teams_search : sql_teams_all, 3, p);
	if (add_rows(data, "teams", rows) < 0)
		return -1;
	more = json_array_size(rows) > TEAMS_PER_PAGE;
	if (more)
		json_array_remove(rows, TEAMS_PER_PAGE);
	if (q[0])
		set_search_pages(data, q, page, more);
	else
		set_team_cursor(data, rows, more, !later);
	return team_details(tx, rows, data);
}

/* The search text: surrounding spaces trimmed, at most 64 bytes (cut on
 * a character boundary); "" unless it is UTF-8. */
static char *
search_text(struct request *req)
{
	const char *q = http_query(req, "q");
	json_t *valid = json_string(q ? q : "");
	size_t len;

	q = q && valid ? q : "";
	json_decref(valid);
	while (*q == ' ')
		q++;
	len = strnlen(q, 64);
	while (len > 0 && ((unsigned char)q[len] & 0xC0) == 0x80)
		len--;
	while (len > 0 && q[len - 1] == ' ')
		len--;
	return xstrndup(q, len);
}

void
admin_page_teams(struct request *req, struct response *res, const struct admin_session *s)
{
	char *q = search_text(req);
	json_t *data = json_pack("{s:s}", "q", q);
	struct tx tx;

	if (tx_begin_system(&tx) < 0 || teams_data(&tx, req, q, data) < 0 || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		json_decref(data);
		admin_error(res, 503, s, unavailable);
	} else {
		admin_page(res, 200, s, "admin_teams.html", "Teams", data);
	}
	free(q);
}

/* --- one team ----------------------------------------------------------- */

static const char *const sql_team =
    "SELECT t.team_id, t.name, t.domain, t.plan, p.display_name AS plan_name, p.max_things, "
    "admin_ts(t.created_at) AS created, admin_ts(t.installed_at) AS installed_at, "
    "admin_ts(t.uninstalled_at) AS uninstalled_at FROM teams t JOIN plans p ON p.name = t.plan "
    "WHERE t.team_id = $1";

/* Whether a token is stored, never the token. */
static const char *const sql_installation =
    "SELECT app_id, bot_user_id, scopes, installer_user_id, active, inactive_reason, "
    "admin_ts(installed_at) AS installed_at, admin_ts(updated_at) AS updated_at, "
    "admin_ts(token_expires_at) AS token_expires_at, bot_token IS NOT NULL AS has_token, "
    "refresh_token IS NOT NULL AS has_refresh_token FROM installations WHERE team_id = $1";

static const char *const sql_team_things =
    "SELECT t.name, t.display_name, h.user_id AS holder, admin_ts(h.since) AS since, "
    "admin_ts(h.release_at) AS release_at, h.reason, "
    "(SELECT string_agg(q.user_id, ', ' ORDER BY q.position) FROM queue q "
    "WHERE q.team_id = t.team_id AND q.thing = t.name) AS queue "
    "FROM things t LEFT JOIN holds h ON h.team_id = t.team_id AND h.thing = t.name "
    "WHERE t.team_id = $1 ORDER BY t.name LIMIT $2::int";

static const char *const sql_team_thing_count =
    "SELECT count(*) AS n FROM things WHERE team_id = $1";

/* The team's latest polls (poll ids grow with time), with their answers
 * and groups counted. */
static const char *const sql_team_polls =
    "SELECT p.poll_id, p.channel_id, p.state, p.size, array_to_string(ARRAY(SELECT "
    "lpad((x / 60)::text, 2, '0') || ':' || lpad((x % 60)::text, 2, '0') FROM unnest(p.times) "
    "x), ' ') AS times, admin_ts(p.created_at) AS created, admin_ts(p.closed_at) AS closed, "
    "(SELECT count(*) FROM lunch_members m WHERE m.team_id = p.team_id AND m.poll_id = p.poll_id) "
    "AS asked, (SELECT count(*) FROM lunch_members m WHERE m.team_id = p.team_id AND "
    "m.poll_id = p.poll_id AND m.answer >= 0) AS yes, (SELECT count(*) FROM lunch_groups g "
    "WHERE g.team_id = p.team_id AND g.poll_id = p.poll_id) AS groups, p.cancel_reason "
    "FROM lunch_polls p WHERE p.team_id = $1 ORDER BY p.poll_id DESC LIMIT 20";

static const char *const sql_team_jobs =
    "SELECT id, kind, state, attempts, max_attempts, admin_ts(due_at) AS due, "
    "admin_ts(created_at) AS created, last_error, payload::text AS payload FROM jobs "
    "WHERE team_id = $1 ORDER BY created_at DESC LIMIT 50";

/* One row of sql into data[key] (null when none). */
static int
add_one(struct tx *tx, json_t *data, const char *key, const char *sql, const char *team)
{
	const char *p[1] = {team};
	json_t *rows = admin_rows(tx, sql, 1, p);

	if (rows == NULL)
		return -1;
	json_object_set(data, key, json_array_size(rows) ? json_array_get(rows, 0) : json_null());
	json_decref(rows);
	return 0;
}

static int
team_things(struct tx *tx, json_t *data, const char *team)
{
	char limit[16];
	const char *p[2] = {team, limit};
	json_t *count;

	snprintf(limit, sizeof(limit), "%d", THINGS_SHOWN);
	if (add_rows(data, "things", admin_rows(tx, sql_team_things, 2, p)) < 0 ||
	    add_one(tx, data, "thing_count", sql_team_thing_count, team) < 0)
		return -1;
	count = json_object_get(json_object_get(data, "thing_count"), "n");
	if (json_integer_value(count) > THINGS_SHOWN)
		json_object_set_new(data, "things_cut", json_integer(THINGS_SHOWN));
	return 0;
}

static int
team_data(struct tx *tx, const char *team, json_t *data)
{
	const char *p[1] = {team};
	json_t *jobs;
	int things, polls;

	if (add_one(tx, data, "team", sql_team, team) < 0 ||
	    add_one(tx, data, "installation", sql_installation, team) < 0)
		return -1;
	if (json_is_null(json_object_get(data, "team")))
		return 0;
	things = admin_table_exists(tx, "things");
	if (things < 0 || (things && team_things(tx, data, team) < 0))
		return -1;
	json_object_set_new(data, "has_things", json_boolean(things));
	polls = admin_table_exists(tx, "lunch_polls");
	if (polls < 0 ||
	    (polls && add_rows(data, "polls", admin_rows(tx, sql_team_polls, 1, p)) < 0))
		return -1;
	json_object_set_new(data, "has_polls", json_boolean(polls));
	jobs = admin_rows(tx, sql_team_jobs, 1, p);
	if (add_rows(data, "jobs", jobs) < 0)
		return -1;
	admin_clean_job_rows(jobs);
	return admin_team_billing(tx, team, data);
}

void
admin_page_team(struct request *req, struct response *res, const struct admin_session *s,
                const char *team_id)
{
	json_t *data = json_object();
	struct tx tx;
	char *back;

	if (!slack_id_valid(team_id, "TE")) {
		json_decref(data);
		admin_error(res, 404, s, "No such team.");
		return;
	}
	if (tx_begin(&tx, team_id) < 0 || team_data(&tx, team_id, data) < 0 || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		json_decref(data);
		admin_error(res, 503, s, unavailable);
		return;
	}
	if (json_is_null(json_object_get(data, "team"))) {
		json_decref(data);
		admin_error(res, 404, s, "No such team.");
		return;
	}
	back = xasprintf("/admin/teams/%s", team_id);
	json_object_set_new(data, "back", json_string(back));
	free(back);
	admin_page(res, 200, s, "admin_team.html", team_id, data);
}
