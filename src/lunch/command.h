/* The /lunch command grammar: text in, a struct lunch_cmd out. Pure: no
 * I/O, no state; the handler decides what each command does. */
#ifndef CONCH_LUNCH_COMMAND_H
#define CONCH_LUNCH_COMMAND_H

#include <stddef.h>

#define LUNCH_MAX_TIMES        6
#define LUNCH_DEFAULT_TIME     (12 * 60)
#define LUNCH_DEFAULT_SIZE     4
#define LUNCH_DEFAULT_SUMMARY  7
#define LUNCH_MAX_SUMMARY_DAYS 90

/* Day bits of lunch_cmd.days, Monday first. */
#define LUNCH_MON      (1u << 0)
#define LUNCH_SUN      (1u << 6)
#define LUNCH_WEEKDAYS 0x1fu
#define LUNCH_DAILY    0x7fu

enum lunch_verb {
	LUNCH_HELP, /* also empty text */
	LUNCH_START,
	LUNCH_CLOSE,
	LUNCH_SCHEDULE,
	LUNCH_UNSCHEDULE,
	LUNCH_SUMMARY,
	LUNCH_UPGRADE,
};

/* Times are minutes after midnight (0..1439). */
struct lunch_cmd {
	enum lunch_verb verb;
	/* START: the times offered, distinct and ascending, at least one.
	 * SCHEDULE: the default time, which the scheduled poll offers. */
	int ntimes;
	int times[LUNCH_MAX_TIMES];
	int size;         /* START, SCHEDULE: target group size, 2..8 */
	unsigned days;    /* SCHEDULE: LUNCH_MON.. LUNCH_SUN bits, never 0 */
	int open_at;      /* SCHEDULE: when the poll opens */
	int close_at;     /* SCHEDULE: when it closes, after open_at */
	int summary_days; /* SUMMARY: 1..90 */
};

/* Parses the text of /lunch (verbs and keywords in any case, words
 * separated by blanks). Returns 0 and fills out, or -1 with a one-line
 * reason in err (always NUL-terminated when errlen > 0; quoted input is
 * cut short and kept valid UTF-8). O(length of text). */
int lunch_parse(const char *text, struct lunch_cmd *out, char *err, size_t errlen);

/* The command list, Slack mrkdwn. */
const char *lunch_help_text(void);

#endif
