/* The member directory (see members.h): its reads, the users.list sync,
 * users.info lookups and the user events. The rules themselves (who may
 * manage, which observation wins) are SQL in migrations/010. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "jobs.h"
#include "log.h"
#include "members.h"
#include "slack.h"
#include "util.h"

#define SYNC_SPREAD_HOURS "4" /* the daily refresh spreads teams over this */

static int
one_text(struct tx *tx, const char *sql, int n, const char *const *p, char *out, size_t len)
{
	PGresult *r = tx_query(tx, sql, n, p);

	if (r == NULL || PQntuples(r) != 1) {
		PQclear(r);
		return -1;
	}
	snprintf(out, len, "%s", db_str(r, 0, 0));
	PQclear(r);
	return 0;
}

/* A users.info lookup, at most one a minute per user however often asked. */
static int
queue_lookup(struct tx *tx, const char *team_id, const char *user_id)
{
	char *key = xasprintf("%s:%s:%ld", team_id, user_id, now_unix() / 60);
	int64_t id =
	    job_enqueue(tx, "members.lookup", team_id, json_pack("{s:s}", "user", user_id), 0, key);

	free(key);
	return id < 0 ? -1 : 0;
}

int
members_may_manage(struct tx *tx, const char *team_id, const char *user_id)
{
	const char *p[2] = {team_id, user_id};
	char v[16];

	if (one_text(tx, "SELECT members_may_manage($1, $2)", 2, p, v, sizeof(v)) < 0)
		return -1;
	if (strcmp(v, "yes") == 0)
		return MEMBER_YES;
	if (strcmp(v, "no") == 0)
		return MEMBER_NO;
	if (queue_lookup(tx, team_id, user_id) < 0 || members_sync_soon(tx, team_id, "first") < 0)
		return -1;
	return MEMBER_UNKNOWN;
}

int
members_is_admin(struct tx *tx, const char *team_id, const char *user_id)
{
	const char *p[2] = {team_id, user_id};
	char v[8];

	if (one_text(tx,
	             "SELECT EXISTS (SELECT 1 FROM members WHERE team_id = $1 AND user_id = $2 "
	             "AND (is_admin OR is_owner OR is_primary_owner) AND NOT deleted "
	             "AND NOT is_bot AND NOT is_restricted)",
	             2, p, v, sizeof(v)) < 0)
		return -1;
	return v[0] == 't';
}

int
members_name_managers(struct tx *tx, const char *team_id, struct buf *out)
{
	char limit[8];
	const char *p[2] = {team_id, limit};
	PGresult *r;
	int n;

	snprintf(limit, sizeof(limit), "%d", MEMBERS_NAMED_MAX);
	r = tx_query(tx, "SELECT user_id FROM members_managers($1, $2::int)", 2, p);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	for (int i = 0; i < n; i++)
		buf_printf(out, "%s<@%s>",
		           i == 0       ? ""
		           : i == n - 1 ? " or "
		                        : ", ",
		           db_str(r, i, 0));
	PQclear(r);
	return n;
}

int
members_store(struct tx *tx, const char *team_id, json_t *users, double seen)
{
	char *json = json_dumps(users, JSON_COMPACT);
	char when[32];
	const char *p[3] = {team_id, json, when};
	char v[16];
	int rc;

	if (json == NULL)
		return -1;
	snprintf(when, sizeof(when), "%.6f", seen);
	rc = one_text(tx, "SELECT members_upsert($1, $2::jsonb, to_timestamp($3::float8))", 3, p, v,
	              sizeof(v));
	free(json);
	return rc < 0 ? -1 : atoi(v);
}

/* Stores users (stolen) in a transaction of their own; 0 or -1. */
static int
store_now(const char *team_id, json_t *users, double seen)
{
	struct tx tx;
	int rc = -1;

	if (tx_begin(&tx, team_id) == 0 && members_store(&tx, team_id, users, seen) >= 0)
		rc = tx_commit(&tx);
	else
		tx_rollback(&tx);
	json_decref(users);
	return rc;
}

int
members_sync_soon(struct tx *tx, const char *team_id, const char *key)
{
	char *k = xasprintf("%s:%s", team_id, key);
	int64_t id =
	    job_enqueue(tx, "members.sync", team_id, json_pack("{s:i}", "listed", 0), 0, k);

	free(k);
	return id < 0 ? -1 : 0;
}

/* --- jobs --------------------------------------------------------------- */

static enum job_result
db_retry(struct job *job)
{
	snprintf(job->error, sizeof(job->error), "database error; will retry");
	return JOB_RETRY;
}

/* What a members job's answer is stored with, once it is in. */
struct members_call {
	double seen;       /* when the call was made: the rows' freshness */
	int listed;        /* members.sync: users listed before this page */
	int first;         /* members.sync: this is the first page */
	job_continue next; /* a lookup for another job: its next step */
	void *next_arg;
};

/* On a runner, with users.info's answer. */
static enum job_result
looked_up(struct job *job, struct slack_result *r, void *arg)
{
	struct members_call *mc = arg;
	json_t *user = json_object_get(r->body, "user");
	enum job_result res;
	double seen = mc->seen;
	job_continue next = mc->next;
	void *next_arg = mc->next_arg;
	int stored = 0;

	free(mc);
	if (r->outcome == SLACK_OK && json_is_object(user))
		stored = store_now(job->team_id, json_pack("[O]", user), seen) < 0 ? -1 : 1;
	if (next) /* the caller goes on, known or not (unknown never says yes) */
		return next(job, next_arg);
	res = slack_job_result(r, job);
	if (stored < 0)
		return db_retry(job);
	if (r->outcome == SLACK_FAILED && strcmp(r->error, "user_not_found") == 0)
		res = JOB_DONE; /* not of this team: stays unknown, which never says yes */
	return res;
}

enum job_result
members_job_lookup(struct job *job, const char *user_id, job_continue next, void *arg)
{
	struct members_call *mc = xcalloc(1, sizeof(*mc));
	json_t *args = json_pack("{s:s}", "user", user_id);
	enum job_result res;

	mc->seen = now_seconds();
	mc->next = next;
	mc->next_arg = arg;
	res = slack_job_call_then(job, "users.info", args, looked_up, mc);
	json_decref(args);
	return res;
}

/* members.lookup: users.info through the outbound engine; the runner is
 * free while it is under way. */
static enum job_result
lookup_job(struct job *job)
{
	const char *user = json_string_value(json_object_get(job->payload, "user"));

	if (job->team_id == NULL || user == NULL) {
		snprintf(job->error, sizeof(job->error), "members.lookup needs a team and a user");
		return JOB_DEAD;
	}
	return members_job_lookup(job, user, NULL, NULL);
}

/* Records a page: its users, the count, and then either the next page's
 * job, the end of the list, or that the team is too large to list. */
static int
save_page(struct job *job, json_t *users, double seen, const char *next, int listed, int first)
{
	char count[16];
	const char *p[4] = {job->team_id, count, next && *next ? "more" : "end",
	                    first ? "true" : "false"};
	struct tx tx;

	snprintf(count, sizeof(count), "%d", listed);
	if (tx_begin(&tx, job->team_id) < 0 || members_store(&tx, job->team_id, users, seen) < 0)
		goto fail;
	if (listed >= MEMBERS_LIST_MAX && next && *next)
		p[2] = "too_large";
	if (tx_exec(&tx,
	            "INSERT INTO member_directory AS d (team_id, started_at, listed, synced_at, "
	            "lookup_only) VALUES ($1, now(), $2::int, CASE WHEN $3 = 'end' THEN now() END, "
	            "$3 = 'too_large') ON CONFLICT (team_id) DO UPDATE SET listed = $2::int, "
	            "started_at = CASE WHEN $4 THEN now() ELSE d.started_at END, "
	            "synced_at = coalesce(EXCLUDED.synced_at, d.synced_at), "
	            "lookup_only = (d.lookup_only OR EXCLUDED.lookup_only)",
	            4, p) < 0)
		goto fail;
	if (strcmp(p[2], "more") == 0 &&
	    job_enqueue(&tx, "members.sync", job->team_id,
	                json_pack("{s:s, s:i}", "cursor", next, "listed", listed), 0, NULL) < 0)
		goto fail;
	if (strcmp(p[2], "too_large") == 0)
		log_info(
		    "members: more than %d members; unknown users will be looked up one by one",
		    MEMBERS_LIST_MAX);
	return tx_commit(&tx);
fail:
	tx_rollback(&tx);
	return -1;
}

/* 1 when the team is known to be too large to list (or gone), 0 when not. */
static int
lookup_only(struct job *job)
{
	const char *p[1] = {job->team_id};
	struct tx tx;
	char v[8] = "";
	int rc;

	if (tx_begin(&tx, job->team_id) < 0)
		goto fail;
	rc = one_text(
	    &tx,
	    "SELECT coalesce((SELECT lookup_only FROM member_directory WHERE team_id = $1), "
	    "false)",
	    1, p, v, sizeof(v));
	if (rc < 0 || tx_commit(&tx) < 0)
		goto fail;
	return v[0] == 't';
fail:
	tx_rollback(&tx);
	return -1;
}

/* On a runner, with a users.list page. */
static enum job_result
listed_page(struct job *job, struct slack_result *r, void *arg)
{
	struct members_call *mc = arg;
	json_t *users = json_object_get(r->body, "members");
	enum job_result res = slack_job_result(r, job);

	if (r->outcome == SLACK_OK && json_is_array(users) &&
	    save_page(job, users, mc->seen,
	              json_string_value(json_object_get(
	                  json_object_get(r->body, "response_metadata"), "next_cursor")),
	              mc->listed + (int)json_array_size(users), mc->first) < 0)
		res = db_retry(job);
	free(mc);
	return res;
}

/* members.sync: one page of users.list per run (Tier 2: the engine paces
 * the pages, and a 429's Retry-After); the next page is a job of its own. */
static enum job_result
sync_job(struct job *job)
{
	const char *cursor = json_string_value(json_object_get(job->payload, "cursor"));
	struct members_call *mc;
	enum job_result res;
	json_t *args;
	int skip;

	if (job->team_id == NULL) {
		snprintf(job->error, sizeof(job->error), "members.sync needs a team");
		return JOB_DEAD;
	}
	if ((skip = lookup_only(job)) != 0)
		return skip < 0 ? db_retry(job) : JOB_DONE;
	mc = xcalloc(1, sizeof(*mc));
	mc->seen = now_seconds();
	mc->listed = (int)json_integer_value(json_object_get(job->payload, "listed"));
	mc->first = cursor == NULL || *cursor == '\0';
	/* team_id: an org's token (an org-wide install) lists one workspace. */
	args = json_pack("{s:i, s:s}", "limit", MEMBERS_PAGE, "team_id", job->team_id);
	if (!mc->first)
		json_object_set_new(args, "cursor", json_string(cursor));
	res = slack_job_call_then(job, "users.list", args, listed_page, mc);
	json_decref(args);
	return res;
}

/* Daily: a fresh sync for every installed team that has not had one in
 * the last 20 hours, spread over a few hours, deduplicated per day (across
 * teams, so in the database: members_refresh_enqueue()). */
static enum job_result
refresh_job(struct job *job)
{
	struct tx tx;

	if (tx_begin_system(&tx) < 0 ||
	    tx_exec(&tx, "SELECT members_refresh_enqueue(interval '" SYNC_SPREAD_HOURS " hours')",
	            0, NULL) < 0 ||
	    tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		return db_retry(job);
	}
	return JOB_DONE;
}

/* --- events ------------------------------------------------------------- */

/* user_change and team_join carry the whole user object. */
static int
user_event(struct tx *tx, const char *team_id, json_t *event, json_t *envelope)
{
	json_t *user = json_object_get(event, "user");
	json_t *users;
	int rc;

	(void)envelope;
	if (!json_is_object(user))
		return 0; /* nothing to store; retrying would not help */
	users = json_pack("[O]", user);
	rc = members_store(tx, team_id, users, now_seconds());
	json_decref(users);
	return rc < 0 ? -1 : 0;
}

void
members_init(void)
{
	jobs_register("members.sync", sync_job);
	jobs_register("members.lookup", lookup_job);
	jobs_register_daily("members.refresh", refresh_job);
	slack_register_event("user_change", user_event);
	slack_register_event("team_join", user_event);
}
