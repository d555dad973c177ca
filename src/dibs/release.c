/* Dibs jobs: timed releases, reminders, notifications and the App Home.
 * Each is idempotent: a release names the hold it was made for, and the
 * SQL turns a stale or repeated one into a no-op. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing/billing.h"
#include "db.h"
#include "dibs/command.h"
#include "dibs/dibs.h"
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

/* dibs.release: ends the hold it was made for, if it still stands. */
static enum job_result
release_job(struct job *job)
{
	char hold[24];
	const char *p[3] = {job->team_id, payload_str(job, "thing"), hold};
	struct tx tx;
	PGresult *r;
	enum job_result res = JOB_DONE;

	snprintf(hold, sizeof(hold), "%lld", payload_int(job, "hold_id"));
	if (tx_begin(&tx, job->team_id) < 0)
		return db_retry(job, &tx);
	r = tx_query(&tx,
	             "SELECT status, extract(epoch FROM release_at) "
	             "FROM dibs_release_due($1, $2, $3::bigint)",
	             3, p);
	if (r == NULL || tx_commit(&tx) < 0) {
		if (r)
			PQclear(r);
		return db_retry(job, &tx);
	}
	if (strcmp(PQgetvalue(r, 0, 0), "not_due") == 0) {
		/* Woken early (clocks differ between hosts): come back when due. */
		job->retry_at = strtod(PQgetvalue(r, 0, 1), NULL);
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
	char *name = xstrdup(r && PQntuples(r) ? PQgetvalue(r, 0, 0) : thing);

	if (r)
		PQclear(r);
	return name;
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
		user = xstrdup(PQgetvalue(r, 0, 0));
		release_at = strtod(PQgetvalue(r, 0, 1), NULL);
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

/* dibs.notify: your_turn, kicked, kick_announce, expired. */
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
		to = payload_str(job, "channel");
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

/* dibs.home: publishes the App Home of one user. */
static enum job_result
home_job(struct job *job)
{
	const char *user = payload_str(job, "user");
	struct dibs_thing *things = NULL;
	struct tx tx;
	int n, total = 0;
	char *upgrade = NULL;
	json_t *args;
	enum job_result res;

	if (tx_begin(&tx, job->team_id) < 0)
		return db_retry(job, &tx);
	n = dibs_load(&tx, job->team_id, NULL, HOME_THINGS, &things, &total);
	tx_commit(&tx);
	if (n < 0)
		return db_retry(job, &tx);
	upgrade = billing_home_prompt(job->team_id, user);
	args = json_pack("{s:s, s:o}", "user_id", user, "view",
	                 dibs_view_home(things, n, total, user, upgrade));
	free(upgrade);
	dibs_things_free(things, n);
	res = slack_job_call(job, "views.publish", args);
	json_decref(args);
	return res;
}

int
dibs_home_opened(const char *team_id, json_t *event, json_t *envelope)
{
	const char *user = json_string_value(json_object_get(event, "user"));
	const char *tab = json_string_value(json_object_get(event, "tab"));
	struct tx tx;

	(void)envelope;
	if (user == NULL || (tab && strcmp(tab, "home") != 0))
		return 0;
	if (tx_begin(&tx, team_id) < 0) {
		tx_rollback(&tx);
		return -1;
	}
	job_enqueue(&tx, "dibs.home", team_id, json_pack("{s:s}", "user", user), 0, NULL);
	return tx_commit(&tx);
}

void
dibs_jobs_init(void)
{
	jobs_register("dibs.release", release_job, 20);
	jobs_register("dibs.remind", remind_job, 5);
	jobs_register("dibs.notify", notify_job, 8);
	jobs_register("dibs.home", home_job, 3);
	jobs_register_daily("dibs.tokens_cleanup", dibs_tokens_cleanup_job);
}

void
dibs_init(void)
{
	dibs_jobs_init();
	slack_register_command("/dibs", dibs_slash);
	slack_register_action("dibs.", dibs_action);
	slack_register_event("app_home_opened", dibs_home_opened);
}
