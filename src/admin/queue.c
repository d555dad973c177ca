/* The job queue page: jobs of one state (and optionally one kind), with
 * retry and cancel. Payloads are shown redacted, errors scrubbed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/lib.h"
#include "admin/queue.h"
#include "admin/redact.h"
#include "db.h"
#include "form.h"
#include "jobs.h"
#include "log.h"
#include "util.h"

#define JOBS_PER_PAGE 50
#define KIND_MAX      64

static const char *const states[] = {"queued", "running", "dead", "done", "cancelled"};

#define JOB_COLUMNS                                                                                \
	"SELECT id, kind, team_id, state, attempts, max_attempts, admin_ts(due_at) AS due, "       \
	"admin_rel(due_at) AS due_rel, admin_rel(lease_until) AS lease_rel, "                      \
	"admin_ts(started_at) AS started, admin_ts(finished_at) AS finished, last_error, "         \
	"payload::text AS payload, admin_cursor(due_at) AS cursor_at FROM jobs "

/* Queued jobs in the order they will run, on jobs_due, keyset-paged on
 * (due_at, id) so a deep page costs what the first does. */
static const char *const sql_queued =
    JOB_COLUMNS "WHERE state = 'queued' AND ($1 = '' OR kind = $1) "
                "AND (due_at, id) > ($3::timestamptz, $4::bigint) "
                "ORDER BY due_at, id LIMIT $2::int";

/* Other states newest first, keyset-paged on id. The rows of a state come
 * from jobs_state_kind and are sorted: done and cancelled jobs are pruned
 * by the runners' cleanup and dead ones are few, so the sort stays small
 * (another index on this hot table would cost every job write). */
static const char *const sql_state =
    JOB_COLUMNS "WHERE state = $4 AND ($1 = '' OR kind = $1) AND id < $3::bigint "
                "ORDER BY id DESC LIMIT $2::int";

/* Per-state counts for the tabs, capped as on the overview. */
static const char *const sql_counts =
    "SELECT s.state, (SELECT count(*) FROM (SELECT 1 FROM jobs j WHERE j.state = s.state "
    "AND ($1 = '' OR j.kind = $1) LIMIT $2::int) c) AS n "
    "FROM unnest(ARRAY['queued', 'running', 'dead', 'done', 'cancelled']) AS s(state)";

/* Where a page starts: ?at=TIME&after=ID (queued) or ?after=ID (others). */
struct cursor {
	char at[40];
	char id[24];
	int given;
};

static void
cursor_param(struct request *req, int queued, struct cursor *c)
{
	const char *at = http_query(req, "at"), *after = http_query(req, "after");
	long long id;

	c->given = after != NULL && strnum(after, 0, INT64_MAX, &id) == 0 &&
	           (!queued || admin_cursor_valid(at));
	if (!c->given) {
		snprintf(c->at, sizeof(c->at), "-infinity");
		snprintf(c->id, sizeof(c->id), queued ? "0" : "%lld", (long long)INT64_MAX);
		return;
	}
	snprintf(c->at, sizeof(c->at), "%s", queued ? at : "-infinity");
	snprintf(c->id, sizeof(c->id), "%lld", id);
}

/* The next page's link, from the last row shown. */
static void
set_next(json_t *data, json_t *rows, const char *state, const char *kind_url, int queued)
{
	json_t *last = json_array_get(rows, json_array_size(rows) - 1);
	json_int_t id = json_integer_value(json_object_get(last, "id"));
	char *at = url_encode(json_string_value(json_object_get(last, "cursor_at")));
	char *href;

	if (queued)
		href = xasprintf("/admin/jobs?state=%s&kind=%s&at=%s&after=%" JSON_INTEGER_FORMAT,
		                 state, kind_url, at, id);
	else
		href = xasprintf("/admin/jobs?state=%s&kind=%s&after=%" JSON_INTEGER_FORMAT, state,
		                 kind_url, id);
	json_object_set_new(data, "next_href", json_string(href));
	free(href);
	free(at);
}

static const char *
state_param(struct request *req)
{
	const char *state = http_query(req, "state");

	for (size_t i = 0; state && i < ARRAY_LEN(states); i++)
		if (strcmp(state, states[i]) == 0)
			return states[i];
	return "queued";
}

/* A kind filter: letters, digits, '.', '_', '-' only; anything else is
 * ignored rather than searched for. */
static const char *
kind_param(struct request *req)
{
	const char *kind = http_query(req, "kind");
	size_t len = kind ? strlen(kind) : 0;

	if (len == 0 || len > KIND_MAX ||
	    strspn(kind, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
	        len)
		return "";
	return kind;
}

/* The tabs: each state with its count, the current one marked. */
static json_t *
state_tabs(json_t *counts, const char *current)
{
	json_t *tabs = json_array(), *c;
	size_t i;

	json_array_foreach(counts, i, c)
	{
		const char *name = json_string_value(json_object_get(c, "state"));
		json_int_t n = json_integer_value(json_object_get(c, "n"));

		json_array_append_new(tabs,
		                      json_pack("{s:s, s:I, s:b, s:b}", "state", name ? name : "",
		                                "n", n > ADMIN_COUNT_CAP ? ADMIN_COUNT_CAP : n,
		                                "capped", n > ADMIN_COUNT_CAP, "current",
		                                name && strcmp(name, current) == 0));
	}
	return tabs;
}

static int
jobs_data(struct tx *tx, struct request *req, const char *state, const char *kind, json_t *data)
{
	int queued = strcmp(state, "queued") == 0, more;
	struct cursor c;
	char limit[16], cap[16], *kind_url, *back;
	const char *p[4] = {kind, limit, NULL, NULL};
	const char *pc[2] = {kind, cap};
	json_t *rows, *counts;

	cursor_param(req, queued, &c);
	p[2] = queued ? c.at : c.id;
	p[3] = queued ? c.id : state;
	snprintf(limit, sizeof(limit), "%d", JOBS_PER_PAGE + 1);
	snprintf(cap, sizeof(cap), "%d", ADMIN_COUNT_CAP + 1);
	counts = admin_rows(tx, sql_counts, 2, pc);
	if (counts == NULL)
		return -1;
	json_object_set_new(data, "tabs", state_tabs(counts, state));
	json_decref(counts);
	rows = admin_rows(tx, queued ? sql_queued : sql_state, 4, p);
	if (rows == NULL)
		return -1;
	more = json_array_size(rows) > JOBS_PER_PAGE;
	if (more)
		json_array_remove(rows, JOBS_PER_PAGE);
	admin_clean_job_rows(rows);
	json_object_set_new(data, "jobs", rows);
	kind_url = url_encode(kind);
	/* After an action, and the way back from a later page: the first page. */
	back = xasprintf("/admin/jobs?state=%s&kind=%s", state, kind_url);
	json_object_set_new(data, "back", json_string(back));
	if (c.given)
		json_object_set_new(data, "first_href", json_string(back));
	free(back);
	if (more)
		set_next(data, rows, state, kind_url, queued);
	free(kind_url);
	return 0;
}

/* The notice after an action (?done=retried&job=ID), from fixed texts. */
static void
add_notice(struct request *req, json_t *data)
{
	const char *done = http_query(req, "done"), *job = http_query(req, "job");
	char text[64];
	long long id;

	if (done == NULL || job == NULL || strnum(job, 1, INT64_MAX, &id) < 0)
		return;
	if (strcmp(done, "retried") == 0)
		snprintf(text, sizeof(text), "Job %lld is queued to run now.", id);
	else if (strcmp(done, "cancelled") == 0)
		snprintf(text, sizeof(text), "Job %lld is cancelled.", id);
	else
		return;
	json_object_set_new(data, "notice", json_string(text));
}

void
admin_page_jobs(struct request *req, struct response *res, const struct admin_session *s)
{
	const char *state = state_param(req), *kind = kind_param(req);
	char *kind_url = url_encode(kind);
	json_t *data = json_pack("{s:s, s:s, s:s, s:b}", "state", state, "kind", kind, "kind_url",
	                         kind_url, "queued", strcmp(state, "queued") == 0);
	struct tx tx;

	free(kind_url);
	add_notice(req, data);
	if (tx_begin_system(&tx) < 0 || jobs_data(&tx, req, state, kind, data) < 0 ||
	    tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		json_decref(data);
		admin_error(res, 503, s, "The database is unavailable; try again shortly.");
		return;
	}
	admin_page(res, 200, s, "admin_jobs.html", "Jobs", data);
}

/* Appends "done=...&job=ID" to back, which may already have a query. */
static char *
back_with_notice(const char *back, const char *done, long long id)
{
	return xasprintf("%s%cdone=%s&job=%lld", back, strchr(back, '?') ? '&' : '?', done, id);
}

void
admin_job_action(struct request *req, struct response *res, const struct admin_session *s,
                 const char *id_text, const char *action, const char *back)
{
	int retry = strcmp(action, "retry") == 0;
	long long id;
	struct tx tx;
	char *location;
	int rc, failed;

	if (strnum(id_text, 1, INT64_MAX, &id) < 0) {
		admin_error(res, 404, s, "No such job.");
		return;
	}
	if (tx_begin_system(&tx) < 0) {
		admin_error(res, 503, s, "The database is unavailable; try again shortly.");
		return;
	}
	rc = retry ? jobs_retry(&tx, id) : jobs_cancel(&tx, id);
	failed = tx.failed;
	if (rc < 0 || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		if (failed || tx.error == DB_UNAVAILABLE)
			admin_error(res, 503, s, "The database is unavailable; try again shortly.");
		else
			admin_error(
			    res, 409, s,
			    retry ? "That job cannot be retried: only dead, cancelled or queued "
			            "jobs can."
			          : "That job cannot be cancelled: only queued jobs can.");
		return;
	}
	log_info("admin: %s %s job %lld", s->user, retry ? "retried" : "cancelled", id);
	location = back_with_notice(back, retry ? "retried" : "cancelled", id);
	http_redirect(res, 303, location);
	free(location);
}
