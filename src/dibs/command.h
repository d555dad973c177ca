/* The /dibs command grammar: text in, a parsed command or a short error out.
 * Pure functions: no allocation, no I/O, no global state.
 *
 *   (empty) | list                 every thing of the team
 *   on THING [for DURATION] [because REASON]
 *   on THING [because REASON] [for DURATION]
 *   off THING | q THING | kick THING | remove THING
 *   mine                           the caller's holds and places in line
 *   add THING [THING ...]          (at most DIBS_ADD_MAX names; a repeated
 *                                   name counts once)
 *   extend THING by DURATION       (also "extend THING DURATION",
 *                                   "extend THING for DURATION")
 *   token [list | revoke ID]       (ID: a token's id, a whole number)
 *   history THING [DAYS]           (DAYS: a whole number 1 to 90, default 7)
 *   upgrade | help
 *   settings [names open|strict | manage anyone|admins | announce on|off |
 *             checkin off|DURATION | autorelease off|DURATION]
 *                                  (seconds: the DURATION, 0 for off)
 *
 * Synonyms: take, grab, claim = on; release, free, done, drop = off;
 * who, status = q with a thing and mine without one. Verbs are the first
 * word only, so a thing may be called anything a name allows.
 *
 * Words are separated by spaces, tabs, newlines or no-break spaces (U+00A0,
 * which Slack clients sometimes send). Verbs and the keywords for, because
 * and by are case-insensitive. Anything not in this list is an error.
 *
 * THING: 1 to 64 characters of A-Z a-z 0-9 - _ . /, one word, compared
 * case-insensitively: cmd.thing is its lower-case canonical form (the key),
 * cmd.display the spelling as typed.
 *
 * DURATION: one or more terms NUMBER UNIT, a space allowed between number
 * and unit and between terms ("90s", "45 minutes", "1 day", "1h30m",
 * "1h 30m"); the terms add up. Units: s sec secs second seconds, m min mins
 * minute minutes, h hr hrs hour hours, d day days (any case). Whole numbers
 * only; at least 1 second, at most 30 days.
 *
 * for and because in either order:
 *  - "for" first: the duration runs up to the word "because" (or the end);
 *    after "because" the reason runs to the end of the text.
 *  - "because" first: the reason runs to the end of the text, except that
 *    when the text after the last word "for" is shaped like a duration
 *    (number-unit terms, even out of range) it is the duration, and its
 *    range is checked. So "because waiting for 2 people" is all reason, and
 *    "because demo for 2h" is reason "demo" for 2 hours.
 * REASON: 1 to 300 characters of valid UTF-8, surrounding spaces trimmed.
 *
 * Error texts are one short line and may quote (clipped, control characters
 * and invalid UTF-8 replaced by '?') what the user typed: escape them like
 * any user text before putting them in mrkdwn. */
#ifndef CONCH_DIBS_COMMAND_H
#define CONCH_DIBS_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIBS_THING_MAX    64  /* characters (all ASCII) */
#define DIBS_REASON_MAX   300 /* characters (code points) */
#define DIBS_REASON_BYTES (DIBS_REASON_MAX * 4 + 1)
#define DIBS_DURATION_MAX (30 * 24 * 3600) /* seconds */
#define DIBS_ADD_MAX      20               /* names of one add */

enum dibs_verb {
	DIBS_LIST,
	DIBS_ON,
	DIBS_OFF,
	DIBS_Q,
	DIBS_EXTEND,
	DIBS_KICK,
	DIBS_REMOVE,
	DIBS_TOKEN,
	DIBS_UPGRADE,
	DIBS_HISTORY,
	DIBS_HELP,
	DIBS_MINE,
	DIBS_ADD,
	DIBS_SETTINGS,
};
#define DIBS_VERB_LAST DIBS_SETTINGS

enum dibs_setting {
	DIBS_SET_SHOW,        /* "settings" */
	DIBS_SET_NAMES,       /* set_on: strict (else open) */
	DIBS_SET_MANAGE,      /* set_on: admins (else anyone) */
	DIBS_SET_ANNOUNCE,    /* set_on: on (else off), for the channel */
	DIBS_SET_CHECKIN,     /* seconds: 0 for off */
	DIBS_SET_AUTORELEASE, /* seconds: 0 for off */
};

#define DIBS_HISTORY_DAYS     7  /* history THING: the default */
#define DIBS_HISTORY_DAYS_MAX 90 /* and the most; rows are kept that long */

enum dibs_token_op {
	DIBS_TOKEN_CREATE, /* "token" */
	DIBS_TOKEN_LIST,   /* "token list" */
	DIBS_TOKEN_REVOKE, /* "token revoke ID": token_id */
};

struct dibs_cmd {
	enum dibs_verb verb;
	enum dibs_token_op token_op;      /* DIBS_TOKEN only */
	int64_t token_id;                 /* DIBS_TOKEN_REVOKE: 1 or more */
	int days;                         /* DIBS_HISTORY: 1 .. DIBS_HISTORY_DAYS_MAX */
	char thing[DIBS_THING_MAX + 1];   /* lower-case; "" for verbs without one */
	char display[DIBS_THING_MAX + 1]; /* as typed */
	bool has_for;                     /* seconds is set: on ... for, and extend */
	int64_t seconds;
	bool has_reason;
	char reason[DIBS_REASON_BYTES];             /* NUL-terminated UTF-8, "" unless has_reason */
	enum dibs_setting setting;                  /* DIBS_SETTINGS */
	bool set_on;                                /* the second word of the setting's pair */
	int64_t set_seconds;                        /* checkin, autorelease: 0 for off */
	int nadd;                                   /* DIBS_ADD: names in add (thing is add[0]) */
	char add[DIBS_ADD_MAX][DIBS_THING_MAX + 1]; /* as typed, distinct ignoring case */
};

/* Parses the text of a /dibs command. Returns 0 and fills *out, or -1 with
 * a message in err (and *out zeroed). Never changes anything but *out and
 * err. */
int dibs_parse(const char *text, struct dibs_cmd *out, char *err, size_t errlen);

/* Checks that all of s is one thing name. Returns 0 and fills thing
 * (lowercased) and display (as given), either of which may be NULL, or -1
 * with a message in err. */
int dibs_thing_name(const char *s, char thing[DIBS_THING_MAX + 1], char display[DIBS_THING_MAX + 1],
                    char *err, size_t errlen);

/* Parses a whole DURATION (surrounding spaces allowed). Returns 0 and sets
 * *seconds (1 .. DIBS_DURATION_MAX), or -1 with a message in err. */
int dibs_parse_duration(const char *s, int64_t *seconds, char *err, size_t errlen);

/* The usage line of the command text starts with (its first word's verb),
 * as mrkdwn, or NULL when that word is no verb. Shown under a parse error
 * instead of the whole help. */
const char *dibs_usage(const char *text);

/* The command list as Slack mrkdwn. */
const char *dibs_help_text(void);

/* The canonical verb word ("on", "list", ...), for logs and metrics. */
const char *dibs_verb_name(enum dibs_verb verb);

#endif
