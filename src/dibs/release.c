/* Dibs jobs: timed releases, reminders, notifications and the App Home.
 * Each is idempotent: a release names the hold it was made for, and the
 * SQL turns a stale or repeated one into a no-op. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dibs/command.h"
#include "dibs/dibs.h"
#include "home.h"
#include "jobs.h"
#include "log.h"
#include "slack.h"
#include "util.h"

#define HOME_THINGS 30

static const char *
payload_str(struct job *job, const char *key)
{
	const char *s = json_string_value(json_object_get(job->payload, key));

	return s ? s : "";
}

static long long
payload_int(struct job *job, const char *key)
{
	return (long long)json_integer_value(json_object_get(job->payload, key));
}

static enum job_result
db_retry(struct job *job, struct tx *tx)
{
	tx_rollback(tx);
	snprintf(job->error, sizeof(job->error), "database unavailable");
	return JOB_RETRY;
}

/* dibs.release: ends the hold it was made for, if it still stands; the
 * end (and the hand-over to the next in line) is announced in the thing's
 * last channel, like a release typed there. */
static enum job_result
release_job(struct job *job)
{
	char hold[24];
	const char *thing = payload_str(job, "thing");
	const char *p[3] = {job->team_id, thing, hold};
	struct tx tx;
	PGresult *r;
	enum job_result res = JOB_DONE;

	snprintf(hold, sizeof(hold), "%lld", payload_int(job, "hold_id"));
	if (tx_begin(&tx, job->team_id) < 0)
		return db_retry(job, &tx);
	r = tx_query(&tx,
	             "SELECT status, extract(epoch FROM release_at), user_id, next_user "
	             "FROM dibs_release_due($1, $2, $3::bigint)",
	             3, p);
	if (r && strcmp(db_str(r, 0, 0), "released") == 0 &&
	    dibs_announce(&tx, job->team_id, thing, NULL, "expired", db_str(r, 0, 2),
	                  db_null(r, 0, 3) ? NULL : db_str(r, 0, 3), NULL) < 0) {
		PQclear(r);
		r = NULL;
	}
	if (r == NULL || tx_commit(&tx) < 0) {
		if (r)
			PQclear(r);
		return db_retry(job, &tx);
	}
	if (strcmp(db_str(r, 0, 0), "not_due") == 0) {
		/* Woken early (clocks differ between hosts): come back when due. */
		job->retry_at = strtod(db_str(r, 0, 1), NULL);
		snprintf(job->error, sizeof(job->error), "not due yet");
		res = JOB_RETRY_AT;
	}
	PQclear(r);
	return res;
}

/* Posts msg (steals it) to channel as the team's bot: the job's last
 * step, finished when Slack answers. */
static enum job_result
post(struct job *job, const char *channel, json_t *msg)
{
	enum job_result res;

	json_object_del(msg, "response_type");
	json_object_set_new(msg, "channel", json_string(channel));
	res = slack_job_call(job, "chat.postMessage", msg);
	json_decref(msg);
	return res;
}

/* The display name of a thing, or its canonical name when it is gone. */
static char *
display_name(struct tx *tx, const char *team, const char *thing)
{
	const char *p[2] = {team, thing};
	PGresult *r =
	    tx_query(tx, "SELECT display_name FROM things WHERE team_id = $1 AND name = $2", 2, p);
	char *name = xstrdup(r && PQntuples(r) ? db_str(r, 0, 0) : thing);

	if (r)
		PQclear(r);
	return name;
}

static bool
outside_channel(const struct slack_result *sr)
{
	return sr->outcome == SLACK_FAILED && (strcmp(sr->error, "not_in_channel") == 0 ||
	                                       strcmp(sr->error, "channel_not_found") == 0);
}

/* Slack honours a response_url for 30 minutes; a minute is left for the
 * call itself. */
#define RESPONSE_URL_SECONDS (29 * 60)

/* The invite notice on its way: each step is a call in the engine (the
 * runner is free meanwhile) and the next step runs on the answer. */
struct invite {
	char *channel, *user, *text;
};

static void
invite_free(struct invite *iv)
{
	free(iv->channel);
	free(iv->user);
	free(iv->text);
	free(iv);
}

/* Last step: the answer to the DM, or to an ephemeral message that went. */
static enum job_result
invite_done(struct job *job, struct slack_result *sr, void *arg)
{
	invite_free(arg);
	return slack_job_result(sr, job);
}

/* After chat.postEphemeral: a DM when Slack refused the channel too. */
static enum job_result
invite_ephemeral_then(struct job *job, struct slack_result *sr, void *arg)
{
	struct invite *iv = arg;
	enum job_result res;
	json_t *args;

	if (!outside_channel(sr))
		return invite_done(job, sr, iv);
	args = json_pack("{s:s, s:s}", "channel", iv->user, "text", iv->text);
	res = slack_job_call_then(job, "chat.postMessage", args, invite_done, iv);
	json_decref(args);
	return res;
}

static enum job_result
invite_ephemeral(struct job *job, struct invite *iv)
{
	json_t *args = json_pack("{s:s, s:s, s:s}", "channel", iv->channel, "user", iv->user,
	                         "text", iv->text);
	enum job_result res =
	    slack_job_call_then(job, "chat.postEphemeral", args, invite_ephemeral_then, iv);

	json_decref(args);
	return res;
}

/* After the response_url: an ephemeral message when it did not take it. */
static enum job_result
invite_respond_then(struct job *job, struct slack_result *sr, void *arg)
{
	if (sr->outcome == SLACK_OK)
		return invite_done(job, sr, arg);
	return invite_ephemeral(job, arg);
}

/* Tells user how to invite the bot into channel: through the response_url
 * of the command or button that made the change, while it is fresh; else
 * an ephemeral message there; else (Slack refuses that too) a DM. */
static enum job_result
tell_inviter(struct job *job, const char *channel, const char *user)
{
	const char *url = payload_str(job, "response_url");
	struct invite *iv = xcalloc(1, sizeof(*iv));
	enum job_result res;
	json_t *args;

	iv->channel = xstrdup(channel);
	iv->user = xstrdup(user);
	iv->text = xasprintf("conch could not post in <#%s> (it is not a member there): invite it "
	                     "with `/invite @conch` in that channel, or turn announcements off "
	                     "there with `/dibs settings announce off`.",
	                     channel);
	if (!*url ||
	    now_seconds() - (double)payload_int(job, "response_url_at") >= RESPONSE_URL_SECONDS)
		return invite_ephemeral(job, iv);
	args = json_pack("{s:s, s:b, s:s}", "response_type", "ephemeral", "replace_original", 0,
	                 "text", iv->text);
	res = slack_job_respond_then(job, url, args, invite_respond_then, iv);
	json_decref(args);
	return res;
}

struct announce_ctx {
	char *channel, *user;
};

static enum job_result
announce_then(struct job *job, struct slack_result *sr, void *arg)
{
	struct announce_ctx *a = arg;
	enum job_result res;

	if (outside_channel(sr) && a->user)
		res = tell_inviter(job, a->channel, a->user);
	else
		res = slack_job_result(sr, job);
	free(a->channel);
	free(a->user);
	free(a);
	return res;
}

/* Posts msg (steals it) in a channel, in the engine (the job waits for
 * nothing). When the bot may not post there (a private channel it is not
 * in), whoever made the change is told how to invite it. Nothing is
 * dropped silently. */
static enum job_result
announce(struct job *job, const char *channel, const char *user, json_t *msg)
{
	struct announce_ctx *a = xcalloc(1, sizeof(*a));
	enum job_result res;

	a->channel = xstrdup(channel);
	a->user = user && *user ? xstrdup(user) : NULL;
	json_object_del(msg, "response_type");
	json_object_set_new(msg, "channel", json_string(channel));
	res = slack_job_call_then(job, "chat.postMessage", msg, announce_then, a);
	json_decref(msg);
	return res;
}

/* dibs.announce: a take or release, one line in the channel. */
static enum job_result
announce_job(struct job *job)
{
	const char *user = payload_str(job, "user");
	struct tx tx;
	char *display;
	json_t *msg;

	if (tx_begin(&tx, job->team_id) < 0)
		return db_retry(job, &tx);
	display = display_name(&tx, job->team_id, payload_str(job, "thing"));
	tx_commit(&tx);
	msg = dibs_view_announce(payload_str(job, "event"), display, user,
	                         payload_str(job, "next_user"));
	free(display);
	return announce(job, payload_str(job, "channel"), user, msg);
}

/* 1 when the hold still stands (a your_turn DM for a hold already given
 * up would mislead), 0 when not, -1 on error. */
static int
hold_stands(struct tx *tx, const char *team, const char *thing, const char *hold)
{
	const char *p[3] = {team, thing, hold};
	PGresult *r = tx_query(
	    tx, "SELECT 1 FROM holds WHERE team_id = $1 AND thing = $2 AND hold_id = $3::bigint", 3,
	    p);
	int found;

	if (r == NULL)
		return -1;
	found = PQntuples(r) > 0;
	PQclear(r);
	return found;
}

/* dibs.remind: five minutes before a timed hold ends. */
static enum job_result
remind_job(struct job *job)
{
	char hold[24];
	const char *thing = payload_str(job, "thing");
	const char *p[3] = {job->team_id, thing, hold};
	struct tx tx;
	PGresult *r;
	char *user = NULL, *display;
	double release_at = 0;

	snprintf(hold, sizeof(hold), "%lld", payload_int(job, "hold_id"));
	if (tx_begin(&tx, job->team_id) < 0)
		return db_retry(job, &tx);
	r = tx_query(&tx,
	             "SELECT user_id, extract(epoch FROM release_at) FROM dibs_remind_due($1, $2, "
	             "$3::bigint)",
	             3, p);
	if (r == NULL)
		return db_retry(job, &tx);
	if (PQntuples(r) == 1) {
		user = xstrdup(db_str(r, 0, 0));
		release_at = strtod(db_str(r, 0, 1), NULL);
	}
	PQclear(r);
	display = display_name(&tx, job->team_id, thing);
	tx_commit(&tx);
	if (user == NULL) { /* released, kicked or extended since */
		free(display);
		return JOB_DONE;
	}
	enum job_result res = post(
	    job, user, dibs_view_reminder(display, thing, payload_int(job, "hold_id"), release_at));
	free(user);
	free(display);
	return res;
}

/* queue_joined: the holder's DM naming who waits now, or NULL when the
 * hold is gone (the button would act on nothing). */
static json_t *
queue_joined(struct tx *tx, struct job *job, const char *thing, const char *display)
{
	struct dibs_thing *t = NULL;
	json_t *msg = NULL;
	int total = 0, n;

	n = dibs_load(tx, job->team_id, thing, 1, &t, &total);
	if (n == 1 && t[0].hold_id == payload_int(job, "hold_id") && t[0].nqueue > 0)
		msg = dibs_view_queue_joined(display, thing, t[0].hold_id, t[0].queue, t[0].nqueue);
	dibs_things_free(t, n < 0 ? 0 : n);
	return msg;
}

/* dibs.notify: your_turn, kicked, kick_announce, expired, queue_joined. */
static enum job_result
notify_job(struct job *job)
{
	const char *event = payload_str(job, "event"), *thing = payload_str(job, "thing");
	const char *user = payload_str(job, "user"), *by = payload_str(job, "by");
	char hold[24];
	struct tx tx;
	char *display;
	int stands = 1;
	json_t *msg = NULL;
	const char *to = user;

	snprintf(hold, sizeof(hold), "%lld", payload_int(job, "hold_id"));
	if (tx_begin(&tx, job->team_id) < 0)
		return db_retry(job, &tx);
	display = display_name(&tx, job->team_id, thing);
	if (strcmp(event, "your_turn") == 0)
		stands = hold_stands(&tx, job->team_id, thing, hold);
	if (strcmp(event, "queue_joined") == 0)
		msg = queue_joined(&tx, job, thing, display);
	tx_commit(&tx);
	if (stands < 0) {
		free(display);
		return db_retry(job, &tx);
	}
	if (strcmp(event, "your_turn") == 0 && stands)
		msg = dibs_view_your_turn(display, thing, payload_int(job, "hold_id"),
		                          (double)payload_int(job, "release_at"));
	else if (strcmp(event, "kicked") == 0)
		msg = dibs_view_kicked(display, by);
	else if (strcmp(event, "kick_announce") == 0) {
		msg = dibs_view_kick_announce(display, user, by, NULL);
		free(display);
		return announce(job, payload_str(job, "channel"), by, msg);
	} else if (strcmp(event, "expired") == 0) {
		char *e = slack_escape(display);
		char *text = xasprintf("Your hold on *%s* ended, as you asked.", e);
		msg = slack_msg(0, text, NULL);
		free(text);
		free(e);
	}
	free(display);
	if (msg == NULL)
		return JOB_DONE; /* nothing to say: a stale your_turn, or an unknown event */
	return post(job, to, msg);
}

/* The hold_id and check-in generation of a check-in job, as parameters. */
static void
hold_and_gen(struct job *job, char hold[24], char gen[16])
{
	snprintf(hold, 24, "%lld", payload_int(job, "hold_id"));
	snprintf(gen, 16, "%lld", payload_int(job, "gen"));
}

/* dibs.checkin: asks an open-ended holder whether they still need it
 * (dibs_checkin_due also queues the autorelease, when set). */
static enum job_result
checkin_job(struct job *job)
{
	char hold[24], gen[16];
	const char *thing = payload_str(job, "thing");
	const char *p[4] = {job->team_id, thing, hold, gen};
	struct tx tx;
	PGresult *r;
	char *user = NULL, *display;
	enum job_result res;

	hold_and_gen(job, hold, gen);
	if (tx_begin(&tx, job->team_id) < 0 ||
	    (r = tx_query(&tx, "SELECT user_id FROM dibs_checkin_due($1, $2, $3::bigint, $4::int)",
	                  4, p)) == NULL)
		return db_retry(job, &tx);
	if (!db_null(r, 0, 0))
		user = xstrdup(db_str(r, 0, 0));
	PQclear(r);
	display = display_name(&tx, job->team_id, thing);
	if (tx_commit(&tx) < 0) {
		free(user);
		free(display);
		return db_retry(job, &tx);
	}
	res = user ? post(job, user,
	                  dibs_view_checkin(display, thing, payload_int(job, "hold_id"),
	                                    (int)payload_int(job, "gen")))
	           : JOB_DONE; /* released, kicked or kept since */
	free(user);
	free(display);
	return res;
}

/* dibs.autorelease: a check-in went unanswered; the hold ends as if its
 * holder had released it (the next in line is DMed by dibs_off). */
static enum job_result
autorelease_job(struct job *job)
{
	char hold[24], gen[16];
	const char *thing = payload_str(job, "thing");
	const char *p[4] = {job->team_id, thing, hold, gen};
	struct tx tx;
	PGresult *r;
	char *user = NULL, *text, *e;
	enum job_result res = JOB_DONE;

	hold_and_gen(job, hold, gen);
	if (tx_begin(&tx, job->team_id) < 0 ||
	    (r = tx_query(&tx,
	                  "SELECT status, holder, next_user FROM dibs_autorelease_due($1, $2, "
	                  "$3::bigint, $4::int)",
	                  4, p)) == NULL)
		return db_retry(job, &tx);
	if (strcmp(db_str(r, 0, 0), "released") == 0) {
		user = xstrdup(db_str(r, 0, 1));
		if (dibs_announce(&tx, job->team_id, thing, NULL, "auto_released", user,
		                  db_null(r, 0, 2) ? NULL : db_str(r, 0, 2), NULL) < 0) {
			PQclear(r);
			free(user);
			return db_retry(job, &tx);
		}
	}
	PQclear(r);
	e = display_name(&tx, job->team_id, thing);
	if (tx_commit(&tx) < 0) {
		free(user);
		free(e);
		return db_retry(job, &tx);
	}
	if (user) {
		char *name = slack_escape(e);
		text = xasprintf("Your hold on *%s* was released: the check-in went unanswered.",
		                 name);
		res = post(job, user, slack_msg(0, text, NULL));
		free(text);
		free(name);
	}
	free(user);
	free(e);
	return res;
}

/* The Dibs section of the App Home: the user's holds and places, the
 * team's things with their buttons. */
static int
home_section(const char *team_id, const char *user_id, json_t *blocks)
{
	struct dibs_thing *things = NULL;
	struct tx tx;
	int n, total = 0;

	if (tx_begin(&tx, team_id) < 0)
		return -1;
	n = dibs_load(&tx, team_id, NULL, HOME_THINGS, &things, &total);
	tx_commit(&tx);
	if (n < 0)
		return -1;
	dibs_view_home_section(things, n, total, user_id, blocks);
	dibs_things_free(things, n);
	return 0;
}

void
dibs_jobs_init(void)
{
	jobs_register("dibs.release", release_job);
	jobs_register("dibs.remind", remind_job);
	jobs_register("dibs.notify", notify_job);
	jobs_register("dibs.announce", announce_job);
	jobs_register("dibs.checkin", checkin_job);
	jobs_register("dibs.autorelease", autorelease_job);
	jobs_register_daily("dibs.tokens_cleanup", dibs_tokens_cleanup_job);
	dibs_history_init();
}

void
dibs_init(void)
{
	dibs_jobs_init();
	slack_register_command("/dibs", "Take turns on shared things",
	                       "on THING [for DURATION] [because REASON]", dibs_slash);
	slack_register_action("dibs.", dibs_action);
	home_register(10, home_section);
}
