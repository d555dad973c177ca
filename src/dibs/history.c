/* Hold history: `/dibs history THING [DAYS]`, its API twin and the daily
 * purge. The rows are written by triggers (migrations/016_dibs_history.sql)
 * whenever a hold ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dibs/command.h"
#include "dibs/dibs.h"
#include "jobs.h"
#include "slack.h"
#include "util.h"

#define HISTORY_SHOWN 40 /* rows in a Slack reply (Slack's text limits) */

static const struct {
	const char *word; /* as stored and in the API */
	const char *text; /* as shown in Slack */
} endings[] = {
    {"released", "released"}, {"handed_over", "handed over"},     {"kicked", "kicked"},
    {"expired", "expired"},   {"auto_released", "auto-released"},
};

const char *
dibs_history_ending_text(const char *word)
{
	for (size_t i = 0; i < ARRAY_LEN(endings); i++)
		if (strcmp(endings[i].word, word) == 0)
			return endings[i].text;
	return word;
}

PGresult *
dibs_history_load(struct tx *tx, const char *team_id, const char *thing, int days, int *exists)
{
	char d[16];
	const char *p[3] = {team_id, thing, d};
	PGresult *r;

	snprintf(d, sizeof(d), "%d", days);
	r = tx_query(tx, "SELECT 1 FROM things WHERE team_id = $1 AND name = lower($2)", 2, p);
	if (r == NULL)
		return NULL;
	*exists = PQntuples(r) > 0;
	PQclear(r);
	return tx_query(tx,
	                "SELECT user_id, dibs_epoch(since), dibs_epoch(ended_at), ending, "
	                "ended_by, reason FROM dibs_history($1, $2, $3::int)",
	                3, p);
}

static void
date(struct buf *b, const char *epoch)
{
	char tok[SLACK_DATE_TOKEN_MAX];

	buf_puts(b, slack_date_token(tok, sizeof(tok), strtod(epoch, NULL),
	                             "{date_short_pretty} {time}"));
}

void
dibs_history_command(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc,
                     struct response *res)
{
	struct buf b;
	PGresult *r;
	int exists = 0, n;
	char *name = slack_escape(dc->display);

	if ((r = dibs_history_load(tx, cmd->team_id, dc->thing, dc->days, &exists)) == NULL) {
		slack_reply_db_error(res, tx->error);
		free(name);
		return;
	}
	n = PQntuples(r);
	buf_init(&b);
	if (n == 0 && !exists)
		buf_printf(&b, "There is no thing called *%s*. `/dibs list` shows them all.", name);
	else if (n == 0)
		buf_printf(&b, "Nobody held *%s* in the last %d day%s.", name, dc->days,
		           dc->days == 1 ? "" : "s");
	else
		buf_printf(&b, "*%s* in the last %d day%s (newest first):", name, dc->days,
		           dc->days == 1 ? "" : "s");
	for (int i = 0; i < n && i < HISTORY_SHOWN; i++) {
		buf_printf(&b, "\n• <@%s> from ", db_str(r, i, 0));
		date(&b, db_str(r, i, 1));
		if (db_null(r, i, 2)) {
			buf_puts(&b, ", holding now");
			continue;
		}
		buf_puts(&b, " to ");
		date(&b, db_str(r, i, 2));
		buf_printf(&b, ", %s", dibs_history_ending_text(db_str(r, i, 3)));
		if (!db_null(r, i, 4))
			buf_printf(&b, " by <@%s>", db_str(r, i, 4));
	}
	if (n > HISTORY_SHOWN)
		buf_printf(&b, "\n…and %d earlier; `GET /api/v1/things/%s/history` has them all.",
		           n - HISTORY_SHOWN, dc->thing);
	slack_reply_text(res, b.data);
	buf_free(&b);
	PQclear(r);
	free(name);
}

/* Daily: holds that ended more than 90 days ago are forgotten, in
 * batches (dibs_history_purge, a definer function: the rows span teams). */
static enum job_result
history_cleanup_job(struct job *job)
{
	struct tx tx;
	PGresult *r;
	long n;

	do {
		if (tx_begin_system(&tx) < 0 ||
		    (r = tx_query(&tx, "SELECT dibs_history_purge(10000)", 0, NULL)) == NULL) {
			tx_rollback(&tx);
			snprintf(job->error, sizeof(job->error), "database unavailable");
			return JOB_RETRY;
		}
		n = strtol(db_str(r, 0, 0), NULL, 10);
		PQclear(r);
		if (tx_commit(&tx) < 0) {
			snprintf(job->error, sizeof(job->error), "history cleanup failed");
			return JOB_RETRY;
		}
	} while (n > 0);
	return JOB_DONE;
}

void
dibs_history_init(void)
{
	jobs_register_daily("dibs.history_cleanup", history_cleanup_job);
}
