/* The /dibs grammar (see command.h). Text is scanned as spans of a
 * NUL-terminated string; nothing is allocated. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dibs/command.h"
#include "util.h"

#define THING_RULE    "thing names are 1 to 64 letters, digits, - _ . /"
#define DURATION_HINT "try 90s, 45 minutes, 2h, 1 day or 1h30m"
#define QUOTE_CHARS   40 /* code points of user text quoted in an error */
#define QUOTE_BYTES   (QUOTE_CHARS * 4 + 4)

struct verb_row {
	const char *word;
	enum dibs_verb verb;
	int (*parse)(const char *args, struct dibs_cmd *out, char *err, size_t errlen);
	const char *usage;
};

struct unit_row {
	const char *word;
	int64_t seconds;
};

static const struct unit_row units[] = {
    {"s", 1},     {"sec", 1},     {"secs", 1},     {"second", 1},  {"seconds", 1},
    {"m", 60},    {"min", 60},    {"mins", 60},    {"minute", 60}, {"minutes", 60},
    {"h", 3600},  {"hr", 3600},   {"hrs", 3600},   {"hour", 3600}, {"hours", 3600},
    {"d", 86400}, {"day", 86400}, {"days", 86400},
};

/* Bytes of the whitespace character at p (which is before e), or 0. */
static size_t
space_at(const char *p, const char *e)
{
	if (p >= e)
		return 0;
	if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\v' || *p == '\f')
		return 1;
	if (e - p >= 2 && (unsigned char)p[0] == 0xc2 && (unsigned char)p[1] == 0xa0)
		return 2;
	return 0;
}

static const char *
skip_space(const char *p, const char *e)
{
	size_t n;

	while ((n = space_at(p, e)) > 0)
		p += n;
	return p;
}

static const char *
trim_end(const char *s, const char *e)
{
	for (;;) {
		if (e > s && space_at(e - 1, e) == 1)
			e--;
		else if (e - s >= 2 && space_at(e - 2, e) == 2)
			e -= 2;
		else
			return e;
	}
}

static const char *
word_end(const char *p, const char *e)
{
	while (p < e && space_at(p, e) == 0)
		p++;
	return p;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Whether [w, we) is the ASCII word kw, in any case. */
static bool
word_is(const char *w, const char *we, const char *kw)
{
	size_t n = strlen(kw);

	if ((size_t)(we - w) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)w[i]) != kw[i])
			return false;
	return true;
}

/* Start of the first (or last) word kw in [p, e), or NULL. */
static const char *
find_word(const char *p, const char *e, const char *kw, bool last)
{
	const char *found = NULL;

	for (p = skip_space(p, e); p < e; p = skip_space(word_end(p, e), e)) {
		if (word_is(p, word_end(p, e), kw)) {
			found = p;
			if (!last)
				break;
		}
	}
	return found;
}

/* Copies user text for an error: at most QUOTE_CHARS code points, control
 * characters and invalid bytes as '?', so the message stays printable UTF-8. */
static void
quote(char *dst, const char *s, const char *e)
{
	const unsigned char *p = (const unsigned char *)s, *end = (const unsigned char *)e;
	size_t o = 0, n;
	int chars = 0;

	while (p < end && chars < QUOTE_CHARS) {
		n = utf8_seq_len(p, (size_t)(end - p));
		if (n == 0 || *p < 0x20 || *p == 0x7f) {
			dst[o++] = '?';
			n = n ? n : 1;
		} else {
			memcpy(dst + o, p, n);
			o += n;
		}
		p += n;
		chars++;
	}
	if (p < end) {
		memcpy(dst + o, "\xe2\x80\xa6", 3); /* … */
		o += 3;
	}
	dst[o] = '\0';
}

/* Writes the error and returns -1. A message cut short by a small buffer
 * loses its partial last character rather than ending in broken UTF-8. */
static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	size_t n, j;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (n == 0)
		return -1;
	j = n - 1;
	while (j > 0 && n - j < 4 && ((unsigned char)err[j] & 0xc0) == 0x80)
		j--;
	if (utf8_seq_len((unsigned char *)err + j, n - j) != n - j)
		err[j] = '\0';
	return -1;
}

/* Seconds per unit for the ASCII word [w, we), or 0 when unknown. */
static int64_t
unit_seconds(const char *w, const char *we)
{
	for (size_t i = 0; i < ARRAY_LEN(units); i++)
		if (word_is(w, we, units[i].word))
			return units[i].seconds;
	return 0;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Reads digits at *pp, saturating just above the cap so that no number of
 * digits can overflow. */
static int64_t
read_number(const char **pp, const char *e)
{
	int64_t n = 0;
	const char *p = *pp;

	for (; p < e && is_digit(*p); p++)
		if (n <= DIBS_DURATION_MAX)
			n = n * 10 + (*p - '0');
	*pp = p;
	return n;
}

/* Parses the duration in [s, e). *shaped tells whether the text is made of
 * NUMBER UNIT terms at all, even when the total is out of range. */
static int
duration_span(const char *s, const char *e, int64_t *out, bool *shaped, char *err, size_t errlen)
{
	char q[QUOTE_BYTES];
	const char *p, *u;
	int64_t total = 0, n, per;

	*shaped = false;
	s = skip_space(s, e);
	e = trim_end(s, e);
	quote(q, s, e);
	if (s == e)
		return fail(err, errlen, "a duration is needed, like 2h or 45 minutes");
	for (p = s; p < e; p = skip_space(p, e)) {
		if (!is_digit(*p))
			return fail(err, errlen, "\"%s\" is not a duration: " DURATION_HINT, q);
		n = read_number(&p, e);
		if (p < e && (*p == '.' || *p == ',') && p + 1 < e && is_digit(p[1]))
			return fail(err, errlen, "\"%s\": use whole numbers, like 1h30m", q);
		p = skip_space(p, e);
		for (u = p; p < e && is_alpha(*p); p++)
			;
		if (u == p)
			return fail(err, errlen, "\"%s\" needs a unit: " DURATION_HINT, q);
		if ((per = unit_seconds(u, p)) == 0)
			return fail(err, errlen, "\"%s\" is not a duration: " DURATION_HINT, q);
		total += n > DIBS_DURATION_MAX ? DIBS_DURATION_MAX + 1 : n * per;
		if (total > DIBS_DURATION_MAX)
			total = DIBS_DURATION_MAX + 1;
	}
	*shaped = true;
	if (total > DIBS_DURATION_MAX)
		return fail(err, errlen, "a duration is at most 30 days");
	if (total < 1)
		return fail(err, errlen, "a duration is at least 1 second");
	*out = total;
	return 0;
}

int
dibs_parse_duration(const char *s, int64_t *seconds, char *err, size_t errlen)
{
	bool shaped;

	return duration_span(s, s + strlen(s), seconds, &shaped, err, errlen);
}

static bool
is_thing_char(char c)
{
	return is_digit(c) || is_alpha(c) || c == '-' || c == '_' || c == '.' || c == '/';
}

/* Takes the thing from the word [w, we). */
static int
set_thing(const char *w, const char *we, struct dibs_cmd *out, char *err, size_t errlen)
{
	char q[QUOTE_BYTES];
	size_t n = (size_t)(we - w);

	quote(q, w, we);
	for (size_t i = 0; i < n; i++)
		if (!is_thing_char(w[i]))
			return fail(err, errlen, "\"%s\" is not a thing name: " THING_RULE, q);
	if (n > DIBS_THING_MAX)
		return fail(err, errlen, "\"%s\" is too long: " THING_RULE, q);
	for (size_t i = 0; i < n; i++)
		out->thing[i] = (char)lower((unsigned char)w[i]);
	memcpy(out->display, w, n);
	out->thing[n] = out->display[n] = '\0';
	return 0;
}

/* A whole string as one thing name, for callers that have a name rather
 * than a command (the REST API's path, a webhook subscription's list). */
int
dibs_thing_name(const char *s, char thing[DIBS_THING_MAX + 1], char display[DIBS_THING_MAX + 1],
                char *err, size_t errlen)
{
	struct dibs_cmd c;

	if (s == NULL || s[0] == '\0')
		return fail(err, errlen, "a thing name is needed: " THING_RULE);
	if (set_thing(s, s + strlen(s), &c, err, errlen) < 0)
		return -1;
	if (thing)
		memcpy(thing, c.thing, sizeof(c.thing));
	if (display)
		memcpy(display, c.display, sizeof(c.display));
	return 0;
}

/* Takes the reason from [s, e), trimmed. */
static int
set_reason(const char *s, const char *e, struct dibs_cmd *out, char *err, size_t errlen)
{
	const unsigned char *p, *end;
	size_t n;
	int chars = 0;

	s = skip_space(s, e);
	e = trim_end(s, e);
	if (s == e)
		return fail(err, errlen,
		            "because needs a reason, like because testing the release");
	p = (const unsigned char *)s;
	end = (const unsigned char *)e;
	for (; p < end; p += n, chars++) {
		if ((n = utf8_seq_len(p, (size_t)(end - p))) == 0)
			return fail(err, errlen, "the reason is not valid UTF-8 text");
		if (chars == DIBS_REASON_MAX)
			return fail(err, errlen, "a reason is at most %d characters",
			            DIBS_REASON_MAX);
	}
	memcpy(out->reason, s, (size_t)(e - s));
	out->reason[e - s] = '\0';
	out->has_reason = true;
	return 0;
}

/* The first word of args as the thing; *rest is what follows it. */
static int
lead_thing(const char *args, const char **rest, struct dibs_cmd *out, char *err, size_t errlen)
{
	const char *e = args + strlen(args), *w = skip_space(args, e), *we = word_end(w, e);
	const char *verb = dibs_verb_name(out->verb);

	if (w == we)
		return fail(err, errlen, "%s needs a thing, like /dibs %s staging", verb, verb);
	*rest = skip_space(we, e);
	return set_thing(w, we, out, err, errlen);
}

static int
set_duration(const char *s, const char *e, struct dibs_cmd *out, char *err, size_t errlen)
{
	bool shaped;

	if (duration_span(s, e, &out->seconds, &shaped, err, errlen) < 0)
		return -1;
	out->has_for = true;
	return 0;
}

static int
parse_none(const char *args, struct dibs_cmd *out, char *err, size_t errlen)
{
	char q[QUOTE_BYTES];
	const char *e = args + strlen(args), *s = skip_space(args, e);

	if (s == e)
		return 0;
	quote(q, s, trim_end(s, e));
	return fail(err, errlen, "unexpected \"%s\": %s takes nothing after it", q,
	            dibs_verb_name(out->verb));
}

/* What follows the one thing of off, q, kick and remove: a word that
 * reads as a reason or a duration is named as such, since that is what was
 * meant. */
static int
parse_thing_only(const char *args, struct dibs_cmd *out, char *err, size_t errlen)
{
	char q[QUOTE_BYTES];
	const char *rest, *we, *e = args + strlen(args);
	const char *verb = dibs_verb_name(out->verb);

	if (lead_thing(args, &rest, out, err, errlen) < 0)
		return -1;
	if (rest == e)
		return 0;
	we = word_end(rest, e);
	if (word_is(rest, we, "because"))
		return fail(err, errlen, "%s takes no reason", verb);
	if (word_is(rest, we, "for") || word_is(rest, we, "by"))
		return fail(err, errlen, "%s takes no duration", verb);
	quote(q, rest, trim_end(rest, e));
	return fail(err, errlen,
	            "unexpected \"%s\" after \"%s\": %s takes one thing (names have no spaces)", q,
	            out->display, verb);
}

/* Whether two thing names are one (ASCII, any case). */
static bool
same_name(const char *a, const char *b)
{
	return word_is(a, a + strlen(a), b);
}

/* who and status: q with a thing, mine without one. */
static int
parse_q_or_mine(const char *args, struct dibs_cmd *out, char *err, size_t errlen)
{
	const char *e = args + strlen(args);

	if (skip_space(args, e) == e) {
		out->verb = DIBS_MINE;
		return 0;
	}
	out->verb = DIBS_Q;
	return parse_thing_only(args, out, err, errlen);
}

/* add THING [THING ...]: every word a thing name, a repeat (in any case)
 * counted once. for and because are refused so that "add x because y"
 * does not quietly make a thing called "because". */
static int
parse_add(const char *args, struct dibs_cmd *out, char *err, size_t errlen)
{
	const char *e = args + strlen(args), *w = skip_space(args, e), *we;
	char first[DIBS_THING_MAX + 1], first_display[DIBS_THING_MAX + 1];
	int i;

	if (w == e)
		return fail(err, errlen, "add needs a thing, like /dibs add staging");
	for (; w < e; w = skip_space(we, e)) {
		we = word_end(w, e);
		if (word_is(w, we, "because") || word_is(w, we, "for"))
			return fail(err, errlen,
			            "add takes thing names only, no reason or duration");
		if (set_thing(w, we, out, err, errlen) < 0)
			return -1;
		for (i = 0; i < out->nadd && !same_name(out->add[i], out->thing); i++)
			;
		if (i < out->nadd)
			continue;
		if (out->nadd == DIBS_ADD_MAX)
			return fail(err, errlen, "add takes at most %d names at once",
			            DIBS_ADD_MAX);
		if (out->nadd == 0) {
			memcpy(first, out->thing, sizeof(first));
			memcpy(first_display, out->display, sizeof(first_display));
		}
		memcpy(out->add[out->nadd++], out->display, sizeof(out->add[0]));
	}
	memcpy(out->thing, first, sizeof(first));
	memcpy(out->display, first_display, sizeof(first_display));
	return 0;
}

/* "for D [because R]": the duration ends at the first "because". */
static int
on_for_first(const char *s, const char *e, struct dibs_cmd *out, char *err, size_t errlen)
{
	const char *because = find_word(s, e, "because", false);

	if (because == NULL)
		return set_duration(s, e, out, err, errlen);
	if (set_duration(s, because, out, err, errlen) < 0)
		return -1;
	return set_reason(because + strlen("because"), e, out, err, errlen);
}

/* "because R [for D]": a trailing "for" and duration-shaped text is the
 * duration; otherwise everything is the reason. */
static int
on_because_first(const char *s, const char *e, struct dibs_cmd *out, char *err, size_t errlen)
{
	const char *f = find_word(s, e, "for", true);
	char scratch[8];
	int64_t secs;
	bool shaped = false;

	if (f != NULL)
		duration_span(f + 3, e, &secs, &shaped, scratch, sizeof(scratch));
	if (!shaped)
		return set_reason(s, e, out, err, errlen);
	if (set_duration(f + 3, e, out, err, errlen) < 0)
		return -1;
	return set_reason(s, f, out, err, errlen);
}

static int
parse_on(const char *args, struct dibs_cmd *out, char *err, size_t errlen)
{
	char q[QUOTE_BYTES];
	const char *rest, *we, *e = args + strlen(args);

	if (lead_thing(args, &rest, out, err, errlen) < 0)
		return -1;
	if (rest == e)
		return 0;
	we = word_end(rest, e);
	if (word_is(rest, we, "for"))
		return on_for_first(we, e, out, err, errlen);
	if (word_is(rest, we, "because"))
		return on_because_first(we, e, out, err, errlen);
	quote(q, rest, we);
	return fail(err, errlen,
	            "unexpected \"%s\" after \"%s\": use for DURATION or because REASON", q,
	            out->display);
}

static int
parse_extend(const char *args, struct dibs_cmd *out, char *err, size_t errlen)
{
	const char *rest, *we, *e = args + strlen(args);

	if (lead_thing(args, &rest, out, err, errlen) < 0)
		return -1;
	if (rest == e)
		return fail(err, errlen, "extend needs a duration, like /dibs extend %s by 1h",
		            out->display);
	we = word_end(rest, e);
	if (word_is(rest, we, "by") || word_is(rest, we, "for"))
		rest = we;
	return set_duration(rest, e, out, err, errlen);
}

#define TOKEN_USAGE "use /dibs token, /dibs token list or /dibs token revoke ID"

/* "token", "token list", "token revoke ID" (ID: a whole number). */
static int
parse_token(const char *args, struct dibs_cmd *out, char *err, size_t errlen)
{
	char q[QUOTE_BYTES];
	const char *e = args + strlen(args), *w = skip_space(args, e), *we = word_end(w, e);
	const char *n, *ne;
	long long id;

	if (w == e)
		return 0;
	if (word_is(w, we, "list")) {
		out->token_op = DIBS_TOKEN_LIST;
		n = skip_space(we, e);
		if (n == e)
			return 0;
		quote(q, n, trim_end(n, e));
		return fail(err, errlen, "unexpected \"%s\": token list takes nothing after it", q);
	}
	if (!word_is(w, we, "revoke")) {
		quote(q, w, trim_end(w, e));
		return fail(err, errlen, "unexpected \"%s\": " TOKEN_USAGE, q);
	}
	out->token_op = DIBS_TOKEN_REVOKE;
	n = skip_space(we, e);
	ne = word_end(n, e);
	if (n == ne)
		return fail(err, errlen,
		            "token revoke needs a token's id, like /dibs token revoke 12 "
		            "(/dibs token list shows them)");
	quote(q, n, ne);
	if (strnum_digits(n, (size_t)(ne - n), 1, INT64_MAX, &id) < 0)
		return fail(err, errlen,
		            "\"%s\" is not a token id: ids are whole numbers, see "
		            "/dibs token list",
		            q);
	if (skip_space(ne, e) != e) {
		n = skip_space(ne, e);
		quote(q, n, trim_end(n, e));
		return fail(err, errlen, "unexpected \"%s\" after the token id", q);
	}
	out->token_id = id;
	return 0;
}

/* "history THING [DAYS]": DAYS a whole number of days, 1 to 90. */
static int
parse_history(const char *args, struct dibs_cmd *out, char *err, size_t errlen)
{
	char q[QUOTE_BYTES];
	const char *rest, *we, *e = args + strlen(args);
	long long days;

	out->days = DIBS_HISTORY_DAYS;
	if (lead_thing(args, &rest, out, err, errlen) < 0)
		return -1;
	if (rest == e)
		return 0;
	we = word_end(rest, e);
	quote(q, rest, trim_end(rest, e));
	if (skip_space(we, e) != e ||
	    strnum_digits(rest, (size_t)(we - rest), 1, DIBS_HISTORY_DAYS_MAX, &days) < 0)
		return fail(err, errlen,
		            "\"%s\" is not a number of days: DAYS is a whole number from 1 to %d",
		            q, DIBS_HISTORY_DAYS_MAX);
	out->days = (int)days;
	return 0;
}

/* settings KEY VALUE: each key takes one of two words. */
static const struct {
	const char *key;
	enum dibs_setting setting;
	const char *off, *on;
} setting_rows[] = {
    {"names", DIBS_SET_NAMES, "open", "strict"},
    {"manage", DIBS_SET_MANAGE, "anyone", "admins"},
    {"announce", DIBS_SET_ANNOUNCE, "off", "on"},
};

/* settings checkin|autorelease off|DURATION */
static int
parse_timer_setting(const char *k, const char *ke, const char *v, const char *e,
                    struct dibs_cmd *out, char *err, size_t errlen)
{
	bool checkin = word_is(k, ke, "checkin");
	const char *key = checkin ? "checkin" : "autorelease";

	out->setting = checkin ? DIBS_SET_CHECKIN : DIBS_SET_AUTORELEASE;
	if (v == e)
		return fail(err, errlen, "settings %s takes off or a duration, like 4h", key);
	if (word_is(v, word_end(v, e), "off") && skip_space(word_end(v, e), e) == e)
		return 0;
	if (set_duration(v, e, out, err, errlen) < 0)
		return -1;
	out->has_for = false; /* the duration is the setting's, not a hold's */
	out->set_seconds = out->seconds;
	out->seconds = 0;
	return 0;
}

static int
parse_settings(const char *args, struct dibs_cmd *out, char *err, size_t errlen)
{
	char q[QUOTE_BYTES];
	const char *e = args + strlen(args), *k = skip_space(args, e), *ke = word_end(k, e);
	const char *v = skip_space(ke, e), *ve = word_end(v, e);

	if (k == e)
		return 0;
	if (word_is(k, ke, "checkin") || word_is(k, ke, "autorelease"))
		return parse_timer_setting(k, ke, v, e, out, err, errlen);
	for (size_t i = 0; i < ARRAY_LEN(setting_rows); i++) {
		if (!word_is(k, ke, setting_rows[i].key))
			continue;
		out->setting = setting_rows[i].setting;
		if (word_is(v, ve, setting_rows[i].on))
			out->set_on = true;
		else if (!word_is(v, ve, setting_rows[i].off))
			return fail(err, errlen, "settings %s takes %s or %s", setting_rows[i].key,
			            setting_rows[i].off, setting_rows[i].on);
		if (skip_space(ve, e) == e)
			return 0;
		v = skip_space(ve, e);
		quote(q, v, trim_end(v, e));
		return fail(err, errlen, "unexpected \"%s\" after settings %s %s", q,
		            setting_rows[i].key,
		            out->set_on ? setting_rows[i].on : setting_rows[i].off);
	}
	quote(q, k, ke);
	return fail(err, errlen,
	            "unknown setting \"%s\": the settings are names, manage, announce, checkin and "
	            "autorelease",
	            q);
}

#define ON_USAGE  "`/dibs on THING [for DURATION] [because REASON]`"
#define OFF_USAGE "`/dibs off THING`"
#define Q_USAGE   "`/dibs q THING`"
#define WHO_USAGE "`/dibs who THING` (or just `/dibs who` for yours)"

/* The first row of a verb gives its canonical name. */
static const struct verb_row verbs[] = {
    {"list", DIBS_LIST, parse_none, "`/dibs list` (or just `/dibs`)"},
    {"on", DIBS_ON, parse_on, ON_USAGE},
    {"off", DIBS_OFF, parse_thing_only, OFF_USAGE},
    {"q", DIBS_Q, parse_thing_only, Q_USAGE},
    {"extend", DIBS_EXTEND, parse_extend, "`/dibs extend THING by DURATION`"},
    {"kick", DIBS_KICK, parse_thing_only, "`/dibs kick THING`"},
    {"remove", DIBS_REMOVE, parse_thing_only, "`/dibs remove THING`"},
    {"token", DIBS_TOKEN, parse_token,
     "`/dibs token`, `/dibs token list` or `/dibs token revoke ID`"},
    {"upgrade", DIBS_UPGRADE, parse_none, "`/dibs upgrade`"},
    {"help", DIBS_HELP, parse_none, "`/dibs help`"},
    {"mine", DIBS_MINE, parse_none, "`/dibs mine`"},
    {"add", DIBS_ADD, parse_add, "`/dibs add THING [THING ...]`"},
    {"settings", DIBS_SETTINGS, parse_settings,
     "`/dibs settings`, `/dibs settings names open|strict`, `/dibs settings manage "
     "anyone|admins`, `/dibs settings announce on|off`, `/dibs settings checkin "
     "off|DURATION` or `/dibs settings autorelease off|DURATION`"},
    {"take", DIBS_ON, parse_on, ON_USAGE},
    {"grab", DIBS_ON, parse_on, ON_USAGE},
    {"claim", DIBS_ON, parse_on, ON_USAGE},
    {"release", DIBS_OFF, parse_thing_only, OFF_USAGE},
    {"free", DIBS_OFF, parse_thing_only, OFF_USAGE},
    {"done", DIBS_OFF, parse_thing_only, OFF_USAGE},
    {"drop", DIBS_OFF, parse_thing_only, OFF_USAGE},
    {"who", DIBS_Q, parse_q_or_mine, WHO_USAGE},
    {"status", DIBS_Q, parse_q_or_mine, WHO_USAGE},
    {"history", DIBS_HISTORY, parse_history, "`/dibs history THING [DAYS]`"},
};

static const struct verb_row *
verb_of(const char *text)
{
	const char *e = text + strlen(text), *w = skip_space(text, e), *we = word_end(w, e);

	for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
		if (word_is(w, we, verbs[i].word))
			return &verbs[i];
	return NULL;
}

const char *
dibs_usage(const char *text)
{
	const struct verb_row *v = verb_of(text ? text : "");

	return v ? v->usage : NULL;
}

const char *
dibs_verb_name(enum dibs_verb verb)
{
	for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
		if (verbs[i].verb == verb)
			return verbs[i].word;
	return "?";
}

int
dibs_parse(const char *text, struct dibs_cmd *out, char *err, size_t errlen)
{
	char q[QUOTE_BYTES];
	const struct verb_row *v;
	const char *e, *w;

	memset(out, 0, sizeof(*out));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (text == NULL)
		text = "";
	e = text + strlen(text);
	w = skip_space(text, e);
	if (w == e)
		return 0; /* empty text lists */
	if ((v = verb_of(w)) != NULL) {
		out->verb = v->verb;
		if (v->parse(word_end(w, e), out, err, errlen) == 0)
			return 0;
		memset(out, 0, sizeof(*out));
		return -1;
	}
	quote(q, w, word_end(w, e));
	return fail(err, errlen, "unknown command \"%s\"", q);
}

const char *
dibs_help_text(void)
{
	return "*Dibs: take turns on shared things*\n"
	       "`/dibs on THING [for DURATION] [because REASON]` take THING, or join its queue\n"
	       "`/dibs off THING` release THING, or leave its queue\n"
	       "`/dibs list` every thing with its holder and queue (also just `/dibs`)\n"
	       "`/dibs q THING` one thing's holder and whole queue\n"
	       "`/dibs mine` your holds and places in line (also `/dibs who`)\n"
	       "`/dibs add THING [THING ...]` create things without taking them\n"
	       "`/dibs extend THING by DURATION` push your release time out\n"
	       "`/dibs kick THING` force a release (announced in the channel)\n"
	       "`/dibs remove THING` delete a thing nobody holds\n"
	       "`/dibs token` create an API token for CI/CD (shown once)\n"
	       "`/dibs token list` your API tokens; `/dibs token revoke ID` revokes one\n"
	       "`/dibs history THING [DAYS]` who held THING in the last DAYS (default 7, at "
	       "most 90)\n"
	       "`/dibs upgrade` a link to upgrade your plan (for owners and admins)\n"
	       "`/dibs settings` the team's settings; `/dibs settings names open|strict` "
	       "(strict: only `add` makes things), `/dibs settings manage anyone|admins` (who "
	       "may kick, remove and add), `/dibs settings announce on|off` (post takes and "
	       "releases in this channel), `/dibs settings checkin off|DURATION` (ask an "
	       "open-ended holder after DURATION; default 4h), `/dibs settings autorelease "
	       "off|DURATION` (release when a check-in goes unanswered that long); changing a "
	       "setting is for owners and admins\n"
	       "`/dibs help` this list\n"
	       "Also: `take`, `grab`, `claim` for `on`; `release`, `free`, `done`, `drop` for "
	       "`off`; `who THING`, `status THING` for `q`.\n"
	       "THING: 1 to 64 letters, digits, `-` `_` `.` `/` (any case). "
	       "DURATION: like `90s`, `45 minutes`, `2h`, `1 day` or `1h30m`, at most 30 days.";
}
