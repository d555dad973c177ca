/* The /lunch grammar, as a table: text in, command or error out. */
#include <string.h>

#include <jansson.h>

#include "unit.h"
#include "util.h"
#include "lunch/command.h"

#define T(h, m) ((h)*60 + (m))
#define NOON    T(12, 0)
#define MWF     (LUNCH_MON | LUNCH_MON << 2 | LUNCH_MON << 4)

/* err is a piece the error must contain; NULL for text that parses. */
struct row {
	const char *text;
	struct lunch_cmd want;
	const char *err;
};

#define HELP(text)                                                                                 \
	{                                                                                          \
		text, {.verb = LUNCH_HELP}, NULL                                                   \
	}
#define VERB(text, v)                                                                              \
	{                                                                                          \
		text, {.verb = v}, NULL                                                            \
	}
#define BAD(text, piece)                                                                           \
	{                                                                                          \
		text, {.verb = LUNCH_HELP}, piece                                                  \
	}
#define START(text, n, sz, ...)                                                                    \
	{                                                                                          \
		text, {.verb = LUNCH_START, .ntimes = n, .times = {__VA_ARGS__}, .size = sz}, NULL \
	}
#define SCHEDULE(text, d, open, close, sz)                                                         \
	{                                                                                          \
		text,                                                                              \
		    {.verb = LUNCH_SCHEDULE,                                                       \
		     .ntimes = 1,                                                                  \
		     .times = {NOON},                                                              \
		     .size = sz,                                                                   \
		     .days = d,                                                                    \
		     .open_at = open,                                                              \
		     .close_at = close},                                                           \
		    NULL                                                                           \
	}
#define TIMED(text, close, rem)                                                                    \
	{                                                                                          \
		text,                                                                              \
		    {.verb = LUNCH_START,                                                          \
		     .ntimes = 1,                                                                  \
		     .times = {NOON},                                                              \
		     .size = 4,                                                                    \
		     .close_at = close,                                                            \
		     .has_close = 1,                                                               \
		     .remind = rem},                                                               \
		    NULL                                                                           \
	}
#define STATS(text, d)                                                                             \
	{                                                                                          \
		text, {.verb = LUNCH_STATS, .summary_days = d}, NULL                               \
	}
#define SETTINGS(text, in_channel)                                                                 \
	{                                                                                          \
		text, {.verb = LUNCH_SETTINGS, .groups_in_channel = in_channel}, NULL              \
	}
#define SUMMARY(text, d)                                                                           \
	{                                                                                          \
		text, {.verb = LUNCH_SUMMARY, .summary_days = d}, NULL                             \
	}

static const struct row rows[] = {
    /* help */
    HELP(""),
    HELP("   \t "),
    HELP("help"),
    HELP("HELP"),
    BAD("help me", "does not take `me`"),
    BAD("lunch", "unknown command `lunch`"),
    BAD("starts", "unknown command `starts`"),
    /* start */
    START("start", 1, 4, NOON),
    START("start 11:30", 1, 4, T(11, 30)),
    START("start 13:00 11:30 12:15", 3, 4, T(11, 30), T(12, 15), T(13, 0)),
    START("start 9:05", 1, 4, T(9, 5)),
    START("start 23:59 00:00", 2, 4, 0, T(23, 59)),
    START("start size=6", 1, 6, NOON),
    START("start 12:00 size=2", 1, 2, NOON),
    START("start size=8 12:30", 1, 8, T(12, 30)),
    START("Start 12:00 SIZE=3", 1, 3, NOON),
    START("\tstart\n12:00  size=5 ", 1, 5, NOON),
    START("start\xc2\xa0" /* a no-break space */
          "12:45",
          1, 4, T(12, 45)),
    START("start 6:00 1:00 5:00 2:00 4:00 3:00", 6, 4, T(1, 0), T(2, 0), T(3, 0), T(4, 0), T(5, 0),
          T(6, 0)),
    BAD("start 1:00 2:00 3:00 4:00 5:00 6:00 7:00", "at most 6 times"),
    BAD("start 24:00", "`24:00` is not a time"),
    BAD("start 12:60", "`12:60` is not a time"),
    BAD("start 12:5", "`12:5` is not a time"),
    BAD("start 123:00", "`123:00` is not a time"),
    BAD("start :30", "`:30` is not a time"),
    BAD("start 12", "`12` is not a time"),
    BAD("start -1:00", "`-1:00` is not a time"),
    BAD("start +9:00", "`+9:00` is not a time"),
    BAD("start 12:00 12:00", "`12:00` is given twice"),
    BAD("start 9:30 09:30", "`09:30` is given twice"),
    BAD("start size=1", "from 2 to 8"),
    BAD("start size=9", "`size=9`: the group size"),
    BAD("start size=+4", "from 2 to 8"),
    BAD("start size=", "from 2 to 8"),
    BAD("start size=4x", "from 2 to 8"),
    BAD("start size=4 size=5", "group size is given twice"),
    BAD("start size 4", "`size=N`"),
    BAD("start noon", "`/lunch start` does not take `noon`"),
    /* start ... close HH:MM remind=D */
    TIMED("start close 11:30", T(11, 30), 0),
    TIMED("start 12:00 close 11:30 remind=30m", T(11, 30), 30),
    TIMED("start remind=1h close 10:00", T(10, 0), 60),
    TIMED("start CLOSE 9:00 REMIND=1H30M", T(9, 0), 90),
    TIMED("start close 11:00 remind=45min", T(11, 0), 45),
    TIMED("start close 11:00 remind=12h", T(11, 0), 720),
    {"start 13:00 12:30 size=3 close 12:00 remind=15m",
     {.verb = LUNCH_START,
      .ntimes = 2,
      .times = {T(12, 30), T(13, 0)},
      .size = 3,
      .close_at = T(12, 0),
      .has_close = 1,
      .remind = 15},
     NULL},
    BAD("start close", "`close` needs a time"),
    BAD("start close noon", "`noon` is not a time"),
    BAD("start close 11:00 close 11:30", "closing time is given twice"),
    BAD("start remind=30m", "a reminder needs a closing time"),
    BAD("start close 11:00 remind=30", "`remind=30`: write the reminder"),
    BAD("start close 11:00 remind=0m", "write the reminder"),
    BAD("start close 11:00 remind=13h", "at most 12h"),
    BAD("start close 11:00 remind=30m1h", "write the reminder"),
    BAD("start close 11:00 remind=1h1h", "write the reminder"),
    BAD("start close 11:00 remind=", "write the reminder"),
    BAD("start close 11:00 remind=-5m", "write the reminder"),
    BAD("start close 11:00 remind=10m remind=20m", "reminder is given twice"),
    BAD("start close 11:00 remind 10m", "`remind=DURATION`"),
    /* cancel, optout, optin */
    VERB("cancel", LUNCH_CANCEL),
    VERB("optout", LUNCH_OPTOUT),
    VERB("OptIn", LUNCH_OPTIN),
    BAD("cancel it", "`/lunch cancel` does not take `it`"),
    BAD("optout now", "`/lunch optout` does not take `now`"),
    /* stats */
    STATS("stats", 30),
    STATS("stats 7", 7),
    STATS("stats 365", 365),
    BAD("stats 0", "from 1 to 365"),
    BAD("stats 366", "from 1 to 365"),
    BAD("stats 7 7", "`/lunch stats` does not take `7`"),
    /* settings */
    SETTINGS("settings groups channel", 1),
    SETTINGS("settings groups dm", 0),
    SETTINGS("SETTINGS Groups Channel", 1),
    BAD("settings", "`/lunch settings groups dm`"),
    BAD("settings size 4", "`/lunch settings groups dm`"),
    BAD("settings groups", "write `groups dm`"),
    BAD("settings groups email", "write `groups dm`"),
    BAD("settings groups dm please", "does not take `please`"),
    /* close */
    VERB("close", LUNCH_CLOSE),
    VERB("CLOSE", LUNCH_CLOSE),
    BAD("close now", "`/lunch close` does not take `now`"),
    /* upgrade */
    VERB("upgrade", LUNCH_UPGRADE),
    VERB("Upgrade ", LUNCH_UPGRADE),
    BAD("upgrade pro", "`/lunch upgrade` does not take `pro`"),
    /* schedule */
    SCHEDULE("schedule weekdays 11:00 close 11:45", LUNCH_WEEKDAYS, T(11, 0), T(11, 45), 4),
    SCHEDULE("schedule daily 9:00 close 11:30 size=5", LUNCH_DAILY, T(9, 0), T(11, 30), 5),
    SCHEDULE("schedule mon,wed,fri 10:00 close 11:00", MWF, T(10, 0), T(11, 0), 4),
    SCHEDULE("schedule SUN,Mon 10:00 CLOSE 10:01", LUNCH_MON | LUNCH_SUN, T(10, 0), T(10, 1), 4),
    SCHEDULE("schedule Weekdays 00:00 close 23:59", LUNCH_WEEKDAYS, 0, T(23, 59), 4),
    SCHEDULE("schedule sat 10:00 close 11:00", LUNCH_MON << 5, T(10, 0), T(11, 0), 4),
    BAD("schedule", "needs the days"),
    BAD("schedule weekdays", "needs the time the poll opens"),
    BAD("schedule weekdays 11:00", "needs `close` and a time"),
    BAD("schedule weekdays 11:00 close", "needs the time the poll closes"),
    BAD("schedule weekdays 11:00 at 11:30",
        "expected `close HH:MM` after the opening time, not `at`"),
    BAD("schedule weekdays 11:00 close 11:00", "11:00 is not after 11:00"),
    BAD("schedule weekdays 11:00 close 9:30", "09:30 is not after 11:00"),
    BAD("schedule weekdays 25:00 close 26:00", "`25:00` is not a time"),
    BAD("schedule weekdays 11:00 close 11:3", "`11:3` is not a time"),
    BAD("schedule monday 10:00 close 11:00", "`monday` is not a day"),
    BAD("schedule mon,,fri 10:00 close 11:00", "`mon,,fri` is not a day"),
    BAD("schedule mon,wed, 10:00 close 11:00", "`mon,wed,` is not a day"),
    BAD("schedule mon,tues 10:00 close 11:00", "`tues` is not a day"),
    BAD("schedule mon,MON 10:00 close 11:00", "`MON` is listed twice"),
    BAD("schedule 10:00 close 11:00", "`10:00` is not a day"),
    BAD("schedule weekdays 11:00 close 11:30 size=9", "from 2 to 8"),
    BAD("schedule weekdays 11:00 close 11:30 size=3 size=3", "given twice"),
    BAD("schedule weekdays 11:00 close 11:30 12:00", "does not take `12:00`"),
    /* unschedule */
    VERB("unschedule", LUNCH_UNSCHEDULE),
    BAD("unschedule all", "`/lunch unschedule` does not take `all`"),
    /* summary */
    SUMMARY("summary", 7),
    SUMMARY("summary 30", 30),
    SUMMARY("summary 1", 1),
    SUMMARY("Summary 90", 90),
    SUMMARY("summary 007", 7),
    BAD("summary 0", "`0`: the number of days must be a whole number from 1 to 90"),
    BAD("summary 91", "from 1 to 90"),
    BAD("summary -5", "from 1 to 90"),
    BAD("summary week", "`week`"),
    BAD("summary 7 14", "`/lunch summary` does not take `14`"),
};

static void
check_row(const struct row *r)
{
	struct lunch_cmd got;
	char err[200] = "untouched";
	int rc = lunch_parse(r->text, &got, err, sizeof(err));

	if (r->err != NULL) {
		ck_assert_msg(rc == -1, "\"%s\" parsed", r->text);
		ck_assert_msg(strstr(err, r->err) != NULL, "\"%s\": error \"%s\" lacks \"%s\"",
		              r->text, err, r->err);
		ck_assert_int_eq(got.verb, LUNCH_HELP);
		return;
	}
	ck_assert_msg(rc == 0, "\"%s\": %s", r->text, err);
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(got.verb, r->want.verb);
	ck_assert_int_eq(got.ntimes, r->want.ntimes);
	for (int i = 0; i < got.ntimes; i++)
		ck_assert_int_eq(got.times[i], r->want.times[i]);
	ck_assert_int_eq(got.size, r->want.size);
	ck_assert_uint_eq(got.days, r->want.days);
	ck_assert_int_eq(got.open_at, r->want.open_at);
	ck_assert_int_eq(got.close_at, r->want.close_at);
	ck_assert_int_eq(got.summary_days, r->want.summary_days);
	ck_assert_int_eq(got.has_close, r->want.has_close);
	ck_assert_int_eq(got.remind, r->want.remind);
	ck_assert_int_eq(got.groups_in_channel, r->want.groups_in_channel);
}

START_TEST(table)
{
	check_row(&rows[_i]);
}
END_TEST

START_TEST(table_is_big_enough)
{
	ck_assert_uint_ge(ARRAY_LEN(rows), 40);
}
END_TEST

/* Errors are repeated to Slack inside JSON: jansson refuses bad UTF-8. */
static void
assert_json_safe(const char *text)
{
	char err[200];
	struct lunch_cmd cmd;
	json_t *j;

	ck_assert_int_eq(lunch_parse(text, &cmd, err, sizeof(err)), -1);
	j = json_string(err);
	ck_assert_msg(j != NULL, "error for \"%s\" is not valid UTF-8", text);
	json_decref(j);
	ck_assert_ptr_null(strchr(err, '\n'));
}

START_TEST(errors_quote_input_safely)
{
	char cut[80];

	assert_json_safe("start \xff\xfe");
	assert_json_safe("start \xc3");
	assert_json_safe("start \xed\xa0\x80"); /* a surrogate */
	assert_json_safe("start \xe0\x80\x80"); /* overlong */
	assert_json_safe("start \x01\x02\x1b[31m");
	/* The cut at 32 bytes falls inside a character: it must not split it. */
	assert_json_safe("start x\xf0\x9f\x8d\x95\xf0\x9f\x8d\x95\xf0\x9f\x8d\x95\xf0\x9f\x8d\x95"
	                 "\xf0\x9f\x8d\x95\xf0\x9f\x8d\x95\xf0\x9f\x8d\x95\xf0\x9f\x8d\x95"
	                 "\xf0\x9f\x8d\x95\xf0\x9f\x8d\x95");
	assert_json_safe(
	    "a\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	memset(cut, 'x', sizeof(cut) - 1);
	cut[sizeof(cut) - 1] = '\0';
	{
		char err[200];
		struct lunch_cmd cmd;

		ck_assert_int_eq(lunch_parse(cut, &cmd, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "xxx..."));
		ck_assert_uint_lt(strlen(err), 120);
	}
	{
		char err[200];
		struct lunch_cmd cmd;

		ck_assert_int_eq(lunch_parse("start `12:00`", &cmd, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "`?12:00?`"));
	}
}
END_TEST

START_TEST(small_or_missing_error_buffers)
{
	struct lunch_cmd cmd;
	char err[8];

	memset(err, 'z', sizeof(err));
	ck_assert_int_eq(lunch_parse("start 99:99", &cmd, err, sizeof(err)), -1);
	ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
	ck_assert_int_eq(lunch_parse("start 99:99", &cmd, NULL, 0), -1);
	ck_assert_int_eq(lunch_parse("start 99:99", &cmd, err, 0), -1);
	ck_assert_int_eq(lunch_parse(NULL, &cmd, err, sizeof(err)), 0);
	ck_assert_int_eq(cmd.verb, LUNCH_HELP);
}
END_TEST

START_TEST(help_names_every_command)
{
	static const char *const words[] = {"start",    "close",
	                                    "schedule", "unschedule",
	                                    "summary",  "help",
	                                    "size=N",   "weekdays",
	                                    "upgrade",  "cancel",
	                                    "optout",   "optin",
	                                    "stats",    "settings groups dm|channel",
	                                    "remind=",  "close HH:MM"};
	const char *help = lunch_help_text();
	json_t *j = json_string(help);

	ck_assert_ptr_nonnull(j);
	json_decref(j);
	for (size_t i = 0; i < ARRAY_LEN(words); i++)
		ck_assert_msg(strstr(help, words[i]) != NULL, "help lacks %s", words[i]);
}
END_TEST

static Suite *
lunch_parse_suite(void)
{
	Suite *s = suite_create("lunch_parse");
	TCase *tc = tcase_create("grammar");

	tcase_add_loop_test(tc, table, 0, (int)ARRAY_LEN(rows));
	tcase_add_test(tc, table_is_big_enough);
	tcase_add_test(tc, errors_quote_input_safely);
	tcase_add_test(tc, small_or_missing_error_buffers);
	tcase_add_test(tc, help_names_every_command);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(lunch_parse_suite)
