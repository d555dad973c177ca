/* /lunch stats and the Lunch section of the App Home: the figures of
 * lunch_stats() (024_lunch_depth.sql), which say whether the grouping
 * brings together people who had not lunched together lately. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "lunch/lunch.h"
#include "util.h"

#define HOME_DAYS LUNCH_DEFAULT_STATS

int
lunch_stats_load(struct tx *tx, const char *team_id, const char *channel_id, int days,
                 struct lunch_stats *out)
{
	char d[8];
	const char *p[3] = {team_id, channel_id, d};
	long *field[5] = {&out->rounds, &out->people, &out->groups, &out->pairs, &out->fresh};
	PGresult *r;

	snprintf(d, sizeof(d), "%d", days);
	r = tx_query(tx,
	             "SELECT rounds, people, groups, pairs, new_pairs "
	             "FROM lunch_stats($1, $2, $3::int)",
	             3, p);
	if (r == NULL || PQntuples(r) != 1) {
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < 5; i++)
		*field[i] = strtol(db_str(r, 0, i), NULL, 10);
	PQclear(r);
	return 0;
}

static const char *
plural(long n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

char *
lunch_view_stats(const struct lunch_stats *s, int days, const char *where)
{
	if (s->rounds == 0)
		return xasprintf("No lunch rounds %s in the last %d %s.", where, days,
		                 plural(days, "day", "days"));
	/* Rounds with no group (nobody said yes): no share to give. */
	if (s->pairs == 0)
		return xasprintf("*Lunch %s, last %d %s*\n%ld %s, %ld %s, %ld %s.\n"
		                 "No pairs yet: nobody was put in a group with anyone.",
		                 where, days, plural(days, "day", "days"), s->rounds,
		                 plural(s->rounds, "round", "rounds"), s->people,
		                 plural(s->people, "person", "people"), s->groups,
		                 plural(s->groups, "group", "groups"));
	return xasprintf(
	    "*Lunch %s, last %d %s*\n%ld %s, %ld %s, %ld %s.\n"
	    "%ld of %ld %s (%ld%%) had not lunched together in the 90 days before "
	    "their round.",
	    where, days, plural(days, "day", "days"), s->rounds,
	    plural(s->rounds, "round", "rounds"), s->people, plural(s->people, "person", "people"),
	    s->groups, plural(s->groups, "group", "groups"), s->fresh, s->pairs,
	    plural(s->pairs, "pair", "pairs"), (s->fresh * 100 + s->pairs / 2) / s->pairs);
}

int
lunch_home_section(const char *team_id, const char *user_id, json_t *blocks)
{
	struct lunch_stats st;
	struct tx tx;
	char *text;

	(void)user_id;
	if (tx_begin(&tx, team_id) < 0 ||
	    lunch_stats_load(&tx, team_id, NULL, HOME_DAYS, &st) < 0 || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		return -1;
	}
	json_array_append_new(blocks, json_pack("{s:s}", "type", "divider"));
	text = lunch_view_stats(&st, HOME_DAYS, "in this workspace");
	json_array_append_new(blocks, slack_section(text));
	free(text);
	json_array_append_new(blocks, slack_context("*Lunch Buddies*: type `/lunch start` in a "
	                                            "channel to open a poll, `/lunch stats` there "
	                                            "for its own figures."));
	return 0;
}
