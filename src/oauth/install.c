/* Add to Slack: the landing page, /slack/install (a single-use state bound
 * to a cookie), /slack/oauth (the code exchange and storing the
 * installation), /installed, and the error pages on the way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "conf.h"
#include "crypto.h"
#include "db.h"
#include "form.h"
#include "log.h"
#include "members.h"
#include "oauth/oauth.h"
#include "slack.h"
#include "util.h"
#include "vault.h"

#define STATE_BYTES     32
#define STATE_PARAM_MAX 128 /* a state we issued is 43 characters */
#define CODE_PARAM_MAX  512 /* Slack's codes are about 60 */
#define TEAM_NAME_SHOWN 80  /* bytes of the team name /installed repeats */
#define STATE_GC_BATCH  100 /* expired states deleted per new one: bounded work */

enum state_check { STATE_OK, STATE_BAD, STATE_DB };

static int
blank(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* --- pages ---------------------------------------------------------------- */

static void
error_page(struct response *res, int status, const char *title, const char *message)
{
	http_reply_page(res, status, "error.html",
	                json_pack("{s:s, s:s, s:s}", "title", title, "message", message,
	                          "again_url", "/slack/install"));
}

/* The keys an operator must set before anyone can install; NULL when
 * none is missing. */
static json_t *
missing_keys(void)
{
	json_t *missing = json_array();

	if (blank(conf.slack_client_id))
		json_array_append_new(missing, json_string("slack_client_id"));
	if (blank(conf.slack_client_secret))
		json_array_append_new(missing, json_string("slack_client_secret"));
	if (!vault_ready())
		json_array_append_new(missing, json_string("token_keys"));
	if (json_array_size(missing) == 0) {
		json_decref(missing);
		missing = NULL;
	}
	return missing;
}

static void
not_configured_page(struct response *res, json_t *missing)
{
	http_reply_page(
	    res, 503, "error.html",
	    json_pack("{s:s, s:s, s:o, s:b}", "title", "Installing is not set up yet", "message",
	              "This conch server has no Slack app configured. Set these keys in the "
	              "config file or as CONCH_<KEY> environment variables, then restart it:",
	              "missing", missing, "has_missing", 1));
}

/* "$9" or "$9.50" a month; "Free" at zero. */
static json_t *
price_text(long long cents)
{
	if (cents <= 0)
		return json_string("Free");
	if (cents % 100 == 0)
		return json_sprintf("$%lld a month", cents / 100);
	return json_sprintf("$%lld.%02lld a month", cents / 100, cents % 100);
}

/* A limit column: NULL means none. */
static json_t *
limit_text(PGresult *r, int row, int col, const char *fmt)
{
	long long n;

	if (db_null(r, row, col))
		return json_string("Unlimited");
	if (strnum(db_str(r, row, col), 0, 1000000000, &n) != 0)
		return json_string("?");
	return json_sprintf(fmt, n);
}

static json_t *
plan_row(PGresult *r, int i)
{
	long long cents = 0;

	strnum(db_str(r, i, 6), 0, 100000000, &cents);
	return json_pack("{s:s, s:s, s:o, s:b, s:b, s:o, s:o}", "name", db_str(r, i, 0),
	                 "display_name", db_str(r, i, 1), "things", limit_text(r, i, 2, "%lld"),
	                 "timed_release", db_str(r, i, 3)[0] == 't', "api_access",
	                 db_str(r, i, 4)[0] == 't', "poll_size",
	                 limit_text(r, i, 5, "Up to %lld people"), "price", price_text(cents));
}

/* The plans for the comparison table, or NULL when the database does not
 * answer. plans is a global table: no team scope needed. */
static json_t *
load_plans(void)
{
	json_t *plans = NULL;
	struct tx tx;
	PGresult *r;

	if (tx_begin(&tx, NULL) < 0)
		return NULL;
	r = tx_query(&tx,
	             "SELECT name, display_name, max_things, timed_release, api_access, "
	             "max_poll_size, monthly_price_cents FROM plans ORDER BY sort",
	             0, NULL);
	if (r != NULL) {
		plans = json_array();
		for (int i = 0; i < PQntuples(r); i++)
			json_array_append_new(plans, plan_row(r, i));
		PQclear(r);
	}
	if (tx_commit(&tx) != 0) {
		json_decref(plans);
		plans = NULL;
	}
	return plans;
}

void
oauth_http_landing(struct request *req, struct response *res)
{
	json_t *missing = missing_keys();
	json_t *plans = load_plans();
	json_t *data = json_pack("{s:s, s:s, s:b}", "title", "Dibs and Lunch Buddies for Slack",
	                         "install_url", "/slack/install", "configured", missing == NULL);

	json_object_set_new(data, "has_plans", json_boolean(json_array_size(plans) > 0));
	if (plans != NULL)
		json_object_set_new(data, "plans", plans);
	if (missing != NULL)
		json_object_set_new(data, "missing", missing);
	http_reply_page(res, 200, "landing.html", data);
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static char *
cut_utf8(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	return xstrndup(s, n);
}

/* An org-wide install is in no workspace yet: the page sends the org
 * admin to Slack's page that adds the app to the org's workspaces. The
 * ids come from the URL, so only well-formed ones make a link. */
static void
org_next_step(struct request *req, json_t *data)
{
	const char *org = http_query(req, "org"), *app = http_query(req, "app");

	if (!slack_id_valid(org, "E"))
		return;
	json_object_set_new(data, "org", json_true());
	if (slack_id_valid(app, "A"))
		json_object_set_new(
		    data, "org_add_url",
		    json_sprintf(
		        "https://app.slack.com/manage/%s/integrations/profile/%s/workspaces/add",
		        org, app));
}

void
oauth_http_installed(struct request *req, struct response *res)
{
	const char *team = http_query(req, "team");
	json_t *data = json_pack("{s:s}", "title", "conch is installed");
	char *shown;

	/* The name comes from the URL, so anyone can put text here: it is only
	 * ever shown escaped, and short (json_string refuses bad UTF-8). */
	if (!blank(team)) {
		shown = cut_utf8(team, TEAM_NAME_SHOWN);
		json_object_set_new(data, "team", json_string(shown));
		free(shown);
	}
	org_next_step(req, data);
	http_reply_page(res, 200, "installed.html", data);
}

/* --- /slack/install ------------------------------------------------------- */

/* Stores a new state with the hash of its cookie nonce; 0 or -1. */
static int
state_store(const char *state, const char *nonce)
{
	char state_hash[65], cookie_hash[65], ttl[16], batch[16];
	const char *p[3] = {state_hash, cookie_hash, ttl};
	const char *gc[1] = {batch};
	struct tx tx;

	sha256_hex(state, state_hash);
	sha256_hex(nonce, cookie_hash);
	snprintf(ttl, sizeof(ttl), "%d", OAUTH_STATE_TTL);
	snprintf(batch, sizeof(batch), "%d", STATE_GC_BATCH);
	if (tx_begin_system(&tx) < 0)
		return -1;
	tx_exec(&tx,
	        "DELETE FROM oauth_states WHERE state_hash IN (SELECT state_hash FROM oauth_states "
	        "WHERE expires_at < now() ORDER BY expires_at LIMIT $1::int)",
	        1, gc);
	tx_exec(&tx,
	        "INSERT INTO oauth_states (state_hash, cookie_hash, expires_at) "
	        "VALUES ($1, $2, now() + make_interval(secs => $3::int))",
	        3, p);
	return tx_commit(&tx);
}

static char *
authorize_url(const char *state)
{
	char *client = url_encode(conf.slack_client_id);
	char *scope = url_encode(conf.slack_scopes ? conf.slack_scopes : "");
	char *redirect_raw = xasprintf("%s/slack/oauth", conf.public_url);
	char *redirect = url_encode(redirect_raw);
	char *url;

	url = xasprintf("%s%cclient_id=%s&scope=%s&redirect_uri=%s&state=%s",
	                conf.slack_authorize_url, strchr(conf.slack_authorize_url, '?') ? '&' : '?',
	                client, scope, redirect, state);
	free(client);
	free(scope);
	free(redirect_raw);
	free(redirect);
	return url;
}

void
oauth_http_install(struct request *req, struct response *res)
{
	json_t *missing = missing_keys();
	unsigned char raw[STATE_BYTES];
	char *state = NULL, *nonce = NULL, *url = NULL;

	if (missing != NULL) {
		not_configured_page(res, missing);
		return;
	}
	random_bytes(raw, sizeof(raw));
	state = base64url_encode(raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	nonce = random_token(STATE_BYTES);
	if (state_store(state, nonce) != 0) {
		error_page(
		    res, 503, "Try again in a minute",
		    "conch could not start the install because its database did not answer.");
		goto out;
	}
	url = authorize_url(state);
	http_set_cookie(res, OAUTH_COOKIE, nonce, OAUTH_STATE_TTL);
	http_set_header(res, "Cache-Control", "no-store");
	http_redirect(res, 302, url);
out:
	free(state);
	free(nonce);
	free(url);
}

/* --- /slack/oauth --------------------------------------------------------- */

/* Marks the state used, once, and checks it belongs to this browser. A
 * state found but not matching is used up all the same: it was shown to
 * someone else's browser. */
static enum state_check
state_consume(const char *state, const char *cookie)
{
	char state_hash[65], cookie_hash[65];
	const char *p[1] = {state_hash};
	enum state_check check = STATE_BAD;
	struct tx tx;
	PGresult *r;

	sha256_hex(state, state_hash);
	if (tx_begin_system(&tx) < 0)
		return STATE_DB;
	r = tx_query(&tx,
	             "UPDATE oauth_states SET used_at = now() WHERE state_hash = $1 "
	             "AND used_at IS NULL AND expires_at > now() RETURNING cookie_hash",
	             1, p);
	if (r != NULL && PQntuples(r) == 1 && !blank(cookie)) {
		sha256_hex(cookie, cookie_hash);
		if (ct_equal(cookie_hash, 64, db_str(r, 0, 0), (size_t)PQgetlength(r, 0, 0)))
			check = STATE_OK;
	}
	PQclear(r);
	if (tx_commit(&tx) != 0)
		check = STATE_DB;
	return check;
}

static int
param_ok(const char *s, size_t max)
{
	return !blank(s) && strlen(s) <= max;
}

/* The welcome DM to whoever installed. */
static int
enqueue_welcome(struct tx *tx, const struct oauth_grant *g, const char *installed_epoch)
{
	char *team = slack_escape(g->team_name[0] ? g->team_name : "your workspace");
	char *head = g->org_wide
	                 ? xasprintf("*conch is installed for the %s org.* An org admin "
	                             "now adds it to workspaces (Slack's admin pages, "
	                             "Integrations); then, in each of them:",
	                             team)
	                 : xasprintf("*conch is installed in %s.* Here is how to start:", team);
	char *key = xasprintf("welcome:%s:%s", g->team_id, installed_epoch);
	const char *steps = "• `/dibs on staging` in any channel: call dibs on a server, an "
	                    "environment, anything shared\n"
	                    "• `/dibs help`: every dibs command\n"
	                    "• `/lunch start` in a channel: a lunch poll that ends in small groups";
	const char *retention = "If you uninstall, we delete your tokens at once and all your "
	                        "workspace's data 30 days later, unless you reinstall.";
	json_t *blocks = json_pack("[o, o, o]", slack_section(head), slack_section(steps),
	                           slack_context(retention));
	json_t *args =
	    json_pack("{s:s, s:s, s:o}", "channel", g->installer_user_id, "text",
	              "conch is installed. Try /dibs on staging in any channel.", "blocks", blocks);
	int64_t id = slack_enqueue(tx, g->team_id, "chat.postMessage", args, key);

	free(team);
	free(head);
	free(key);
	return id < 0 ? -1 : 0;
}

/* Who is an admin or owner: the member directory's first sync. */
static void
sync_directory(struct tx *tx, const char *team_id, const char *installed_epoch)
{
	char *key = xasprintf("install:%s", installed_epoch);

	members_sync_soon(tx, team_id, key);
	free(key);
}

static const char *const upsert_team_sql =
    "INSERT INTO teams (team_id, name, installed_at, uninstalled_at) "
    "VALUES ($1, $2, now(), NULL) "
    "ON CONFLICT (team_id) DO UPDATE SET name = EXCLUDED.name, installed_at = now(), "
    "uninstalled_at = NULL "
    "RETURNING extract(epoch FROM installed_at)::text";

/* A reinstall replaces the installation's tokens and scopes; the team's
 * own data is not touched. */
static const char *const upsert_installation_sql =
    "INSERT INTO installations (team_id, app_id, bot_user_id, scopes, bot_token, refresh_token, "
    "token_expires_at, installer_user_id, active, inactive_reason, installed_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, "
    "CASE WHEN $7::int IS NULL THEN NULL ELSE now() + make_interval(secs => $7::int) END, "
    "$8, true, NULL, now(), now()) "
    "ON CONFLICT (team_id) DO UPDATE SET app_id = EXCLUDED.app_id, "
    "bot_user_id = EXCLUDED.bot_user_id, scopes = EXCLUDED.scopes, "
    "bot_token = EXCLUDED.bot_token, refresh_token = EXCLUDED.refresh_token, "
    "token_expires_at = EXCLUDED.token_expires_at, "
    "installer_user_id = EXCLUDED.installer_user_id, active = true, inactive_reason = NULL, "
    "installed_at = now(), updated_at = now() "
    "RETURNING extract(epoch FROM token_expires_at)";

/* A pending purge would delete a team that came back; a pending refresh
 * holds a refresh token this install replaced. */
static const char *const cancel_jobs_sql =
    "UPDATE jobs SET state = 'cancelled', finished_at = now(), lease_until = NULL "
    "WHERE team_id = $1 AND kind IN ('team.purge', 'oauth.refresh') AND state = 'queued'";

/* Runs one statement that returns one row; the first value (malloc'd),
 * "" when it is NULL, or NULL on failure. */
static char *
query_value(struct tx *tx, const char *sql, int n, const char *const *p)
{
	PGresult *r = tx_query(tx, sql, n, p);
	char *v = NULL;

	if (r != NULL && PQntuples(r) == 1)
		v = xstrdup(db_null(r, 0, 0) ? "" : db_str(r, 0, 0));
	PQclear(r);
	return v;
}

/* Everything an install changes, in one team transaction. */
static int
store_install(const struct oauth_grant *g, const char *bot, const char *refresh)
{
	char secs[24];
	const char *team_p[2] = {g->team_id, g->team_name};
	const char *inst_p[8] = {
	    g->team_id, g->app_id, g->bot_user_id,        g->scopes,
	    bot,        refresh,   refresh ? secs : NULL, g->installer_user_id};
	char *installed = NULL, *expires = NULL;
	struct tx tx;
	int rc = -1;

	snprintf(secs, sizeof(secs), "%lld", g->expires_in);
	if (tx_begin(&tx, g->team_id) < 0)
		return -1;
	installed = query_value(&tx, upsert_team_sql, 2, team_p);
	expires = query_value(&tx, upsert_installation_sql, 8, inst_p);
	tx_exec(&tx, cancel_jobs_sql, 1, team_p);
	if (installed != NULL && g->installer_user_id[0] != '\0')
		enqueue_welcome(&tx, g, installed);
	/* An org's directory is each workspace's, synced when one is needed. */
	if (installed != NULL && !g->org_wide)
		sync_directory(&tx, g->team_id, installed);
	if (expires != NULL && expires[0] != '\0')
		oauth_schedule_refresh(&tx, g->team_id, strtod(expires, NULL));
	rc = tx_commit(&tx);
	free(installed);
	free(expires);
	return rc;
}

/* Seals the tokens and stores the installation. */
static int
install_grant(const struct oauth_grant *g)
{
	char *bot = vault_seal(g->access_token, g->team_id, "bot_token");
	char *refresh = NULL;
	int rc = -1;

	if (g->refresh_token != NULL)
		refresh = vault_seal(g->refresh_token, g->team_id, "refresh_token");
	if (bot == NULL || (g->refresh_token != NULL && refresh == NULL)) {
		log_error("install: sealing the tokens failed");
		goto out;
	}
	rc = store_install(g, bot, refresh);
	if (rc == 0)
		log_info("install: %s %s installed (app %s, bot %s, scopes %s, rotation %s)",
		         g->org_wide ? "org" : "team", g->team_id, g->app_id, g->bot_user_id,
		         g->scopes, g->refresh_token ? "on" : "off");
out:
	free(bot);
	free(refresh);
	return rc;
}

static const char *const outcome_names[] = {
    [SLACK_OK] = "ok",
    [SLACK_FAILED] = "failed",
    [SLACK_RATELIMITED] = "rate limited",
    [SLACK_TRANSPORT] = "transport error",
    [SLACK_NO_TOKEN] = "no token",
};

/* An exchange in the outbound engine while the request waits. */
struct exchange_wait {
	struct request *req;
	struct slack_result r;
};

/* What follows the exchange, on an HTTP worker; the answer holds the
 * tokens, so only its error code is ever logged. */
static void
install_answered(struct request *req, struct response *res, void *arg)
{
	struct exchange_wait *w = arg;
	struct slack_result *r = &w->r;
	struct oauth_grant g;
	const char *why = NULL;
	char *name = NULL, *location = NULL;

	(void)req;
	if (r->outcome != SLACK_OK) {
		log_warn("install: oauth.v2.access %s%s%s (HTTP %ld)", outcome_names[r->outcome],
		         r->error[0] ? ": " : "", r->error, r->http_status);
		error_page(
		    res, 502, "Slack did not accept the install",
		    "Slack turned down the last step of the install. Nothing was stored. "
		    "Start again; if it keeps failing, the server's Slack keys may be wrong.");
		goto out;
	}
	if (oauth_grant_parse(r->body, OAUTH_GRANT_INSTALL, &g, &why) != 0) {
		log_warn("install: oauth.v2.access answer refused: %s", why);
		error_page(res, 502, "Slack's answer was not one conch can use",
		           "Slack finished the install, but its answer was missing something conch "
		           "needs, so nothing was stored. Start again; the server's log says what "
		           "was missing.");
		goto out;
	}
	log_set_team(g.team_id);
	if (install_grant(&g) != 0) {
		error_page(res, 503, "Try again in a minute",
		           "conch could not store the install just now, so nothing was stored. "
		           "Start again in a minute.");
		goto out;
	}
	name = url_encode(g.team_name);
	location = g.org_wide
	               ? xasprintf("/installed?team=%s&org=%s&app=%s", name, g.team_id, g.app_id)
	               : xasprintf("/installed?team=%s", name);
	http_redirect(res, 302, location);
out:
	log_set_team(NULL);
	if (r->body != NULL)
		oauth_grant_wipe(r->body);
	slack_result_free(r);
	free(w);
	free(name);
	free(location);
}

/* On the engine thread: back to a worker. */
static void
exchange_answered(struct slack_result *r, void *arg)
{
	struct exchange_wait *w = arg;

	(void)r;
	http_continue(w->req, install_answered, w);
}

/* The code exchange runs in the outbound engine while the request is
 * suspended: no worker waits on Slack (install_answered finishes). */
static void
finish_install(struct request *req, const char *code)
{
	char *redirect_raw = xasprintf("%s/slack/oauth", conf.public_url);
	char *redirect = url_encode(redirect_raw);
	char *enc = url_encode(code);
	char *form = xasprintf("code=%s&redirect_uri=%s", enc, redirect);
	struct exchange_wait *w = xcalloc(1, sizeof(*w));

	w->req = req;
	http_defer(req);
	slack_call_basic_async("oauth.v2.access", form, exchange_answered, w, &w->r);
	OPENSSL_cleanse(form, strlen(form));
	free(redirect_raw);
	free(redirect);
	free(enc);
	free(form);
}

/* Slack sent the user back with error=...: consume the state so the link
 * cannot be replayed, store nothing, call nothing. */
static void
install_declined(struct response *res, const char *error, const char *state)
{
	if (param_ok(state, STATE_PARAM_MAX))
		state_consume(state, NULL);
	if (strcmp(error, "access_denied") == 0)
		error_page(res, 403, "Install cancelled",
		           "You cancelled the install in Slack, so nothing was stored. You can "
		           "start again whenever you like.");
	else
		error_page(
		    res, 400, "Slack did not finish the install",
		    "Slack sent you back without completing the install. Nothing was stored.");
}

void
oauth_http_callback(struct request *req, struct response *res)
{
	const char *error = http_query(req, "error"), *code = http_query(req, "code");
	const char *state = http_query(req, "state");
	json_t *missing;

	/* The cookie has done its job whatever happens next. */
	http_set_cookie(res, OAUTH_COOKIE, "", 0);
	if (error != NULL) {
		install_declined(res, error, state);
		return;
	}
	if ((missing = missing_keys()) != NULL) {
		not_configured_page(res, missing);
		return;
	}
	if (!param_ok(code, CODE_PARAM_MAX) || !param_ok(state, STATE_PARAM_MAX)) {
		error_page(res, 400, "This install link is incomplete",
		           "The link from Slack is missing its code or state. Start again.");
		return;
	}
	switch (state_consume(state, http_cookie(req, OAUTH_COOKIE))) {
	case STATE_OK:
		finish_install(req, code);
		break;
	case STATE_BAD:
		error_page(res, 400, "This install link has expired",
		           "This install link has expired or was already used — start again.");
		break;
	case STATE_DB:
		error_page(res, 503, "Try again in a minute",
		           "conch could not check the install link because its database did not "
		           "answer.");
		break;
	}
}

/* --- start-up ----------------------------------------------------------- */

void
oauth_init(void)
{
	jobs_register("oauth.refresh", oauth_refresh_job);
	jobs_register("team.purge", oauth_purge_job);
	jobs_register("oauth.scopes_check", oauth_scopes_check_job);
	slack_register_event("app_uninstalled", oauth_on_app_uninstalled);
	slack_register_event("tokens_revoked", oauth_on_tokens_revoked);
}
