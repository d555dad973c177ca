/* The end of a round: 'lunch.close' (a scheduled close), 'lunch.group'
 * (the groups of a closed poll, in one transaction) and the groups'
 * messages, 'lunch.notify_group' (a group DM, or a kind DM to someone
 * nobody joined) and 'lunch.notify_channel' (every group in one channel
 * message, when the team chose that).
 *
 * A message job records notified_at right after Slack answers; the window
 * in which a crash sends it twice is the one dm.c describes. Every Slack
 * call is made in the outbound engine with the job suspended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "lunch/group.h"
#include "lunch/lunch.h"
#include "util.h"

#define STORE_TRIES 3

/* The last LUNCH_HISTORY_ROUNDS rounds' groups of the team, parsed. */
struct history {
	struct lunch_past_group *groups;
	char **texts; /* the copies groups[i].users point into */
	size_t n;
};

static void
history_free(struct history *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free((void *)h->groups[i].users);
		free(h->texts[i]);
	}
	free(h->groups);
	free(h->texts);
}

static int
history_load(struct tx *tx, const char *team, const char *poll, struct history *h)
{
	const char *p[2] = {team, poll};
	PGresult *r;
	const char **users;

	memset(h, 0, sizeof(*h));
	r = tx_query(
	    tx, "SELECT round, array_to_string(members, ',') FROM lunch_history($1, $2::bigint)", 2,
	    p);
	if (r == NULL)
		return -1;
	h->groups = xcalloc((size_t)PQntuples(r) + 1, sizeof(*h->groups));
	h->texts = xcalloc((size_t)PQntuples(r) + 1, sizeof(*h->texts));
	for (int i = 0; i < PQntuples(r); i++, h->n++) {
		h->texts[i] = xstrdup(db_str(r, i, 1));
		users = xcalloc(LUNCH_GROUP_MAX, sizeof(*users));
		h->groups[i].users = users;
		h->groups[i].nusers = lunch_split_ids(h->texts[i], users, LUNCH_GROUP_MAX);
		h->groups[i].round = (int)strtol(db_str(r, i, 0), NULL, 10);
	}
	PQclear(r);
	return 0;
}

static void
add_group(json_t *out, int minutes, const char *const *members, int n, const char *picker)
{
	json_t *g = json_object(), *list = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(list, json_string(members[i]));
	json_object_set_new(g, "no", json_integer((json_int_t)json_array_size(out) + 1));
	json_object_set_new(g, "time", json_integer(minutes));
	json_object_set_new(g, "members", list);
	json_object_set_new(g, "picker", json_string(picker));
	json_array_append_new(out, g);
}

/* Groups the n people who chose one time (ids) and appends them to out.
 * The seed comes from the poll and the time, so a re-run groups alike.
 * Cost: that of lunch_group(). */
static int
group_slot(json_t *out, const char **ids, int n, int minutes, int size, long long poll,
           const struct history *h, struct lunch_rng *rng)
{
	struct lunch_pairs pairs;
	struct lunch_grouping g;
	const char *members[LUNCH_GROUP_MAX];
	int rc, k, count;

	lunch_pairs_from_history(&pairs, ids, n, h->groups, h->n);
	rc = lunch_group(n, size, &pairs, (uint64_t)poll * 1440u + (uint64_t)minutes, &g);
	if (rc == LUNCH_GROUP_ALONE)
		add_group(out, minutes, ids, 1, ids[0]);
	for (k = 0; rc == LUNCH_GROUP_OK && k < g.ngroups; k++) {
		count = g.first[k + 1] - g.first[k];
		if (count < 1 || count > LUNCH_GROUP_MAX)
			fatal("lunch: the grouping made a group of %d", count);
		for (int i = 0; i < count; i++)
			members[i] = ids[g.member[g.first[k] + i]];
		add_group(out, minutes, members, count,
		          members[lunch_rng_below(rng, (uint32_t)count)]);
	}
	lunch_grouping_free(&g);
	lunch_pairs_free(&pairs);
	return rc < 0 ? -1 : 0;
}

/* Every time slot's groups, from the Yes answers sorted by time. */
static json_t *
group_all(PGresult *yes, int size, long long poll, const struct history *h)
{
	int n = PQntuples(yes), start = 0;
	const char **ids = xcalloc((size_t)n + 1, sizeof(*ids));
	json_t *out = json_array();
	struct lunch_rng rng;
	int minutes;

	lunch_rng_seed(&rng, (uint64_t)poll);
	for (int i = 0; i < n; i++)
		ids[i] = db_str(yes, i, 0);
	while (start < n && out) {
		int end = start;

		minutes = (int)strtol(db_str(yes, start, 1), NULL, 10);
		while (end < n && (int)strtol(db_str(yes, end, 1), NULL, 10) == minutes)
			end++;
		if (group_slot(out, ids + start, end - start, minutes, size, poll, h, &rng) < 0) {
			json_decref(out);
			out = NULL;
		}
		start = end;
	}
	free(ids);
	return out;
}

/* In tx: the groups of a closed poll, stored with their messages'
 * jobs. Returns the number of groups, -1 when the poll is not closed
 * (grouped before, or cancelled), -2 on an error. */
static int
group_poll(struct tx *tx, struct job *job, long long poll, const char *id)
{
	const char *p[3] = {job->team_id, id, NULL};
	PGresult *r, *yes = NULL;
	struct history h = {0};
	json_t *groups = NULL;
	char *text = NULL;
	int size, rc = -2;

	r = tx_query(tx,
	             "SELECT state, size FROM lunch_polls WHERE team_id = $1 "
	             "AND poll_id = $2::bigint FOR UPDATE",
	             2, p);
	if (r == NULL)
		return -2;
	if (PQntuples(r) != 1 || strcmp(db_str(r, 0, 0), "closed") != 0) {
		PQclear(r);
		return -1;
	}
	size = (int)strtol(db_str(r, 0, 1), NULL, 10);
	PQclear(r);
	yes = tx_query(tx,
	               "SELECT user_id, answer FROM lunch_members WHERE team_id = $1 "
	               "AND poll_id = $2::bigint AND answer >= 0 ORDER BY answer, user_id",
	               2, p);
	if (yes == NULL || history_load(tx, job->team_id, id, &h) < 0)
		goto out;
	if ((groups = group_all(yes, size, poll, &h)) == NULL) {
		snprintf(job->error, sizeof(job->error), "grouping refused size %d", size);
		goto out;
	}
	p[2] = text = json_dumps(groups, JSON_COMPACT);
	r = tx_query(tx, "SELECT lunch_save_groups($1, $2::bigint, $3::jsonb)", 3, p);
	if (r)
		rc = (int)strtol(db_str(r, 0, 0), NULL, 10);
	PQclear(r);
out:
	free(text);
	json_decref(groups);
	history_free(&h);
	PQclear(yes);
	return rc;
}

enum job_result
lunch_group_job(struct job *job)
{
	long long poll;
	char id[24];
	struct tx tx;
	int n = -2;

	if (lunch_payload_id(job, "poll_id", &poll) < 0) {
		snprintf(job->error, sizeof(job->error), "payload needs poll_id");
		return JOB_DEAD;
	}
	snprintf(id, sizeof(id), "%lld", poll);
	if (tx_begin(&tx, job->team_id) == 0)
		n = group_poll(&tx, job, poll, id);
	if (n == -2 || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		return job->error[0] ? JOB_DEAD : lunch_job_db_error(job, "grouping a poll");
	}
	if (n >= 0)
		log_info("lunch: poll %lld formed %d groups", poll, n);
	return JOB_DONE;
}

/* --- messages ------------------------------------------------------------ */

struct group_row {
	int found, notified;
	int time;
	char *members_text;
	const char *members[LUNCH_GROUP_MAX];
	int n;
	char *picker;
	char *dm_channel;
	char *poll_channel;
};

static void
group_row_free(struct group_row *g)
{
	free(g->members_text);
	free(g->picker);
	free(g->dm_channel);
	free(g->poll_channel);
}

static int
group_load(const char *team, const char *id, const char *no, struct group_row *g)
{
	const char *p[3] = {team, id, no};
	struct tx tx;
	PGresult *r;

	memset(g, 0, sizeof(*g));
	if (tx_begin(&tx, team) < 0)
		return -1;
	r = tx_query(&tx,
	             "SELECT g.time, array_to_string(g.members, ','), g.picker, "
	             "g.notified_at IS NOT NULL, g.dm_channel, p.channel_id "
	             "FROM lunch_groups g JOIN lunch_polls p "
	             "ON p.team_id = g.team_id AND p.poll_id = g.poll_id "
	             "WHERE g.team_id = $1 AND g.poll_id = $2::bigint AND g.group_no = $3::int",
	             3, p);
	if (r && PQntuples(r) == 1) {
		g->found = 1;
		g->time = (int)strtol(db_str(r, 0, 0), NULL, 10);
		g->members_text = xstrdup(db_str(r, 0, 1));
		g->n = lunch_split_ids(g->members_text, g->members, LUNCH_GROUP_MAX);
		g->picker = xstrdup(db_str(r, 0, 2));
		g->notified = db_str(r, 0, 3)[0] == 't';
		g->dm_channel = db_null(r, 0, 4) ? NULL : xstrdup(db_str(r, 0, 4));
		g->poll_channel = xstrdup(db_str(r, 0, 5));
	}
	PQclear(r);
	return tx_commit(&tx);
}

static int
store(const char *team, const char *sql, int nparams, const char *const *params)
{
	struct tx tx;

	for (int i = 0; i < STORE_TRIES; i++) {
		if (tx_begin(&tx, team) == 0 && tx_exec(&tx, sql, nparams, params) == 0 &&
		    tx_commit(&tx) == 0)
			return 0;
		tx_rollback(&tx);
	}
	return -1;
}

/* Which group a message job is about, carried through its Slack calls. */
struct group_ref {
	char id[24];  /* poll */
	char nos[16]; /* group number */
	char *channel;
};

static void
group_ref_free(struct group_ref *ref)
{
	free(ref->channel);
	free(ref);
}

/* With Slack's answer to the group's message: records it sent. */
static enum job_result
group_posted(struct job *job, struct slack_result *r, void *arg)
{
	struct group_ref *ref = arg;
	const char *p[4] = {job->team_id, ref->id, ref->nos, ref->channel};
	enum job_result res = slack_job_result(r, job);

	if (res == JOB_DONE &&
	    store(job->team_id,
	          "UPDATE lunch_groups SET notified_at = now(), dm_channel = $4 "
	          "WHERE team_id = $1 AND poll_id = $2::bigint AND group_no = $3::int",
	          4, p) < 0) {
		log_error("lunch: poll %s group %s was messaged but that could not be "
		          "recorded; the retry will message it again",
		          ref->id, ref->nos);
		res = lunch_job_db_error(job, "recording a group message");
	}
	group_ref_free(ref);
	return res;
}

/* With the group DM conversations.open gave: records it, then runs the job
 * again, which posts there. */
static enum job_result
group_opened(struct job *job, struct slack_result *r, void *arg)
{
	struct group_ref *ref = arg;
	const char *channel =
	    json_string_value(json_object_get(json_object_get(r->body, "channel"), "id"));
	const char *p[4] = {job->team_id, ref->id, ref->nos, channel};
	enum job_result res = slack_job_result(r, job);

	if (res == JOB_DONE && channel == NULL) {
		snprintf(job->error, sizeof(job->error), "conversations.open gave no channel");
		res = JOB_RETRY;
	} else if (res == JOB_DONE &&
	           store(job->team_id,
	                 "UPDATE lunch_groups SET dm_channel = $4 WHERE team_id = $1 "
	                 "AND poll_id = $2::bigint AND group_no = $3::int AND dm_channel IS NULL",
	                 4, p) < 0)
		res = lunch_job_db_error(job, "recording a group DM");
	group_ref_free(ref);
	return res == JOB_DONE ? lunch_notify_group_job(job) : res;
}

/* Opens the group DM of a group of 2 to 8 (conch never among them). */
static enum job_result
open_group_dm(struct job *job, const struct group_row *g, struct group_ref *ref)
{
	struct buf users;
	json_t *args;
	enum job_result res;

	buf_init(&users);
	for (int i = 0; i < g->n; i++)
		buf_printf(&users, "%s%s", i ? "," : "", g->members[i]);
	args = json_pack("{s:s}", "users", users.data);
	res = slack_job_call_then(job, "conversations.open", args, group_opened, ref);
	json_decref(args);
	buf_free(&users);
	return res;
}

/* A group's message: its group DM (opened first when it has none yet), or
 * a kind DM to someone alone. Each Slack call is a step in the outbound
 * engine with the job suspended. */
enum job_result
lunch_notify_group_job(struct job *job)
{
	long long poll, no;
	struct lunch_group_msg msg;
	enum job_result res = JOB_DONE;
	struct group_ref *ref;
	struct group_row g;
	json_t *args;

	if (lunch_payload_id(job, "poll_id", &poll) < 0 ||
	    lunch_payload_id(job, "group_no", &no) < 0) {
		snprintf(job->error, sizeof(job->error), "payload needs poll_id and group_no");
		return JOB_DEAD;
	}
	ref = xcalloc(1, sizeof(*ref));
	snprintf(ref->id, sizeof(ref->id), "%lld", poll);
	snprintf(ref->nos, sizeof(ref->nos), "%lld", no);
	if (group_load(job->team_id, ref->id, ref->nos, &g) < 0) {
		res = lunch_job_db_error(job, "loading a group");
		goto out;
	}
	if (!g.found || g.notified || g.n < 1)
		goto out;
	if (g.n > 1 && g.dm_channel == NULL) {
		res = open_group_dm(job, &g, ref);
		group_row_free(&g);
		return res;
	}
	ref->channel = xstrdup(g.n == 1 ? g.members[0] : g.dm_channel);
	msg = (struct lunch_group_msg){g.time, g.members, g.n, g.picker};
	args = g.n == 1 ? lunch_view_alone(g.time, g.poll_channel)
	                : lunch_view_group(&msg, g.poll_channel);
	json_object_set_new(args, "channel", json_string(ref->channel));
	res = slack_job_call_then(job, "chat.postMessage", args, group_posted, ref);
	json_decref(args);
	group_row_free(&g);
	return res;
out:
	group_ref_free(ref);
	group_row_free(&g);
	return res;
}

/* The poll's channel, whether it was announced, and its groups of two or
 * more (alone people get their own DM). */
struct channel_groups {
	PGresult *rows;
	char *channel;
	int announced;
	struct lunch_group_msg *groups;
	char **texts;
	const char **ids;
	int n;
};

static void
channel_groups_free(struct channel_groups *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->texts[i]);
	free(c->texts);
	free(c->ids);
	free(c->groups);
	free(c->channel);
	PQclear(c->rows);
}

static int
channel_groups_load(const char *team, const char *id, struct channel_groups *c)
{
	const char *p[2] = {team, id};
	struct tx tx;
	PGresult *r;
	int rows;

	memset(c, 0, sizeof(*c));
	if (tx_begin(&tx, team) < 0)
		goto fail;
	r = tx_query(&tx,
	             "SELECT channel_id, announced_at IS NOT NULL FROM lunch_polls "
	             "WHERE team_id = $1 AND poll_id = $2::bigint",
	             2, p);
	if (r && PQntuples(r) == 1) {
		c->channel = xstrdup(db_str(r, 0, 0));
		c->announced = db_str(r, 0, 1)[0] == 't';
	}
	PQclear(r);
	c->rows =
	    tx_query(&tx,
	             "SELECT time, array_to_string(members, ','), picker FROM lunch_groups "
	             "WHERE team_id = $1 AND poll_id = $2::bigint AND cardinality(members) > 1 "
	             "ORDER BY group_no",
	             2, p);
	if (c->rows == NULL || tx_commit(&tx) < 0)
		goto fail;
	rows = PQntuples(c->rows);
	c->groups = xcalloc((size_t)rows + 1, sizeof(*c->groups));
	c->texts = xcalloc((size_t)rows + 1, sizeof(*c->texts));
	c->ids = xcalloc(((size_t)rows + 1) * LUNCH_GROUP_MAX, sizeof(*c->ids));
	for (; c->n < rows; c->n++) {
		struct lunch_group_msg *g = &c->groups[c->n];
		const char **ids = c->ids + (size_t)c->n * LUNCH_GROUP_MAX;

		c->texts[c->n] = xstrdup(db_str(c->rows, c->n, 1));
		g->time = (int)strtol(db_str(c->rows, c->n, 0), NULL, 10);
		g->nmembers = lunch_split_ids(c->texts[c->n], ids, LUNCH_GROUP_MAX);
		g->members = ids;
		g->picker = db_str(c->rows, c->n, 2);
	}
	return 0;
fail:
	tx_rollback(&tx);
	return -1;
}

/* With Slack's answer to the channel message: records the poll announced. */
static enum job_result
channel_posted(struct job *job, struct slack_result *r, void *arg)
{
	char *id = arg;
	const char *p[2] = {job->team_id, id};
	enum job_result res = slack_job_result(r, job);

	if (res == JOB_DONE &&
	    store(job->team_id,
	          "WITH a AS (UPDATE lunch_polls SET announced_at = now() "
	          "  WHERE team_id = $1 AND poll_id = $2::bigint) "
	          "UPDATE lunch_groups g SET notified_at = now(), dm_channel = p.channel_id "
	          "FROM lunch_polls p WHERE p.team_id = g.team_id AND p.poll_id = g.poll_id "
	          "AND g.team_id = $1 AND g.poll_id = $2::bigint AND cardinality(g.members) > 1",
	          2, p) < 0)
		res = lunch_job_db_error(job, "recording the channel message");
	free(id);
	return res;
}

enum job_result
lunch_notify_channel_job(struct job *job)
{
	long long poll;
	char id[24];
	enum job_result res = JOB_DONE;
	struct channel_groups c;
	json_t *args;

	if (lunch_payload_id(job, "poll_id", &poll) < 0) {
		snprintf(job->error, sizeof(job->error), "payload needs poll_id");
		return JOB_DEAD;
	}
	snprintf(id, sizeof(id), "%lld", poll);
	if (channel_groups_load(job->team_id, id, &c) < 0) {
		res = lunch_job_db_error(job, "loading the groups");
		goto out;
	}
	if (c.channel == NULL || c.announced || c.n == 0)
		goto out;
	args = lunch_view_channel(c.groups, c.n);
	json_object_set_new(args, "channel", json_string(c.channel));
	res = slack_job_call_then(job, "chat.postMessage", args, channel_posted, xstrdup(id));
	json_decref(args);
out:
	channel_groups_free(&c);
	return res;
}

/* --- scheduled close ----------------------------------------------------- */

enum job_result
lunch_close_job(struct job *job)
{
	long long poll;
	char id[24];
	const char *p[2] = {job->team_id, id};
	struct tx tx;
	PGresult *r = NULL;

	if (lunch_payload_id(job, "poll_id", &poll) < 0) {
		snprintf(job->error, sizeof(job->error), "payload needs poll_id");
		return JOB_DEAD;
	}
	snprintf(id, sizeof(id), "%lld", poll);
	if (tx_begin(&tx, job->team_id) == 0)
		r = tx_query(&tx, "SELECT status, yes FROM lunch_close($1, NULL, $2::bigint)", 2,
		             p);
	if (r == NULL || tx_commit(&tx) < 0) {
		PQclear(r);
		tx_rollback(&tx);
		return lunch_job_db_error(job, "closing a poll");
	}
	log_info("lunch: scheduled close of poll %lld: %s", poll, db_str(r, 0, 0));
	PQclear(r);
	return JOB_DONE;
}

/* --- reminder ------------------------------------------------------------ */

/* 'lunch.remind' {"poll_id"}: one statement marks who has not answered as
 * reminded and their DMs are queued in the same transaction, so a re-run
 * (a second runner, a crash after the commit) reminds nobody twice. */
enum job_result
lunch_remind_job(struct job *job)
{
	long long poll;
	char id[24], key[96], *text = NULL;
	const char *p[2] = {job->team_id, id};
	struct tx tx;
	PGresult *info = NULL, *due = NULL;
	int failed = 0;

	if (lunch_payload_id(job, "poll_id", &poll) < 0) {
		snprintf(job->error, sizeof(job->error), "payload needs poll_id");
		return JOB_DEAD;
	}
	snprintf(id, sizeof(id), "%lld", poll);
	if (tx_begin(&tx, job->team_id) == 0)
		info =
		    tx_query(&tx,
		             "SELECT channel_id, floor(extract(epoch FROM close_at))::bigint, tz, "
		             "lunch_minute_of(close_at, tz) FROM lunch_polls WHERE team_id = $1 "
		             "AND poll_id = $2::bigint AND state = 'open' AND close_at IS NOT NULL",
		             2, p);
	if (info && PQntuples(info) == 1) {
		text = lunch_view_reminder(
		    db_str(info, 0, 0), strtoll(db_str(info, 0, 1), NULL, 10),
		    (int)strtol(db_str(info, 0, 3), NULL, 10), db_str(info, 0, 2));
		due = tx_query(
		    &tx, "SELECT user_id, dm_channel FROM lunch_remind_due($1, $2::bigint)", 2, p);
	}
	for (int i = 0; due && i < PQntuples(due) && !failed; i++) {
		snprintf(key, sizeof(key), "poll:%s:remind:%s", id, db_str(due, i, 0));
		failed = slack_enqueue(
		             &tx, job->team_id, "chat.postMessage",
		             json_pack("{s:s, s:s}", "channel", db_str(due, i, 1), "text", text),
		             key) < 0;
	}
	if (info == NULL || (text && due == NULL) || failed || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		PQclear(info);
		PQclear(due);
		free(text);
		return lunch_job_db_error(job, "reminding a poll's members");
	}
	if (due)
		log_info("lunch: poll %lld: reminded %d people", poll, PQntuples(due));
	PQclear(info);
	PQclear(due);
	free(text);
	return JOB_DONE;
}
