/* The poll DMs: 'lunch.dm' sends a member their poll, 'lunch.dm_update'
 * brings it up to date after an answer or the close.
 *
 * Both render from the database at run time rather than from the job's
 * payload, and after each post they read the state again and post once
 * more if it moved on meanwhile. One job at a time updates a member's DM
 * (lunch_members.dm_sync_until); another waits a second and compares
 * again. So however the jobs of one member interleave (two runners, two
 * quick presses, a press racing the close), the last post shows the state
 * as it now is, and no change is posted twice.
 *
 * Duplicates. A 'lunch.dm' job is unique per poll and user (its dedupe
 * key), skips the post when dm_ts is already recorded, and records dm_ts
 * right after Slack answers. What remains is the window between Slack
 * accepting chat.postMessage and that record committing (about a
 * millisecond): if the process dies exactly there, the re-run after the
 * lease sends the DM a second time. chat.postMessage has no idempotency
 * key, and finding the first message again would need im:history, which
 * conch does not ask for. Correctness also assumes a job's lease
 * (job_lease_seconds, 60 by default) outlasts one Slack call (10 s). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "lunch/lunch.h"
#include "util.h"

#define SYNC_ROUNDS    3 /* posts per job before it leaves the rest to a retry */
#define STORE_TRIES    3 /* a sent DM's ts is worth a few tries to record */
#define STORE_PAUSE_US 200000

struct member {
	int found;
	struct lunch_dm_view view;
	char *channel_id;
	char *created_by;
	char *dm_channel; /* NULL until the DM is sent */
	char *dm_ts;
	char *dm_shown;
	char *tz;
};

static void
member_free(struct member *m)
{
	free(m->channel_id);
	free(m->created_by);
	free(m->dm_channel);
	free(m->dm_ts);
	free(m->dm_shown);
	free(m->tz);
	memset(m, 0, sizeof(*m));
}

static char *
value_or_null(PGresult *r, int col)
{
	return db_null(r, 0, col) ? NULL : xstrdup(db_str(r, 0, col));
}

/* "1765105200,1765108800" into v->at, one per time (else all 0). */
static void
view_instants(const char *s, struct lunch_dm_view *v)
{
	char *copy = xstrdup(s), *save = NULL, *tok;
	long long at;
	int n = 0;

	for (tok = strtok_r(copy, ",", &save); tok && n < LUNCH_MAX_TIMES;
	     tok = strtok_r(NULL, ",", &save))
		if (strnum(tok, 1, INT64_MAX, &at) == 0)
			v->at[n++] = at;
	if (n != v->ntimes)
		memset(v->at, 0, sizeof(v->at));
	free(copy);
}

static void
member_from_row(PGresult *r, long long poll, struct member *m)
{
	m->found = 1;
	m->view.poll_id = poll;
	m->view.open = strcmp(db_str(r, 0, 0), "open") == 0;
	m->channel_id = xstrdup(db_str(r, 0, 1));
	m->created_by = xstrdup(db_str(r, 0, 2));
	m->view.channel_id = m->channel_id;
	m->view.created_by = m->created_by;
	m->view.size = (int)strtol(db_str(r, 0, 3), NULL, 10);
	m->view.ntimes = lunch_parse_times(db_str(r, 0, 4), m->view.times, LUNCH_MAX_TIMES);
	if (m->view.ntimes < 0)
		m->view.ntimes = 0;
	m->view.answered = !db_null(r, 0, 5);
	m->view.answer = m->view.answered ? (int)strtol(db_str(r, 0, 5), NULL, 10) : 0;
	m->dm_channel = value_or_null(r, 6);
	m->dm_ts = value_or_null(r, 7);
	m->dm_shown = value_or_null(r, 8);
	m->view.cancelled = strcmp(db_str(r, 0, 0), "cancelled") == 0;
	m->tz = value_or_null(r, 9);
	m->view.tz = m->tz;
	view_instants(db_str(r, 0, 10), &m->view);
	m->view.close_at = db_null(r, 0, 11) ? 0 : strtoll(db_str(r, 0, 11), NULL, 10);
	m->view.close_minute = (int)strtol(db_str(r, 0, 12), NULL, 10);
	m->view.optedout = db_str(r, 0, 13)[0] == 't';
}

/* 0 (m->found says whether the member exists) or -1 on a database error. */
static int
member_load(const char *team, long long poll, const char *user, struct member *m)
{
	char id[24];
	const char *p[3] = {team, id, user};
	struct tx tx;
	PGresult *r;

	memset(m, 0, sizeof(*m));
	snprintf(id, sizeof(id), "%lld", poll);
	if (tx_begin(&tx, team) < 0)
		return -1;
	r = tx_query(&tx,
	             "SELECT p.state, p.channel_id, p.created_by, p.size, "
	             "array_to_string(p.times, ','), m.answer, m.dm_channel, m.dm_ts, m.dm_shown, "
	             "p.tz, coalesce(lunch_instants(p.lunch_date, p.times, p.tz), ''), "
	             "floor(extract(epoch FROM p.close_at))::bigint, "
	             "coalesce(lunch_minute_of(p.close_at, p.tz), 0), "
	             "lunch_opted_out(p.team_id, p.poll_id, m.user_id) "
	             "FROM lunch_members m JOIN lunch_polls p "
	             "ON p.team_id = m.team_id AND p.poll_id = m.poll_id "
	             "WHERE m.team_id = $1 AND m.poll_id = $2::bigint AND m.user_id = $3",
	             3, p);
	if (r && PQntuples(r) == 1)
		member_from_row(r, poll, m);
	PQclear(r);
	return tx_commit(&tx);
}

/* Runs one statement about a member in its own transaction, a few times
 * if the database hiccups: what it records happened in Slack already. */
static int
member_store(const char *team, const char *sql, int nparams, const char *const *params)
{
	struct tx tx;

	for (int i = 0; i < STORE_TRIES; i++) {
		if (i > 0)
			usleep(STORE_PAUSE_US);
		if (tx_begin(&tx, team) == 0 && tx_exec(&tx, sql, nparams, params) == 0 &&
		    tx_commit(&tx) == 0)
			return 0;
		tx_rollback(&tx);
	}
	return -1;
}

static int
job_member(struct job *job, long long *poll, const char **user)
{
	*user = json_string_value(json_object_get(job->payload, "user"));
	if (lunch_payload_id(job, "poll_id", poll) < 0 || *user == NULL || **user == '\0') {
		snprintf(job->error, sizeof(job->error), "payload needs poll_id and user");
		return -1;
	}
	return 0;
}

/* A sync in progress: whose DM, the view key last posted (or "" to trust
 * dm_shown), and how many updates it has posted. */
struct dm_step {
	long long poll;
	char id[24];
	char user[32];
	char key[32];
	int trust_shown;
	int round;
};

/* Ends a sync: releases the member's claim (else it lapses by itself). */
static enum job_result
sync_end(struct job *job, struct dm_step *st, enum job_result res)
{
	const char *p[3] = {job->team_id, st->id, st->user};

	if (member_store(job->team_id,
	                 "UPDATE lunch_members SET dm_sync_until = NULL WHERE team_id = $1 "
	                 "AND poll_id = $2::bigint AND user_id = $3",
	                 3, p) < 0)
		log_warn("lunch: poll %s: the DM claim of %s lapses by itself", st->id, st->user);
	free(st);
	return res;
}

static enum job_result sync_round(struct job *job, struct dm_step *st);

/* With Slack's answer to chat.update: records the view shown, then looks
 * again in case the state moved on meanwhile. */
static enum job_result
dm_updated(struct job *job, struct slack_result *r, void *arg)
{
	struct dm_step *st = arg;
	const char *p[4] = {job->team_id, st->id, st->user, st->key};
	enum job_result res = slack_job_result(r, job);

	if (res != JOB_DONE)
		return sync_end(job, st, res);
	if (member_store(job->team_id,
	                 "UPDATE lunch_members SET dm_shown = $4 WHERE team_id = $1 "
	                 "AND poll_id = $2::bigint AND user_id = $3",
	                 4, p) < 0)
		return sync_end(job, st, lunch_job_db_error(job, "recording a DM update"));
	st->trust_shown = 0;
	st->round++;
	return sync_round(job, st);
}

/* One round: when the member's view differs from the last one posted (or
 * from dm_shown), chat.update in the outbound engine, continued by
 * dm_updated; else the sync is over. At most SYNC_ROUNDS posts a job. */
static enum job_result
sync_round(struct job *job, struct dm_step *st)
{
	enum job_result res = JOB_DONE;
	char key[32];
	struct member m;
	json_t *args;

	if (member_load(job->team_id, st->poll, st->user, &m) < 0) {
		res = lunch_job_db_error(job, "loading a poll member");
		goto end;
	}
	if (!m.found || m.dm_ts == NULL || m.dm_channel == NULL)
		goto end;
	lunch_view_key(&m.view, key, sizeof(key));
	if (strcmp(key, st->trust_shown ? (m.dm_shown ? m.dm_shown : "") : st->key) == 0)
		goto end;
	if (st->round == SYNC_ROUNDS) {
		snprintf(job->error, sizeof(job->error), "the poll kept changing; trying again");
		res = JOB_RETRY;
		goto end;
	}
	snprintf(st->key, sizeof(st->key), "%s", key);
	args = lunch_view_poll_dm(&m.view);
	json_object_set_new(args, "channel", json_string(m.dm_channel));
	json_object_set_new(args, "ts", json_string(m.dm_ts));
	member_free(&m);
	res = slack_job_call_then(job, "chat.update", args, dm_updated, st);
	json_decref(args);
	return res;
end:
	member_free(&m);
	return sync_end(job, st, res);
}

enum claim { CLAIM_ERROR = -1, CLAIM_HELD, CLAIM_TAKEN, CLAIM_NO_MEMBER };

/* One job at a time brings a member's DM up to date: two that both saw
 * the same change would both post it. The claim lapses after a minute in
 * case its holder died. */
static enum claim
sync_claim(const char *team, const char *id, const char *user)
{
	const char *p[3] = {team, id, user};
	enum claim c = CLAIM_ERROR;
	struct tx tx;
	PGresult *r = NULL;

	if (tx_begin(&tx, team) == 0)
		r = tx_query(
		    &tx,
		    "WITH c AS (UPDATE lunch_members SET dm_sync_until = now() + interval "
		    "'1 minute' WHERE team_id = $1 AND poll_id = $2::bigint AND user_id = $3 "
		    "AND (dm_sync_until IS NULL OR dm_sync_until < now()) RETURNING 1) "
		    "SELECT EXISTS (SELECT 1 FROM lunch_members WHERE team_id = $1 "
		    "AND poll_id = $2::bigint AND user_id = $3), EXISTS (SELECT 1 FROM c)",
		    3, p);
	if (r && tx_commit(&tx) == 0)
		c = db_str(r, 0, 0)[0] != 't'   ? CLAIM_NO_MEMBER
		    : db_str(r, 0, 1)[0] == 't' ? CLAIM_TAKEN
		                                : CLAIM_HELD;
	else
		tx_rollback(&tx);
	PQclear(r);
	return c;
}

/* Brings the member's DM up to date under their claim; while another job
 * holds it, runs again in a second (that job may miss the latest change).
 * posted: the view key this job just posted, or NULL to trust dm_shown. */
static enum job_result
dm_sync(struct job *job, long long poll, const char *user, const char *posted)
{
	struct dm_step *st = xcalloc(1, sizeof(*st));

	st->poll = poll;
	snprintf(st->id, sizeof(st->id), "%lld", poll);
	snprintf(st->user, sizeof(st->user), "%s", user);
	snprintf(st->key, sizeof(st->key), "%s", posted ? posted : "");
	st->trust_shown = posted == NULL;
	switch (sync_claim(job->team_id, st->id, user)) {
	case CLAIM_ERROR:
		free(st);
		return lunch_job_db_error(job, "claiming a poll DM");
	case CLAIM_NO_MEMBER:
		free(st);
		return JOB_DONE;
	case CLAIM_HELD:
		free(st);
		snprintf(job->error, sizeof(job->error), "another job is updating this DM");
		job->retry_at = now_seconds() + 1;
		return JOB_RETRY_AT;
	case CLAIM_TAKEN:
		break;
	}
	return sync_round(job, st);
}

enum job_result
lunch_dm_update_job(struct job *job)
{
	long long poll;
	const char *user;

	if (job_member(job, &poll, &user) < 0)
		return JOB_DEAD;
	return dm_sync(job, poll, user, NULL);
}

/* What the poll DM's answer needs: who it went to, which view. */
struct dm_sent {
	long long poll;
	char user[32];
	char key[32];
};

/* With Slack's answer to the poll DM: records where it went (so it is
 * never sent twice and can be updated), then catches up with changes. */
static enum job_result
dm_posted(struct job *job, struct slack_result *r, void *arg)
{
	struct dm_sent *d = arg;
	char id[24];
	const char *c = json_string_value(json_object_get(r->body, "channel"));
	const char *ts = json_string_value(json_object_get(r->body, "ts"));
	const char *p[6] = {job->team_id, id, d->user, c ? c : d->user, ts, d->key};
	enum job_result res;

	snprintf(id, sizeof(id), "%lld", d->poll);
	if (r->outcome != SLACK_OK)
		res = slack_job_result(r, job);
	else if (ts == NULL) {
		log_warn("lunch: poll %lld: chat.postMessage to %s gave no ts; the DM cannot be "
		         "updated",
		         d->poll, d->user);
		res = JOB_DONE;
	} else if (member_store(job->team_id,
	                        "UPDATE lunch_members SET dm_channel = $4, dm_ts = $5, "
	                        "dm_shown = $6 WHERE team_id = $1 AND poll_id = $2::bigint "
	                        "AND user_id = $3 AND dm_ts IS NULL",
	                        6, p) < 0) {
		log_error("lunch: poll %lld: the DM to %s went out (ts %s) but could not be "
		          "recorded; the retry will send it again",
		          d->poll, d->user, ts);
		res = lunch_job_db_error(job, "recording a sent DM");
	} else
		res = dm_sync(job, d->poll, d->user, d->key);
	free(d);
	return res;
}

enum job_result
lunch_dm_job(struct job *job)
{
	long long poll;
	const char *user;
	enum job_result res = JOB_DONE;
	struct dm_sent *d;
	struct member m;
	json_t *args;

	if (job_member(job, &poll, &user) < 0)
		return JOB_DEAD;
	if (member_load(job->team_id, poll, user, &m) < 0) {
		res = lunch_job_db_error(job, "loading a poll member");
		goto out;
	}
	if (m.found && m.dm_ts) {
		member_free(&m);
		return dm_sync(job, poll, user, NULL); /* sent before: only catch up */
	}
	/* Gone, or closed before its DM went out: nothing to ask. */
	if (!m.found || !m.view.open)
		goto out;
	d = xcalloc(1, sizeof(*d));
	d->poll = poll;
	snprintf(d->user, sizeof(d->user), "%s", user);
	lunch_view_key(&m.view, d->key, sizeof(d->key));
	args = lunch_view_poll_dm(&m.view);
	json_object_set_new(args, "channel", json_string(user));
	/* The job's transaction is over; the call runs in the engine. */
	res = slack_job_call_then(job, "chat.postMessage", args, dm_posted, d);
	json_decref(args);
out:
	member_free(&m);
	return res;
}
