/* /dibs and its buttons: parse, run one transaction, reply. Slack is told
 * of anything beyond the reply by jobs written in that transaction. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "billing/billing.h"
#include "conf.h"
#include "crypto.h"
#include "db.h"
#include "dibs/command.h"
#include "dibs/dibs.h"
#include "home.h"
#include "log.h"
#include "members.h"
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

/* The new release time of a hold, from PostgreSQL's epoch. */
static const char *
until_token(char *out, size_t n, const char *epoch)
{
	return slack_date_token(out, n, strtod(epoch, NULL), "{time} {date_short_pretty}");
}

static void
reply_outcome_error(struct response *res, const struct dibs_outcome *o)
{
	slack_reply_db_error(res, o->db_error);
}

/* The reply to a take, as mrkdwn (malloc'd). */
static char *
take_text(const struct dibs_outcome *o, const char *display)
{
	char *name = slack_escape(display), *text;
	struct plan plan = {0};

	switch (o->status) {
	case DIBS_ST_HOLDING:
		if (o->release_at > 0) {
			char at[24], until[SLACK_DATE_TOKEN_MAX];

			snprintf(at, sizeof(at), "%lld", (long long)o->release_at);
			text = xasprintf("*%s* is yours until %s.", name,
			                 until_token(until, sizeof(until), at));
		} else
			text = xasprintf("*%s* is yours. `/dibs off %s` when you are done.", name,
			                 name);
		break;
	case DIBS_ST_ALREADY_HOLDING:
		text = xasprintf("You already have *%s*.", name);
		break;
	case DIBS_ST_QUEUED:
		text = xasprintf("*%s* is held by <@%s>. You are #%d in the queue; you'll get a DM "
		                 "when it is yours.",
		                 name, o->holder, o->position);
		break;
	case DIBS_ST_ALREADY_QUEUED:
		text = xasprintf("You are already #%d in the queue for *%s*.", o->position, name);
		break;
	case DIBS_ST_LIMIT:
		text = xstrdup(plan_refusal(&plan, PLAN_NEW_THING));
		break;
	case DIBS_ST_NEEDS_PLAN:
		text = xstrdup(plan_refusal(&plan, PLAN_TIMED_RELEASE));
		break;
	case DIBS_ST_NO_SUCH_THING:
		text = xasprintf("There is no thing called *%s*. The team's names are strict: only "
		                 "`/dibs add` makes things; `/dibs list` shows them.",
		                 name);
		break;
	default:
		text = xstrdup(slack_db_error_text(o->db_error));
	}
	free(name);
	return text;
}

/* A name that is not a thing yet but close to some first gets the
 * question (Did you mean?) and creates nothing. */
static void
on_thing(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	char close[DIBS_SUGGEST_MAX][65];
	struct dibs_settings set;
	struct dibs_outcome o;
	char *text;
	int n;

	if ((n = dibs_suggest(tx, cmd->team_id, dc->thing, close, &set)) < 0) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	if (n > 0) {
		slack_reply(res, dibs_view_did_you_mean(
		                     cmd->user_id, dc->display, dc->has_for ? dc->seconds : 0,
		                     dc->has_reason ? dc->reason : NULL, close, n, !set.strict));
		return;
	}
	tx_commit_next(tx); /* the take is the request's last statement */
	dibs_take(tx, cmd->team_id, cmd->user_id, cmd->channel_id, cmd->response_url, dc->display,
	          dc->has_for ? dc->seconds : 0, dc->has_reason ? dc->reason : NULL, &o);
	text = take_text(&o, dc->display);
	slack_reply_text(res, text);
	free(text);
}

static void
off_thing(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	struct dibs_outcome o;
	char *name = slack_escape(dc->display);

	tx_commit_next(tx);
	dibs_release_in(tx, cmd->team_id, cmd->user_id, cmd->channel_id, cmd->response_url,
	                dc->thing, &o);
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
list_things(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	struct dibs_thing *things = NULL;
	int n, total = 0;
	const char *only = dc->verb == DIBS_Q ? dc->thing : NULL;

	tx_commit_next(tx);
	n = dibs_list(tx, cmd->team_id, only, LIST_LIMIT, &things, &total);
	if (n < 0)
		slack_reply_db_error(res, tx->error);
	else if (only && n == 0)
		reply(res, "There is no thing called *%s* yet. `/dibs on %s` creates it.",
		      dc->thing, dc->thing);
	else if (only)
		slack_reply(res, dibs_view_one(&things[0]));
	else
		slack_reply(res, dibs_view_list(things, n, total));
	dibs_things_free(things, n);
}

static void
extend_thing(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	char secs[24], until[SLACK_DATE_TOKEN_MAX];
	const char *p[4] = {cmd->team_id, dc->thing, cmd->user_id, secs};
	struct plan plan;
	PGresult *r;
	const char *st;

	/* The plan check and the change are one transaction. */
	if (plan_load(tx, cmd->team_id, &plan) < 0) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	if (!plan_allows(&plan, PLAN_TIMED_RELEASE, 0)) {
		slack_reply_text(res, plan_refusal(&plan, PLAN_TIMED_RELEASE));
		return;
	}
	snprintf(secs, sizeof(secs), "%lld", (long long)dc->seconds);
	r = tx_query(tx,
	             "SELECT status, extract(epoch FROM release_at) "
	             "FROM dibs_extend($1, $2, $3, $4::int)",
	             4, p);
	if (r == NULL) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	st = db_str(r, 0, 0);
	if (strcmp(st, "extended") == 0)
		reply(res, "*%s* is yours until %s.", dc->thing,
		      until_token(until, sizeof(until), db_str(r, 0, 1)));
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

/* A kick is always announced in the channel; the kicker hears through
 * the command's response_url if the bot may not post there (one
 * statement: dibs_kick, then dibs_respond_via on the jobs it queued). */
static void
kick_thing(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	const char *url = cmd->response_url && *cmd->response_url ? cmd->response_url : NULL;
	const char *p[5] = {cmd->team_id, dc->thing, cmd->user_id, cmd->channel_id, url};
	PGresult *r;
	const char *st;

	r = tx_query(tx,
	             "SELECT k.status, k.kicked_user, k.next_user, dibs_respond_via($1, $3, $5) "
	             "FROM dibs_kick($1, $2, $3, $4) k",
	             5, p);
	if (r == NULL) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	st = db_str(r, 0, 0);
	if (strcmp(st, "kicked") == 0)
		reply(res, "You kicked <@%s> off *%s*.%s%s%s", db_str(r, 0, 1), dc->thing,
		      db_null(r, 0, 2) ? " It is free." : " It is now <@",
		      db_null(r, 0, 2) ? "" : db_str(r, 0, 2), db_null(r, 0, 2) ? "" : ">'s.");
	else if (strcmp(st, "not_held") == 0)
		reply(res, "Nobody holds *%s*.", dc->thing);
	else
		reply(res, "There is no thing called *%s*.", dc->thing);
	PQclear(r);
}

static void
remove_thing(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	const char *p[3] = {cmd->team_id, dc->thing, cmd->user_id};
	PGresult *r;
	const char *st;

	r = tx_query(tx, "SELECT dibs_remove($1, $2, $3)", 3, p);
	if (r == NULL) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	st = db_str(r, 0, 0);
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
make_token(struct tx *tx, struct slash *cmd, struct response *res)
{
	char *token = NULL, *raw = NULL, hash[65], days[16], cap[16];
	const char *p[5] = {cmd->team_id, cmd->user_id, hash, days, cap};
	struct plan plan;
	PGresult *r = NULL;

	if (plan_load(tx, cmd->team_id, &plan) < 0)
		goto db_fail;
	if (!plan_allows(&plan, PLAN_API, 0)) {
		slack_reply_text(res, plan_refusal(&plan, PLAN_API));
		return;
	}
	raw = random_token(32);
	token = xasprintf("conch_%s", raw);
	sha256_hex(token, hash);
	snprintf(days, sizeof(days), "%d", conf.api_token_days);
	snprintf(cap, sizeof(cap), "%d", TOKENS_PER_USER);
	r = tx_query(tx,
	             "SELECT status, token_id, dibs_epoch(expires_at) "
	             "FROM api_token_create($1, $2, $3, $4::int, $5::int)",
	             5, p);
	if (r == NULL)
		goto db_fail;
	if (strcmp(db_str(r, 0, 0), "created") != 0)
		reply(res,
		      "You already have %d API tokens, the most one person may have. `/dibs token "
		      "list` shows them; `/dibs token revoke ID` makes room.",
		      TOKENS_PER_USER);
	else
		reply(res,
		      "Your API token (id %s; shown once, keep it secret):\n`%s`\nIt works until "
		      "<!date^%s^{date_short_pretty} {time}|%d days from now>. Use it as "
		      "`Authorization: Bearer <token>` with the REST API at %s/api/v1/, for "
		      "example:\n```curl -X POST -H \"Authorization: Bearer $CONCH_TOKEN\" "
		      "\"%s/api/v1/things/staging/dibs?wait=60\"```\n`/dibs token revoke %s` ends "
		      "it.",
		      db_str(r, 0, 1), token, db_str(r, 0, 2), conf.api_token_days, conf.public_url,
		      conf.public_url, db_str(r, 0, 1));
	goto out;
db_fail:
	slack_reply_db_error(res, tx->error);
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
	char tok[SLACK_DATE_TOKEN_MAX];

	buf_puts(b, db_null(r, row, col)
	                ? none
	                : slack_date_token(tok, sizeof(tok), strtod(db_str(r, row, col), NULL),
	                                   "{date_short_pretty} {time}"));
}

static void
list_tokens(struct tx *tx, struct slash *cmd, struct response *res)
{
	struct buf b;
	PGresult *r;
	int n;

	if ((r = dibs_tokens_load(tx, cmd->team_id, cmd->user_id)) == NULL) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	if ((n = PQntuples(r)) == 0) {
		PQclear(r);
		slack_reply_text(res, "You have no API tokens. `/dibs token` makes one.");
		return;
	}
	buf_init(&b);
	buf_printf(&b, "*Your API tokens* (%d of at most %d)\n", n, TOKENS_PER_USER);
	for (int i = 0; i < n; i++) {
		buf_printf(&b, "• `%s` made ", db_str(r, i, 0));
		date_or(&b, r, i, 1, "?");
		buf_puts(&b, ", last used ");
		date_or(&b, r, i, 2, "never");
		buf_puts(&b, db_str(r, i, 4)[0] == 't' ? ", *expired* " : ", expires ");
		date_or(&b, r, i, 3, "?");
		buf_puts(&b, "\n");
	}
	buf_puts(&b, "`/dibs token revoke ID` revokes one.");
	slack_reply_text(res, b.data);
	buf_free(&b);
	PQclear(r);
}

static void
revoke_token(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	int n;

	if ((n = dibs_token_revoke(tx, cmd->team_id, cmd->user_id, dc->token_id)) < 0) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	if (n == 0)
		reply(res, "You have no token %lld. `/dibs token list` shows yours.",
		      (long long)dc->token_id);
	else
		reply(res, "Token %lld is revoked: it no longer works.", (long long)dc->token_id);
}

static void
token_command(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	if (dc->token_op == DIBS_TOKEN_LIST)
		list_tokens(tx, cmd, res);
	else if (dc->token_op == DIBS_TOKEN_REVOKE)
		revoke_token(tx, cmd, dc, res);
	else
		make_token(tx, cmd, res);
}

/* The caller's holds, then their places in line, across the team. */
static void
mine(struct tx *tx, struct slash *cmd, struct response *res)
{
	const char *p[2] = {cmd->team_id, cmd->user_id};
	char until[SLACK_DATE_TOKEN_MAX];
	struct buf b;
	PGresult *r;
	int n;

	if ((r = tx_query(tx,
	                  "SELECT display_name, place, dibs_epoch(release_at) "
	                  "FROM dibs_mine($1, $2) LIMIT 100",
	                  2, p)) == NULL) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	if ((n = PQntuples(r)) == 0) {
		PQclear(r);
		slack_reply_text(res, "You hold nothing and wait for nothing. `/dibs list` shows "
		                      "every thing.");
		return;
	}
	buf_init(&b);
	buf_puts(&b, "*Your dibs*");
	for (int i = 0; i < n; i++) {
		char *name = slack_escape(db_str(r, i, 0));

		if (db_null(r, i, 1))
			buf_printf(&b, "\n• You hold *%s*", name);
		else
			buf_printf(&b, "\n• #%s in the queue for *%s*", db_str(r, i, 1), name);
		if (!db_null(r, i, 2))
			buf_printf(&b, " until %s",
			           until_token(until, sizeof(until), db_str(r, i, 2)));
		free(name);
	}
	slack_reply_text(res, b.data);
	buf_free(&b);
	PQclear(r);
}

static void
add_reply(struct response *res, PGresult *r, const struct plan *plan)
{
	char *made = slack_escape(db_str(r, 0, 1)), *had = slack_escape(db_str(r, 0, 2));

	if (strcmp(db_str(r, 0, 0), "limit") == 0)
		reply(res,
		      "Nothing was added: the %s plan allows %d things; the team has %s and this "
		      "would add %s. `/dibs remove THING` makes room, `/dibs upgrade` lifts the "
		      "limit.",
		      plan->display_name, plan->max_things, db_str(r, 0, 4), db_str(r, 0, 3));
	else if (db_null(r, 0, 1))
		reply(res, "Nothing new: *%s* already there.", had);
	else if (db_null(r, 0, 2))
		reply(res, "Added *%s*. `/dibs on THING` takes one.", made);
	else
		reply(res, "Added *%s* (already there: *%s*). `/dibs on THING` takes one.", made,
		      had);
	free(made);
	free(had);
}

/* add: all names or none, under the plan's limit (dibs_add). */
static void
add_things(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	char max[16];
	const char *p[5] = {cmd->team_id, NULL, cmd->user_id, cmd->channel_id, NULL};
	json_t *names = json_array();
	struct plan plan;
	PGresult *r = NULL;
	char *arr;

	for (int i = 0; i < dc->nadd; i++)
		json_array_append_new(names, json_string(dc->add[i]));
	arr = json_dumps(names, JSON_COMPACT);
	json_decref(names);
	p[1] = arr;
	if (plan_load(tx, cmd->team_id, &plan) < 0)
		goto db_fail;
	if (plan.max_things >= 0) {
		snprintf(max, sizeof(max), "%d", plan.max_things);
		p[4] = max;
	}
	r = tx_query(tx,
	             "SELECT status, created, existing, new_count, things FROM "
	             "dibs_add($1, ARRAY(SELECT jsonb_array_elements_text($2::jsonb)), $3, $4, "
	             "$5::int)",
	             5, p);
	if (r == NULL)
		goto db_fail;
	add_reply(res, r, &plan);
	goto out;
db_fail:
	slack_reply_db_error(res, tx->error);
out:
	PQclear(r);
	free(arr);
}

static const char directory_pending[] =
    "conch is still learning who the workspace's owners and admins are; nothing changed. "
    "Please try again in a minute.";

/* Whether the caller may manage: members_may_manage() (an unknown user's
 * lookup is queued in tx, which commits with the refusal). Says why not
 * and returns 0 unless the answer is a yes; unknown is a no. */
static int
may_manage(struct tx *tx, struct slash *cmd, const char *what, struct response *res)
{
	struct buf who;
	int v;

	if ((v = members_may_manage(tx, cmd->team_id, cmd->user_id)) < 0) {
		slack_reply_db_error(res, tx->error);
		return 0;
	}
	buf_init(&who);
	if (v == MEMBER_NO && members_name_managers(tx, cmd->team_id, &who) < 0) {
		v = -1;
		slack_reply_db_error(res, tx->error);
	} else if (v == MEMBER_UNKNOWN) {
		slack_reply_text(res, directory_pending);
	} else if (v == MEMBER_NO) {
		reply(res,
		      "%s is for the workspace's owners and admins and the person who installed "
		      "conch; nothing changed.%s%s%s",
		      what, who.len ? " Ask " : "", who.len ? who.data : "", who.len ? "." : "");
	}
	buf_free(&who);
	return v == MEMBER_YES;
}

/* kick, remove and add: for anyone, or with manage admins only for those
 * who may manage. Returns 1 to go on; else it has replied. */
static int
may_change_things(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	struct dibs_settings set;
	char *what;
	int ok;

	if (dibs_settings_load(tx, cmd->team_id, &set) < 0) {
		slack_reply_db_error(res, tx->error);
		return 0;
	}
	if (!set.admins_manage)
		return 1;
	what = xasprintf("In this workspace `/dibs %s`", dibs_verb_name(dc->verb));
	ok = may_manage(tx, cmd, what, res);
	free(what);
	return ok;
}

/* "4h", "1h30m", "90s": seconds written back the way the grammar reads them. */
static void
duration_text(char *out, size_t len, long long secs)
{
	static const struct {
		long long n;
		const char *unit;
	} units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(units) && o < len; i++)
		if (secs >= units[i].n) {
			o += (size_t)snprintf(out + o, len - o, "%lld%s", secs / units[i].n,
			                      units[i].unit);
			secs %= units[i].n;
		}
}

static void
show_settings(struct tx *tx, struct slash *cmd, struct response *res)
{
	struct dibs_settings set;
	const char *p[2] = {cmd->team_id, cmd->channel_id};
	PGresult *r = NULL;
	char checkin[48], autorel[48];
	bool quiet;

	if (dibs_settings_load(tx, cmd->team_id, &set) < 0 ||
	    (r = tx_query(tx,
	                  "SELECT (SELECT 1 FROM dibs_channel_settings WHERE team_id = $1 AND "
	                  "channel_id = $2 AND NOT announce), dibs_checkin_seconds($1), (SELECT "
	                  "autorelease_seconds FROM dibs_settings WHERE team_id = $1)",
	                  2, p)) == NULL) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	quiet = !db_null(r, 0, 0);
	duration_text(checkin, sizeof(checkin), db_null(r, 0, 1) ? 0 : atoll(db_str(r, 0, 1)));
	duration_text(autorel, sizeof(autorel), db_null(r, 0, 2) ? 0 : atoll(db_str(r, 0, 2)));
	PQclear(r);
	reply(res,
	      "*Dibs settings*\n• names: *%s*%s\n• manage: *%s*%s\n• announce in this channel: "
	      "*%s*\n• checkin: *%s*\n• autorelease: *%s*\n"
	      "Owners and admins change them with `/dibs settings KEY VALUE` (`/dibs help` lists "
	      "them).",
	      set.strict ? "strict" : "open",
	      set.strict ? " (only `/dibs add` makes things)" : " (`/dibs on` makes a new thing)",
	      set.admins_manage ? "admins" : "anyone",
	      set.admins_manage ? " (only owners and admins may kick, remove and add)"
	                        : " (anyone may kick, remove and add)",
	      quiet ? "off" : "on", checkin[0] ? checkin : "off", autorel[0] ? autorel : "off");
}

/* One statement a setting; the column is never user text. */
static const char *const set_sql[] = {
    [DIBS_SET_NAMES] = "INSERT INTO dibs_settings (team_id, names, updated_by) VALUES ($1, $2, "
                       "$3) ON CONFLICT (team_id) DO UPDATE SET names = $2, updated_by = $3, "
                       "updated_at = now()",
    [DIBS_SET_ANNOUNCE] = "INSERT INTO dibs_channel_settings (team_id, channel_id, announce, "
                          "updated_by) VALUES ($1, $4, $2::boolean, $3) ON CONFLICT (team_id, "
                          "channel_id) DO UPDATE SET announce = $2::boolean, updated_by = $3, "
                          "updated_at = now()",
    [DIBS_SET_CHECKIN] = "INSERT INTO dibs_settings (team_id, checkin_seconds, updated_by) "
                         "VALUES ($1, $2::int, $3) ON CONFLICT (team_id) DO UPDATE SET "
                         "checkin_seconds = $2::int, updated_by = $3, updated_at = now()",
    [DIBS_SET_AUTORELEASE] = "INSERT INTO dibs_settings (team_id, autorelease_seconds, "
                             "updated_by) VALUES ($1, $2::int, $3) ON CONFLICT (team_id) DO "
                             "UPDATE SET autorelease_seconds = $2::int, updated_by = $3, "
                             "updated_at = now()",
    [DIBS_SET_MANAGE] = "INSERT INTO dibs_settings (team_id, manage, updated_by) VALUES ($1, "
                        "$2, $3) ON CONFLICT (team_id) DO UPDATE SET manage = $2, updated_by "
                        "= $3, updated_at = now()",
};

static void
settings_command(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc, struct response *res)
{
	const char *column = dc->setting == DIBS_SET_NAMES ? "names" : "manage";
	const char *value = dc->setting == DIBS_SET_NAMES ? (dc->set_on ? "strict" : "open")
	                                                  : (dc->set_on ? "admins" : "anyone");
	const char *p[4] = {cmd->team_id, value, cmd->user_id, cmd->channel_id};
	char secs[24], shown[48];

	if (dc->setting == DIBS_SET_SHOW) {
		show_settings(tx, cmd, res);
		return;
	}
	if (dc->setting == DIBS_SET_CHECKIN || dc->setting == DIBS_SET_AUTORELEASE) {
		column = dc->setting == DIBS_SET_CHECKIN ? "checkin" : "autorelease";
		snprintf(secs, sizeof(secs), "%lld", (long long)dc->set_seconds);
		p[1] = dc->set_seconds ? secs : NULL;
		value = dc->set_seconds ? shown : "off";
		duration_text(shown, sizeof(shown), dc->set_seconds);
	}
	if (dc->setting == DIBS_SET_ANNOUNCE) {
		column = "announce in this channel";
		value = dc->set_on ? "on" : "off";
		p[1] = dc->set_on ? "true" : "false";
		if (!cmd->channel_id || (cmd->channel_id[0] != 'C' && cmd->channel_id[0] != 'G')) {
			slack_reply_text(res, "Announcements are set per channel: type this in the "
			                      "channel. Nothing changed.");
			return;
		}
	}
	if (!may_manage(tx, cmd, "Changing a setting", res))
		return;
	if (tx_exec(tx, set_sql[dc->setting], dc->setting == DIBS_SET_ANNOUNCE ? 4 : 3, p) < 0) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	reply(res, "Done: %s is now *%s*.", column, value);
}

void
dibs_slash(struct tx *tx, struct slash *cmd, struct response *res)
{
	struct dibs_cmd dc;
	char err[256];

	if (dibs_parse(cmd->text, &dc, err, sizeof(err)) < 0) {
		char *e = slack_escape(err);
		const char *usage = dibs_usage(cmd->text);

		if (usage)
			reply(res, "%s. Usage: %s", e, usage);
		else
			reply(res, "%s. `/dibs help` lists the commands.", e);
		free(e);
		return;
	}
	switch (dc.verb) {
	case DIBS_ON:
		on_thing(tx, cmd, &dc, res);
		break;
	case DIBS_OFF:
		off_thing(tx, cmd, &dc, res);
		break;
	case DIBS_LIST:
	case DIBS_Q:
		list_things(tx, cmd, &dc, res);
		break;
	case DIBS_EXTEND:
		extend_thing(tx, cmd, &dc, res);
		break;
	case DIBS_KICK:
		if (may_change_things(tx, cmd, &dc, res))
			kick_thing(tx, cmd, &dc, res);
		break;
	case DIBS_REMOVE:
		if (may_change_things(tx, cmd, &dc, res))
			remove_thing(tx, cmd, &dc, res);
		break;
	case DIBS_TOKEN:
		token_command(tx, cmd, &dc, res);
		break;
	case DIBS_UPGRADE:
		billing_upgrade_command(tx, cmd->team_id, cmd->user_id, res);
		break;
	case DIBS_HISTORY:
		dibs_history_command(tx, cmd, &dc, res);
		break;
	case DIBS_HELP:
		slack_reply_text(res, dibs_help_text());
		break;
	case DIBS_MINE:
		mine(tx, cmd, res);
		break;
	case DIBS_ADD:
		if (may_change_things(tx, cmd, &dc, res))
			add_things(tx, cmd, &dc, res);
		break;
	case DIBS_SETTINGS:
		settings_command(tx, cmd, &dc, res);
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
	char until[SLACK_DATE_TOKEN_MAX];
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
		    strcmp(db_str(r, 0, 0), "extended") == 0
		        ? xasprintf("Extended: *%s* is yours until %s.", thing,
		                    until_token(until, sizeof(until), db_str(r, 0, 1)))
		        : xasprintf("*%s* could not be extended (a hold ends at most 30 days out).",
		                    thing);
	} else {
		r = tx_query(tx, "SELECT status, next_user FROM dibs_off($1, $2, $3)", 3, p);
		if (r == NULL)
			return NULL;
		/* announced in the thing's last channel: a DM is no channel; the
		 * presser hears through the button's response_url if conch may
		 * not post there */
		if (dibs_announce(tx, act->team_id, thing, NULL, "released", act->user_id,
		                  db_null(r, 0, 1) ? NULL : db_str(r, 0, 1),
		                  act->response_url) < 0) {
			PQclear(r);
			return NULL;
		}
		text = xasprintf("You released *%s*.", thing);
	}
	PQclear(r);
	return text;
}

/* A thing's name from a button's value or the form's input: all of s is
 * one name by the /dibs grammar's rule (dibs_thing_name), once the spaces
 * around a typed value are dropped. 0 with thing (canonical) and display
 * (as given) filled, or -1. */
static int
name_of(const char *s, char thing[DIBS_THING_MAX + 1], char display[DIBS_THING_MAX + 1])
{
	char err[128], one[DIBS_THING_MAX + 1];
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || n > DIBS_THING_MAX)
		return -1;
	memcpy(one, s, n);
	one[n] = '\0';
	return dibs_thing_name(one, thing, display, err, sizeof(err));
}

/* A Did you mean? button: value "USER SECONDS NAME[ REASON]" (view.c).
 * It acts only for USER, who made the command; anyone else is told so.
 * The answer comes as an ephemeral message in the same channel. */
static void
suggest_action(struct tx *tx, struct slack_action *act, struct response *res)
{
	char user[32], given[DIBS_THING_MAX + 1], display[DIBS_THING_MAX + 1], *text = NULL;
	const char *reason = NULL;
	long long seconds = 0;
	struct dibs_outcome o;
	int used = 0;

	if (sscanf(act->value, "%31s %lld %n", user, &seconds, &used) != 2 || used == 0 ||
	    seconds < 0 || seconds > DIBS_DURATION_MAX ||
	    sscanf(act->value + used, "%64s", given) != 1) {
		log_warn("dibs: malformed suggestion button value");
		http_reply(res, 200, "text/plain", xstrdup(""), 0);
		return;
	}
	reason = strchr(act->value + used, ' ');
	reason = reason && reason[1] ? reason + 1 : NULL;
	/* the name must still be a thing name */
	if (name_of(given, NULL, display) < 0) {
		log_warn("dibs: malformed suggestion button value");
		http_reply(res, 200, "text/plain", xstrdup(""), 0);
		return;
	}
	if (strcmp(user, act->user_id) != 0) {
		text = xasprintf("This button was made for <@%s>; it does nothing for you. Type "
		                 "`/dibs on %s` to call dibs yourself.",
		                 user, display);
	} else {
		dibs_take(tx, act->team_id, act->user_id, act->channel_id, act->response_url,
		          display, seconds, reason, &o);
		text = take_text(&o, display);
	}
	if (act->channel_id == NULL ||
	    slack_enqueue(tx, act->team_id, "chat.postEphemeral",
	                  json_pack("{s:s, s:s, s:s}", "channel", act->channel_id, "user",
	                            act->user_id, "text", text),
	                  NULL) < 0) {
		free(text);
		http_reply_text(res, 503, "database unavailable");
		return;
	}
	free(text);
	http_reply(res, 200, "text/plain", xstrdup(""), 0);
}

/* Ends a button press in tx: the message it was on shows text (a job
 * calls chat.update, not this request), and the answer. Takes text. */
static void
finish_press(struct tx *tx, struct slack_action *act, char *text, struct response *res)
{
	if (act->channel_id && act->message_ts &&
	    slack_enqueue(tx, act->team_id, "chat.update",
	                  json_pack("{s:s, s:s, s:s, s:[o]}", "channel", act->channel_id, "ts",
	                            act->message_ts, "text", text, "blocks", slack_section(text)),
	                  NULL) < 0) {
		free(text);
		http_reply_text(res, 503, "database unavailable");
		return;
	}
	free(text);
	http_reply(res, 200, "text/plain", xstrdup(""), 0);
}

/* Keep, on a check-in DM: value "thing hold_id gen". Only the holder's
 * press on that hold's unanswered check-in counts (dibs_checkin_keep). */
static void
keep_action(struct tx *tx, struct slack_action *act, struct response *res)
{
	char thing[DIBS_THING_MAX + 1], hold[24], gen[16], *text;
	const char *p[5] = {act->team_id, thing, act->user_id, hold, gen};
	long long h = 0, g = -1;
	PGresult *r;
	int used = 0;

	if (sscanf(act->value, "%64s %lld %lld%n", thing, &h, &g, &used) != 3 ||
	    act->value[used] != '\0' || h < 1 || g < 0 || g > 1000000000) {
		log_warn("dibs: malformed keep button value");
		http_reply(res, 200, "text/plain", xstrdup(""), 0);
		return;
	}
	snprintf(hold, sizeof(hold), "%lld", h);
	snprintf(gen, sizeof(gen), "%lld", g);
	if ((r = tx_query(tx, "SELECT dibs_checkin_keep($1, lower($2), $3, $4::bigint, $5::int)", 5,
	                  p)) == NULL) {
		http_reply_text(res, 503, "database unavailable");
		return;
	}
	text = strcmp(db_str(r, 0, 0), "kept") == 0
	           ? xasprintf("Kept: *%s* stays yours; you'll be asked again later.", thing)
	           : xasprintf("This button is out of date: nothing changed.");
	PQclear(r);
	finish_press(tx, act, text, res);
}

/* Whether the press came from the App Home (a view, not a message). */
static bool
from_home(const struct slack_action *act)
{
	const char *type =
	    json_string_value(json_object_get(json_object_get(act->payload, "container"), "type"));

	return type && strcmp(type, "view") == 0;
}

/* Join the queue / Take and Leave the queue, from the App Home: value
 * "thing"; they act for the presser, as /dibs on and off would. The Home
 * is published again to show the change. */
static void
home_action(struct tx *tx, struct slack_action *act, struct response *res)
{
	char thing[DIBS_THING_MAX + 1], display[DIBS_THING_MAX + 1];
	struct dibs_outcome o;

	if (name_of(act->value, thing, display) < 0) {
		log_warn("dibs: malformed App Home button value");
		http_reply(res, 200, "text/plain", xstrdup(""), 0);
		return;
	}
	if (strcmp(act->action_id, "dibs.join") == 0)
		dibs_take(tx, act->team_id, act->user_id, NULL, NULL, display, 0, NULL, &o);
	else
		dibs_release(tx, act->team_id, act->user_id, thing, &o);
	if (o.status == DIBS_ST_ERROR || home_refresh(tx, act->team_id, act->user_id) < 0) {
		http_reply_text(res, 503, "database unavailable");
		return;
	}
	http_reply(res, 200, "text/plain", xstrdup(""), 0);
}

/* Dibs on...: opens the modal (views.open, from a job, with the press's
 * trigger_id, which Slack honours for 3 seconds). */
static void
modal_open(struct tx *tx, struct slack_action *act, struct response *res)
{
	const char *trigger = json_string_value(json_object_get(act->payload, "trigger_id"));

	if (trigger == NULL) {
		http_reply(res, 200, "text/plain", xstrdup(""), 0);
		return;
	}
	if (slack_enqueue(tx, act->team_id, "views.open",
	                  json_pack("{s:s, s:o}", "trigger_id", trigger, "view", dibs_view_modal()),
	                  NULL) < 0) {
		http_reply_text(res, 503, "database unavailable");
		return;
	}
	http_reply(res, 200, "text/plain", xstrdup(""), 0);
}

/* The text typed in one input of the submitted modal, "" when empty. */
static const char *
modal_value(struct slack_action *act, const char *block)
{
	json_t *values = json_object_get(
	    json_object_get(json_object_get(act->payload, "view"), "state"), "values");
	const char *v = json_string_value(
	    json_object_get(json_object_get(json_object_get(values, block), "value"), "value"));

	return v ? v : "";
}

/* Answers the submission with an error under one input; the modal stays. */
static void
modal_error(struct response *res, const char *block, const char *text)
{
	http_reply_json(
	    res, 200,
	    json_pack("{s:s, s:{s:s}}", "response_action", "errors", "errors", block, text));
}

/* Did you mean? in the modal: a new name close to some things is refused
 * under the thing input, naming them, as /dibs on asks (a field error is
 * plain text: no buttons; to make the new name, /dibs add it). With names
 * strict an unknown name that is close to none is refused by dibs_take.
 * Returns 1 when it answered. */
static int
modal_near_miss(struct tx *tx, struct slack_action *act, const char *thing, const char *display,
                struct response *res)
{
	char close[DIBS_SUGGEST_MAX][65];
	struct dibs_settings set;
	struct buf b;
	int n;

	if ((n = dibs_suggest(tx, act->team_id, thing, close, &set)) < 0) {
		http_reply_text(res, 503, "database unavailable");
		return 1;
	}
	if (n == 0)
		return 0;
	buf_init(&b);
	buf_printf(&b, "There is no %s%s Did you mean ", display,
	           set.strict ? " (the team's names are strict: only /dibs add makes things)."
	                      : " yet; /dibs add makes it.");
	for (int i = 0; i < n; i++)
		buf_printf(&b, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", close[i]);
	buf_puts(&b, "?");
	modal_error(res, "thing", b.data);
	buf_free(&b);
	return 1;
}

/* The modal's submission: the same checks as /dibs on (the grammar's
 * thing, duration and reason rules), then the take, announced in the
 * thing's last channel; the result comes as a DM and the App Home is
 * published again. */
static void
modal_submit(struct tx *tx, struct slack_action *act, struct response *res)
{
	char thing[DIBS_THING_MAX + 1], display[DIBS_THING_MAX + 1], err[200];
	const char *dur = modal_value(act, "duration"), *reason = modal_value(act, "reason");
	struct dibs_outcome o;
	int64_t secs = 0;
	char *text;

	if (name_of(modal_value(act, "thing"), thing, display) < 0) {
		modal_error(res, "thing", "1 to 64 letters, digits, - _ . / (one word)");
		return;
	}
	if (*dur && dibs_parse_duration(dur, &secs, err, sizeof(err)) < 0) {
		modal_error(res, "duration", err);
		return;
	}
	while (*reason == ' ')
		reason++;
	if (modal_near_miss(tx, act, thing, display, res))
		return;
	dibs_take(tx, act->team_id, act->user_id, NULL, NULL, display, secs,
	          *reason ? reason : NULL, &o);
	if (o.status == DIBS_ST_ERROR) {
		http_reply_text(res, 503, "database unavailable");
		return;
	}
	if (o.status == DIBS_ST_LIMIT || o.status == DIBS_ST_NEEDS_PLAN ||
	    o.status == DIBS_ST_NO_SUCH_THING) {
		text = take_text(&o, display);
		modal_error(res, o.status == DIBS_ST_NEEDS_PLAN ? "duration" : "thing", text);
		free(text);
		return;
	}
	text = take_text(&o, display);
	if (home_refresh(tx, act->team_id, act->user_id) < 0 ||
	    slack_enqueue(tx, act->team_id, "chat.postMessage",
	                  json_pack("{s:s, s:s}", "channel", act->user_id, "text", text),
	                  NULL) < 0) {
		free(text);
		http_reply_text(res, 503, "database unavailable");
		return;
	}
	free(text);
	http_reply(res, 200, "text/plain", xstrdup(""), 0);
}

void
dibs_action(struct tx *tx, struct slack_action *act, struct response *res)
{
	if (strcmp(act->action_id, "dibs.modal.open") == 0) {
		modal_open(tx, act, res);
		return;
	}
	if (strcmp(act->action_id, "dibs.modal") == 0) {
		const char *type = json_string_value(json_object_get(act->payload, "type"));

		if (type && strcmp(type, "view_submission") == 0)
			modal_submit(tx, act, res);
		else
			http_reply(res, 200, "text/plain", xstrdup(""), 0);
		return;
	}
	if (strcmp(act->action_id, "dibs.join") == 0 || strcmp(act->action_id, "dibs.leave") == 0) {
		home_action(tx, act, res);
		return;
	}
	if (strcmp(act->action_id, "dibs.keep") == 0) {
		keep_action(tx, act, res);
		return;
	}
	char thing[DIBS_THING_MAX + 1], hold[24];
	char *text;

	if (strncmp(act->action_id, "dibs.suggest.", 13) == 0) {
		suggest_action(tx, act, res);
		return;
	}

	if (parse_button(act->value, thing, hold) < 0) {
		log_warn("dibs: malformed button value");
		http_reply(res, 200, "text/plain", xstrdup(""), 0);
		return;
	}
	if ((text = button_act(tx, act, thing, hold)) == NULL) {
		http_reply_text(res, 503, "database unavailable");
		return;
	}
	/* The DM shows what happened; Slack is called from a job, not here. */
	if (from_home(act) && home_refresh(tx, act->team_id, act->user_id) < 0) {
		free(text);
		http_reply_text(res, 503, "database unavailable");
		return;
	}
	finish_press(tx, act, text, res);
}
