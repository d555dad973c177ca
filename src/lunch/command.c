/* The /lunch grammar. Words are read one at a time straight from the
 * text, so any length costs O(length) and nothing is copied but numbers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"
#include "lunch/command.h"

/* Bytes of user input an error message repeats; enough to recognise it. */
#define QUOTE_MAX 32

struct tok {
	const char *s;
	size_t len;
};

struct parser {
	const char *p; /* the next unread byte */
	struct lunch_cmd *out;
	char *err;
	size_t errlen;
	const char *verb;
};

static const char help_text[] =
    "*Lunch Buddies*\n"
    "`/lunch start [HH:MM ...] [size=N] [close HH:MM] [remind=30m]` open a lunch poll in "
    "this channel: up to 6 times in your time zone (default 12:00), groups of N people (2 to "
    "8, default 4); with `close` it closes by itself, and `remind` DMs who hasn't answered "
    "that long before\n"
    "`/lunch close` close the poll and form the groups\n"
    "`/lunch cancel` cancel the poll without forming groups\n"
    "`/lunch optout`, `/lunch optin` stop or start being asked in this channel\n"
    "`/lunch schedule DAYS HH:MM close HH:MM [size=N]` open and close a poll by itself "
    "in your time zone; DAYS is `weekdays`, `daily` or a list like `mon,wed,fri`\n"
    "`/lunch unschedule` stop the scheduled poll of this channel\n"
    "`/lunch summary [DAYS]` the groups of the last DAYS days (1 to 90, default 7)\n"
    "`/lunch stats [DAYS]` rounds, people, groups and how many pairs met someone new, last "
    "DAYS days (1 to 365, default 30)\n"
    "`/lunch settings groups dm|channel` announce this channel's groups in group DMs or in "
    "one channel message (owners, admins, installer)\n"
    "`/lunch upgrade` a link to upgrade your plan (for owners and admins)\n"
    "`/lunch help` this list";

const char *
lunch_help_text(void)
{
	return help_text;
}

/* --- errors ------------------------------------------------------------- */

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops a character that a short buffer cut in two; the rest of an error
 * is valid UTF-8 already. */
static void
trim_partial(char *s)
{
	size_t len = strlen(s), start = len;

	while (start > 0 && len - start < 3 && ((unsigned char)s[start - 1] & 0xc0) == 0x80)
		start--;
	if (start > 0 && (unsigned char)s[start - 1] >= 0xc0)
		start--;
	if (start < len &&
	    utf8_seq_len((const unsigned char *)s + start, len - start) != len - start)
		s[start] = '\0';
}

static int
fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;

	if (ps->err != NULL && ps->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(ps->err, ps->errlen, fmt, ap);
		va_end(ap);
		trim_partial(ps->err);
	}
	return -1;
}

/* The word as an error may show it: at most QUOTE_MAX bytes of valid
 * UTF-8, with control bytes, backticks and broken sequences as '?'. */
static const char *
quote(const struct tok *t, char buf[QUOTE_MAX + 4])
{
	const unsigned char *s = (const unsigned char *)t->s;
	size_t i = 0, n = 0;

	while (i < t->len) {
		size_t len = utf8_seq_len(s + i, t->len - i);

		if (n + (len ? len : 1) > QUOTE_MAX)
			break;
		if (len == 0 || s[i] < 0x20 || s[i] == 0x7f || s[i] == '`') {
			buf[n++] = '?';
			i += len ? len : 1;
			continue;
		}
		memcpy(buf + n, s + i, len);
		n += len;
		i += len;
	}
	if (i < t->len)
		memcpy(buf + n, "...", 3), n += 3;
	buf[n] = '\0';
	return buf;
}

/* --- words -------------------------------------------------------------- */

/* ASCII blanks, and U+00A0, which Slack clients sometimes send for a space. */
static size_t
blank_len(const char *s)
{
	if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\v' || *s == '\f')
		return 1;
	if ((unsigned char)s[0] == 0xc2 && (unsigned char)s[1] == 0xa0)
		return 2;
	return 0;
}

/* Reads the next word; 0 at the end of the text. */
static int
next_tok(struct parser *ps, struct tok *t)
{
	size_t n;

	while ((n = blank_len(ps->p)) > 0)
		ps->p += n;
	t->s = ps->p;
	while (*ps->p != '\0' && blank_len(ps->p) == 0)
		ps->p++;
	t->len = (size_t)(ps->p - t->s);
	return t->len > 0;
}

static int
tok_is(const struct tok *t, const char *word)
{
	return t->len == strlen(word) && strncasecmp(t->s, word, t->len) == 0;
}

static int
tok_has_prefix(const struct tok *t, const char *prefix)
{
	size_t n = strlen(prefix);

	return t->len >= n && strncasecmp(t->s, prefix, n) == 0;
}

/* Digits only (strtoll would take signs and blanks), then strnum's bounds. */
static int
digits_in_range(const char *s, size_t len, long long min, long long max, long long *out)
{
	char buf[8];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return strnum(buf, min, max, out);
}

/* H:MM or HH:MM, 00:00 to 23:59, as minutes after midnight. */
static int
parse_time(const struct tok *t, int *minutes)
{
	const char *colon = memchr(t->s, ':', t->len);
	long long h, m;
	size_t hlen;

	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - t->s);
	if (hlen < 1 || hlen > 2 || t->len - hlen - 1 != 2)
		return -1;
	if (digits_in_range(t->s, hlen, 0, 23, &h) < 0 ||
	    digits_in_range(colon + 1, 2, 0, 59, &m) < 0)
		return -1;
	*minutes = (int)(h * 60 + m);
	return 0;
}

static int
time_error(struct parser *ps, const struct tok *t)
{
	char q[QUOTE_MAX + 4];

	return fail(ps, "`%s` is not a time: write HH:MM, from 00:00 to 23:59", quote(t, q));
}

/* size=N, N from 2 to 8; a second size= is a mistake, not an override. */
static int
parse_size(struct parser *ps, const struct tok *t, int *seen)
{
	char q[QUOTE_MAX + 4];
	long long n;
	size_t skip = strlen("size=");

	if (*seen)
		return fail(ps, "the group size is given twice (`%s`)", quote(t, q));
	if (digits_in_range(t->s + skip, t->len - skip, 2, 8, &n) < 0)
		return fail(ps, "`%s`: the group size must be a whole number from 2 to 8",
		            quote(t, q));
	*seen = 1;
	ps->out->size = (int)n;
	return 0;
}

static int
unexpected(struct parser *ps, const struct tok *t)
{
	char q[QUOTE_MAX + 4];

	if (tok_is(t, "size"))
		return fail(ps, "write the group size as `size=N`, like `size=4`");
	return fail(ps, "`/lunch %s` does not take `%s`: see `/lunch help`", ps->verb, quote(t, q));
}

/* --- verbs -------------------------------------------------------------- */

static int
parse_nothing(struct parser *ps)
{
	struct tok t;

	if (next_tok(ps, &t))
		return unexpected(ps, &t);
	return 0;
}

/* Insertion sort: at most LUNCH_MAX_TIMES entries. */
static void
sort_times(int *a, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && a[j - 1] > a[j]; j--) {
			int t = a[j];

			a[j] = a[j - 1];
			a[j - 1] = t;
		}
}

static int
add_time(struct parser *ps, const struct tok *t)
{
	struct lunch_cmd *out = ps->out;
	char q[QUOTE_MAX + 4];
	int m;

	if (parse_time(t, &m) < 0)
		return memchr(t->s, ':', t->len) || (t->s[0] >= '0' && t->s[0] <= '9')
		           ? time_error(ps, t)
		           : unexpected(ps, t);
	for (int i = 0; i < out->ntimes; i++)
		if (out->times[i] == m)
			return fail(ps, "the time `%s` is given twice", quote(t, q));
	if (out->ntimes == LUNCH_MAX_TIMES)
		return fail(ps, "a poll offers at most %d times", LUNCH_MAX_TIMES);
	out->times[out->ntimes++] = m;
	return 0;
}

/* A duration: 30m, 1h, 1h30m (also min, h alone); minutes 1..LUNCH_MAX_REMIND. */
static int
parse_minutes(const char *s, size_t len, int *minutes)
{
	long long total = 0, n;
	size_t i = 0, start;
	int terms = 0;

	while (i < len) {
		start = i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (digits_in_range(s + start, i - start, 0, 9999, &n) < 0 || i == len)
			return -1;
		if (s[i] == 'h' || s[i] == 'H') {
			if (terms > 0)
				return -1; /* hours come first */
			total += n * 60, i++;
		} else if (len - i >= 3 && strncasecmp(s + i, "min", 3) == 0) {
			total += n, i += 3;
		} else if (s[i] == 'm' || s[i] == 'M') {
			total += n, i++;
		} else
			return -1;
		if (++terms > 2 || total > LUNCH_MAX_REMIND)
			return -1;
	}
	if (terms == 0 || total < 1)
		return -1;
	*minutes = (int)total;
	return 0;
}

/* remind=DURATION, once. */
static int
parse_remind(struct parser *ps, const struct tok *t)
{
	char q[QUOTE_MAX + 4];
	size_t skip = strlen("remind=");

	if (ps->out->remind > 0)
		return fail(ps, "the reminder is given twice (`%s`)", quote(t, q));
	if (parse_minutes(t->s + skip, t->len - skip, &ps->out->remind) < 0)
		return fail(ps,
		            "`%s`: write the reminder as a duration like `remind=30m` or "
		            "`remind=1h`, at most 12h",
		            quote(t, q));
	return 0;
}

/* close HH:MM, once. */
static int
parse_close(struct parser *ps)
{
	struct tok t;

	if (ps->out->has_close)
		return fail(ps, "the closing time is given twice");
	if (!next_tok(ps, &t))
		return fail(ps, "`close` needs a time: `close HH:MM`");
	if (parse_time(&t, &ps->out->close_at) < 0)
		return time_error(ps, &t);
	ps->out->has_close = 1;
	return 0;
}

static int
start_word(struct parser *ps, const struct tok *t, int *size_seen)
{
	if (tok_has_prefix(t, "size="))
		return parse_size(ps, t, size_seen);
	if (tok_has_prefix(t, "remind="))
		return parse_remind(ps, t);
	if (tok_is(t, "close"))
		return parse_close(ps);
	if (tok_is(t, "remind"))
		return fail(ps, "write the reminder as `remind=DURATION`, like `remind=30m`");
	return add_time(ps, t);
}

static int
parse_start(struct parser *ps)
{
	struct tok t;
	int size_seen = 0;

	while (next_tok(ps, &t))
		if (start_word(ps, &t, &size_seen) < 0)
			return -1;
	if (ps->out->remind > 0 && !ps->out->has_close)
		return fail(ps, "a reminder needs a closing time: add `close HH:MM`");
	if (ps->out->ntimes == 0)
		ps->out->times[ps->out->ntimes++] = LUNCH_DEFAULT_TIME;
	sort_times(ps->out->times, ps->out->ntimes);
	return 0;
}

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static int
day_bit(const struct tok *t, unsigned *bit)
{
	for (int d = 0; d < 7; d++)
		if (tok_is(t, day_names[d])) {
			*bit = 1u << d;
			return 0;
		}
	return -1;
}

static int
days_error(struct parser *ps, const struct tok *t)
{
	char q[QUOTE_MAX + 4];

	return fail(ps, "`%s` is not a day: use `weekdays`, `daily` or days like `mon,wed,fri`",
	            quote(t, q));
}

/* weekdays, daily, or mon,wed,fri (three-letter names, each once). */
static int
parse_days(struct parser *ps, const struct tok *t)
{
	char q[QUOTE_MAX + 4];
	const char *end = t->s + t->len, *comma;
	struct tok day = {t->s, 0};
	unsigned bit;

	if (tok_is(t, "weekdays") || tok_is(t, "daily")) {
		ps->out->days = tok_is(t, "daily") ? LUNCH_DAILY : LUNCH_WEEKDAYS;
		return 0;
	}
	for (;;) {
		comma = memchr(day.s, ',', (size_t)(end - day.s));
		day.len = (size_t)((comma ? comma : end) - day.s);
		if (day_bit(&day, &bit) < 0)
			return days_error(ps, day.len ? &day : t);
		if (ps->out->days & bit)
			return fail(ps, "`%s` is listed twice", quote(&day, q));
		ps->out->days |= bit;
		if (comma == NULL)
			return 0;
		day.s = comma + 1;
	}
}

/* Reads one more word, or fails with what was missing. */
static int
expect(struct parser *ps, struct tok *t, const char *missing)
{
	if (!next_tok(ps, t))
		return fail(ps,
		            "`/lunch schedule` needs %s: `/lunch schedule DAYS HH:MM close "
		            "HH:MM [size=N]`",
		            missing);
	return 0;
}

static int
expect_time(struct parser *ps, int *minutes, const char *missing)
{
	struct tok t;

	if (expect(ps, &t, missing) < 0)
		return -1;
	if (parse_time(&t, minutes) < 0)
		return time_error(ps, &t);
	return 0;
}

static int
parse_schedule_tail(struct parser *ps)
{
	struct tok t;
	int size_seen = 0;

	while (next_tok(ps, &t)) {
		if (!tok_has_prefix(&t, "size="))
			return unexpected(ps, &t);
		if (parse_size(ps, &t, &size_seen) < 0)
			return -1;
	}
	return 0;
}

static int
parse_schedule(struct parser *ps)
{
	struct lunch_cmd *out = ps->out;
	char q[QUOTE_MAX + 4];
	struct tok t;

	if (expect(ps, &t, "the days") < 0 || parse_days(ps, &t) < 0)
		return -1;
	if (expect_time(ps, &out->open_at, "the time the poll opens") < 0)
		return -1;
	if (expect(ps, &t, "`close` and a time") < 0)
		return -1;
	if (!tok_is(&t, "close"))
		return fail(ps, "expected `close HH:MM` after the opening time, not `%s`",
		            quote(&t, q));
	if (expect_time(ps, &out->close_at, "the time the poll closes") < 0)
		return -1;
	if (out->close_at <= out->open_at)
		return fail(
		    ps, "the poll must close after it opens: %02d:%02d is not after %02d:%02d",
		    out->close_at / 60, out->close_at % 60, out->open_at / 60, out->open_at % 60);
	out->times[out->ntimes++] = LUNCH_DEFAULT_TIME;
	return parse_schedule_tail(ps);
}

/* [DAYS], 1 to max: summary and stats. */
static int
parse_days_back(struct parser *ps, int max)
{
	char q[QUOTE_MAX + 4];
	struct tok t;
	long long days;

	if (!next_tok(ps, &t))
		return 0;
	if (digits_in_range(t.s, t.len, 1, max, &days) < 0)
		return fail(ps, "`%s`: the number of days must be a whole number from 1 to %d",
		            quote(&t, q), max);
	ps->out->summary_days = (int)days;
	return parse_nothing(ps);
}

static int
parse_summary(struct parser *ps)
{
	return parse_days_back(ps, LUNCH_MAX_SUMMARY_DAYS);
}

static int
parse_stats(struct parser *ps)
{
	return parse_days_back(ps, LUNCH_MAX_STATS_DAYS);
}

/* settings groups dm|channel */
static int
parse_settings(struct parser *ps)
{
	struct tok t;

	if (!next_tok(ps, &t) || !tok_is(&t, "groups"))
		return fail(ps, "the setting is `/lunch settings groups dm` or `/lunch settings "
		                "groups channel`");
	if (!next_tok(ps, &t) || !(tok_is(&t, "dm") || tok_is(&t, "channel")))
		return fail(ps, "write `groups dm` (a group DM each) or `groups channel` (one "
		                "message in the channel)");
	ps->out->groups_in_channel = tok_is(&t, "channel");
	return parse_nothing(ps);
}

static const struct verb {
	const char *name;
	enum lunch_verb verb;
	int (*parse)(struct parser *ps);
} verbs[] = {
    {"start", LUNCH_START, parse_start},          {"close", LUNCH_CLOSE, parse_nothing},
    {"schedule", LUNCH_SCHEDULE, parse_schedule}, {"unschedule", LUNCH_UNSCHEDULE, parse_nothing},
    {"summary", LUNCH_SUMMARY, parse_summary},    {"help", LUNCH_HELP, parse_nothing},
    {"upgrade", LUNCH_UPGRADE, parse_nothing},    {"cancel", LUNCH_CANCEL, parse_nothing},
    {"optout", LUNCH_OPTOUT, parse_nothing},      {"optin", LUNCH_OPTIN, parse_nothing},
    {"stats", LUNCH_STATS, parse_stats},          {"settings", LUNCH_SETTINGS, parse_settings},
};

/* --- entry point -------------------------------------------------------- */

static void
defaults(struct lunch_cmd *out, enum lunch_verb verb)
{
	memset(out, 0, sizeof(*out));
	out->verb = verb;
	if (verb == LUNCH_START || verb == LUNCH_SCHEDULE)
		out->size = LUNCH_DEFAULT_SIZE;
	if (verb == LUNCH_SUMMARY)
		out->summary_days = LUNCH_DEFAULT_SUMMARY;
	if (verb == LUNCH_STATS)
		out->summary_days = LUNCH_DEFAULT_STATS;
}

int
lunch_parse(const char *text, struct lunch_cmd *out, char *err, size_t errlen)
{
	struct parser ps = {text ? text : "", out, err, errlen, NULL};
	char q[QUOTE_MAX + 4];
	struct tok t;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	defaults(out, LUNCH_HELP);
	if (!next_tok(&ps, &t))
		return 0;
	for (size_t i = 0; i < ARRAY_LEN(verbs); i++) {
		if (!tok_is(&t, verbs[i].name))
			continue;
		defaults(out, verbs[i].verb);
		ps.verb = verbs[i].name;
		if (verbs[i].parse(&ps) == 0)
			return 0;
		defaults(out, LUNCH_HELP);
		return -1;
	}
	return fail(&ps, "unknown command `%s`: `/lunch help` lists the commands", quote(&t, q));
}
