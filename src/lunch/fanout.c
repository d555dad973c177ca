/* 'lunch.members': who a new poll asks. Pages through the channel's
 * members and takes each one's verdict (bots, deactivated users and conch
 * itself are not asked) from the member directory (src/members.c); only
 * members the directory does not know are asked about with users.info,
 * and their answers go into the directory. Then it fixes the poll's zone
 * (its schedule's, or its starter's), applies the plan's poll size to the
 * people it would ask (those who opted out of the channel do not count),
 * and hands them to lunch_fan_out(), which enqueues one poll DM each. When
 * the command's response_url came with the job (a limited plan, or a
 * starter whose zone the directory did not know), the starter hears there
 * whether the poll opened or was refused, and in which zone.
 *
 * Progress is stored as it is made (the roster, the cursor of the next
 * page, each user's verdict), so a run stopped by a 429 or a crash
 * resumes where it left off and asks Slack about nobody twice. Every call
 * goes through the outbound engine with the job suspended (no thread
 * waits): a page of the channel a step, users asked WAVE at a time with
 * the calls in flight together. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "lunch/lunch.h"
#include "members.h"
#include "plans.h"
#include "util.h"

#define PAGE_LIMIT 200 /* conversations.members page size */
#define WAVE       20  /* users.info calls in flight at once, saved together */

struct fan {
	long long poll;
	char id[24];
	int found, open, listed, fanned;
	char *channel;
	char *creator;
	char *cursor; /* NULL: from the first page */
	char *bot;    /* conch's own user in this team */
	int zoned;    /* the poll's zone is fixed */
	int scheduled;
	int creator_known; /* the directory knows the starter */
	char *creator_tz;
};

static void
fan_free(struct fan *f)
{
	free(f->channel);
	free(f->creator);
	free(f->cursor);
	free(f->bot);
	free(f->creator_tz);
}

static char *
text_or_null(PGresult *r, int col)
{
	return db_null(r, 0, col) ? NULL : xstrdup(db_str(r, 0, col));
}

static int
fan_load(const char *team, struct fan *f)
{
	const char *p[2] = {team, f->id};
	struct tx tx;
	PGresult *r;

	if (tx_begin(&tx, team) < 0)
		return -1;
	r = tx_query(&tx,
	             "SELECT p.state, p.channel_id, p.created_by, p.members_cursor, "
	             "p.members_listed, p.fanned_out_at IS NOT NULL, "
	             "(SELECT i.bot_user_id FROM installations i WHERE i.team_id = p.team_id), "
	             "p.tz IS NOT NULL, p.schedule_id IS NOT NULL "
	             "FROM lunch_polls p WHERE p.team_id = $1 AND p.poll_id = $2::bigint",
	             2, p);
	if (r && PQntuples(r) == 1) {
		f->found = 1;
		f->open = strcmp(db_str(r, 0, 0), "open") == 0;
		f->channel = xstrdup(db_str(r, 0, 1));
		f->creator = xstrdup(db_str(r, 0, 2));
		f->cursor = text_or_null(r, 3);
		f->listed = db_str(r, 0, 4)[0] == 't';
		f->fanned = db_str(r, 0, 5)[0] == 't';
		f->bot = text_or_null(r, 6);
		f->zoned = db_str(r, 0, 7)[0] == 't';
		f->scheduled = db_str(r, 0, 8)[0] == 't';
	}
	PQclear(r);
	return tx_commit(&tx);
}

/* The command's response_url, when /lunch start left one for this job. */
static const char *
response_url(const struct job *job)
{
	const char *url = json_string_value(json_object_get(job->payload, "response_url"));

	return url && *url ? url : NULL;
}

struct told {
	char *creator; /* NULL: no DM if the response_url fails */
	char *text;
};

/* After the post to the response_url: a refusal that did not get through
 * goes to the starter as a DM instead. */
static enum job_result
told_starter(struct job *job, struct slack_result *r, void *arg)
{
	struct told *t = arg;
	enum job_result res = JOB_DONE;
	json_t *args;

	if (r->outcome != SLACK_OK) {
		log_warn("lunch: the start command's response_url answered %s",
		         r->error[0] ? r->error : "an error");
		if (t->creator) {
			args = json_pack("{s:s, s:s}", "channel", t->creator, "text", t->text);
			res = slack_job_call(job, "chat.postMessage", args);
			json_decref(args);
		}
	}
	free(t->creator);
	free(t->text);
	free(t);
	return res;
}

/* The job's last step: text to whoever typed /lunch start, through the
 * command's response_url (a DM if that fails and dm_fallback). */
static enum job_result
tell_starter(struct job *job, const struct fan *f, const char *text, int dm_fallback)
{
	struct told *t = xcalloc(1, sizeof(*t));
	json_t *msg = json_pack("{s:s, s:s}", "response_type", "ephemeral", "text", text);
	enum job_result res;

	t->creator = dm_fallback ? xstrdup(f->creator) : NULL;
	t->text = xstrdup(text);
	res = slack_job_respond_then(job, response_url(job), msg, told_starter, t);
	json_decref(msg);
	return res;
}

/* Ends an open poll that cannot go on, telling its creator why when text
 * is given (through the command's response_url when there is one, else a
 * DM); the channel is free for another poll. */
static enum job_result
give_up(struct job *job, struct fan *f, const char *reason, const char *text)
{
	const char *p[3] = {job->team_id, f->id, reason};
	const char *url = response_url(job);
	char key[64];
	struct tx tx;
	PGresult *r;
	json_t *args;
	int cancelled = 0;

	if (tx_begin(&tx, job->team_id) < 0)
		goto fail;
	r = tx_query(&tx, "SELECT lunch_cancel($1, $2::bigint, $3)", 3, p);
	cancelled = r && db_str(r, 0, 0)[0] == 't';
	PQclear(r);
	if (cancelled && text && url == NULL) {
		args = json_pack("{s:s, s:s}", "channel", f->creator, "text", text);
		snprintf(key, sizeof(key), "poll:%s:cancelled", f->id);
		slack_enqueue(&tx, job->team_id, "chat.postMessage", args, key);
	}
	if (tx_commit(&tx) < 0)
		goto fail;
	log_info("lunch: poll %s cancelled: %s", f->id, reason);
	if (cancelled && text && url)
		return tell_starter(job, f, text, 1);
	return JOB_DONE;
fail:
	tx_rollback(&tx);
	return lunch_job_db_error(job, "cancelling a poll");
}

/* A Slack error that no retry will fix, listing the channel. */
static enum job_result
listing_failed(struct job *job, struct fan *f, const struct slack_result *r)
{
	char *text;
	enum job_result res;

	if (r->outcome == SLACK_NO_TOKEN)
		return give_up(job, f, "no_token", NULL);
	text = xasprintf("I couldn't start the lunch poll in <#%s>: Slack answered `%s` when I "
	                 "asked who is in the channel. If it is a private channel, invite me "
	                 "with `/invite`, then run `/lunch start` again.",
	                 f->channel, r->error);
	res = give_up(job, f, r->error, text);
	free(text);
	return res;
}

static int
save_page(const char *team, struct fan *f, json_t *members, const char *next)
{
	char *list = json_dumps(members, JSON_COMPACT);
	const char *p[4] = {team, f->id, list, next && *next ? next : NULL};
	struct tx tx;
	int rc = -1;

	if (list && tx_begin(&tx, team) == 0) {
		tx_exec(&tx,
		        "INSERT INTO lunch_roster (team_id, poll_id, user_id) "
		        "SELECT $1, $2::bigint, u FROM jsonb_array_elements_text($3::jsonb) u "
		        "ON CONFLICT DO NOTHING",
		        3, p);
		tx_exec(&tx,
		        "UPDATE lunch_polls SET members_cursor = $3::text, "
		        "members_listed = ($3::text IS NULL) "
		        "WHERE team_id = $1 AND poll_id = $2::bigint",
		        3, (const char *const[]){p[0], p[1], p[3]});
		rc = tx_commit(&tx);
	}
	free(list);
	return rc;
}

/* With a page of conversations.members: saves it and runs the job again
 * for the next step. */
static enum job_result
page_listed(struct job *job, struct slack_result *r, void *arg)
{
	struct fan *f = arg;
	json_t *members = json_object_get(r->body, "members");
	const char *next = json_string_value(
	    json_object_get(json_object_get(r->body, "response_metadata"), "next_cursor"));
	enum job_result res = JOB_DONE;
	int saved = 0;

	/* listing_failed() may itself suspend the job (the response_url post):
	 * its JOB_PENDING is returned as it is, never taken for "saved". */
	if (r->outcome != SLACK_OK) {
		res = slack_job_result(r, job);
		if (res == JOB_DEAD)
			res = listing_failed(job, f, r);
	} else if (!json_is_array(members)) {
		snprintf(job->error, sizeof(job->error), "conversations.members gave no members");
		res = JOB_RETRY;
	} else if (save_page(job->team_id, f, members, next) < 0)
		res = lunch_job_db_error(job, "saving the channel's members");
	else
		saved = 1;
	fan_free(f);
	free(f);
	return saved ? lunch_members_job(job) : res;
}

/* Asks for the next page of the channel's members; f goes with the call. */
static enum job_result
list_page(struct job *job, struct fan *f)
{
	json_t *args = json_pack("{s:s, s:i}", "channel", f->channel, "limit", PAGE_LIMIT);
	enum job_result res;

	if (f->cursor)
		json_object_set_new(args, "cursor", json_string(f->cursor));
	res = slack_job_call_then(job, "conversations.members", args, page_listed, f);
	json_decref(args);
	return res;
}

/* A wave of users.info calls in flight together in the outbound engine;
 * the job waits for the last answer without a thread (job_suspend). */
struct wave {
	pthread_mutex_t m;
	int left; /* answers to come, plus one while the calls are being made */
	struct job_ticket *ticket;
	struct fan *f;
	PGresult *users;
	double at; /* when the answers were asked for (the directory's "seen") */
	struct slack_result r[WAVE];
};

static void
wave_answered(struct slack_result *r, void *arg)
{
	struct wave *w = arg;
	int last;

	(void)r;
	pthread_mutex_lock(&w->m);
	last = --w->left == 0;
	pthread_mutex_unlock(&w->m);
	if (last)
		job_resume(w->ticket);
}

static int
skipped(const struct fan *f, const char *user)
{
	/* Slackbot and conch itself are members of many channels. */
	return strcmp(user, "USLACKBOT") == 0 || (f->bot && strcmp(user, f->bot) == 0);
}

/* The verdict users.info gave: 1 ask them, 0 do not, -1 with *res set. */
static int
verdict_of(struct job *job, struct slack_result *r, enum job_result *res)
{
	json_t *info;

	if (r->outcome == SLACK_OK) {
		info = json_object_get(r->body, "user");
		return !json_is_true(json_object_get(info, "is_bot")) &&
		       !json_is_true(json_object_get(info, "deleted"));
	}
	if (r->outcome == SLACK_FAILED &&
	    (strcmp(r->error, "user_not_found") == 0 || strcmp(r->error, "user_not_visible") == 0))
		return 0; /* left Slack since the listing */
	*res = slack_job_result(r, job);
	return -1;
}

/* The verdicts, and the users.info answers into the member directory
 * (seen at the start of the wave), so the next poll asks nobody again. */
static int
save_verdicts(const char *team, const struct fan *f, json_t *verdicts, json_t *seen, double at)
{
	char *text = json_dumps(verdicts, JSON_COMPACT);
	const char *p[3] = {team, f->id, text};
	struct tx tx;
	int rc = -1;

	if (text && tx_begin(&tx, team) == 0) {
		tx_exec(&tx,
		        "UPDATE lunch_roster r SET eligible = v.value::boolean "
		        "FROM jsonb_each_text($3::jsonb) v "
		        "WHERE r.team_id = $1 AND r.poll_id = $2::bigint AND r.user_id = v.key",
		        3, p);
		if (json_array_size(seen) > 0)
			members_store(&tx, team, seen, at);
		rc = tx_commit(&tx);
	}
	free(text);
	return rc;
}

static void
wave_free(struct wave *w)
{
	for (int i = 0; i < PQntuples(w->users); i++)
		slack_result_free(&w->r[i]);
	PQclear(w->users);
	fan_free(w->f);
	free(w->f);
	pthread_mutex_destroy(&w->m);
	free(w);
}

/* With every answer of the wave: saves the verdicts it could give (a
 * failed one is left for the next run, with its reason) and runs the job
 * again for the next step. */
static enum job_result
wave_done(struct job *job, void *arg)
{
	struct wave *w = arg;
	json_t *verdicts = json_object(), *seen = json_array(), *info;
	enum job_result res = JOB_PENDING;
	const char *user;
	int v;

	for (int i = 0; i < PQntuples(w->users); i++) {
		user = db_str(w->users, i, 0);
		v = skipped(w->f, user) ? 0 : verdict_of(job, &w->r[i], &res);
		if (v >= 0)
			json_object_set_new(verdicts, user, json_boolean(v));
		info = json_object_get(w->r[i].body, "user");
		if (!skipped(w->f, user) && w->r[i].outcome == SLACK_OK && json_is_object(info))
			json_array_append(seen, info);
	}
	if (json_object_size(verdicts) > 0 &&
	    save_verdicts(job->team_id, w->f, verdicts, seen, w->at) < 0)
		res = lunch_job_db_error(job, "saving the members' checks");
	json_decref(verdicts);
	json_decref(seen);
	wave_free(w);
	return res == JOB_PENDING ? lunch_members_job(job) : res;
}

/* Asks users.info about the users (at most WAVE) at once; f and users go
 * with the wave. */
static enum job_result
check_wave(struct job *job, struct fan *f, PGresult *users)
{
	struct wave *w = xcalloc(1, sizeof(*w));
	const char *user;
	json_t *args;
	int last;

	pthread_mutex_init(&w->m, NULL);
	w->f = f;
	w->users = users;
	w->at = now_seconds();
	w->left = PQntuples(users) + 1;
	w->ticket = job_suspend(job, wave_done, w);
	for (int i = 0; i < PQntuples(users); i++) {
		user = db_str(users, i, 0);
		if (skipped(f, user)) {
			w->r[i].outcome = SLACK_OK; /* decided without asking */
			wave_answered(&w->r[i], w);
			continue;
		}
		args = json_pack("{s:s}", "user", user);
		slack_call_team_async(job->team_id, "users.info", args, wave_answered, w, &w->r[i]);
		json_decref(args);
	}
	pthread_mutex_lock(&w->m);
	last = --w->left == 0;
	pthread_mutex_unlock(&w->m);
	if (last)
		job_resume(w->ticket);
	return JOB_PENDING;
}

/* The next users the directory could not judge, at most WAVE; NULL on a
 * database error. */
static PGresult *
unchecked(const char *team, const struct fan *f)
{
	char limit[8];
	const char *p[3] = {team, f->id, limit};
	struct tx tx;
	PGresult *r = NULL;

	snprintf(limit, sizeof(limit), "%d", WAVE);
	if (tx_begin(&tx, team) == 0)
		r = tx_query(&tx,
		             "SELECT user_id FROM lunch_roster WHERE team_id = $1 "
		             "AND poll_id = $2::bigint AND eligible IS NULL ORDER BY user_id "
		             "LIMIT $3::int",
		             3, p);
	if (r == NULL || tx_commit(&tx) < 0) {
		PQclear(r);
		tx_rollback(&tx);
		return NULL;
	}
	return r;
}

/* Verdicts the member directory can give (bots, deactivated users, conch
 * and Slackbot), in one statement; users.info asks about the rest. */
static int
directory_verdicts(const char *team, const struct fan *f)
{
	const char *p[3] = {team, f->id, f->bot ? f->bot : ""};
	struct tx tx;

	if (tx_begin(&tx, team) < 0 ||
	    tx_exec(&tx,
	            "UPDATE lunch_roster r SET eligible = r.user_id <> 'USLACKBOT' "
	            "AND r.user_id <> $3 AND NOT coalesce((SELECT m.is_bot OR m.deleted "
	            "FROM members m WHERE m.team_id = r.team_id AND m.user_id = r.user_id), false) "
	            "WHERE r.team_id = $1 AND r.poll_id = $2::bigint AND r.eligible IS NULL "
	            "AND (r.user_id IN ('USLACKBOT', $3) OR EXISTS (SELECT 1 FROM members m "
	            "WHERE m.team_id = r.team_id AND m.user_id = r.user_id))",
	            3, p) < 0) {
		tx_rollback(&tx);
		return -1;
	}
	return tx_commit(&tx);
}

static enum job_result
over_limit(struct job *job, struct fan *f, const struct plan *plan, long people)
{
	char *text = xasprintf("Your lunch poll in <#%s> was not sent: the channel has %ld people "
	                       "to ask (not counting bots or anyone who opted out) and your %s "
	                       "plan's polls reach at most %d. Type `/lunch upgrade` for polls of "
	                       "any size.",
	                       f->channel, people, plan->display_name, plan->max_poll_size);
	enum job_result res = give_up(job, f, "plan_limit", text);

	free(text);
	return res;
}

/* The "poll opened" line for the response_url, from the fanned-out poll. */
static char *
opened_text(PGresult *r, long asked)
{
	int times[LUNCH_MAX_TIMES];
	int n = lunch_parse_times(db_str(r, 0, 1), times, LUNCH_MAX_TIMES);
	long long close_at = db_null(r, 0, 4) ? 0 : strtoll(db_str(r, 0, 4), NULL, 10);

	return lunch_view_opened(times, n < 0 ? 0 : n, (int)strtol(db_str(r, 0, 2), NULL, 10),
	                         db_str(r, 0, 3), close_at,
	                         close_at ? (int)strtol(db_str(r, 0, 5), NULL, 10) : -1, asked);
}

/* The poll's zone, the plan's poll size, then the fan-out, in one
 * transaction; the starter hears the outcome through the response_url. */
static enum job_result
fan_out(struct job *job, struct fan *f)
{
	const char *p[3] = {job->team_id, f->id, f->creator_tz};
	struct plan plan;
	struct tx tx;
	PGresult *r = NULL;
	long people = -1, asked = -1;
	char *text = NULL;

	if (tx_begin(&tx, job->team_id) == 0 && plan_load(&tx, job->team_id, &plan) == 0 &&
	    tx_exec(&tx, "SELECT lunch_poll_zone($1, $2::bigint, $3)", 3, p) == 0)
		r = tx_query(&tx, "SELECT lunch_reach($1, $2::bigint)", 2, p);
	if (r)
		people = strtol(db_str(r, 0, 0), NULL, 10);
	PQclear(r);
	if (people >= 0 && !plan_allows(&plan, PLAN_POLL_SIZE, people)) {
		tx_rollback(&tx);
		return over_limit(job, f, &plan, people);
	}
	r = tx_query(&tx,
	             "SELECT lunch_fan_out($1, $2::bigint), array_to_string(p.times, ','), "
	             "p.size, p.tz, floor(extract(epoch FROM p.close_at))::bigint, "
	             "coalesce(lunch_minute_of(p.close_at, p.tz), 0) "
	             "FROM lunch_polls p WHERE p.team_id = $1 AND p.poll_id = $2::bigint",
	             2, p);
	if (r && PQntuples(r) == 1) {
		asked = strtol(db_str(r, 0, 0), NULL, 10);
		if (asked >= 0 && response_url(job))
			text = opened_text(r, asked);
	}
	PQclear(r);
	if (people < 0 || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		free(text);
		return lunch_job_db_error(job, "fanning out the poll");
	}
	if (asked >= 0)
		log_info("lunch: poll %s asks %ld people", f->id, asked);
	if (text) {
		enum job_result res = tell_starter(job, f, text, 0);

		free(text);
		return res;
	}
	return JOB_DONE;
}

/* What the directory knows of the starter now (the checks may just have
 * added them). */
static int
starter_load(const char *team, struct fan *f)
{
	const char *p[2] = {team, f->creator};
	struct tx tx;
	PGresult *r;

	if (tx_begin(&tx, team) < 0)
		return -1;
	r = tx_query(&tx, "SELECT tz FROM members WHERE team_id = $1 AND user_id = $2", 2, p);
	if (r && PQntuples(r) == 1) {
		f->creator_known = 1;
		free(f->creator_tz);
		f->creator_tz = text_or_null(r, 0);
	}
	PQclear(r);
	return r ? tx_commit(&tx) : (tx_rollback(&tx), -1);
}

/* With users.info's answer about the starter (whom the directory did not
 * know): stores them, fixes the poll's zone, and runs the job again. */
static enum job_result
starter_answered(struct job *job, struct slack_result *r, void *arg)
{
	json_t *user = json_object_get(r->body, "user");
	const char *tz = json_string_value(json_object_get(user, "tz"));
	const char *p[3] = {job->team_id, arg, tz};
	json_t *seen = json_is_object(user) ? json_pack("[O]", user) : json_array();
	struct tx tx;
	int rc = -1;

	if (r->outcome != SLACK_OK && r->outcome != SLACK_FAILED) {
		free(arg);
		json_decref(seen);
		return slack_job_result(r, job); /* 429 or transport: again later */
	}
	if (tx_begin(&tx, job->team_id) == 0 &&
	    members_store(&tx, job->team_id, seen, now_seconds()) >= 0 &&
	    tx_exec(&tx, "SELECT lunch_poll_zone($1, $2::bigint, $3)", 3, p) == 0)
		rc = tx_commit(&tx);
	else
		tx_rollback(&tx);
	free(arg);
	json_decref(seen);
	if (rc < 0)
		return lunch_job_db_error(job, "recording the poll's zone");
	return lunch_members_job(job);
}

static enum job_result
look_up_starter(struct job *job, const struct fan *f)
{
	json_t *args = json_pack("{s:s}", "user", f->creator);
	enum job_result res =
	    slack_job_call_then(job, "users.info", args, starter_answered, xstrdup(f->id));

	json_decref(args);
	return res;
}

/* One step a run: a page of the channel, a wave of users.info, or the
 * end (the starter's zone, the plan, the fan-out). A step that calls
 * Slack suspends the job and the answer runs it again from the top, which
 * reads the progress back from the database. */
enum job_result
lunch_members_job(struct job *job)
{
	struct fan *f = xcalloc(1, sizeof(*f));
	enum job_result res = JOB_DONE;
	PGresult *users;

	if (lunch_payload_id(job, "poll_id", &f->poll) < 0) {
		snprintf(job->error, sizeof(job->error), "payload needs poll_id");
		res = JOB_DEAD;
		goto out;
	}
	snprintf(f->id, sizeof(f->id), "%lld", f->poll);
	if (fan_load(job->team_id, f) < 0) {
		res = lunch_job_db_error(job, "loading the poll");
		goto out;
	}
	if (!f->found || !f->open || f->fanned)
		goto out; /* closed or cancelled meanwhile, or done before */
	if (!f->listed)
		return list_page(job, f);
	if (directory_verdicts(job->team_id, f) < 0 ||
	    (users = unchecked(job->team_id, f)) == NULL) {
		res = lunch_job_db_error(job, "checking the channel's members");
		goto out;
	}
	if (PQntuples(users) > 0)
		return check_wave(job, f, users);
	PQclear(users);
	if (starter_load(job->team_id, f) < 0)
		res = lunch_job_db_error(job, "loading the poll's starter");
	else
		res = !f->zoned && !f->scheduled && !f->creator_known ? look_up_starter(job, f)
		                                                      : fan_out(job, f);
out:
	fan_free(f);
	free(f);
	return res;
}
