/* Dibs state: reads through dibs_things() and the two changes the REST API
 * shares with Slack (take, release). Each change is one round trip: one SQL
 * function call in its own transaction (migrations/023_dibs_commands.sql
 * over 003_dibs.sql). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dibs/dibs.h"
#include "jobs.h"
#include "util.h"

static void
queue_from_json(struct dibs_thing *t, const char *text)
{
	json_t *arr = text ? json_loads(text, 0, NULL) : NULL;
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

/* The rows of a read of dibs_things() (name, display_name, holder, since,
 * release_at, reason, hold_id, queue, total) into *out; their count. */
static int
things_from(PGresult *r, struct dibs_thing **out, int *total)
{
	int n = PQntuples(r);

	*total = (int)db_int(r, 0, 8, 0);
	*out = xcalloc((size_t)n + 1, sizeof(**out));
	for (int i = 0; i < n; i++) {
		struct dibs_thing *t = &(*out)[i];
		t->name = db_strdup(r, i, 0);
		t->display = db_strdup(r, i, 1);
		t->holder = db_strdup(r, i, 2);
		t->since = db_double(r, i, 3, 0);
		t->release_at = db_double(r, i, 4, 0);
		t->reason = db_strdup(r, i, 5);
		t->hold_id = db_int(r, i, 6, 0);
		queue_from_json(t, db_text(r, i, 7));
	}
	PQclear(r);
	return n;
}

int
dibs_load(struct tx *tx, const char *team_id, const char *name, int limit, struct dibs_thing **out,
          int *total)
{
	char lim[16];
	const char *p[3] = {team_id, name, lim};
	PGresult *r;

	snprintf(lim, sizeof(lim), "%d", limit);
	r = tx_query(
	    tx,
	    "SELECT name, display_name, holder, extract(epoch FROM since), "
	    "extract(epoch FROM release_at), reason, hold_id, queue::text, count(*) OVER () "
	    "FROM dibs_things($1, $2) LIMIT $3::int",
	    3, p);
	return r ? things_from(r, out, total) : -1;
}

int
dibs_list(struct tx *tx, const char *team_id, const char *name, int limit, struct dibs_thing **out,
          int *total)
{
	char lim[16];
	const char *p[3] = {team_id, name, lim};
	PGresult *r;

	snprintf(lim, sizeof(lim), "%d", limit);
	r = tx_query(tx, "SELECT * FROM dibs_cmd_things($1, $2, $3::int)", 3, p);
	*out = NULL;
	*total = 0;
	return r ? things_from(r, out, total) : -1;
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
    {"needs_plan", DIBS_ST_NEEDS_PLAN},
};

static enum dibs_status
status_of(const char *word)
{
	for (size_t i = 0; word && i < ARRAY_LEN(status_words); i++)
		if (strcmp(status_words[i].word, word) == 0)
			return status_words[i].status;
	return DIBS_ST_ERROR;
}

int
dibs_settings_load(struct tx *tx, const char *team_id, struct dibs_settings *out)
{
	const char *p[1] = {team_id};
	PGresult *r = tx_query(
	    tx, "SELECT names = 'strict', manage = 'admins' FROM dibs_settings WHERE team_id = $1",
	    1, p);

	memset(out, 0, sizeof(*out));
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1) {
		out->strict = db_bool(r, 0, 0);
		out->admins_manage = db_bool(r, 0, 1);
	}
	PQclear(r);
	return 0;
}

int
dibs_announce(struct tx *tx, const char *team_id, const char *thing, const char *channel_id,
              const char *event, const char *user_id, const char *next_user,
              const char *response_url)
{
	const char *p[7] = {team_id, thing, channel_id, event, user_id, next_user, response_url};

	if (response_url == NULL || *response_url == '\0')
		return tx_exec(tx, "SELECT dibs_announce($1, $2, $3, $4, $5, $6)", 6, p);
	/* One round trip: the announcement, then (OFFSET 0 keeps the order)
	 * the response_url on the job it queued. */
	return tx_exec(tx,
	               "SELECT dibs_respond_via($1, $5, $7) FROM "
	               "(SELECT dibs_announce($1, $2, $3, $4, $5, $6) OFFSET 0) a",
	               7, p);
}

/* A change in one statement: sql (a dibs_cmd_* call of migration 023). */
static PGresult *
one_trip(struct tx *tx, const char *sql, int n, const char *const *p, struct dibs_outcome *out)
{
	PGresult *r = tx_query(tx, sql, n, p);

	if (r == NULL || PQntuples(r) != 1) {
		if (r)
			PQclear(r);
		out->db_error = r ? DB_BUG : tx->error;
		out->status = DIBS_ST_ERROR;
		return NULL;
	}
	out->status = status_of(db_text(r, 0, 0));
	return r;
}

int
dibs_take(struct tx *tx, const char *team_id, const char *user_id, const char *channel_id,
          const char *response_url, const char *thing, long long seconds, const char *reason,
          struct dibs_outcome *out)
{
	char secs[24];
	const char *p[7] = {team_id, thing, user_id, channel_id, NULL, reason, response_url};
	PGresult *r;

	memset(out, 0, sizeof(*out));
	if (seconds > 0) {
		snprintf(secs, sizeof(secs), "%lld", seconds);
		p[4] = secs;
	}
	/* The plan, the names setting, the change, the holder's nudge or the
	 * announcement: dibs_cmd_on() does them all. */
	r = one_trip(tx, "SELECT * FROM dibs_cmd_on($1, $2, $3, $4, $5::int, $6, $7)", 7, p, out);
	if (r == NULL)
		return -1;
	out->position = (int)db_int(r, 0, 1, 0);
	out->release_at = db_double(r, 0, 2, 0);
	db_copy(out->holder, sizeof(out->holder), r, 0, 3);
	PQclear(r);
	return 0;
}

int
dibs_release(struct tx *tx, const char *team_id, const char *user_id, const char *thing,
             struct dibs_outcome *out)
{
	return dibs_release_in(tx, team_id, user_id, NULL, NULL, thing, out);
}

int
dibs_release_in(struct tx *tx, const char *team_id, const char *user_id, const char *channel_id,
                const char *response_url, const char *thing, struct dibs_outcome *out)
{
	const char *p[5] = {team_id, thing, user_id, channel_id, response_url};
	PGresult *r;

	memset(out, 0, sizeof(*out));
	r = one_trip(tx, "SELECT * FROM dibs_cmd_off($1, $2, $3, $4, $5)", 5, p, out);
	if (r == NULL)
		return -1;
	db_copy(out->next_user, sizeof(out->next_user), r, 0, 1);
	PQclear(r);
	return 0;
}

/* --- Did you mean? ------------------------------------------------------------ */

/* Copies s without the characters of drop into out (65 bytes). */
static void
without(const char *s, const char *drop, char out[65])
{
	size_t o = 0;

	for (; *s && o < 64; s++)
		if (strchr(drop, *s) == NULL)
			out[o++] = *s;
	out[o] = '\0';
}

bool
dibs_names_close(const char *a, const char *b)
{
	char x[65], y[65];

	if (strcmp(a, b) == 0)
		return false;
	without(a, "0123456789", x);
	without(b, "0123456789", y);
	if (strcmp(x, y) == 0)
		return false; /* db1 and db2 are different things on purpose */
	without(a, "-_.", x);
	without(b, "-_.", y);
	return strcmp(x, y) == 0 || edit_distance(a, b) <= 2;
}

/* Only names whose length is within 2 (or that could match once the
 * separators are dropped) can be close, so no other thing of the team is
 * read; at most 500 candidates, O(64 * 64) each. The settings ride along:
 * one row even when there is no candidate (or the name is too short to
 * look for any), the candidates' columns NULL then. */
int
dibs_suggest(struct tx *tx, const char *team_id, const char *name, char out[DIBS_SUGGEST_MAX][65],
             struct dibs_settings *set)
{
	char from[8];
	const char *p[3] = {team_id, name, from};
	size_t best[DIBS_SUGGEST_MAX];
	PGresult *r;
	int n = 0, j;

	memset(set, 0, sizeof(*set));
	snprintf(from, sizeof(from), "%d", DIBS_SUGGEST_FROM);
	r = tx_query(tx,
	             "SELECT coalesce(s.names = 'strict', false), coalesce(s.manage = 'admins', "
	             "false), c.name, c.display_name FROM (SELECT 1) one "
	             "LEFT JOIN dibs_settings s ON s.team_id = $1 "
	             "LEFT JOIN LATERAL (SELECT name, display_name FROM things WHERE team_id = $1 "
	             "AND length($2) >= $3::int AND (name = $2 OR "
	             "length(name) BETWEEN length($2) - 2 AND length($2) + 2 OR "
	             "translate(name, '-_.', '') = translate($2, '-_.', '')) "
	             "ORDER BY name = $2 DESC, name LIMIT 500) c ON true "
	             "ORDER BY c.name = $2 DESC NULLS LAST, c.name",
	             3, p);
	if (r == NULL)
		return -1;
	set->strict = db_bool(r, 0, 0);
	set->admins_manage = db_bool(r, 0, 1);
	if (db_text(r, 0, 2) && strcmp(db_text(r, 0, 2), name) == 0) {
		PQclear(r);
		return 0; /* it exists */
	}
	for (int i = 0; i < PQntuples(r); i++) {
		const char *cand = db_text(r, i, 2);
		size_t d;

		if (cand == NULL || !dibs_names_close(name, cand))
			continue;
		d = edit_distance(name, cand);
		/* insertion into the top list, closest first, ties by name */
		if (n < DIBS_SUGGEST_MAX)
			j = n++;
		else if (d < best[DIBS_SUGGEST_MAX - 1])
			j = DIBS_SUGGEST_MAX - 1;
		else
			continue;
		for (; j > 0 && best[j - 1] > d; j--) {
			best[j] = best[j - 1];
			memcpy(out[j], out[j - 1], 65);
		}
		best[j] = d;
		db_copy(out[j], 65, r, i, 3);
	}
	PQclear(r);
	return n;
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
