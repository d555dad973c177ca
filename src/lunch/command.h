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
#define LUNCH_DEFAULT_STATS    30
#define LUNCH_MAX_STATS_DAYS   365
#define LUNCH_MAX_REMIND       (12 * 60) /* remind= at most 12 hours before the close */

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
	LUNCH_CANCEL,
	LUNCH_OPTOUT,
	LUNCH_OPTIN,
	LUNCH_STATS,
	LUNCH_SETTINGS,
};

/* Times are minutes after midnight (0..1439). */
struct lunch_cmd {
	enum lunch_verb verb;
	/* START: the times offered, distinct and ascending, at least one.
	 * SCHEDULE: the default time, which the scheduled poll offers. */
	int ntimes;
	int times[LUNCH_MAX_TIMES];
	int size;              /* START, SCHEDULE: target group size, 2..8 */
	unsigned days;         /* SCHEDULE: LUNCH_MON.. LUNCH_SUN bits, never 0 */
	int open_at;           /* SCHEDULE: when the poll opens */
	int close_at;          /* SCHEDULE: when it closes, after open_at; START: when
	                          has_close, `close HH:MM` */
	int has_close;         /* START: `close HH:MM` was given */
	int remind;            /* START: `remind=D` in minutes before the close, 0 none */
	int summary_days;      /* SUMMARY: 1..90; STATS: 1..365 */
	int groups_in_channel; /* SETTINGS: `groups channel` 1, `groups dm` 0 */
};

/* Parses the text of /lunch (verbs and keywords in any case, words
 * separated by blanks). Returns 0 and fills out, or -1 with a one-line
 * reason in err (always NUL-terminated when errlen > 0; quoted input is
 * cut short and kept valid UTF-8). O(length of text). */
int lunch_parse(const char *text, struct lunch_cmd *out, char *err, size_t errlen);

/* The command list, Slack mrkdwn. */
const char *lunch_help_text(void);

#endif
