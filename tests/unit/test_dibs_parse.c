/* The /dibs grammar as a table: text in, parsed command or error out. */
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "dibs/command.h"
#include "dibs/dibs.h"

#define H 3600
#define D 86400

struct row {
	const char *text;
	enum dibs_verb verb;
	const char *thing;  /* NULL: none */
	int64_t seconds;    /* 0: no duration */
	const char *reason; /* NULL: none */
	const char *err;    /* NULL: parses; else a substring of the error */
};

#define OK(t, v, th, s, r)                                                                         \
	{                                                                                          \
		t, v, th, s, r, NULL                                                               \
	}
#define ERR(t, e)                                                                                  \
	{                                                                                          \
		t, DIBS_LIST, NULL, 0, NULL, e                                                     \
	}

static const struct row rows[] = {
    /* list, help and the verbs without arguments */
    OK("", DIBS_LIST, NULL, 0, NULL),
    OK("  \t ", DIBS_LIST, NULL, 0, NULL),
    OK("list", DIBS_LIST, NULL, 0, NULL),
    OK("LiSt", DIBS_LIST, NULL, 0, NULL),
    ERR("list staging", "unexpected \"staging\": list takes nothing"),
    OK("help", DIBS_HELP, NULL, 0, NULL),
    OK("HELP ", DIBS_HELP, NULL, 0, NULL),
    ERR("help on", "help takes nothing"),
    OK("token", DIBS_TOKEN, NULL, 0, NULL),
    ERR("token please", "unexpected \"please\""),
    OK("token list", DIBS_TOKEN, NULL, 0, NULL),
    OK("token revoke 12", DIBS_TOKEN, NULL, 0, NULL),
    ERR("token list all", "unexpected \"all\": token list takes nothing"),
    ERR("token revoke", "token revoke needs a token's id"),
    ERR("token revoke x1", "\"x1\" is not a token id"),
    ERR("token revoke 0", "\"0\" is not a token id"),
    ERR("token revoke -3", "\"-3\" is not a token id"),
    ERR("token revoke 99999999999999999999", "is not a token id"),
    ERR("token revoke 12 13", "unexpected \"13\" after the token id"),
    OK("upgrade", DIBS_UPGRADE, NULL, 0, NULL),
    ERR("upgrade now", "upgrade takes nothing"),
    ERR("frobnicate staging", "unknown command \"frobnicate\""),
    ERR("dibs on staging", "unknown command \"dibs\""),
    ERR("\xe2\x80\x8bon staging", "unknown command"), /* zero-width space */
    ERR("onstaging", "unknown command \"onstaging\""),
    /* on */
    OK("on staging", DIBS_ON, "staging", 0, NULL),
    OK("ON Staging", DIBS_ON, "staging", 0, NULL),
    OK("on a/b.c-d_E9", DIBS_ON, "a/b.c-d_e9", 0, NULL),
    OK("on\xc2\xa0staging", DIBS_ON, "staging", 0, NULL), /* no-break space */
    OK("\t on \t staging \t for\t2h \t", DIBS_ON, "staging", 2 * H, NULL),
    ERR("on", "on needs a thing"),
    ERR("On   ", "on needs a thing"),
    ERR("on stag ing", "unexpected \"ing\" after \"stag\""),
    ERR("on staging 2h", "unexpected \"2h\""),
    ERR("on for 2h", "unexpected \"2h\" after \"for\""),
    /* durations */
    OK("on staging for 90s", DIBS_ON, "staging", 90, NULL),
    OK("on staging for 45 minutes", DIBS_ON, "staging", 45 * 60, NULL),
    OK("on staging for 2h", DIBS_ON, "staging", 2 * H, NULL),
    OK("on staging for 1 day", DIBS_ON, "staging", D, NULL),
    OK("on staging for 1h30m", DIBS_ON, "staging", H + 1800, NULL),
    OK("on staging for 1h 30m", DIBS_ON, "staging", H + 1800, NULL),
    OK("on staging for 30d", DIBS_ON, "staging", 30 * D, NULL),
    OK("on staging for 720h", DIBS_ON, "staging", 30 * D, NULL),
    OK("on staging for 10 SECONDS", DIBS_ON, "staging", 10, NULL),
    OK("on staging for 1hr 1min 1sec", DIBS_ON, "staging", H + 61, NULL),
    OK("on staging for 2hrs", DIBS_ON, "staging", 2 * H, NULL),
    OK("on staging for 3 mins", DIBS_ON, "staging", 180, NULL),
    OK("on staging for 1d1h", DIBS_ON, "staging", D + H, NULL),
    OK("on staging for 0h30m", DIBS_ON, "staging", 1800, NULL),
    OK("on staging for 2 hours", DIBS_ON, "staging", 2 * H, NULL),
    OK("on staging for 1 second", DIBS_ON, "staging", 1, NULL),
    OK("on staging for 000000000000000000000000001s", DIBS_ON, "staging", 1, NULL),
    ERR("on staging for 31d", "at most 30 days"),
    ERR("on staging for 721h", "at most 30 days"),
    ERR("on staging for 29d 24h 1s", "at most 30 days"),
    ERR("on staging for 99999999999999999999999999999h", "at most 30 days"),
    ERR("on staging for 9223372036854775807s", "at most 30 days"),
    ERR("on staging for 0s", "at least 1 second"),
    ERR("on staging for 0h 0m", "at least 1 second"),
    ERR("on staging for", "a duration is needed"),
    ERR("on staging for 2 fortnights", "\"2 fortnights\" is not a duration"),
    ERR("on staging for 1.5h", "whole numbers"),
    ERR("on staging for 1h30", "needs a unit"),
    ERR("on staging for 90", "needs a unit"),
    ERR("on staging for -5m", "is not a duration"),
    ERR("on staging for 2h please", "\"2h please\" is not a duration"),
    ERR("on staging for 1h for 2h", "is not a duration"),
    ERR("on staging for soon", "\"soon\" is not a duration"),
    /* for and because, either order */
    OK("on staging for 2h because deploying v2", DIBS_ON, "staging", 2 * H, "deploying v2"),
    OK("on staging because deploying v2 for 2h", DIBS_ON, "staging", 2 * H, "deploying v2"),
    OK("On STAGING For 2H Because Demo", DIBS_ON, "staging", 2 * H, "Demo"),
    OK("on staging BECAUSE demo FOR 1 day", DIBS_ON, "staging", D, "demo"),
    OK("on staging because load test", DIBS_ON, "staging", 0, "load test"),
    OK("on staging because waiting for 2 people", DIBS_ON, "staging", 0, "waiting for 2 people"),
    OK("on staging because a for 1h for 2h", DIBS_ON, "staging", 2 * H, "a for 1h"),
    OK("on staging because testing  for  1 h  30 m  ", DIBS_ON, "staging", H + 1800, "testing"),
    OK("on staging for 2h because y for 3h", DIBS_ON, "staging", 2 * H, "y for 3h"),
    OK("on staging because a because b", DIBS_ON, "staging", 0, "a because b"),
    OK("on staging because  spaced  out \t", DIBS_ON, "staging", 0, "spaced  out"),
    OK("on staging because\nmultiline\nreason", DIBS_ON, "staging", 0, "multiline\nreason"),
    OK("on staging because for the team", DIBS_ON, "staging", 0, "for the team"),
    OK("on staging because \xf0\x9f\x9a\x80 launch d\xc3\xa9j\xc3\xa0", DIBS_ON, "staging", 0,
       "\xf0\x9f\x9a\x80 launch d\xc3\xa9j\xc3\xa0"),
    OK("on staging because x';DROP TABLE things;--", DIBS_ON, "staging", 0,
       "x';DROP TABLE things;--"),
    ERR("on staging because demo for 31d", "at most 30 days"),
    ERR("on staging because demo for 0m", "at least 1 second"),
    ERR("on staging because for 2h", "because needs a reason"),
    ERR("on staging for 2h because", "because needs a reason"),
    ERR("on staging because", "because needs a reason"),
    ERR("on staging because  \t ", "because needs a reason"),
    ERR("on staging because bad \xff byte", "not valid UTF-8"),
    ERR("on staging because \xc0\xaf overlong", "not valid UTF-8"),
    ERR("on staging because \xed\xa0\x80 surrogate", "not valid UTF-8"),
    /* thing names */
    OK("on 0123456789012345678901234567890123456789012345678901234567890123", DIBS_ON,
       "0123456789012345678901234567890123456789012345678901234567890123", 0, NULL),
    ERR("on 01234567890123456789012345678901234567890123456789012345678901234", "too long"),
    ERR("on x';drop", "\"x';drop\" is not a thing name"),
    ERR("on st\xc3\xa4ging", "\"st\xc3\xa4ging\" is not a thing name"),
    ERR("on x&lt;y", "is not a thing name"),
    ERR("on <#C0123|general>", "is not a thing name"),
    ERR("on a:b", "1 to 64 letters, digits, - _ . /"),
    ERR("on st\xffg", "\"st?g\" is not a thing name"),
    /* off, q, kick, remove */
    OK("off staging", DIBS_OFF, "staging", 0, NULL),
    OK("OFF Staging ", DIBS_OFF, "staging", 0, NULL),
    ERR("off", "off needs a thing"),
    ERR("off stag ing", "unexpected \"ing\" after \"stag\": off takes one thing"),
    ERR("off staging for 2h", "off takes no duration"),
    OK("q staging", DIBS_Q, "staging", 0, NULL),
    OK("Q db-1", DIBS_Q, "db-1", 0, NULL),
    ERR("q", "q needs a thing"),
    ERR("q a b", "unexpected \"b\" after \"a\""),
    OK("kick staging", DIBS_KICK, "staging", 0, NULL),
    ERR("kick staging now", "unexpected \"now\" after \"staging\""),
    ERR("kick staging because afk", "kick takes no reason"),
    ERR("kick staging for 2h", "kick takes no duration"),
    ERR("remove staging by 1h", "remove takes no duration"),
    ERR("kick", "kick needs a thing"),
    OK("remove staging", DIBS_REMOVE, "staging", 0, NULL),
    ERR("remove", "remove needs a thing"),
    ERR("remove *", "\"*\" is not a thing name"),
    /* extend */
    OK("extend staging by 1h", DIBS_EXTEND, "staging", H, NULL),
    OK("extend staging 30m", DIBS_EXTEND, "staging", 1800, NULL),
    OK("extend staging for 1 day", DIBS_EXTEND, "staging", D, NULL),
    OK("EXTEND Staging BY 1h 30m", DIBS_EXTEND, "staging", H + 1800, NULL),
    ERR("extend staging", "extend needs a duration"),
    ERR("extend", "extend needs a thing"),
    ERR("extend staging by", "a duration is needed"),
    ERR("extend staging by 31 days", "at most 30 days"),
    ERR("extend staging by soon", "\"soon\" is not a duration"),
    ERR("extend staging by 1h because late", "is not a duration"),
    /* synonyms: first word only; a thing may be called like a verb */
    OK("take staging", DIBS_ON, "staging", 0, NULL),
    OK("GRAB staging for 2h", DIBS_ON, "staging", 2 * H, NULL),
    OK("claim staging because demo", DIBS_ON, "staging", 0, "demo"),
    OK("release staging", DIBS_OFF, "staging", 0, NULL),
    OK("free staging", DIBS_OFF, "staging", 0, NULL),
    OK("done staging", DIBS_OFF, "staging", 0, NULL),
    OK("Drop staging", DIBS_OFF, "staging", 0, NULL),
    OK("who staging", DIBS_Q, "staging", 0, NULL),
    OK("status staging", DIBS_Q, "staging", 0, NULL),
    OK("who", DIBS_MINE, NULL, 0, NULL),
    OK(" STATUS ", DIBS_MINE, NULL, 0, NULL),
    OK("mine", DIBS_MINE, NULL, 0, NULL),
    OK("on release", DIBS_ON, "release", 0, NULL),
    OK("on mine", DIBS_ON, "mine", 0, NULL),
    OK("off take", DIBS_OFF, "take", 0, NULL),
    OK("q who", DIBS_Q, "who", 0, NULL),
    OK("on add for 1h", DIBS_ON, "add", H, NULL),
    OK("kick free", DIBS_KICK, "free", 0, NULL),
    ERR("take", "on needs a thing"),
    ERR("release", "off needs a thing"),
    ERR("release staging because done", "off takes no reason"),
    ERR("who a b", "unexpected \"b\""),
    ERR("mine staging", "mine takes nothing"),
    ERR("q", "q needs a thing"),
    ERR("relase staging", "unknown command \"relase\""),
    /* add */
    OK("add staging", DIBS_ADD, "staging", 0, NULL),
    OK("add Staging db-1 db-2", DIBS_ADD, "staging", 0, NULL),
    ERR("add", "add needs a thing"),
    ERR("add staging because demo", "add takes thing names only"),
    ERR("add staging for 2h", "add takes thing names only"),
    ERR("add ok b*d", "\"b*d\" is not a thing name"),
    /* settings */
    OK("settings", DIBS_SETTINGS, NULL, 0, NULL),
    OK("SETTINGS names STRICT", DIBS_SETTINGS, NULL, 0, NULL),
    OK("settings manage anyone", DIBS_SETTINGS, NULL, 0, NULL),
    ERR("settings names", "settings names takes open or strict"),
    ERR("settings names closed", "settings names takes open or strict"),
    ERR("settings manage everyone", "settings manage takes anyone or admins"),
    ERR("settings names open please", "unexpected \"please\" after settings names open"),
    ERR("settings colour blue", "unknown setting \"colour\""),
    ERR("settings announce yes", "settings announce takes off or on"),
    OK("settings checkin 4h", DIBS_SETTINGS, NULL, 0, NULL),
    OK("settings checkin off", DIBS_SETTINGS, NULL, 0, NULL),
    OK("settings autorelease 1h30m", DIBS_SETTINGS, NULL, 0, NULL),
    ERR("settings checkin", "settings checkin takes off or a duration"),
    ERR("settings checkin off now", "is not a duration"),
    ERR("settings autorelease 31d", "at most 30 days"),
    ERR("settings autorelease soon", "\"soon\" is not a duration"),
    OK("on settings", DIBS_ON, "settings", 0, NULL),
    /* history */
    OK("history staging", DIBS_HISTORY, "staging", 0, NULL),
    OK("HISTORY Staging 30", DIBS_HISTORY, "staging", 0, NULL),
    OK("history staging 90", DIBS_HISTORY, "staging", 0, NULL),
    ERR("history", "history needs a thing"),
    ERR("history staging 91", "\"91\" is not a number of days"),
    ERR("history staging 0", "\"0\" is not a number of days"),
    ERR("history staging -1", "is not a number of days"),
    ERR("history staging 7d", "\"7d\" is not a number of days"),
    ERR("history staging 1.5", "is not a number of days"),
    ERR("history staging 7 8", "\"7 8\" is not a number of days"),
    ERR("history staging 99999999999999999999", "from 1 to 90"),
};

/* Error texts go to Slack: printable, valid UTF-8. */
static int
printable_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : 4;

		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && *p < 0xc2) || *p > 0xf4)
			return 0;
		for (int i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		p += n;
	}
	return 1;
}

START_TEST(test_table)
{
	const struct row *r = &rows[_i];
	struct dibs_cmd cmd;
	char err[256];
	int rc = dibs_parse(r->text, &cmd, err, sizeof(err));

	if (r->err != NULL) {
		ck_assert_msg(rc == -1, "row %d \"%s\" parsed, wanted error", _i, r->text);
		ck_assert_msg(strstr(err, r->err) != NULL,
		              "row %d \"%s\": error \"%s\" lacks \"%s\"", _i, r->text, err, r->err);
		ck_assert_msg(printable_utf8(err), "row %d: error not printable UTF-8", _i);
		ck_assert_int_eq(cmd.verb, DIBS_LIST);
		ck_assert_str_eq(cmd.thing, "");
		ck_assert(!cmd.has_for && !cmd.has_reason);
		return;
	}
	ck_assert_msg(rc == 0, "row %d \"%s\": %s", _i, r->text, err);
	ck_assert_str_eq(err, "");
	ck_assert_msg(cmd.verb == r->verb, "row %d: verb %d, wanted %d", _i, cmd.verb, r->verb);
	ck_assert_str_eq(cmd.thing, r->thing ? r->thing : "");
	ck_assert_msg(cmd.has_for == (r->seconds != 0), "row %d: has_for", _i);
	ck_assert_msg(cmd.seconds == r->seconds, "row %d: %lld seconds, wanted %lld", _i,
	              (long long)cmd.seconds, (long long)r->seconds);
	ck_assert_msg(cmd.has_reason == (r->reason != NULL), "row %d: has_reason", _i);
	ck_assert_str_eq(cmd.reason, r->reason ? r->reason : "");
}
END_TEST

START_TEST(test_table_size)
{
	ck_assert_int_ge((int)(sizeof(rows) / sizeof(rows[0])), 60);
}
END_TEST

struct duration_row {
	const char *text;
	int64_t seconds; /* 0: error */
	const char *err;
};

static const struct duration_row durations[] = {
    {"90s", 90, NULL},
    {"45 minutes", 2700, NULL},
    {"  2h ", 7200, NULL},
    {"1 day", D, NULL},
    {"1h30m", 5400, NULL},
    {"1d 23h 59m 60s", 2 * D, NULL},
    {"2592000s", 30 * D, NULL},
    {"43200 min", 30 * D, NULL},
    {"2592001s", 0, "at most 30 days"},
    {"18446744073709551616s", 0, "at most 30 days"},
    {"29d 1000000000000000000000d", 0, "at most 30 days"},
    {"31d", 0, "at most 30 days"},
    {"0s", 0, "at least 1 second"},
    {"", 0, "a duration is needed"},
    {"   ", 0, "a duration is needed"},
    {"h", 0, "is not a duration"},
    {"5", 0, "needs a unit"},
    {"5 5m", 0, "needs a unit"},
    {"1h-", 0, "is not a duration"},
    {"1y", 0, "\"1y\" is not a duration"},
};

START_TEST(test_duration)
{
	const struct duration_row *r = &durations[_i];
	int64_t secs = -7;
	char err[128] = "";
	int rc = dibs_parse_duration(r->text, &secs, err, sizeof(err));

	if (r->err == NULL) {
		ck_assert_msg(rc == 0, "\"%s\": %s", r->text, err);
		ck_assert_int_eq(secs, r->seconds);
	} else {
		ck_assert_msg(rc == -1, "\"%s\" parsed", r->text);
		ck_assert_int_eq(secs, -7);
		ck_assert_msg(strstr(err, r->err) != NULL, "\"%s\": \"%s\"", r->text, err);
	}
}
END_TEST

START_TEST(test_display_keeps_case)
{
	struct dibs_cmd cmd;
	char err[128];

	ck_assert_int_eq(dibs_parse("on Prod-DB for 1h", &cmd, err, sizeof(err)), 0);
	ck_assert_str_eq(cmd.thing, "prod-db");
	ck_assert_str_eq(cmd.display, "Prod-DB");
}
END_TEST

START_TEST(test_reason_length)
{
	static char text[64 + 4 * 302];
	struct dibs_cmd cmd;
	char err[128];
	size_t n = strlen(strcpy(text, "on x because "));

	/* 300 four-byte characters fill the buffer exactly. */
	for (int i = 0; i < 300; i++, n += 4)
		memcpy(text + n, "\xf0\x9f\x98\x80", 4);
	text[n] = '\0';
	ck_assert_int_eq(dibs_parse(text, &cmd, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(cmd.reason), 1200);
	memcpy(text + n, "a", 2);
	ck_assert_int_eq(dibs_parse(text, &cmd, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "at most 300 characters"));
	/* 300 ASCII characters, then a duration after it still counts. */
	n = strlen(strcpy(text, "on x because "));
	memset(text + n, 'r', 300);
	strcpy(text + n + 300, " for 2h");
	ck_assert_int_eq(dibs_parse(text, &cmd, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(cmd.reason), 300);
	ck_assert_int_eq(cmd.seconds, 7200);
}
END_TEST

START_TEST(test_small_error_buffer)
{
	struct dibs_cmd cmd;
	char err[8];

	/* "\"st\xc3\xa4..." cut inside the two-byte character drops it. */
	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(dibs_parse("on st\xc3\xa4ging", &cmd, err, 5), -1);
	ck_assert_str_eq(err, "\"st");
	ck_assert_int_eq(dibs_parse("on st\xc3\xa4ging", &cmd, NULL, 0), -1);
	ck_assert_int_eq(dibs_parse("bogus", &cmd, err, 1), -1);
	ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_long_input_quoted_clipped)
{
	static char text[5000];
	struct dibs_cmd cmd;
	char err[512];

	strcpy(text, "on ");
	memset(text + 3, '*', sizeof(text) - 4);
	ck_assert_int_eq(dibs_parse(text, &cmd, err, sizeof(err)), -1);
	ck_assert_uint_lt(strlen(err), 200);
	ck_assert_ptr_nonnull(strstr(err, "\xe2\x80\xa6\" is not a thing name"));
	ck_assert(printable_utf8(err));
}
END_TEST

START_TEST(test_help_lists_every_form)
{
	static const char *forms[] = {
	    "/dibs on THING [for DURATION] [because REASON]",
	    "/dibs off THING",
	    "/dibs list",
	    "/dibs q THING",
	    "/dibs extend THING by DURATION",
	    "/dibs kick THING",
	    "/dibs remove THING",
	    "/dibs token",
	    "/dibs token list",
	    "/dibs token revoke ID",
	    "/dibs upgrade",
	    "/dibs history THING [DAYS]",
	    "/dibs help",
	    "/dibs mine",
	    "/dibs add THING [THING ...]",
	    "/dibs settings",
	};
	const char *help = dibs_help_text();

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		ck_assert_msg(strstr(help, forms[i]) != NULL, "help lacks %s", forms[i]);
}
END_TEST

START_TEST(test_verb_names)
{
	struct dibs_cmd cmd;
	char err[64];

	for (int v = DIBS_LIST; v <= DIBS_VERB_LAST; v++) {
		char text[32];

		snprintf(text, sizeof(text), "%s", dibs_verb_name((enum dibs_verb)v));
		ck_assert_str_ne(text, "?");
		/* every verb word parses back to its verb (with a thing where needed) */
		if (v == DIBS_ON || v == DIBS_OFF || v == DIBS_Q || v == DIBS_KICK ||
		    v == DIBS_REMOVE || v == DIBS_ADD || v == DIBS_HISTORY)
			strcat(text, " x");
		else if (v == DIBS_EXTEND)
			strcat(text, " x by 1h");
		ck_assert_int_eq(dibs_parse(text, &cmd, err, sizeof(err)), 0);
		ck_assert_int_eq(cmd.verb, v);
	}
}
END_TEST

/* The token sub-commands: which operation and id. */
static const struct {
	const char *text;
	enum dibs_token_op op;
	int64_t id;
} token_rows[] = {
    {"token", DIBS_TOKEN_CREATE, 0},
    {" TOKEN ", DIBS_TOKEN_CREATE, 0},
    {"token list", DIBS_TOKEN_LIST, 0},
    {"token LIST ", DIBS_TOKEN_LIST, 0},
    {"token revoke 1", DIBS_TOKEN_REVOKE, 1},
    {"token Revoke\t 4711 ", DIBS_TOKEN_REVOKE, 4711},
    {"token revoke 007", DIBS_TOKEN_REVOKE, 7},
    {"token revoke 999999999999999999", DIBS_TOKEN_REVOKE, 999999999999999999LL},
};

/* history's days: the default, and the number given. */
static const struct {
	const char *text;
	int days;
} history_rows[] = {
    {"history staging", DIBS_HISTORY_DAYS},
    {"history staging 1", 1},
    {"history staging\t 30 ", 30},
    {"history staging 090", 90},
};

START_TEST(test_history_days)
{
	struct dibs_cmd cmd;
	char err[256];

	ck_assert_msg(dibs_parse(history_rows[_i].text, &cmd, err, sizeof(err)) == 0, "\"%s\": %s",
	              history_rows[_i].text, err);
	ck_assert_int_eq(cmd.verb, DIBS_HISTORY);
	ck_assert_str_eq(cmd.thing, "staging");
	ck_assert_int_eq(cmd.days, history_rows[_i].days);
}
END_TEST

START_TEST(test_token_ops)
{
	struct dibs_cmd cmd;
	char err[256];

	ck_assert_msg(dibs_parse(token_rows[_i].text, &cmd, err, sizeof(err)) == 0, "\"%s\": %s",
	              token_rows[_i].text, err);
	ck_assert_int_eq(cmd.verb, DIBS_TOKEN);
	ck_assert_int_eq(cmd.token_op, token_rows[_i].op);
	ck_assert_int_eq(cmd.token_id, token_rows[_i].id);
}
END_TEST

/* add: the names in order, a repeat in any case counted once, the limit. */
START_TEST(test_add_names)
{
	static char text[2048];
	struct dibs_cmd cmd;
	char err[256];
	size_t n;

	ck_assert_int_eq(dibs_parse("add Staging db1 STAGING db1 db2", &cmd, err, sizeof(err)), 0);
	ck_assert_int_eq(cmd.nadd, 3);
	ck_assert_str_eq(cmd.add[0], "Staging");
	ck_assert_str_eq(cmd.add[1], "db1");
	ck_assert_str_eq(cmd.add[2], "db2");
	ck_assert_str_eq(cmd.thing, "staging");
	n = strlen(strcpy(text, "add"));
	for (int i = 0; i < DIBS_ADD_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, " t%d", i);
	ck_assert_int_eq(dibs_parse(text, &cmd, err, sizeof(err)), 0);
	ck_assert_int_eq(cmd.nadd, DIBS_ADD_MAX);
	strcat(text, " t0 T1"); /* repeats do not count */
	ck_assert_int_eq(dibs_parse(text, &cmd, err, sizeof(err)), 0);
	strcat(text, " one-more");
	ck_assert_int_eq(dibs_parse(text, &cmd, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "at most 20 names"));
	ck_assert_int_eq(cmd.nadd, 0);
}
END_TEST

/* Each error comes with the usage line of the command typed, synonyms
 * included; an unknown word has none. */
static const struct {
	const char *text, *usage;
} usage_rows[] = {
    {"on", "`/dibs on THING [for DURATION] [because REASON]`"},
    {"grab x y", "`/dibs on THING [for DURATION] [because REASON]`"},
    {"kick staging because afk", "`/dibs kick THING`"},
    {" Release", "`/dibs off THING`"},
    {"who a b", "`/dibs who THING`"},
    {"add", "`/dibs add THING [THING ...]`"},
    {"extend x", "`/dibs extend THING by DURATION`"},
    {"token nope", "`/dibs token`"},
    {"frobnicate", NULL},
    {"", NULL},
};

START_TEST(test_usage)
{
	const char *u = dibs_usage(usage_rows[_i].text);

	if (usage_rows[_i].usage == NULL)
		ck_assert_ptr_null(u);
	else
		ck_assert_msg(u && strstr(u, usage_rows[_i].usage) == u, "\"%s\": %s",
		              usage_rows[_i].text, u ? u : "(none)");
}
END_TEST

/* Did you mean?: which names are close (both canonical, lower-case). */
static const struct {
	const char *a, *b;
	bool close;
} close_rows[] = {
    {"stageing", "staging", true},   /* one insertion */
    {"stagign", "staging", true},    /* a swap is two edits */
    {"stging", "staging", true},     /* one deletion */
    {"prod-db", "proddb", true},     /* separators dropped */
    {"prod_db", "prod.db", true},    /* one substitution, and equal without separators */
    {"p-r-o-d-d-b", "proddb", true}, /* five dashes: equal once they are dropped */
    {"db1", "db2", false},           /* digits only */
    {"node12", "node1", false},      /* digits only */
    {"staging2", "staging", false},  /* digits only */
    {"db-1", "db-2", false},         /* digits only, with separators */
    {"staging", "staging", false},   /* the same name is not a suggestion */
    {"staging", "testing", false},   /* four edits */
    {"abcd", "wxyz", false},         {"qa/eu", "qa/us", true}, /* two substitutions */
    {"qa/eu", "qa/usa", false},                                /* three edits */
};

START_TEST(test_names_close)
{
	ck_assert_msg(dibs_names_close(close_rows[_i].a, close_rows[_i].b) == close_rows[_i].close,
	              "%s ~ %s", close_rows[_i].a, close_rows[_i].b);
	ck_assert_msg(dibs_names_close(close_rows[_i].b, close_rows[_i].a) == close_rows[_i].close,
	              "%s ~ %s (swapped)", close_rows[_i].b, close_rows[_i].a);
}
END_TEST

static const struct {
	const char *text;
	enum dibs_setting setting;
	bool on;
} setting_rows[] = {
    {"settings", DIBS_SET_SHOW, false},
    {"settings names open", DIBS_SET_NAMES, false},
    {"settings names strict", DIBS_SET_NAMES, true},
    {"settings Manage Anyone", DIBS_SET_MANAGE, false},
    {" settings manage admins ", DIBS_SET_MANAGE, true},
    {"settings announce on", DIBS_SET_ANNOUNCE, true},
    {"settings ANNOUNCE off", DIBS_SET_ANNOUNCE, false},
};

START_TEST(test_settings)
{
	struct dibs_cmd cmd;
	char err[128];

	ck_assert_int_eq(dibs_parse(setting_rows[_i].text, &cmd, err, sizeof(err)), 0);
	ck_assert_int_eq(cmd.verb, DIBS_SETTINGS);
	ck_assert_int_eq(cmd.setting, setting_rows[_i].setting);
	ck_assert(cmd.set_on == setting_rows[_i].on);
}
END_TEST

/* checkin and autorelease: the duration is the setting's (0: off), never a hold's. */
static const struct {
	const char *text;
	enum dibs_setting setting;
	int64_t seconds;
} timer_rows[] = {
    {"settings checkin 4h", DIBS_SET_CHECKIN, 4 * H},
    {"settings checkin 90s", DIBS_SET_CHECKIN, 90},
    {"settings CHECKIN Off", DIBS_SET_CHECKIN, 0},
    {"settings autorelease 1h 30m", DIBS_SET_AUTORELEASE, H + 1800},
    {"settings autorelease off", DIBS_SET_AUTORELEASE, 0},
};

START_TEST(test_timer_settings)
{
	struct dibs_cmd cmd;
	char err[128];

	ck_assert_int_eq(dibs_parse(timer_rows[_i].text, &cmd, err, sizeof(err)), 0);
	ck_assert_int_eq(cmd.setting, timer_rows[_i].setting);
	ck_assert_int_eq(cmd.set_seconds, timer_rows[_i].seconds);
	ck_assert(!cmd.has_for && cmd.seconds == 0);
}
END_TEST

/* A name on its own (the REST API, webhook subscriptions): the same rule
 * as in a command, and nothing more than one name. */
static const struct {
	const char *in, *thing; /* thing NULL: refused */
} name_rows[] = {
    {"staging", "staging"},
    {"QA/eu-1.b_2", "qa/eu-1.b_2"},
    {"", NULL},
    {"a for 1h", NULL},
    {"staging because afk", NULL},
    {"st\tg", NULL},
    {"caf\xc3\xa9", NULL},
    {"<!channel>", NULL},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL},
};

START_TEST(test_thing_name)
{
	char thing[DIBS_THING_MAX + 1] = "x", display[DIBS_THING_MAX + 1] = "x", err[128] = "";
	int rc = dibs_thing_name(name_rows[_i].in, thing, display, err, sizeof(err));

	if (name_rows[_i].thing == NULL) {
		ck_assert_int_eq(rc, -1);
		ck_assert_msg(err[0] != '\0', "no message for \"%s\"", name_rows[_i].in);
	} else {
		ck_assert_int_eq(rc, 0);
		ck_assert_str_eq(thing, name_rows[_i].thing);
		ck_assert_str_eq(display, name_rows[_i].in);
	}
}
END_TEST

static Suite *
dibs_parse_suite(void)
{
	Suite *s = suite_create("dibs_parse");
	TCase *tc = tcase_create("grammar");

	tcase_add_loop_test(tc, test_table, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_table_size);
	tcase_add_loop_test(tc, test_duration, 0, (int)(sizeof(durations) / sizeof(durations[0])));
	tcase_add_test(tc, test_display_keeps_case);
	tcase_add_test(tc, test_reason_length);
	tcase_add_test(tc, test_small_error_buffer);
	tcase_add_test(tc, test_long_input_quoted_clipped);
	tcase_add_test(tc, test_help_lists_every_form);
	tcase_add_test(tc, test_verb_names);
	tcase_add_test(tc, test_add_names);
	tcase_add_loop_test(tc, test_thing_name, 0,
	                    (int)(sizeof(name_rows) / sizeof(name_rows[0])));
	tcase_add_loop_test(tc, test_timer_settings, 0,
	                    (int)(sizeof(timer_rows) / sizeof(timer_rows[0])));
	tcase_add_loop_test(tc, test_settings, 0,
	                    (int)(sizeof(setting_rows) / sizeof(setting_rows[0])));
	tcase_add_loop_test(tc, test_names_close, 0,
	                    (int)(sizeof(close_rows) / sizeof(close_rows[0])));
	tcase_add_loop_test(tc, test_usage, 0, (int)(sizeof(usage_rows) / sizeof(usage_rows[0])));
	tcase_add_loop_test(tc, test_history_days, 0,
	                    (int)(sizeof(history_rows) / sizeof(history_rows[0])));
	tcase_add_loop_test(tc, test_token_ops, 0,
	                    (int)(sizeof(token_rows) / sizeof(token_rows[0])));
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(dibs_parse_suite)
