/* Uninstalling: app_uninstalled and tokens_revoked delete the team's tokens
 * (bot and API) at once and mark it uninstalled; the "team.purge" job deletes all of its
 * data OAUTH_PURGE_DELAY later unless it reinstalled. Slack retries events
 * and does not order them, so every step here is idempotent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "oauth/oauth.h"
#include "slack.h"
#include "util.h"

#define EPOCH_TEXT_MAX 32

/* The team as it stands, read under a row lock so that an install and an
 * uninstall of the same team take turns. */
struct standing {
	int found;
	char bot_user_id[32];
	double installed_at; /* unix seconds, 0 when never */
};

static int
read_standing(struct tx *tx, const char *team_id, struct standing *st)
{
	const char *p[1] = {team_id};
	PGresult *r;

	memset(st, 0, sizeof(*st));
	r = tx_query(tx,
	             "SELECT coalesce(i.bot_user_id, ''), "
	             "coalesce(extract(epoch FROM t.installed_at), 0) "
	             "FROM teams t LEFT JOIN installations i ON i.team_id = t.team_id "
	             "WHERE t.team_id = $1 FOR UPDATE OF t",
	             1, p);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1) {
		st->found = 1;
		snprintf(st->bot_user_id, sizeof(st->bot_user_id), "%s", db_str(r, 0, 0));
		st->installed_at = strtod(db_str(r, 0, 1), NULL);
	}
	PQclear(r);
	return 0;
}

/* An event from before the latest install (a late retry of the previous
 * uninstall) must not undo it. Slack's event_time is whole seconds. */
static int
stale(json_t *envelope, const struct standing *st)
{
	json_t *t = json_object_get(envelope, "event_time");

	return json_is_integer(t) && json_integer_value(t) > 0 &&
	       (double)json_integer_value(t) < (double)(long long)st->installed_at;
}

static int
bot_revoked(json_t *event, const char *bot_user_id)
{
	json_t *bots = json_object_get(json_object_get(event, "tokens"), "bot");
	json_t *v;
	size_t i;

	json_array_foreach(bots, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), bot_user_id) == 0)
			return 1;
	}
	return 0;
}

/* Schedules the purge OAUTH_PURGE_DELAY after the recorded uninstall; the
 * key makes a repeated event enqueue nothing. */
static int
schedule_purge(struct tx *tx, const char *team_id, const char *uninstalled_at)
{
	char *key = xasprintf("purge:%s:%s", team_id, uninstalled_at);
	double due = strtod(uninstalled_at, NULL) + OAUTH_PURGE_DELAY;
	int64_t id = job_enqueue(tx, "team.purge", team_id,
	                         json_pack("{s:s}", "uninstalled_at", uninstalled_at), due, key);

	free(key);
	return id < 0 ? -1 : 0;
}

/* Tokens gone (the bot's, and the team's API tokens, so that a reinstall
 * does not bring them back), team marked uninstalled (the first time
 * only), refreshes stopped, purge scheduled. */
static int
forget_tokens(struct tx *tx, const char *team_id, const char *reason)
{
	const char *p[2] = {team_id, reason};
	PGresult *r;
	int rc = -1;

	/* This team's own installation only: a workspace of an org never
	 * takes the org's down with it (uninstall_org does that). */
	tx_exec(tx,
	        "UPDATE installations SET active = false, bot_token = NULL, refresh_token = NULL, "
	        "token_expires_at = NULL, inactive_reason = $2, updated_at = now() "
	        "WHERE team_id = $1",
	        2, p);
	tx_exec(tx, "DELETE FROM api_tokens WHERE team_id = $1", 1, p);
	tx_exec(tx,
	        "UPDATE jobs SET state = 'cancelled', finished_at = now(), lease_until = NULL "
	        "WHERE team_id = $1 AND kind = 'oauth.refresh' AND state = 'queued'",
	        1, p);
	r = tx_query(tx,
	             "UPDATE teams SET uninstalled_at = coalesce(uninstalled_at, now()) "
	             "WHERE team_id = $1 RETURNING extract(epoch FROM uninstalled_at)::text",
	             1, p);
	if (r != NULL && PQntuples(r) == 1)
		rc = schedule_purge(tx, team_id, db_str(r, 0, 0));
	PQclear(r);
	return rc;
}

/* revoked_check: only act when the event names the installation's bot.
 * Runs in tx, scoped to team_id first. 0, or -1 when the database failed
 * (Slack then retries: the tokens must not outlive a lost event). */
static int
uninstall(struct tx *tx, const char *team_id, json_t *event, json_t *envelope, const char *reason,
          int revoked_check)
{
	struct standing st;

	if (team_id == NULL || !slack_id_valid(team_id, "TE"))
		return 0;
	if (tx_scope(tx, team_id) < 0 || read_standing(tx, team_id, &st) != 0)
		return -1;
	if (!st.found) {
		log_info("%s for a team conch does not know; ignored", reason);
	} else if (revoked_check &&
	           (st.bot_user_id[0] == '\0' || !bot_revoked(event, st.bot_user_id))) {
		log_info("tokens_revoked names no bot token of ours; ignored");
	} else if (stale(envelope, &st)) {
		log_info("%s from before the latest install; ignored", reason);
	} else if (forget_tokens(tx, team_id, reason) == 0) {
		log_info("%s: tokens deleted; data will be purged in %d days", reason,
		         OAUTH_PURGE_DELAY / 86400);
	}
	return tx->failed ? -1 : 0;
}

/* 1 when an installation still serves the team (the event named another
 * bot, or came from before the latest install), 0 when not, -1 on error. */
static int
still_installed(struct tx *tx, const char *team_id)
{
	const char *p[1] = {team_id};
	PGresult *r = tx_query(tx, "SELECT conch_team_installed($1)", 1, p);
	int installed = r == NULL ? -1 : db_bool(r, 0, 0);

	PQclear(r);
	return installed;
}

/* The workspaces of an org (malloc'd NULL-terminated list), NULL when the
 * database failed. */
static char **
org_workspaces(struct tx *tx, const char *org)
{
	const char *p[1] = {org};
	PGresult *r;
	char **list;

	if (tx_scope(tx, org) < 0 ||
	    (r = tx_query(tx, "SELECT conch_enterprise_workspaces($1)", 1, p)) == NULL)
		return NULL;
	list = xcalloc((size_t)PQntuples(r) + 1, sizeof(*list));
	for (int i = 0; i < PQntuples(r); i++)
		list[i] = xstrdup(db_str(r, i, 0));
	PQclear(r);
	return list;
}

/* An org-wide install removed: the org's token goes, and every workspace
 * of the org is uninstalled too (its API tokens deleted, its data purged
 * OAUTH_PURGE_DELAY later): all in the event's transaction, scoped to
 * each team in turn, so that a failure anywhere leaves the whole for
 * Slack's retry. */
static int
uninstall_org(struct tx *tx, const char *org, json_t *event, json_t *envelope, const char *reason,
              int revoked_check)
{
	char **list;
	int rc, installed;

	if (uninstall(tx, org, event, envelope, reason, revoked_check) < 0)
		return -1;
	/* Ignored (another bot, an event older than the install): nothing more. */
	if ((installed = still_installed(tx, org)) != 0)
		return installed < 0 ? -1 : 0;
	if ((list = org_workspaces(tx, org)) == NULL)
		return -1;
	rc = 0;
	for (char **w = list; *w; w++) {
		if (rc == 0 && uninstall(tx, *w, event, envelope, reason, 0) < 0)
			rc = -1;
		free(*w);
	}
	free(list);
	return rc;
}

/* For an org-wide install (authorizations[0].is_enterprise_install) the
 * org is uninstalled, whichever workspace the envelope names. The
 * transaction is scoped back to the event's team afterwards. */
static int
uninstall_event(struct tx *tx, const char *team_id, json_t *event, json_t *envelope,
                const char *reason, int revoked_check)
{
	const char *org = slack_event_enterprise(envelope);
	int rc = org != NULL ? uninstall_org(tx, org, event, envelope, reason, revoked_check)
	                     : uninstall(tx, team_id, event, envelope, reason, revoked_check);

	return rc < 0 || tx_scope(tx, team_id) < 0 ? -1 : 0;
}

int
oauth_on_app_uninstalled(struct tx *tx, const char *team_id, json_t *event, json_t *envelope)
{
	return uninstall_event(tx, team_id, event, envelope, "app_uninstalled", 0);
}

int
oauth_on_tokens_revoked(struct tx *tx, const char *team_id, json_t *event, json_t *envelope)
{
	return uninstall_event(tx, team_id, event, envelope, "tokens_revoked", 1);
}

/* "1732380000.123456": what extract(epoch ...)::text gave. */
static int
valid_epoch(const char *s)
{
	return s != NULL && s[0] >= '0' && s[0] <= '9' && strlen(s) < EPOCH_TEXT_MAX &&
	       strspn(s, "0123456789.") == strlen(s);
}

/* Purges unless the team reinstalled after the uninstall this job was
 * scheduled for (a later uninstall has its own purge job). */
static int
purge_if_still_gone(const char *team_id, const char *uninstalled_at)
{
	const char *p[2] = {team_id, uninstalled_at};
	struct tx tx;
	PGresult *r;

	if (tx_begin(&tx, team_id) < 0)
		return -1;
	r = tx_query(
	    &tx,
	    "SELECT 1 FROM teams WHERE team_id = $1 AND uninstalled_at IS NOT NULL "
	    "AND (installed_at IS NULL OR extract(epoch FROM installed_at) <= $2::numeric) "
	    "FOR UPDATE",
	    2, p);
	if (r != NULL && PQntuples(r) == 1) {
		PQclear(r);
		r = tx_query(&tx, "SELECT conch_purge_team($1)", 1, p);
		if (r != NULL)
			log_info("team.purge: deleted %s rows", db_str(r, 0, 0));
	} else if (r != NULL) {
		log_info("team.purge: the team reinstalled or is gone; nothing deleted");
	}
	PQclear(r);
	return tx_commit(&tx);
}

enum job_result
oauth_purge_job(struct job *job)
{
	const char *since = json_string_value(json_object_get(job->payload, "uninstalled_at"));

	if (job->team_id == NULL || !valid_epoch(since)) {
		snprintf(job->error, sizeof(job->error),
		         "team.purge needs a team and uninstalled_at");
		return JOB_DEAD;
	}
	if (purge_if_still_gone(job->team_id, since) != 0) {
		snprintf(job->error, sizeof(job->error), "database error; will retry");
		return JOB_RETRY;
	}
	return JOB_DONE;
}
