/* Lunch Buddies' messages as tables: the poll DM's zone line and
 * <!date^...> times, its view keys, the "poll opened" line, the reminder
 * and the stats figures. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "unit.h"
#include "util.h"
#include "lunch/lunch.h"

static char *
dm_json(const struct lunch_dm_view *v)
{
	json_t *m = lunch_view_poll_dm(v);
	char *s = json_dumps(m, JSON_COMPACT);

	json_decref(m);
	return s;
}

static struct lunch_dm_view
open_view(void)
{
	struct lunch_dm_view v = {.poll_id = 42,
	                          .channel_id = "C0LUNCH",
	                          .created_by = "U0ALICE",
	                          .times = {720, 810},
	                          .ntimes = 2,
	                          .size = 4,
	                          .open = 1,
	                          .tz = "Europe/Paris",
	                          .at = {1765105200, 1765110600},
	                          .close_at = 1765103400,
	                          .close_minute = 690};
	return v;
}

START_TEST(poll_dm_names_zone_and_dates_every_time)
{
	struct lunch_dm_view v = open_view();
	char *s = dm_json(&v);

	ck_assert_ptr_nonnull(strstr(s, "poll's time zone, *Europe/Paris*"));
	ck_assert_ptr_nonnull(strstr(s, "12:00 is <!date^1765105200^{time}|12:00 Europe/Paris>"));
	ck_assert_ptr_nonnull(strstr(s, "13:30 is <!date^1765110600^{time}|13:30 Europe/Paris>"));
	ck_assert_ptr_nonnull(
	    strstr(s, "The poll closes <!date^1765103400^{date_short_pretty} at {time}|11:30 "
	              "Europe/Paris>"));
	ck_assert_ptr_nonnull(strstr(s, "\"action_id\":\"lunch.optout\""));
	ck_assert_ptr_nonnull(strstr(s, "\"value\":\"42:optout\""));
	free(s);

	/* Without a closing time, no closing sentence; without instants, no zone line. */
	v.close_at = 0;
	s = dm_json(&v);
	ck_assert_ptr_null(strstr(s, "The poll closes"));
	free(s);
	memset(v.at, 0, sizeof(v.at));
	s = dm_json(&v);
	ck_assert_ptr_null(strstr(s, "<!date^"));
	free(s);
}
END_TEST

START_TEST(poll_dm_states)
{
	struct lunch_dm_view v = open_view();
	char *s;

	v.optedout = 1;
	s = dm_json(&v);
	ck_assert_ptr_nonnull(strstr(s, "You won't be asked in <#C0LUNCH> again"));
	ck_assert_ptr_null(strstr(s, "lunch.answer"));
	free(s);
	v.optedout = 0;
	v.open = 0;
	v.cancelled = 1;
	s = dm_json(&v);
	ck_assert_ptr_nonnull(strstr(s, "This poll was cancelled"));
	ck_assert_ptr_null(strstr(s, "lunch.optout"));
	free(s);
}
END_TEST

static const struct key_row {
	int open, cancelled, answered, answer, optedout;
	const char *want;
} key_rows[] = {
    {1, 0, 0, 0, 0, "open:-2"},      {1, 0, 1, 720, 0, "open:720"},
    {1, 0, 1, -1, 1, "open:-1:out"}, {0, 0, 1, -1, 0, "closed:-1"},
    {0, 1, 0, 0, 0, "cancelled:-2"}, {0, 1, 1, 780, 0, "cancelled:780"},
};

START_TEST(view_keys)
{
	const struct key_row *r = &key_rows[_i];
	struct lunch_dm_view v = {.open = r->open,
	                          .cancelled = r->cancelled,
	                          .answered = r->answered,
	                          .answer = r->answer,
	                          .optedout = r->optedout};
	char key[32];

	lunch_view_key(&v, key, sizeof(key));
	ck_assert_str_eq(key, r->want);
}
END_TEST

static const struct opened_row {
	int ntimes, close_minute;
	const char *tz;
	long long close_at;
	long asked;
	const char *want;
} opened_rows[] = {
    {1, -1, NULL, 0, -1,
     "Lunch poll opened for 12:00, in groups of about 4. Slack hasn't told me your time zone "
     "yet: I'll say here within seconds which zone the times are in, and DM everyone in this "
     "channel; type `/lunch close` when it's time to form the groups."},
    {2, 705, NULL, 0, -1,
     "Lunch poll opened for 12:00 or 13:30, in groups of about 4. Slack hasn't told me your "
     "time zone yet: I'll say here within seconds which zone the times are in, and DM "
     "everyone in this channel; it closes by itself at 11:45 in that zone (or type `/lunch "
     "close` sooner)."},
    {2, 705, "Europe/Berlin", 0, -1,
     "Lunch poll opened for 12:00 or 13:30, in groups of about 4 (times in Europe/Berlin). "
     "I'm sending everyone in this channel a DM to answer; it closes by itself at 11:45 "
     "Europe/Berlin (or type `/lunch close` sooner)."},
    {1, 705, "Asia/Kolkata", 1765172700, 1,
     "Lunch poll opened for 12:00, in groups of about 4 (times in Asia/Kolkata). I'm sending 1 "
     "person in this channel a DM to answer; it closes by itself "
     "<!date^1765172700^{date_short_pretty} at {time}|11:45 Asia/Kolkata> (or type `/lunch "
     "close` sooner)."},
    {1, -1, "UTC", 0, 12,
     "Lunch poll opened for 12:00, in groups of about 4 (times in UTC). I'm sending 12 people "
     "in this channel a DM to answer; type `/lunch close` when it's time to form the groups."},
};

START_TEST(opened_lines)
{
	const struct opened_row *r = &opened_rows[_i];
	static const int times[] = {720, 810};
	char *s =
	    lunch_view_opened(times, r->ntimes, 4, r->tz, r->close_at, r->close_minute, r->asked);

	ck_assert_str_eq(s, r->want);
	free(s);
}
END_TEST

static const struct stats_row {
	struct lunch_stats st;
	int days;
	const char *want;
} stats_rows[] = {
    {{0, 0, 0, 0, 0}, 30, "No lunch rounds in this channel in the last 30 days."},
    {{0, 0, 0, 0, 0}, 1, "No lunch rounds in this channel in the last 1 day."},
    {{2, 6, 4, 8, 6},
     30,
     "*Lunch in this channel, last 30 days*\n2 rounds, 6 people, 4 groups.\n6 of 8 pairs (75%) "
     "had not lunched together in the 90 days before their round."},
    {{1, 1, 0, 0, 0},
     7,
     "*Lunch in this channel, last 7 days*\n1 round, 1 person, 0 groups.\nNo pairs yet: nobody "
     "was put in a group with anyone."},
    {{3, 6, 5, 9, 6},
     30,
     "*Lunch in this channel, last 30 days*\n3 rounds, 6 people, 5 groups.\n6 of 9 pairs (67%) "
     "had not lunched together in the 90 days before their round."},
};

START_TEST(stats_lines)
{
	const struct stats_row *r = &stats_rows[_i];
	char *s = lunch_view_stats(&r->st, r->days, "in this channel");

	ck_assert_str_eq(s, r->want);
	free(s);
}
END_TEST

START_TEST(reminder_line)
{
	char *s = lunch_view_reminder("C0LUNCH", 1765103400, 690, "Europe/Paris");

	ck_assert_str_eq(s, ":alarm_clock: A reminder: the lunch poll in <#C0LUNCH> closes "
	                    "<!date^1765103400^{time}|11:30 Europe/Paris> and you haven't answered "
	                    "yet. Pick a time in the poll above, or say no.");
	free(s);
}
END_TEST

static Suite *
lunch_view_suite(void)
{
	Suite *s = suite_create("lunch_view");
	TCase *tc = tcase_create("messages");

	tcase_add_test(tc, poll_dm_names_zone_and_dates_every_time);
	tcase_add_test(tc, poll_dm_states);
	tcase_add_loop_test(tc, view_keys, 0, (int)ARRAY_LEN(key_rows));
	tcase_add_loop_test(tc, opened_lines, 0, (int)ARRAY_LEN(opened_rows));
	tcase_add_loop_test(tc, stats_lines, 0, (int)ARRAY_LEN(stats_rows));
	tcase_add_test(tc, reminder_line);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(lunch_view_suite)
