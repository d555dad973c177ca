/* oauth.v2.access answers, and token rotation: with rotation on, a bot
 * token lives 12 hours and the "oauth.refresh" job trades the single-use
 * refresh token for a new pair before it expires. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db.h"
#include "form.h"
#include "log.h"
#include "oauth/oauth.h"
#include "slack.h"
#include "teams.h"
#include "util.h"
#include "vault.h"

#define TOKEN_MAX 512 /* Slack's tokens are well under this */
#define TEXT_MAX  1024

/* Errors after which the refresh token can never work again. */
static const char *const dead_refresh_errors[] = {
    "invalid_refresh_token", "invalid_auth",       "token_revoked",
    "account_inactive",      "invalid_grant_type",
};

/* A token: the prefix, then printable ASCII without spaces. */
static int
valid_token(const char *s, const char *prefix)
{
	size_t n;

	if (s == NULL || strncmp(s, prefix, strlen(prefix)) != 0)
		return 0;
	n = strlen(s);
	if (n <= strlen(prefix) || n > TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return 0;
	return 1;
}

static const char *
str_at(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) && json_string_length(v) <= TEXT_MAX ? json_string_value(v) : NULL;
}

/* The rotation fields: both or neither. */
static int
parse_rotation(json_t *body, struct oauth_grant *g, const char **why)
{
	json_t *refresh = json_object_get(body, "refresh_token");
	json_t *expires = json_object_get(body, "expires_in");

	g->refresh_token = NULL;
	g->expires_in = 0;
	if (refresh == NULL && expires == NULL)
		return 0;
	g->refresh_token = json_string_value(refresh);
	g->expires_in = json_is_integer(expires) ? json_integer_value(expires) : 0;
	if (!valid_token(g->refresh_token, "xoxe-")) {
		*why = "malformed refresh_token";
		return -1;
	}
	if (g->expires_in < 60 || g->expires_in > OAUTH_EXPIRES_MAX) {
		*why = "malformed expires_in";
		return -1;
	}
	return 0;
}

static int
parse_install(json_t *body, struct oauth_grant *g, const char **why)
{
	json_t *team = json_object_get(body, "team");
	json_t *user = json_object_get(body, "authed_user");

	/* An org-wide install answers team: null and names the org: the
	 * installation is the org's, stored under its enterprise id. */
	g->org_wide = json_is_true(json_object_get(body, "is_enterprise_install"));
	if (g->org_wide)
		team = json_object_get(body, "enterprise");
	g->team_id = str_at(team, "id");
	g->team_name = str_at(team, "name");
	g->app_id = str_at(body, "app_id");
	g->bot_user_id = str_at(body, "bot_user_id");
	g->scopes = str_at(body, "scope");
	g->installer_user_id = str_at(user, "id");
	if (!slack_id_valid(g->team_id, g->org_wide ? "E" : "TE"))
		*why = g->org_wide ? "malformed enterprise.id" : "malformed team.id";
	else if (!slack_id_valid(g->bot_user_id, "UW"))
		*why = "malformed bot_user_id";
	else if (g->app_id != NULL && !slack_id_valid(g->app_id, "A"))
		*why = "malformed app_id";
	else if (g->scopes == NULL)
		*why = "no scope";
	else
		*why = NULL;
	if (g->team_name == NULL)
		g->team_name = "";
	if (g->app_id == NULL)
		g->app_id = "";
	if (!slack_id_valid(g->installer_user_id, "UW"))
		g->installer_user_id = "";
	return *why ? -1 : 0;
}

int
oauth_grant_parse(json_t *body, enum oauth_grant_kind kind, struct oauth_grant *g, const char **why)
{
	const char *type = str_at(body, "token_type");

	memset(g, 0, sizeof(*g));
	*why = NULL;
	if (!json_is_object(body) || !json_is_true(json_object_get(body, "ok"))) {
		*why = "not an ok answer";
		return -1;
	}
	g->access_token = json_string_value(json_object_get(body, "access_token"));
	if (!valid_token(g->access_token, "xoxb-")) {
		*why = "no bot token (xoxb-)";
		return -1;
	}
	if (type != NULL ? strcmp(type, "bot") != 0 : kind == OAUTH_GRANT_INSTALL) {
		*why = "token_type is not bot";
		return -1;
	}
	if (parse_rotation(body, g, why) != 0)
		return -1;
	return kind == OAUTH_GRANT_INSTALL ? parse_install(body, g, why) : 0;
}

static void
wipe_string(json_t *v)
{
	if (json_is_string(v))
		OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

void
oauth_grant_wipe(json_t *body)
{
	static const char *const keys[] = {"access_token", "refresh_token", "id_token"};

	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		wipe_string(json_object_get(body, keys[i]));
	wipe_string(json_object_get(json_object_get(body, "authed_user"), "access_token"));
	wipe_string(json_object_get(json_object_get(body, "authed_user"), "refresh_token"));
}

int
oauth_schedule_refresh(struct tx *tx, const char *team_id, double expires_at)
{
	double now = now_seconds(), due = expires_at - OAUTH_REFRESH_LEAD;
	char key[96];
	int64_t id;

	if (expires_at - now < 2 * OAUTH_REFRESH_LEAD)
		due = now + (expires_at - now) / 2;
	/* Per expiry, to the microsecond: a refresh soon after an install
	 * must not collide with the install's own key. */
	snprintf(key, sizeof(key), "refresh:%s:%.6f", team_id, expires_at);
	id = job_enqueue(tx, "oauth.refresh", team_id, json_pack("{s:f}", "expires_at", expires_at),
	                 due, key);
	return id < 0 ? -1 : 0;
}

/* The sealed refresh token of an active installation (malloc'd), NULL
 * when there is none; *db_failed says whether that was an error. */
static char *
load_sealed_refresh(const char *team_id, int *db_failed)
{
	const char *p[1] = {team_id};
	char *sealed = NULL;
	struct tx tx;
	PGresult *r;

	*db_failed = 1;
	if (tx_begin(&tx, team_id) < 0)
		goto fail;
	r = tx_query(&tx,
	             "SELECT refresh_token FROM installations WHERE team_id = $1 AND active "
	             "AND refresh_token IS NOT NULL",
	             1, p);
	if (r != NULL && PQntuples(r) == 1)
		sealed = xstrdup(db_str(r, 0, 0));
	PQclear(r);
	if (tx_commit(&tx) == 0)
		*db_failed = 0;
fail:
	if (*db_failed) {
		free(sealed);
		sealed = NULL;
	}
	return sealed;
}

/* Stores the new pair, unless the installation changed meanwhile (a
 * reinstall brings its own tokens), and schedules the next refresh. */
static int
store_refreshed(const char *team_id, const char *old_sealed, const struct oauth_grant *g)
{
	char *bot = vault_seal(g->access_token, team_id, "bot_token");
	char *refresh = vault_seal(g->refresh_token, team_id, "refresh_token");
	char secs[24];
	const char *p[5] = {team_id, bot, refresh, secs, old_sealed};
	struct tx tx;
	PGresult *r;
	int rc = -1;

	snprintf(secs, sizeof(secs), "%lld", g->expires_in);
	if (bot == NULL || refresh == NULL || tx_begin(&tx, team_id) < 0)
		goto fail;
	r = tx_query(
	    &tx,
	    "UPDATE installations SET bot_token = $2, refresh_token = $3, "
	    "token_expires_at = now() + make_interval(secs => $4::int), updated_at = now() "
	    "WHERE team_id = $1 AND active AND refresh_token = $5 "
	    "RETURNING extract(epoch FROM token_expires_at)",
	    5, p);
	if (r != NULL && PQntuples(r) == 1)
		oauth_schedule_refresh(&tx, team_id, strtod(db_str(r, 0, 0), NULL));
	else if (r != NULL)
		log_info("oauth.refresh: the installation changed meanwhile; new tokens dropped");
	PQclear(r);
	rc = tx_commit(&tx);
fail:
	free(bot);
	free(refresh);
	return rc;
}

/* Slack refused the refresh token for good. It may only be that another
 * run of this job already traded it: deactivate only when the stored one
 * is still the one refused. */
static int
refresh_refused(const char *team_id, const char *used_sealed, const char *error)
{
	const char *p[1] = {team_id};
	struct tx tx;
	PGresult *r;

	if (tx_begin(&tx, team_id) < 0)
		return -1;
	r = tx_query(&tx, "SELECT refresh_token FROM installations WHERE team_id = $1 FOR UPDATE",
	             1, p);
	if (r != NULL && PQntuples(r) == 1 && !db_null(r, 0, 0) &&
	    strcmp(db_str(r, 0, 0), used_sealed) == 0) {
		log_warn("oauth.refresh: Slack refused the refresh token (%s); deactivating",
		         error);
		team_deactivate(&tx, team_id, error);
	}
	PQclear(r);
	return tx_commit(&tx);
}

static int
is_dead_refresh_error(const char *error)
{
	for (size_t i = 0; i < ARRAY_LEN(dead_refresh_errors); i++)
		if (strcmp(error, dead_refresh_errors[i]) == 0)
			return 1;
	return 0;
}

/* Maps a refresh call's outcome; the answer holds tokens, so only its
 * error code is ever logged. */
static enum job_result
refresh_outcome(struct job *job, const char *sealed, struct slack_result *r)
{
	struct oauth_grant g;
	const char *why;

	if (r->outcome == SLACK_FAILED && is_dead_refresh_error(r->error)) {
		snprintf(job->error, sizeof(job->error), "refresh refused: %s", r->error);
		return refresh_refused(job->team_id, sealed, r->error) == 0 ? JOB_DONE : JOB_RETRY;
	}
	if (r->outcome != SLACK_OK)
		return slack_job_result(r, job);
	if (oauth_grant_parse(r->body, OAUTH_GRANT_REFRESH, &g, &why) != 0 ||
	    g.refresh_token == NULL) {
		snprintf(job->error, sizeof(job->error), "refresh answer: %s",
		         why ? why : "no refresh_token");
		return JOB_RETRY;
	}
	if (store_refreshed(job->team_id, sealed, &g) != 0) {
		snprintf(job->error, sizeof(job->error), "could not store the refreshed tokens");
		return JOB_RETRY;
	}
	return JOB_DONE;
}

/* On a runner, with Slack's answer to the refresh: sealed is the stored
 * refresh token that was traded. */
static enum job_result
refreshed(struct job *job, struct slack_result *r, void *arg)
{
	char *sealed = arg;
	enum job_result res = refresh_outcome(job, sealed, r);

	if (r->body != NULL)
		oauth_grant_wipe(r->body);
	free(sealed);
	return res;
}

/* oauth.refresh: trades the refresh token in the outbound engine; the
 * runner is free until Slack answers. */
enum job_result
oauth_refresh_job(struct job *job)
{
	enum job_result res;
	char *sealed, *refresh, *enc, *form;
	int db_failed;

	if (job->team_id == NULL)
		return JOB_DEAD;
	sealed = load_sealed_refresh(job->team_id, &db_failed);
	if (sealed == NULL)
		return db_failed ? JOB_RETRY : JOB_DONE; /* uninstalled, or no rotation any more */
	refresh = vault_open(sealed, job->team_id, "refresh_token");
	if (refresh == NULL) {
		snprintf(job->error, sizeof(job->error), "the sealed refresh token does not open");
		free(sealed);
		return JOB_DEAD;
	}
	enc = url_encode(refresh);
	form = xasprintf("grant_type=refresh_token&refresh_token=%s", enc);
	res = slack_job_call_basic_then(job, "oauth.v2.access", form, refreshed, sealed);
	OPENSSL_cleanse(enc, strlen(enc));
	OPENSSL_cleanse(form, strlen(form));
	free(enc);
	free(form);
	vault_free_secret(refresh);
	return res;
}
