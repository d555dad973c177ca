/* /dibs and its buttons: parse, run one transaction, reply. Slack is told
 * of anything beyond the reply by jobs written in that transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing/billing.h"
#include "conf.h"
#include "crypto.h"
#include "db.h"
#include "dibs/command.h"
#include "dibs/dibs.h"
#include "log.h"
#include "plans.h"
#include "slack.h"
#include "util.h"
#include "vault.h"

#define LIST_LIMIT         40
#define TOKENS_PER_USER    20
#define EXTEND_BUTTON_SECS 3600

/* Replies with mrkdwn built by printf; user text must be escaped first. */
static void __attribute__((format(printf, 2, 3))) reply(struct response *res, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	slack_reply_text(res, b.data);
	buf_free(&b);
}

static void
reply_outcome_error(struct response *res, const struct dibs_outcome *o)
{
	slack_reply_db_error(res, o->db_error);
}

static void
on_thing(struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	struct dibs_outcome o;
	char *name = slack_escape(dc->display);
	struct plan plan = {0};

	dibs_take(cmd->team_id, cmd->user_id, cmd->channel_id, dc->display,
	          dc->has_for ? dc->seconds : 0, dc->has_reason ? dc->reason : NULL, &o);
	switch (o.status) {
	case DIBS_ST_HOLDING:
		if (o.release_at > 0)
			reply(res,
			      "*%s* is yours until <!date^%lld^{time} {date_short_pretty}|later>.",
			      name, (long long)o.release_at);
		else
			reply(res, "*%s* is yours. `/dibs off %s` when you are done.", name, name);
		break;
	case DIBS_ST_ALREADY_HOLDING:
		reply(res, "You already have *%s*.", name);
		break;
	case DIBS_ST_QUEUED:
		reply(res,
		      "*%s* is held by <@%s>. You are #%d in the queue; you'll get a DM when it "
		      "is yours.",
		      name, o.holder, o.position);
		break;
	case DIBS_ST_ALREADY_QUEUED:
		reply(res, "You are already #%d in the queue for *%s*.", o.position, name);
		break;
	case DIBS_ST_LIMIT:
		slack_reply_text(res, plan_refusal(&plan, PLAN_NEW_THING));
		break;
	case DIBS_ST_NEEDS_PLAN:
		slack_reply_text(res, plan_refusal(&plan, PLAN_TIMED_RELEASE));
		break;
	default:
		reply_outcome_error(res, &o);
	}
	free(name);
}

static void
off_thing(struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	struct dibs_outcome o;
	char *name = slack_escape(dc->display);

	dibs_release(cmd->team_id, cmd->user_id, dc->thing, &o);
	switch (o.status) {
	case DIBS_ST_RELEASED:
		if (o.next_user[0])
			reply(res, "You released *%s*. It is now <@%s>'s.", name, o.next_user);
		else
			reply(res, "You released *%s*. It is free.", name);
		break;
	case DIBS_ST_LEFT_QUEUE:
		reply(res, "You left the queue for *%s*.", name);
		break;
	case DIBS_ST_NOT_HOLDING:
		reply(res, "You don't hold *%s* and aren't in its queue.", name);
		break;
	case DIBS_ST_NO_SUCH_THING:
		reply(res, "There is no thing called *%s*. `/dibs list` shows them all.", name);
		break;
	default:
		reply_outcome_error(res, &o);
	}
	free(name);
}

static void
list_things(struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	struct dibs_thing *things = NULL;
	struct tx tx;
	int n, total = 0;
	const char *only = dc->verb == DIBS_Q ? dc->thing : NULL;

	if (tx_begin(&tx, cmd->team_id) < 0) {
		tx_rollback(&tx);
		slack_reply_db_error(res, tx.error);
		return;
	}
	n = dibs_load(&tx, cmd->team_id, only, LIST_LIMIT, &things, &total);
	tx_commit(&tx);
	if (n < 0)
		slack_reply_db_error(res, tx.error);
	else if (only && n == 0)
		reply(res, "There is no thing called *%s* yet. `/dibs on %s` creates it.",
		      dc->thing, dc->thing);
	else if (only)
		slack_reply(res, dibs_view_one(&things[0]));
	else
		slack_reply(res, dibs_view_list(things, n, total));
	dibs_things_free(things, n);
}

/* Runs one SQL function returning (status, ...) for the caller's team and
 * returns the status word in st (or "" on failure). */
static PGresult *
run_status(struct tx *tx, const char *team, const char *sql, int n, const char *const *p)
{
	PGresult *r;

	if (tx_begin(tx, team) < 0) {
		tx_rollback(tx);
		return NULL;
	}
	r = tx_query(tx, sql, n, p);
	if (r == NULL || tx_commit(tx) < 0) {
		if (r)
			PQclear(r);
		tx_rollback(tx);
		return NULL;
	}
	return r;
}

static void
extend_thing(struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	char secs[24];
	const char *p[4] = {cmd->team_id, dc->thing, cmd->user_id, secs};
	struct plan plan;
	struct tx tx;
	PGresult *r;
	const char *st;

	/* The plan check and the change are one transaction. */
	if (tx_begin(&tx, cmd->team_id) < 0 || plan_load(&tx, cmd->team_id, &plan) < 0) {
		tx_rollback(&tx);
		slack_reply_db_error(res, tx.error);
		return;
	}
	if (!plan_allows(&plan, PLAN_TIMED_RELEASE, 0)) {
		tx_rollback(&tx);
		slack_reply_text(res, plan_refusal(&plan, PLAN_TIMED_RELEASE));
		return;
	}
	snprintf(secs, sizeof(secs), "%lld", (long long)dc->seconds);
	r = tx_query(&tx,
	             "SELECT status, extract(epoch FROM release_at) "
	             "FROM dibs_extend($1, $2, $3, $4::int)",
	             4, p);
	if (r == NULL || tx_commit(&tx) < 0) {
		if (r)
			PQclear(r);
		tx_rollback(&tx);
		slack_reply_db_error(res, tx.error);
		return;
	}
	st = PQgetvalue(r, 0, 0);
	if (strcmp(st, "extended") == 0)
		reply(res, "*%s* is yours until <!date^%s^{time} {date_short_pretty}|later>.",
		      dc->thing, PQgetvalue(r, 0, 1));
	else if (strcmp(st, "not_timed") == 0)
		reply(res, "Your hold on *%s* has no end time, so there is nothing to extend.",
		      dc->thing);
	else if (strcmp(st, "too_long") == 0)
		slack_reply_text(res, "A hold can end at most 30 days from now.");
	else if (strcmp(st, "no_such_thing") == 0)
		reply(res, "There is no thing called *%s*.", dc->thing);
	else
		reply(res, "You don't hold *%s*.", dc->thing);
	PQclear(r);
}

static void
kick_thing(struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	const char *p[4] = {cmd->team_id, dc->thing, cmd->user_id, cmd->channel_id};
	struct tx tx;
	PGresult *r;
	const char *st;

	r = run_status(&tx, cmd->team_id,
	               "SELECT status, kicked_user, next_user FROM dibs_kick($1, $2, $3, $4)", 4,
	               p);
	if (r == NULL) {
		slack_reply_db_error(res, tx.error);
		return;
	}
	st = PQgetvalue(r, 0, 0);
	if (strcmp(st, "kicked") == 0)
		reply(res, "You kicked <@%s> off *%s*.%s%s%s", PQgetvalue(r, 0, 1), dc->thing,
		      PQgetisnull(r, 0, 2) ? " It is free." : " It is now <@",
		      PQgetisnull(r, 0, 2) ? "" : PQgetvalue(r, 0, 2),
		      PQgetisnull(r, 0, 2) ? "" : ">'s.");
	else if (strcmp(st, "not_held") == 0)
		reply(res, "Nobody holds *%s*.", dc->thing);
	else
		reply(res, "There is no thing called *%s*.", dc->thing);
	PQclear(r);
}

static void
remove_thing(struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	const char *p[3] = {cmd->team_id, dc->thing, cmd->user_id};
	struct tx tx;
	PGresult *r;
	const char *st;

	r = run_status(&tx, cmd->team_id, "SELECT dibs_remove($1, $2, $3)", 3, p);
	if (r == NULL) {
		slack_reply_db_error(res, tx.error);
		return;
	}
	st = PQgetvalue(r, 0, 0);
	if (strcmp(st, "removed") == 0)
		reply(res, "Removed *%s*.", dc->thing);
	else if (strcmp(st, "held") == 0)
		reply(res, "*%s* is held; it can be removed once it is free.", dc->thing);
	else
		reply(res, "There is no thing called *%s*.", dc->thing);
	PQclear(r);
}

/* A token is shown once; only its SHA-256 is stored. The cap and the
 * insert are one SQL call under a lock on the user (api_token_create). */
static void
make_token(struct slash *cmd, struct response *res)
{
	char *token = NULL, *raw = NULL, hash[65], days[16], cap[16];
	const char *p[5] = {cmd->team_id, cmd->user_id, hash, days, cap};
	struct plan plan;
	struct tx tx;
	PGresult *r = NULL;

	if (tx_begin(&tx, cmd->team_id) < 0 || plan_load(&tx, cmd->team_id, &plan) < 0)
		goto db_fail;
	if (!plan_allows(&plan, PLAN_API, 0)) {
		tx_rollback(&tx);
		slack_reply_text(res, plan_refusal(&plan, PLAN_API));
		return;
	}
	raw = random_token(32);
	token = xasprintf("conch_%s", raw);
	sha256_hex(token, hash);
	snprintf(days, sizeof(days), "%d", conf.api_token_days);
	snprintf(cap, sizeof(cap), "%d", TOKENS_PER_USER);
	r = tx_query(&tx,
	             "SELECT status, token_id, dibs_epoch(expires_at) "
	             "FROM api_token_create($1, $2, $3, $4::int, $5::int)",
	             5, p);
	if (r == NULL || tx_commit(&tx) < 0)
		goto db_fail;
	if (strcmp(PQgetvalue(r, 0, 0), "created") != 0)
		reply(res,
		      "You already have %d API tokens, the most one person may have. `/dibs token "
		      "list` shows them; `/dibs token revoke ID` makes room.",
		      TOKENS_PER_USER);
	else
		reply(res,
		      "Your API token (id %s; shown once, keep it secret):\n`%s`\nIt works until "
		      "<!date^%s^{date_short_pretty} {time}|%d days from now>. Use it as "
		      "`Authorization: Bearer <token>` with the REST API at /api/v1/; `/dibs token "
		      "revoke %s` ends it.",
		      PQgetvalue(r, 0, 1), token, PQgetvalue(r, 0, 2), conf.api_token_days,
		      PQgetvalue(r, 0, 1));
	goto out;
db_fail:
	tx_rollback(&tx);
	slack_reply_db_error(res, tx.error);
out:
	PQclear(r);
	if (token)
		vault_free_secret(token);
	if (raw)
		vault_free_secret(raw);
}

static void
date_or(struct buf *b, PGresult *r, int row, int col, const char *none)
{
	if (PQgetisnull(r, row, col))
		buf_puts(b, none);
	else
		buf_printf(b, "<!date^%s^{date_short_pretty} {time}|%s>", PQgetvalue(r, row, col),
		           PQgetvalue(r, row, col));
}

static void
list_tokens(struct slash *cmd, struct response *res)
{
	struct buf b;
	PGresult *r;
	struct tx tx;
	int n;

	if (tx_begin(&tx, cmd->team_id) < 0 ||
	    (r = dibs_tokens_load(&tx, cmd->team_id, cmd->user_id)) == NULL) {
		tx_rollback(&tx);
		slack_reply_db_error(res, tx.error);
		return;
	}
	tx_commit(&tx);
	if ((n = PQntuples(r)) == 0) {
		PQclear(r);
		slack_reply_text(res, "You have no API tokens. `/dibs token` makes one.");
		return;
	}
	buf_init(&b);
	buf_printf(&b, "*Your API tokens* (%d of at most %d)\n", n, TOKENS_PER_USER);
	for (int i = 0; i < n; i++) {
		buf_printf(&b, "• `%s` made ", PQgetvalue(r, i, 0));
		date_or(&b, r, i, 1, "?");
		buf_puts(&b, ", last used ");
		date_or(&b, r, i, 2, "never");
		buf_puts(&b, PQgetvalue(r, i, 4)[0] == 't' ? ", *expired* " : ", expires ");
		date_or(&b, r, i, 3, "?");
		buf_puts(&b, "\n");
	}
	buf_puts(&b, "`/dibs token revoke ID` revokes one.");
	slack_reply_text(res, b.data);
	buf_free(&b);
	PQclear(r);
}

static void
revoke_token(struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	struct tx tx;
	int n;

	if (tx_begin(&tx, cmd->team_id) < 0 ||
	    (n = dibs_token_revoke(&tx, cmd->team_id, cmd->user_id, dc->token_id)) < 0 ||
	    tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		slack_reply_db_error(res, tx.error);
		return;
	}
	if (n == 0)
		reply(res, "You have no token %lld. `/dibs token list` shows yours.",
		      (long long)dc->token_id);
	else
		reply(res, "Token %lld is revoked: it no longer works.", (long long)dc->token_id);
}

static void
token_command(struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	if (dc->token_op == DIBS_TOKEN_LIST)
		list_tokens(cmd, res);
	else if (dc->token_op == DIBS_TOKEN_REVOKE)
		revoke_token(cmd, dc, res);
	else
		make_token(cmd, res);
}

void
dibs_slash(struct slash *cmd, struct response *res)
{
	struct dibs_cmd dc;
	char err[256];

	if (dibs_parse(cmd->text, &dc, err, sizeof(err)) < 0) {
		char *e = slack_escape(err);
		reply(res, "%s\n\n%s", e, dibs_help_text());
		free(e);
		return;
	}
	switch (dc.verb) {
	case DIBS_ON:
		on_thing(cmd, &dc, res);
		break;
	case DIBS_OFF:
		off_thing(cmd, &dc, res);
		break;
	case DIBS_LIST:
	case DIBS_Q:
		list_things(cmd, &dc, res);
		break;
	case DIBS_EXTEND:
		extend_thing(cmd, &dc, res);
		break;
	case DIBS_KICK:
		kick_thing(cmd, &dc, res);
		break;
	case DIBS_REMOVE:
		remove_thing(cmd, &dc, res);
		break;
	case DIBS_TOKEN:
		token_command(cmd, &dc, res);
		break;
	case DIBS_UPGRADE:
		billing_upgrade_command(cmd->team_id, cmd->user_id, res);
		break;
	case DIBS_HELP:
		slack_reply_text(res, dibs_help_text());
		break;
	}
}

/* --- buttons ----------------------------------------------------------- */

/* A button's value is "thing hold_id" (view.c). */
static int
parse_button(const char *value, char thing[DIBS_THING_MAX + 1], char hold[24])
{
	const char *sp = strchr(value, ' ');
	size_t n = sp ? (size_t)(sp - value) : 0;
	long long id;

	if (sp == NULL || n == 0 || n > DIBS_THING_MAX || strnum(sp + 1, 1, INT64_MAX, &id) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789-_./", value[i]))
			return -1;
	memcpy(thing, value, n);
	thing[n] = '\0';
	snprintf(hold, 24, "%lld", id);
	return 0;
}

/* Acts for the presser only, and only on the hold the button was made
 * for: the thing's row is locked first, so the check and the change are
 * one step. Returns the text that replaces the DM, or NULL on error. */
static char *
button_act(struct tx *tx, struct slack_action *act, const char *thing, const char *hold)
{
	const char *p[4] = {act->team_id, thing, act->user_id, hold};
	int extend = strcmp(act->action_id, "dibs.extend") == 0;
	struct plan plan;
	PGresult *r;
	char *text;

	if (tx_exec(tx, "SELECT dibs_lock_thing($1, $2)", 2, p) < 0)
		return NULL;
	r = tx_query(tx,
	             "SELECT 1 FROM holds WHERE team_id = $1 AND thing = $2 AND user_id = $3 "
	             "AND hold_id = $4::bigint",
	             4, p);
	if (r == NULL)
		return NULL;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return xasprintf("This button is out of date: you no longer hold *%s* under it.",
		                 thing);
	}
	PQclear(r);
	if (extend) {
		if (plan_load(tx, act->team_id, &plan) < 0)
			return NULL;
		if (!plan_allows(&plan, PLAN_TIMED_RELEASE, 0))
			return xstrdup(plan_refusal(&plan, PLAN_TIMED_RELEASE));
		r = tx_query(
		    tx,
		    "SELECT status, extract(epoch FROM release_at) FROM dibs_extend($1, $2, $3, "
		    "3600)",
		    3, p);
		if (r == NULL)
			return NULL;
		text =
		    strcmp(PQgetvalue(r, 0, 0), "extended") == 0
		        ? xasprintf("Extended: *%s* is yours until <!date^%s^{time} "
		                    "{date_short_pretty}|later>.",
		                    thing, PQgetvalue(r, 0, 1))
		        : xasprintf("*%s* could not be extended (a hold ends at most 30 days out).",
		                    thing);
	} else {
		r = tx_query(tx, "SELECT status, next_user FROM dibs_off($1, $2, $3)", 3, p);
		if (r == NULL)
			return NULL;
		text = xasprintf("You released *%s*.", thing);
	}
	PQclear(r);
	return text;
}

void
dibs_action(struct slack_action *act, struct response *res)
{
	char thing[DIBS_THING_MAX + 1], hold[24];
	struct tx tx;
	char *text;

	if (parse_button(act->value, thing, hold) < 0) {
		log_warn("dibs: malformed button value");
		http_reply(res, 200, "text/plain", xstrdup(""), 0);
		return;
	}
	if (tx_begin(&tx, act->team_id) < 0 || (text = button_act(&tx, act, thing, hold)) == NULL) {
		tx_rollback(&tx);
		http_reply_text(res, 503, "database unavailable");
		return;
	}
	/* The DM shows what happened; Slack is called from a job, not here. */
	if (act->channel_id && act->message_ts)
		slack_enqueue(&tx, act->team_id, "chat.update",
		              json_pack("{s:s, s:s, s:s, s:[o]}", "channel", act->channel_id, "ts",
		                        act->message_ts, "text", text, "blocks",
		                        slack_section(text)),
		              NULL);
	free(text);
	if (tx_commit(&tx) < 0) {
		http_reply_text(res, 503, "database unavailable");
		return;
	}
	http_reply(res, 200, "text/plain", xstrdup(""), 0);
}
