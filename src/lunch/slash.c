/* /lunch: parse (command.c), one SQL function call in one transaction,
 * and an immediate ephemeral reply. A command that does not parse changes
 * nothing and gets the reason and the help text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "billing/billing.h"
#include "db.h"
#include "log.h"
#include "lunch/lunch.h"
#include "members.h"
#include "plans.h"
#include "util.h"

#define SUMMARY_MAX_GROUPS 40

/* "{720,780}" for an int[] parameter (malloc'd). */
static char *
times_literal(const struct lunch_cmd *lc)
{
	struct buf b;

	buf_init(&b);
	buf_putc(&b, '{');
	for (int i = 0; i < lc->ntimes; i++)
		buf_printf(&b, "%s%d", i ? "," : "", lc->times[i]);
	buf_putc(&b, '}');
	return buf_steal(&b);
}

/* Runs one statement in the request's transaction; the rows, or NULL
 * (and the reply for the failure's class) when it failed. */
static PGresult *
run(struct tx *tx, struct response *res, const char *sql, int n, const char *const *p)
{
	PGresult *r = tx_query(tx, sql, n, p);

	if (r == NULL)
		slack_reply_db_error(res, tx->error);
	return r;
}

static void
reply_free(struct response *res, char *text)
{
	slack_reply_text(res, text);
	free(text);
}

static void
do_help(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc, struct response *res)
{
	(void)tx;
	slack_reply(res, slack_msg(0, lunch_help_text(), NULL));
}

/* The reply to a poll that started. A plan with a poll size cannot be
 * checked before the channel is listed: the members job says through the
 * response_url, within seconds, whether the poll opened. So it does when
 * the member directory has no zone for the starter (tz NULL): the job asks
 * Slack, and the zone it fixes (UTC when Slack gives none) is named then. */
static char *
started_text(const struct lunch_cmd *lc, const struct plan *plan, const char *tz)
{
	if (plan->max_poll_size >= 0)
		return xasprintf(
		    "Checking who is in this channel: your %s plan's lunch polls reach "
		    "at most %d people. I'll tell you here within seconds whether it can "
		    "go out.",
		    plan->display_name, plan->max_poll_size);
	return lunch_view_opened(lc->times, lc->ntimes, lc->size, tz, 0,
	                         lc->has_close ? lc->close_at : -1, -1);
}

/* The zone a poll started now would use, when the member directory knows
 * the starter's (malloc'd), else NULL. */
static char *
starter_zone(struct tx *tx, const struct slash *cmd)
{
	const char *p[2] = {cmd->team_id, cmd->user_id};
	PGresult *r = tx_query(tx,
	                       "SELECT lunch_known_tz(tz) FROM members WHERE team_id = $1 "
	                       "AND user_id = $2 AND tz IS NOT NULL AND tz <> ''",
	                       2, p);
	char *tz = r && PQntuples(r) == 1 ? xstrdup(db_str(r, 0, 0)) : NULL;

	PQclear(r);
	return tz;
}

static void
do_start(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc, struct response *res)
{
	char size[8], close[8], remind[8], *times = times_literal(lc), *tz = NULL;
	const char *p[8] = {cmd->team_id, cmd->channel_id,
	                    cmd->user_id, times,
	                    size,         lc->has_close ? close : NULL,
	                    remind,       NULL};
	struct plan plan;
	PGresult *r = NULL;

	snprintf(size, sizeof(size), "%d", lc->size);
	snprintf(close, sizeof(close), "%d", lc->close_at);
	snprintf(remind, sizeof(remind), "%d", lc->remind);
	if (plan_load(tx, cmd->team_id, &plan) == 0) {
		tz = starter_zone(tx, cmd);
		p[7] = plan.max_poll_size >= 0 || tz == NULL ? cmd->response_url : NULL;
		r = tx_query(tx,
		             "SELECT status, poll_id, started_by FROM lunch_start_with($1, $2, $3, "
		             "$4::int[], $5::int, $6::int, $7::int, $8)",
		             8, p);
	}
	free(times);
	if (r == NULL) {
		free(tz);
		slack_reply_db_error(res, tx->error);
		return;
	}
	if (strcmp(db_str(r, 0, 0), "started") == 0)
		reply_free(res, started_text(lc, &plan, tz));
	else
		reply_free(res, xasprintf("This channel already has an open lunch poll, started by "
		                          "<@%s>. Type `/lunch close` to close it, or `/lunch "
		                          "cancel` to drop it, before starting another.",
		                          db_str(r, 0, 2)));
	free(tz);
	PQclear(r);
}

static char *
close_text(int yes, int asked)
{
	if (yes == 0)
		return xasprintf(
		    "Closed the lunch poll. Nobody of the %d people asked said yes this "
		    "time, so there are no groups.",
		    asked);
	return xasprintf("Closed the lunch poll: %d of %d people said yes. I'm forming the groups "
	                 "now and will message each group.",
	                 yes, asked);
}

static void
do_close(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc, struct response *res)
{
	const char *p[2] = {cmd->team_id, cmd->channel_id};
	PGresult *r;

	r = run(tx, res, "SELECT status, yes, asked FROM lunch_close($1, $2, NULL)", 2, p);
	if (r == NULL)
		return;
	if (strcmp(db_str(r, 0, 0), "closed") == 0)
		reply_free(res, close_text((int)strtol(db_str(r, 0, 1), NULL, 10),
		                           (int)strtol(db_str(r, 0, 2), NULL, 10)));
	else
		slack_reply_text(res,
		                 "There's no open lunch poll in this channel. Type `/lunch start` "
		                 "to open one.");
	PQclear(r);
}

/* "every weekday", "every day", "on Mon, Wed and Fri". */
static char *
days_text(unsigned days)
{
	static const char *const names[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
	int n = 0, seen = 0;
	struct buf b;

	if (days == LUNCH_WEEKDAYS)
		return xstrdup("every weekday");
	if (days == LUNCH_DAILY)
		return xstrdup("every day");
	for (int d = 0; d < 7; d++)
		n += (days >> d) & 1;
	buf_init(&b);
	buf_puts(&b, "on ");
	for (int d = 0; d < 7; d++) {
		if (!((days >> d) & 1))
			continue;
		if (seen > 0)
			buf_puts(&b, seen == n - 1 ? " and " : ", ");
		buf_puts(&b, names[d]);
		seen++;
	}
	return buf_steal(&b);
}

static void
do_schedule(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc, struct response *res)
{
	char days[8], open[8], close[8], size[8], t_open[6], t_close[6], *when, *list;
	char *times = times_literal(lc), *tz = NULL;
	const char *p[8] = {cmd->team_id, cmd->channel_id, cmd->user_id, days,
	                    open,         close,           times,        size};
	PGresult *r;

	snprintf(days, sizeof(days), "%u", lc->days);
	snprintf(open, sizeof(open), "%d", lc->open_at);
	snprintf(close, sizeof(close), "%d", lc->close_at);
	snprintf(size, sizeof(size), "%d", lc->size);
	r = run(tx, res,
	        "SELECT replaced FROM lunch_schedule_set($1, $2, $3, $4::int, $5::int, $6::int, "
	        "$7::int[], $8::int)",
	        8, p);
	free(times);
	if (r == NULL)
		return;
	/* The zone the schedule will take, when the directory already knows
	 * it; else the job asks Slack (UTC when Slack gives none). */
	tz = starter_zone(tx, cmd);
	lunch_format_time(lc->open_at, t_open);
	lunch_format_time(lc->close_at, t_close);
	when = days_text(lc->days);
	list = lunch_format_times(lc->times, lc->ntimes);
	reply_free(res,
	           xasprintf("%sA lunch poll will open in this channel %s at %s and close at "
	                     "%s, in %s, for lunch at %s in groups of about %d. "
	                     "Type `/lunch unschedule` to stop it.",
	                     db_str(r, 0, 0)[0] == 't' ? "Replaced this channel's schedule. " : "",
	                     when, t_open, t_close,
	                     tz ? tz : "your time zone as Slack gives it (UTC if it gives none)",
	                     list, lc->size));
	free(tz);
	free(list);
	free(when);
	PQclear(r);
}

static void
do_unschedule(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc, struct response *res)
{
	const char *p[2] = {cmd->team_id, cmd->channel_id};
	PGresult *r;

	r = run(tx, res, "SELECT lunch_unschedule($1, $2)", 2, p);
	if (r == NULL)
		return;
	if (db_str(r, 0, 0)[0] == 't')
		slack_reply_text(res,
		                 "Stopped this channel's scheduled lunch poll. A poll it already "
		                 "opened still closes at its time.");
	else
		slack_reply_text(res, "This channel has no scheduled lunch poll.");
	PQclear(r);
}

/* One summary line: "• 12:00: <@A>, <@B> and <@C>; <@B> picked the place". */
static void
summary_line(struct buf *b, PGresult *r, int i)
{
	char t[6], *members = xstrdup(db_str(r, i, 2));
	const char *ids[8];
	int n = lunch_split_ids(members, ids, 8);

	lunch_format_time((int)strtol(db_str(r, i, 1), NULL, 10), t);
	buf_printf(b, "\n\u2022 %s: ", t);
	for (int k = 0; k < n; k++)
		buf_printf(b, "%s<@%s>", k == 0 ? "" : k == n - 1 ? " and " : ", ", ids[k]);
	if (n == 1)
		buf_puts(b, " (nobody else chose this time)");
	else
		buf_printf(b, "; <@%s> picked the place", db_str(r, i, 3));
	free(members);
}

/* Groups by poll, newest first; each poll headed by its date, which Slack
 * shows in the reader's time zone. */
static char *
summary_text(PGresult *r, int days)
{
	int n = PQntuples(r);
	char day[16];
	const char *last = "";
	struct buf b;
	time_t at;
	struct tm tm;

	buf_init(&b);
	buf_printf(&b, "*Lunch groups in this channel, last %d day%s*", days, days == 1 ? "" : "s");
	for (int i = 0; i < n && i < SUMMARY_MAX_GROUPS; i++) {
		if (strcmp(last, db_str(r, i, 4)) != 0) {
			at = (time_t)strtoll(db_str(r, i, 0), NULL, 10);
			gmtime_r(&at, &tm);
			strftime(day, sizeof(day), "%Y-%m-%d", &tm);
			buf_printf(&b, "\n*<!date^%lld^{date_short_pretty}|%s>*", (long long)at,
			           day);
			last = db_str(r, i, 4);
		}
		summary_line(&b, r, i);
	}
	if (n > SUMMARY_MAX_GROUPS)
		buf_printf(&b, "\n\u2026and more: try `/lunch summary` with fewer days.");
	return buf_steal(&b);
}

static void
do_summary(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc, struct response *res)
{
	char days[8], limit[8];
	const char *p[4] = {cmd->team_id, cmd->channel_id, days, limit};
	PGresult *r;

	snprintf(days, sizeof(days), "%d", lc->summary_days);
	snprintf(limit, sizeof(limit), "%d", SUMMARY_MAX_GROUPS + 1);
	r = run(tx, res,
	        "SELECT floor(extract(epoch FROM p.closed_at))::bigint, g.time, "
	        "array_to_string(g.members, ','), g.picker, g.poll_id "
	        "FROM lunch_groups g JOIN lunch_polls p "
	        "ON p.team_id = g.team_id AND p.poll_id = g.poll_id "
	        "WHERE g.team_id = $1 AND p.channel_id = $2 "
	        "AND p.closed_at > now() - make_interval(days => $3::int) "
	        "ORDER BY p.closed_at DESC, g.poll_id DESC, g.group_no LIMIT $4::int",
	        4, p);
	if (r == NULL)
		return;
	if (PQntuples(r) == 0)
		reply_free(res, xasprintf("No lunch groups in this channel in the last %d day%s.",
		                          lc->summary_days, lc->summary_days == 1 ? "" : "s"));
	else
		reply_free(res, summary_text(r, lc->summary_days));
	PQclear(r);
}

static void
do_cancel(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc, struct response *res)
{
	char *line = xasprintf("The lunch poll in <#%s> was cancelled by <@%s>: there are no "
	                       "groups this time.",
	                       cmd->channel_id, cmd->user_id);
	const char *p[4] = {cmd->team_id, cmd->channel_id, cmd->user_id, line};
	PGresult *r;

	(void)lc;
	r = run(tx, res, "SELECT status, told FROM lunch_cancel_open($1, $2, $3, $4)", 4, p);
	free(line);
	if (r == NULL)
		return;
	if (strcmp(db_str(r, 0, 0), "cancelled") == 0)
		reply_free(res, xasprintf("Cancelled the lunch poll: no groups this time. I'm "
		                          "telling the %s %s I asked.",
		                          db_str(r, 0, 1),
		                          strcmp(db_str(r, 0, 1), "1") == 0 ? "person" : "people"));
	else
		slack_reply_text(res, "There's no open lunch poll in this channel to cancel.");
	PQclear(r);
}

/* optout and optin: one SQL function each, and what to say when it did
 * (true) or did not change anything. */
static const struct {
	enum lunch_verb verb;
	const char *sql;
	const char *changed, *unchanged;
} opt_rows[] = {
    {LUNCH_OPTOUT, "SELECT lunch_optout($1, $2, $3)",
     "Done: lunch polls in this channel won't ask you any more. Type `/lunch optin` to be "
     "asked again.",
     "You had already asked not to be asked here. Type `/lunch optin` to be asked again."},
    {LUNCH_OPTIN, "SELECT lunch_optin($1, $2, $3)",
     "Welcome back: the next lunch poll in this channel will ask you.",
     "You're already asked in this channel's lunch polls."},
};

static void
do_opt(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc, struct response *res)
{
	const char *p[3] = {cmd->team_id, cmd->channel_id, cmd->user_id};
	size_t i = 0;
	PGresult *r;

	while (i + 1 < ARRAY_LEN(opt_rows) && opt_rows[i].verb != lc->verb)
		i++;

	r = run(tx, res, opt_rows[i].sql, 3, p);
	if (r == NULL)
		return;
	slack_reply_text(res,
	                 db_str(r, 0, 0)[0] == 't' ? opt_rows[i].changed : opt_rows[i].unchanged);
	PQclear(r);
}

static void
do_stats(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc, struct response *res)
{
	struct lunch_stats st;

	if (lunch_stats_load(tx, cmd->team_id, cmd->channel_id, lc->summary_days, &st) < 0) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	reply_free(res, lunch_view_stats(&st, lc->summary_days, "in this channel"));
}

static void
do_settings(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc, struct response *res)
{
	const char *p[4] = {cmd->team_id, cmd->channel_id, lc->groups_in_channel ? "t" : "f",
	                    cmd->user_id};
	struct buf who;
	int may;

	buf_init(&who);
	if ((may = members_may_manage(tx, cmd->team_id, cmd->user_id)) == MEMBER_YES)
		may = tx_exec(tx, "SELECT lunch_set_groups($1, $2, $3::boolean, $4)", 4, p) < 0
		          ? -1
		          : MEMBER_YES;
	else if ((may == MEMBER_NO || may == MEMBER_UNKNOWN) &&
	         members_name_managers(tx, cmd->team_id, &who) < 0)
		may = -1;
	if (may < 0) {
		slack_reply_db_error(res, tx->error);
	} else if (may == MEMBER_YES)
		slack_reply_text(res,
		                 lc->groups_in_channel
		                     ? "Done: this channel's lunch groups will be announced in "
		                       "one message in the channel."
		                     : "Done: each of this channel's lunch groups will get a "
		                       "group DM.");
	else
		reply_free(
		    res, xasprintf("%s Only the workspace's owners and admins and whoever "
		                   "installed conch can change where groups are announced%s%s.",
		                   may == MEMBER_UNKNOWN ? "I don't know your role yet: try again "
		                                           "in a minute."
		                                         : "Sorry.",
		                   who.len ? ": ask " : "", who.len ? who.data : ""));
	buf_free(&who);
}

/* The same as /dibs upgrade: billing is one thing for both apps. */
static void
do_upgrade(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc, struct response *res)
{
	(void)lc;
	billing_upgrade_command(tx, cmd->team_id, cmd->user_id, res);
}

static const struct {
	enum lunch_verb verb;
	void (*run)(struct tx *tx, struct slash *cmd, const struct lunch_cmd *lc,
	            struct response *res);
} verbs[] = {
    {LUNCH_HELP, do_help},         {LUNCH_START, do_start},           {LUNCH_CLOSE, do_close},
    {LUNCH_SCHEDULE, do_schedule}, {LUNCH_UNSCHEDULE, do_unschedule}, {LUNCH_SUMMARY, do_summary},
    {LUNCH_UPGRADE, do_upgrade},   {LUNCH_CANCEL, do_cancel},         {LUNCH_OPTOUT, do_opt},
    {LUNCH_OPTIN, do_opt},         {LUNCH_STATS, do_stats},           {LUNCH_SETTINGS, do_settings},
};

static void
reply_error(struct response *res, const char *err)
{
	json_t *blocks = json_array();
	char *quoted = slack_escape(err); /* err quotes what the user typed */
	char *first = xasprintf("That didn't work: %s.", quoted);

	json_array_append_new(blocks, slack_section(first));
	json_array_append_new(blocks, slack_section(lunch_help_text()));
	slack_reply(res, slack_msg(0, first, blocks));
	free(first);
	free(quoted);
}

void
lunch_slash(struct tx *tx, struct slash *cmd, struct response *res)
{
	struct lunch_cmd lc;
	char err[256];

	if (lunch_parse(cmd->text, &lc, err, sizeof(err)) < 0) {
		reply_error(res, err);
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(verbs); i++) {
		if (verbs[i].verb == lc.verb) {
			verbs[i].run(tx, cmd, &lc, res);
			return;
		}
	}
	do_help(tx, cmd, &lc, res);
}
