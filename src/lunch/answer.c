/* A poll DM's buttons. action_id "lunch.answer.<minutes>" or
 * "lunch.answer.no" (action ids must differ within a block), value
 * "<poll_id>:<minutes>" or "<poll_id>:no". The answer is one call of
 * lunch_answer() for the user who pressed, which also enqueues the DM's
 * update; the reply itself is an empty 200. "lunch.optout" (value
 * "<poll_id>:optout", *Stop asking me here*) is one call of lunch_optout()
 * for the poll's channel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "lunch/lunch.h"
#include "util.h"

#define VALUE_MAX  48
#define OPTOUT_MIN -2 /* parse_value's answer for "optout" */

static int
parse_value(const char *value, long long *poll, int *answer)
{
	char buf[VALUE_MAX], *colon;
	long long minutes;

	if (strlen(value) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", value);
	if ((colon = strchr(buf, ':')) == NULL)
		return -1;
	*colon = '\0';
	if (strnum(buf, 1, INT64_MAX, poll) < 0)
		return -1;
	if (strcmp(colon + 1, "no") == 0 || strcmp(colon + 1, "optout") == 0) {
		*answer = strcmp(colon + 1, "no") == 0 ? -1 : OPTOUT_MIN;
		return 0;
	}
	if (strnum(colon + 1, 0, 1439, &minutes) < 0)
		return -1;
	*answer = (int)minutes;
	return 0;
}

void
lunch_action(struct tx *tx, struct slack_action *act, struct response *res)
{
	char poll_s[24], answer_s[8];
	const char *p[6] = {act->team_id, poll_s,          act->user_id,
	                    answer_s,     act->channel_id, act->message_ts};
	long long poll;
	int answer;
	PGresult *r;
	int optout = strcmp(act->action_id, "lunch.optout") == 0;

	if ((!optout && strncmp(act->action_id, "lunch.answer", strlen("lunch.answer")) != 0) ||
	    parse_value(act->value, &poll, &answer) < 0 || optout != (answer == OPTOUT_MIN)) {
		log_info("lunch: ignored button %s with value \"%.40s\"", act->action_id,
		         act->value);
		return;
	}
	snprintf(poll_s, sizeof(poll_s), "%lld", poll);
	snprintf(answer_s, sizeof(answer_s), "%d", answer);
	r = optout ? tx_query(tx,
	                      "SELECT lunch_optout($1, p.channel_id, $3)::text FROM lunch_polls p "
	                      "WHERE p.team_id = $1 AND p.poll_id = $2::bigint",
	                      3, p)
	           : tx_query(tx, "SELECT lunch_answer($1, $2::bigint, $3, $4::int, $5, $6)", 6, p);
	if (r == NULL) {
		slack_reply_db_error(res, tx->error); /* the answer was not recorded */
		goto out;
	}
	if (PQntuples(r) == 1)
		log_debug("lunch: poll %lld: %s answered %d: %s", poll, act->user_id, answer,
		          db_str(r, 0, 0));
out:
	PQclear(r);
}
