/* Dibs state: reads through dibs_things() and the two changes the REST API
 * shares with Slack (take, release). Every change is one SQL function call
 * in one transaction; see migrations/003_dibs.sql. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dibs/dibs.h"
#include "jobs.h"
#include "plans.h"
#include "util.h"

static char *
dup_or_null(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

static double
epoch_or_zero(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtod(PQgetvalue(r, row, col), NULL);
}

static void
queue_from_json(struct dibs_thing *t, const char *text)
{
	json_t *arr = json_loads(text, 0, NULL);
	size_t i;
	json_t *v;

	t->nqueue = 0;
	t->queue = NULL;
	if (!json_is_array(arr)) {
		json_decref(arr);
		return;
	}
	t->queue = xcalloc(json_array_size(arr) + 1, sizeof(char *));
	json_array_foreach(arr, i, v)
	{
		const char *user = json_string_value(json_object_get(v, "user"));
		if (user)
			t->queue[t->nqueue++] = xstrdup(user);
	}
	json_decref(arr);
}

int
dibs_load(struct tx *tx, const char *team_id, const char *name, int limit, struct dibs_thing **out,
          int *total)
{
	char lim[16];
	const char *p[3] = {team_id, name, lim};
	PGresult *r;
	int n;

	snprintf(lim, sizeof(lim), "%d", limit);
	r = tx_query(
	    tx,
	    "SELECT name, display_name, holder, extract(epoch FROM since), "
	    "extract(epoch FROM release_at), reason, hold_id, queue::text, count(*) OVER () "
	    "FROM dibs_things($1, $2) LIMIT $3::int",
	    3, p);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	*total = n ? (int)strtol(PQgetvalue(r, 0, 8), NULL, 10) : 0;
	*out = xcalloc((size_t)n + 1, sizeof(**out));
	for (int i = 0; i < n; i++) {
		struct dibs_thing *t = &(*out)[i];
		t->name = xstrdup(PQgetvalue(r, i, 0));
		t->display = xstrdup(PQgetvalue(r, i, 1));
		t->holder = dup_or_null(r, i, 2);
		t->since = epoch_or_zero(r, i, 3);
		t->release_at = epoch_or_zero(r, i, 4);
		t->reason = dup_or_null(r, i, 5);
		t->hold_id = PQgetisnull(r, i, 6) ? 0 : strtoll(PQgetvalue(r, i, 6), NULL, 10);
		queue_from_json(t, PQgetvalue(r, i, 7));
	}
	PQclear(r);
	return n;
}

void
dibs_things_free(struct dibs_thing *things, int n)
{
	for (int i = 0; things && i < n; i++) {
		free(things[i].name);
		free(things[i].display);
		free(things[i].holder);
		free(things[i].reason);
		for (int j = 0; j < things[i].nqueue; j++)
			free(things[i].queue[j]);
		free(things[i].queue);
	}
	free(things);
}

static const struct {
	const char *word;
	enum dibs_status status;
} status_words[] = {
    {"holding", DIBS_ST_HOLDING},
    {"queued", DIBS_ST_QUEUED},
    {"already_holding", DIBS_ST_ALREADY_HOLDING},
    {"already_queued", DIBS_ST_ALREADY_QUEUED},
    {"limit", DIBS_ST_LIMIT},
    {"released", DIBS_ST_RELEASED},
    {"left_queue", DIBS_ST_LEFT_QUEUE},
    {"not_holding", DIBS_ST_NOT_HOLDING},
    {"no_such_thing", DIBS_ST_NO_SUCH_THING},
};

static enum dibs_status
status_of(const char *word)
{
	for (size_t i = 0; i < ARRAY_LEN(status_words); i++)
		if (strcmp(status_words[i].word, word) == 0)
			return status_words[i].status;
	return DIBS_ST_ERROR;
}

static void
copy_user(char dst[32], PGresult *r, int col)
{
	snprintf(dst, 32, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

/* Ends a transaction that did not change anything worth keeping. */
static int
fail(struct tx *tx, struct dibs_outcome *out)
{
	out->db_error = tx->error;
	out->status = DIBS_ST_ERROR;
	tx_rollback(tx);
	return -1;
}

int
dibs_take(const char *team_id, const char *user_id, const char *channel_id, const char *thing,
          long long seconds, const char *reason, struct dibs_outcome *out)
{
	char secs[24], max[16];
	const char *p[7] = {team_id, thing, user_id, channel_id, NULL, reason, NULL};
	struct plan plan;
	struct tx tx;
	PGresult *r;

	memset(out, 0, sizeof(*out));
	if (tx_begin(&tx, team_id) < 0 || plan_load(&tx, team_id, &plan) < 0)
		return fail(&tx, out);
	if (seconds > 0 && !plan_allows(&plan, PLAN_TIMED_RELEASE, 0)) {
		tx_rollback(&tx);
		out->status = DIBS_ST_NEEDS_PLAN;
		return 0;
	}
	if (seconds > 0) {
		snprintf(secs, sizeof(secs), "%lld", seconds);
		p[4] = secs;
	}
	if (plan.max_things >= 0) {
		snprintf(max, sizeof(max), "%d", plan.max_things);
		p[6] = max;
	}
	r = tx_query(&tx,
	             "SELECT status, position, extract(epoch FROM release_at), holder "
	             "FROM dibs_on($1, $2, $3, $4, $5::int, $6, $7::int)",
	             7, p);
	if (r == NULL)
		return fail(&tx, out);
	out->status = status_of(PQgetvalue(r, 0, 0));
	out->position = PQgetisnull(r, 0, 1) ? 0 : (int)strtol(PQgetvalue(r, 0, 1), NULL, 10);
	out->release_at = epoch_or_zero(r, 0, 2);
	copy_user(out->holder, r, 3);
	PQclear(r);
	if (tx_commit(&tx) < 0)
		return fail(&tx, out);
	return 0;
}

int
dibs_release(const char *team_id, const char *user_id, const char *thing, struct dibs_outcome *out)
{
	const char *p[3] = {team_id, thing, user_id};
	struct tx tx;
	PGresult *r;

	memset(out, 0, sizeof(*out));
	if (tx_begin(&tx, team_id) < 0)
		return fail(&tx, out);
	r = tx_query(&tx, "SELECT status, next_user FROM dibs_off($1, $2, $3)", 3, p);
	if (r == NULL)
		return fail(&tx, out);
	out->status = status_of(PQgetvalue(r, 0, 0));
	copy_user(out->next_user, r, 1);
	PQclear(r);
	if (tx_commit(&tx) < 0)
		return fail(&tx, out);
	return 0;
}

/* --- API tokens ------------------------------------------------------------ */

PGresult *
dibs_tokens_load(struct tx *tx, const char *team_id, const char *user_id)
{
	const char *p[2] = {team_id, user_id};

	return tx_query(tx,
	                "SELECT id, dibs_epoch(created_at), dibs_epoch(last_used_at), "
	                "dibs_epoch(expires_at), expires_at <= now() "
	                "FROM api_tokens WHERE team_id = $1 AND user_id = $2 ORDER BY id",
	                2, p);
}

int
dibs_token_revoke(struct tx *tx, const char *team_id, const char *user_id, long long id)
{
	char ids[24];
	const char *p[3] = {team_id, user_id, ids};
	PGresult *r;
	int n;

	snprintf(ids, sizeof(ids), "%lld", id);
	r = tx_query(
	    tx,
	    "DELETE FROM api_tokens WHERE team_id = $1 AND user_id = $2 AND id = $3::bigint "
	    "RETURNING id",
	    3, p);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	PQclear(r);
	return n;
}

/* Daily: tokens expired for 30 days are deleted (until then /dibs token
 * list shows them as expired). Batches through the expiry order. */
enum job_result
dibs_tokens_cleanup_job(struct job *job)
{
	return jobs_delete_batches(job, "SELECT api_tokens_purge_expired(10000)");
}
