/* Slack's three inbound endpoints: /slack/commands, /slack/interactivity
 * and /slack/events, each verified, admitted (replay and install check)
 * and dispatched to the handler a feature registered; events deduplicated. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "form.h"
#include "jobs.h"
#include "log.h"
#include "slack.h"
#include "slack_registry.h"
#include "teams.h"
#include "util.h"

#define COMMAND_TEXT_MAX 4000

static const char *
sig_reason(enum slack_sig sig)
{
	switch (sig) {
	case SLACK_SIG_MISSING:
		return "missing or malformed signature";
	case SLACK_SIG_STALE:
		return "stale timestamp";
	default:
		return "invalid signature";
	}
}

/* 0 when the request is Slack's; otherwise res holds the refusal. */
static int
verify_request(struct request *req, struct response *res)
{
	const char *secret = conf.slack_signing_secret;
	enum slack_sig sig;

	if (secret == NULL || *secret == '\0') {
		http_reply_text(res, 503, "Slack is not configured: set slack_signing_secret");
		return -1;
	}
	sig = slack_verify(secret, http_header(req, "X-Slack-Request-Timestamp"),
	                   http_header(req, "X-Slack-Signature"), req->body, req->body_len,
	                   now_unix());
	if (sig != SLACK_SIG_OK) {
		log_warn("slack: %s refused: %s", req->path, sig_reason(sig));
		http_reply_text(res, 401, sig_reason(sig));
		return -1;
	}
	return 0;
}

static void
reply_empty(struct response *res)
{
	http_reply(res, 200, "text/plain; charset=utf-8", xstrdup(""), 0);
}

/* A handler that set nothing still owes Slack its 200. */
static void
ensure_reply(struct response *res)
{
	if (res->status == 0 && res->body == NULL)
		reply_empty(res);
}

/* --- org-wide installs ------------------------------------------------- */

/* s when it is an enterprise (org) id, else NULL. */
static const char *
enterprise_id(const char *s)
{
	return slack_id_valid(s, "E") ? s : NULL;
}

/* The org of a command from an org-wide install, else NULL. */
static const char *
form_enterprise(const struct form *form)
{
	const char *org = form_get(form, "is_enterprise_install");

	if (org == NULL || strcmp(org, "true") != 0)
		return NULL;
	return enterprise_id(form_get(form, "enterprise_id"));
}

/* The org of a button or modal payload from an org-wide install, else NULL. */
static const char *
payload_enterprise(json_t *payload)
{
	if (!json_is_true(json_object_get(payload, "is_enterprise_install")))
		return NULL;
	return enterprise_id(
	    json_string_value(json_object_get(json_object_get(payload, "enterprise"), "id")));
}

const char *
slack_event_enterprise(json_t *envelope)
{
	json_t *auth = json_array_get(json_object_get(envelope, "authorizations"), 0);
	const char *org = json_string_value(json_object_get(auth, "enterprise_id"));

	if (!json_is_true(json_object_get(auth, "is_enterprise_install")))
		return NULL;
	if (org == NULL)
		org = json_string_value(json_object_get(envelope, "enterprise_id"));
	return enterprise_id(org);
}

/* Every command and button first records its signature and needs the
 * team installed: conch_slack_request (migrations/009_replay_rate.sql,
 * and 021_enterprise.sql, which first joins a workspace of an org-wide
 * install, enterprise, to the org's installation) does both. It is the
 * first statement of the request's transaction, sent with BEGIN and the
 * team scope in one round trip, and it commits with the handler's work:
 * a request whose work is rolled back leaves no signature, and one whose
 * work committed cannot be replayed. A signature seen before is a replay
 * (Slack never resends commands or button presses, and X-Slack-Retry-Num
 * is not signed, so nothing earns an exception): 401, nothing processed.
 * Returns 1 with tx open when the request may go on; otherwise fills res
 * and leaves tx closed. */
static int
admit_request(struct request *req, struct tx *tx, const char *team_id, const char *enterprise,
              struct response *res)
{
	const char *p[4] = {team_id, http_header(req, "X-Slack-Signature"),
	                    http_header(req, "X-Slack-Request-Timestamp"), enterprise};
	PGresult *r =
	    tx_begin_with(tx, team_id, "SELECT conch_slack_request($1, $2, $3::bigint, $4)", 4, p);
	const char *verdict = db_str(r, 0, 0);
	char *url, *text;

	if (r == NULL) {
		slack_reply_db_error(res, tx->error);
		return 0;
	}
	if (strcmp(verdict, "installed") == 0) {
		PQclear(r);
		return 1;
	}
	if (strcmp(verdict, "replayed") == 0) {
		log_warn("slack: %s refused: signature already used", req->path);
		http_reply_text(res, 401, "request already received");
		tx_rollback(tx);
	} else {
		url = team_install_url();
		text =
		    xasprintf("conch isn't installed in this workspace yet. Install it: %s", url);
		slack_reply_text(res, text);
		free(text);
		free(url);
		tx_commit(tx); /* the signature: a replay of it is refused too */
	}
	PQclear(r);
	return 0;
}

/* A request's handler, with what it needs: one of the two is set. */
struct handling {
	slash_handler slash;
	struct slash *cmd;
	action_handler action;
	struct slack_action *act;
};

/* Admits the request and runs its handler in one transaction, then
 * commits. A serialization failure or deadlock, which rolled everything
 * back (the signature too), runs the whole request once more. A commit
 * that fails after the handler thought it was done replaces its reply:
 * nothing it said happened did. */
static void
handle(struct request *req, const char *team_id, const char *enterprise, const struct handling *h,
       struct response *res)
{
	enum tx_end end;
	struct tx tx;

	for (int attempt = 0;; attempt++) {
		if (!admit_request(req, &tx, team_id, enterprise, res))
			return;
		if (h->slash)
			h->slash(&tx, h->cmd, res);
		else
			h->action(&tx, h->act, res);
		if ((end = tx_end(&tx, attempt)) != TX_AGAIN)
			break;
		log_info("slack: %s rolled back (%s); running it again", req->path, tx.sqlstate);
		http_reply_reset(res);
	}
	if (end == TX_LOST && h->action) /* buttons and forms answer 503, as their handlers do */
		http_reply_text(res, 503, "database unavailable");
	else if (end == TX_LOST)
		slack_reply_db_error(res, tx.error);
	ensure_reply(res);
}

/* --- inbound: slash commands ------------------------------------------ */

static const char *
field_or_empty(const struct form *form, const char *key)
{
	const char *v = form_get(form, key);

	return v ? v : "";
}

static char *
trimmed(const char *s)
{
	const char *end = s + strlen(s);

	while (*s && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	return xstrndup(s, (size_t)(end - s));
}

/* Fills cmd from the form; on a missing field fills res and returns -1. */
static int
slash_from_form(const struct form *form, struct slash *cmd, struct response *res)
{
	static const char *const required[] = {"team_id", "user_id", "channel_id", "command"};
	char *msg;

	for (size_t i = 0; i < ARRAY_LEN(required); i++) {
		const char *v = form_get(form, required[i]);

		if (v == NULL || *v == '\0') {
			msg = xasprintf("missing field: %s", required[i]);
			http_reply_text(res, 400, msg);
			free(msg);
			return -1;
		}
	}
	cmd->team_id = form_get(form, "team_id");
	cmd->user_id = form_get(form, "user_id");
	cmd->channel_id = form_get(form, "channel_id");
	cmd->command = form_get(form, "command");
	cmd->user_name = field_or_empty(form, "user_name");
	cmd->response_url = field_or_empty(form, "response_url");
	cmd->trigger_id = field_or_empty(form, "trigger_id");
	return 0;
}

void
slack_http_commands(struct request *req, struct response *res)
{
	struct form form = {0};
	struct slash cmd = {0};
	char *text = NULL;
	slash_handler fn;

	if (verify_request(req, res) < 0)
		return;
	if (form_parse(req->body, req->body_len, &form) < 0) {
		http_reply_text(res, 400, "malformed form");
		goto out;
	}
	if (slash_from_form(&form, &cmd, res) < 0)
		goto out;
	log_set_team(cmd.team_id);
	text = trimmed(field_or_empty(&form, "text"));
	cmd.text = text;
	if (strlen(text) > COMMAND_TEXT_MAX) {
		slack_reply_text(res, "That command is too long.");
		goto out;
	}
	fn = slack_command_find(cmd.command);
	if (fn == NULL) {
		slack_reply_text(res, "Unknown command");
		goto out;
	}
	handle(req, cmd.team_id, form_enterprise(&form),
	       &(struct handling){.slash = fn, .cmd = &cmd}, res);
out:
	free(text);
	form_free(&form);
	log_set_team(NULL);
}

/* --- inbound: interactivity ------------------------------------------- */

static const char *
json_path_string(json_t *root, const char *a, const char *b)
{
	return json_string_value(json_object_get(json_object_get(root, a), b));
}

int
slack_parse_action(json_t *payload, struct slack_action *act)
{
	json_t *first = json_array_get(json_object_get(payload, "actions"), 0);
	const char *value = json_string_value(json_object_get(first, "value"));

	act->payload = payload;
	act->team_id = json_path_string(payload, "team", "id");
	if (act->team_id == NULL)
		act->team_id = json_path_string(payload, "user", "team_id");
	act->user_id = json_path_string(payload, "user", "id");
	act->channel_id = json_path_string(payload, "channel", "id");
	if (act->channel_id == NULL)
		act->channel_id = json_path_string(payload, "container", "channel_id");
	act->message_ts = json_path_string(payload, "container", "message_ts");
	act->response_url = json_string_value(json_object_get(payload, "response_url"));
	act->action_id = json_string_value(json_object_get(first, "action_id"));
	act->value = value ? value : "";
	if (!act->team_id || !*act->team_id || !act->user_id || !*act->user_id || !act->action_id)
		return -1;
	return 0;
}

static void
dispatch_action(struct request *req, json_t *payload, struct response *res)
{
	struct slack_action act = {0};
	action_handler fn;

	if (slack_parse_action(payload, &act) < 0) {
		http_reply_text(res, 400, "malformed payload");
		return;
	}
	log_set_team(act.team_id);
	fn = slack_action_find(act.action_id);
	if (fn == NULL) {
		log_info("slack: no handler for action %s", act.action_id);
		reply_empty(res);
		return;
	}
	handle(req, act.team_id, payload_enterprise(payload),
	       &(struct handling){.action = fn, .act = &act}, res);
}

/* --- view_submission (dibs-slack): a modal's submit goes to the action
 * handler registered for its callback_id's prefix, as an action with that
 * callback_id as action_id, no value, and the payload (view.state.values
 * holds the inputs). The handler's reply closes the modal (empty) or shows
 * errors ({"response_action": "errors", ...}). */
static void
dispatch_view(struct request *req, json_t *payload, struct response *res)
{
	json_t *user = json_object_get(payload, "user");
	struct slack_action act = {.payload = payload, .value = ""};
	action_handler fn;

	act.team_id = json_string_value(json_object_get(json_object_get(payload, "team"), "id"));
	if (act.team_id == NULL)
		act.team_id = json_string_value(json_object_get(user, "team_id"));
	act.user_id = json_string_value(json_object_get(user, "id"));
	act.action_id =
	    json_string_value(json_object_get(json_object_get(payload, "view"), "callback_id"));
	if (act.team_id == NULL || act.user_id == NULL || act.action_id == NULL) {
		http_reply_text(res, 400, "malformed payload");
		return;
	}
	log_set_team(act.team_id);
	fn = slack_action_find(act.action_id);
	if (fn == NULL) {
		reply_empty(res);
		return;
	}
	handle(req, act.team_id, payload_enterprise(payload),
	       &(struct handling){.action = fn, .act = &act}, res);
}
/* --- end view_submission --- */

void
slack_http_interactivity(struct request *req, struct response *res)
{
	struct form form = {0};
	json_t *payload = NULL;
	const char *raw, *type;

	if (verify_request(req, res) < 0)
		return;
	if (form_parse(req->body, req->body_len, &form) < 0) {
		http_reply_text(res, 400, "malformed form");
		goto out;
	}
	raw = form_get(&form, "payload");
	if (raw == NULL || (payload = json_loads(raw, 0, NULL)) == NULL ||
	    !json_is_object(payload)) {
		http_reply_text(res, 400, "malformed payload");
		goto out;
	}
	type = json_string_value(json_object_get(payload, "type"));
	if (type != NULL && strcmp(type, "view_submission") == 0)
		dispatch_view(req, payload, res);
	else if (type == NULL || strcmp(type, "block_actions") != 0)
		reply_empty(res);
	else
		dispatch_action(req, payload, res);
out:
	json_decref(payload);
	form_free(&form);
	log_set_team(NULL);
}

/* --- inbound: events -------------------------------------------------- */

const char *
slack_event_team(json_t *envelope)
{
	const char *team = json_string_value(json_object_get(envelope, "team_id"));
	json_t *auth = json_array_get(json_object_get(envelope, "authorizations"), 0);

	if (team == NULL || *team == '\0')
		team = json_string_value(json_object_get(auth, "team_id"));
	if (team == NULL || *team == '\0')
		team = slack_event_enterprise(envelope);
	return team;
}

/* An event from a workspace of an org-wide install: the workspace joins
 * the org's installation first (a team row naming the org), so that its
 * handlers find the org's token. 0, or -1 when the database failed. */
static int
event_join(struct tx *tx, const char *team, const char *org)
{
	const char *p[2] = {team, org};

	if (org == NULL || strcmp(team, org) == 0)
		return 0;
	return tx_exec(tx, "SELECT conch_join_enterprise($1, $2)", 2, p);
}

/* Record, then handle, then commit, in one transaction: the event_id's
 * row is the claim. A delivery whose handler fails (503) rolls its record
 * back, so Slack's retry is handled again; a second delivery while the
 * first is in flight waits on the first one's row, then finds it there
 * (already handled) or gone (the first failed: this one handles it). */
static void
event_callback(json_t *envelope, struct response *res)
{
	json_t *event = json_object_get(envelope, "event");
	const char *event_id = json_string_value(json_object_get(envelope, "event_id"));
	const char *type = json_string_value(json_object_get(event, "type"));
	const char *team = slack_event_team(envelope);
	const char *p[3] = {event_id, team, type};
	event_handler fn;
	enum tx_end end;
	struct tx tx;
	PGresult *r;
	int fresh;

	if (!event_id || !*event_id || !type || !team || !*team) {
		http_reply_text(res, 400, "malformed event");
		return;
	}
	log_set_team(team);
	fn = slack_event_find(type);
	for (int attempt = 0;; attempt++) {
		r = tx_begin_with(
		    &tx, team,
		    "INSERT INTO slack_events (event_id, team_id, type) "
		    "VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING RETURNING 1",
		    3, p);
		if (r == NULL) {
			http_reply_text(res, 503, "database unavailable");
			return;
		}
		fresh = PQntuples(r) == 1;
		PQclear(r);
		if (!fresh) {
			log_debug("slack: event %s already handled", event_id);
			tx_rollback(&tx);
			reply_empty(res);
			return;
		}
		if (fn && (event_join(&tx, team, slack_event_enterprise(envelope)) < 0 ||
		           fn(&tx, team, event, envelope) < 0))
			tx_rollback(&tx); /* the record goes too: Slack's retry is handled */
		if ((end = tx_end(&tx, attempt)) != TX_AGAIN)
			break;
	}
	if (end == TX_ENDED && !tx.failed) {
		reply_empty(res);
	} else {
		log_warn("slack: %s event %s not handled; Slack will retry", type, event_id);
		http_reply_text(res, 503, "event not handled; retry later");
	}
}

void
slack_http_events(struct request *req, struct response *res)
{
	json_t *envelope;
	const char *type, *challenge;

	if (verify_request(req, res) < 0)
		return;
	envelope = json_loadb(req->body, req->body_len, 0, NULL);
	if (!json_is_object(envelope)) {
		http_reply_text(res, 400, "malformed JSON");
		goto out;
	}
	type = json_string_value(json_object_get(envelope, "type"));
	if (type && strcmp(type, "url_verification") == 0) {
		challenge = json_string_value(json_object_get(envelope, "challenge"));
		if (challenge == NULL)
			http_reply_text(res, 400, "missing challenge");
		else
			http_reply(res, 200, "text/plain; charset=utf-8", xstrdup(challenge),
			           strlen(challenge));
	} else if (type && strcmp(type, "event_callback") == 0) {
		event_callback(envelope, res);
	} else {
		reply_empty(res);
	}
out:
	json_decref(envelope);
	log_set_team(NULL);
}

/* --- replies ---------------------------------------------------------- */

/* Slack retries an event for minutes, not days: a week of event ids is
 * plenty for dedupe. Deletes in batches through the received_at index. */
static enum job_result
events_cleanup_job(struct job *job)
{
	return jobs_delete_batches(job,
	                           "DELETE FROM slack_events WHERE event_id IN (SELECT event_id "
	                           "FROM slack_events WHERE received_at < now() - interval "
	                           "'7 days' LIMIT 10000)");
}

/* A signature is refused as stale 300 s after its timestamp; ten minutes
 * leaves room for clocks that differ between instances. */
static enum job_result
signatures_cleanup_job(struct job *job)
{
	return jobs_delete_batches(job, "DELETE FROM slack_signatures WHERE signature IN (SELECT "
	                                "signature FROM slack_signatures WHERE signed_at < now() - "
	                                "interval '10 minutes' LIMIT 10000)");
}

void
slack_init(void)
{
	slack_api_init();
	jobs_register_daily("slack.events_cleanup", events_cleanup_job);
	jobs_register_daily("slack.signatures_cleanup", signatures_cleanup_job);
}
