/* Installs that lack a scope conch now asks for (slack_scopes grew since
 * they installed): one DM to each installer with the reinstall link. The
 * "oauth.scopes_check" job runs at every start, since scopes change only
 * with the configuration; installations.scopes_notified_at keeps it to one
 * DM per install however often conch restarts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "log.h"
#include "oauth/oauth.h"
#include "slack.h"
#include "teams.h"
#include "util.h"

#define SCOPES_JOB   "oauth.scopes_check"
#define SCOPES_BATCH 200 /* installs read per query; the job loops until none is left */

void
oauth_scopes_check_soon(void)
{
	struct tx tx;

	/* One run per start: cheap when no install lacks anything, and the
	 * mark, not a dedupe key, keeps it to one DM per install. */
	if (tx_begin_system(&tx) < 0)
		return;
	job_enqueue(&tx, SCOPES_JOB, NULL, json_object(), 0, NULL);
	if (tx_commit(&tx) < 0)
		log_warn("oauth: could not queue the scopes check; it runs at the next start");
}

static json_t *
notice(const char *missing)
{
	char *url = team_install_url();
	char *scopes = slack_escape(missing);
	char *text = xasprintf(
	    "conch now asks Slack for permissions it did not have when it was installed here: "
	    "`%s`. To grant them, install it again: <%s|Add to Slack> (everything conch keeps for "
	    "you stays). Until then, what needs them falls back: for example, announcements in "
	    "public channels conch was not invited to go to whoever typed the command.",
	    scopes, url);
	json_t *msg = json_pack("{s:s, s:[o]}", "text", text, "blocks", slack_section(text));

	free(text);
	free(scopes);
	free(url);
	return msg;
}

/* Marks the install told and queues the DM in one team transaction: two
 * runs (or instances) cannot both send it. 0, or -1 on a database error. */
static int
notify_install(const char *team_id, const char *missing)
{
	const char *p[1] = {team_id};
	struct tx tx;
	PGresult *r;
	json_t *args;
	char *key;

	if (tx_begin(&tx, team_id) < 0)
		return -1;
	r = tx_query(
	    &tx,
	    "UPDATE installations SET scopes_notified_at = now() WHERE team_id = $1 "
	    "AND active AND (scopes_notified_at IS NULL OR scopes_notified_at < installed_at) "
	    "RETURNING installer_user_id, (extract(epoch FROM installed_at) * 1000000)::bigint",
	    1, p);
	if (r != NULL && PQntuples(r) == 1 && db_str(r, 0, 0)[0] != '\0') {
		args = notice(missing);
		json_object_set_new(args, "channel", json_string(db_str(r, 0, 0)));
		/* One DM an install: keyed by when it was installed, to the
		 * microsecond, since two installs can fall in one second. */
		key = xasprintf("scopes:%s:%s", team_id, db_str(r, 0, 1));
		slack_enqueue(&tx, team_id, "chat.postMessage", args, key);
		free(key);
		log_info("oauth: team %s lacks scopes %s; its installer is asked to reinstall",
		         team_id, missing);
	}
	PQclear(r);
	return tx_commit(&tx);
}

/* One batch: the installs still to tell, or -1. */
static int
scopes_batch(void)
{
	char limit[16];
	const char *p[2] = {conf.slack_scopes ? conf.slack_scopes : "", limit};
	struct tx tx;
	PGresult *r;
	int n = -1;

	snprintf(limit, sizeof(limit), "%d", SCOPES_BATCH);
	if (tx_begin_system(&tx) < 0)
		return -1;
	r = tx_query(&tx, "SELECT team_id, missing FROM conch_installs_missing_scopes($1, $2::int)",
	             2, p);
	if (tx_commit(&tx) < 0 || r == NULL) {
		PQclear(r);
		return -1;
	}
	n = PQntuples(r);
	for (int i = 0; i < PQntuples(r) && n >= 0; i++)
		if (notify_install(db_str(r, i, 0), db_str(r, i, 1)) < 0)
			n = -1;
	PQclear(r);
	return n;
}

enum job_result
oauth_scopes_check_job(struct job *job)
{
	int n;

	while ((n = scopes_batch()) == SCOPES_BATCH)
		;
	if (n < 0) {
		snprintf(job->error, sizeof(job->error), "database error; will retry");
		return JOB_RETRY;
	}
	return JOB_DONE;
}
