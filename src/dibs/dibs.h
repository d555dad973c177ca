/* Dibs: taking turns on shared things. The state and its atomic changes
 * live in SQL (migrations/003_dibs.sql); this folder parses commands,
 * calls those functions, renders Slack messages and runs the timers. */
#ifndef CONCH_DIBS_H
#define CONCH_DIBS_H

#include <jansson.h>
#include <stdbool.h>
#include <libpq-fe.h>

#include "slack.h"

struct tx;

/* Registers /dibs, its buttons, the App Home and the job kinds. */
void dibs_init(void);

/* One thing as shown: a row of dibs_things(). */
struct dibs_thing {
	char *name;    /* canonical, lower-case */
	char *display; /* as first typed */
	char *holder;  /* NULL when free */
	double since;
	double release_at; /* 0: until released */
	char *reason;      /* NULL or text */
	long long hold_id;
	char **queue; /* user ids in order */
	int nqueue;
};

/* Loads things of a team (all, or only `name` when not NULL), at most
 * `limit`; *total gets how many there are. Returns the count or -1. */
int dibs_load(struct tx *tx, const char *team_id, const char *name, int limit,
              struct dibs_thing **out, int *total);
/* The same in one statement (dibs_cmd_things): /dibs list, /dibs q and
 * the API's reads. -1 on failure (tx->error says why). */
int dibs_list(struct tx *tx, const char *team_id, const char *name, int limit,
              struct dibs_thing **out, int *total);
void dibs_things_free(struct dibs_thing *things, int n);

/* Runs a command's state change for user in one transaction. The REST API
 * and Slack share these. */
enum dibs_status {
	DIBS_ST_ERROR = -1, /* database: nothing changed */
	DIBS_ST_HOLDING,
	DIBS_ST_QUEUED,
	DIBS_ST_ALREADY_HOLDING,
	DIBS_ST_ALREADY_QUEUED,
	DIBS_ST_LIMIT,      /* plan's thing limit */
	DIBS_ST_NEEDS_PLAN, /* plan refuses a timed release */
	DIBS_ST_RELEASED,
	DIBS_ST_LEFT_QUEUE,
	DIBS_ST_NOT_HOLDING,
	DIBS_ST_NO_SUCH_THING, /* also: take of an unknown name with names strict */
};

struct dibs_outcome {
	enum dibs_status status;
	int position;           /* queued: place in line, 1 = next */
	double release_at;      /* holding: 0 when untimed */
	char holder[32];        /* who holds it now (queued, holding) */
	char next_user[32];     /* released: the new holder, "" when none */
	enum db_error db_error; /* DIBS_ST_ERROR: the class of the failure */
};

/* channel_id: where the command was typed (NULL: the API, App Home and
 * modal), where a take or release is announced; NULL announces in the
 * thing's last channel. response_url: the slash command's or button's
 * (NULL: none), through which the person hears if the bot may not post
 * there (dibs_announce). */
int dibs_take(struct tx *tx, const char *team_id, const char *user_id, const char *channel_id,
              const char *response_url, const char *thing, long long seconds, const char *reason,
              struct dibs_outcome *out);
/* As dibs_release_in(tx, team, user, NULL, NULL, thing, out): from the API. */
int dibs_release(struct tx *tx, const char *team_id, const char *user_id, const char *thing,
                 struct dibs_outcome *out);
int dibs_release_in(struct tx *tx, const char *team_id, const char *user_id, const char *channel_id,
                    const char *response_url, const char *thing, struct dibs_outcome *out);
/* Queues the announcement of event ("took", "released", "expired",
 * "auto_released") by user_id in tx, in channel_id or the thing's last
 * channel, unless that channel turned announcements off (dibs_announce()
 * in SQL). response_url (NULL: none): of the slash command or button that
 * made the change; if conch may not post in the channel, user_id is told
 * through it (dibs_respond_via() in SQL). 0 or -1. */
int dibs_announce(struct tx *tx, const char *team_id, const char *thing, const char *channel_id,
                  const char *event, const char *user_id, const char *next_user,
                  const char *response_url);

/* The team's settings (a missing row: the defaults, all false). */
struct dibs_settings {
	bool strict;        /* names strict: only add makes things */
	bool admins_manage; /* manage admins: kick, remove and add need an admin */
};
int dibs_settings_load(struct tx *tx, const char *team_id, struct dibs_settings *out);

/* Did you mean? Whether the canonical names a and b are close: not equal,
 * not differing only in their digits (db1, db2), and either equal once -
 * _ . are dropped or at most 2 edits apart. */
bool dibs_names_close(const char *a, const char *b);
#define DIBS_SUGGEST_MAX  3
#define DIBS_SUGGEST_FROM 4 /* characters: shorter names get no suggestions */
/* For `on NAME` when NAME (canonical) is not a thing: the display names of
 * up to DIBS_SUGGEST_MAX close things, closest first, into out (each
 * DIBS_THING_MAX + 1 bytes), and the team's settings into set, in one
 * statement. Returns how many (0 also when NAME exists or is shorter than
 * DIBS_SUGGEST_FROM), or -1 on a database error. */
int dibs_suggest(struct tx *tx, const char *team_id, const char *name,
                 char out[DIBS_SUGGEST_MAX][65], struct dibs_settings *set);

/* API tokens of one user (store.c), for /dibs token list and the API:
 * rows of id, made, last used (NULL: never), expires (unix seconds) and
 * expired ('t'/'f'), oldest first; NULL on error. */
PGresult *dibs_tokens_load(struct tx *tx, const char *team_id, const char *user_id);
/* Revokes (deletes) one of the user's tokens: 1, 0 when they have no such
 * token, -1 on error. */
int dibs_token_revoke(struct tx *tx, const char *team_id, const char *user_id, long long id);
/* The daily "dibs.tokens_cleanup" job. */
enum job_result dibs_tokens_cleanup_job(struct job *job);

/* Hold history (history.c). Rows of user, since, ended (NULL: holding
 * now), ending (released | handed_over | kicked | expired | auto_released),
 * ended_by, reason, newest first, for the holds of thing that ended in the
 * last days days and the current one; *exists tells whether the thing
 * exists. NULL on error. */
struct dibs_cmd;
PGresult *dibs_history_load(struct tx *tx, const char *team_id, const char *thing, int days,
                            int *exists);
/* "handed over" for "handed_over", and so on. */
const char *dibs_history_ending_text(const char *word);
void dibs_history_command(struct tx *tx, struct slash *cmd, const struct dibs_cmd *dc,
                          struct response *res);
void dibs_history_init(void);

/* Views (view.c). */
char *dibs_view_thing_text(const struct dibs_thing *t);
json_t *dibs_view_list(const struct dibs_thing *things, int n, int total);
json_t *dibs_view_one(const struct dibs_thing *t);
json_t *dibs_view_your_turn(const char *display, const char *thing, long long hold_id,
                            double release_at);
json_t *dibs_view_reminder(const char *display, const char *thing, long long hold_id,
                           double release_at);
/* To the holder: who waits (queue in order), with a Release button for
 * that hold. */
json_t *dibs_view_queue_joined(const char *display, const char *thing, long long hold_id,
                               char **queue, int nqueue);
/* One line for the channel: "<@U> took *x*.", "<@U> released *x*.",
 * "<@U>'s hold on *x* ended: its time was up." (event "expired"), "...
 * was released: the check-in went unanswered." ("auto_released"), and
 * "It is now <@V>'s." when it went to the next in line. */
json_t *dibs_view_announce(const char *event, const char *display, const char *user,
                           const char *next_user);
/* The check-in DM: "Still using *x*?" with Keep (value "thing hold gen")
 * and Release for that hold. */
json_t *dibs_view_checkin(const char *display, const char *thing, long long hold_id, int gen);
json_t *dibs_view_kicked(const char *display, const char *by_user);
json_t *dibs_view_kick_announce(const char *display, const char *kicked, const char *by_user,
                                const char *next_user);
/* Did you mean? for `on display`: buttons to take each of the n close
 * names and (when can_create) to create display, made for user (with the command's seconds,
 * 0 for none, and reason, NULL for none). */
json_t *dibs_view_did_you_mean(const char *user, const char *display, long long seconds,
                               const char *reason, char close[][65], int n, bool can_create);
/* The Dibs on... modal: inputs thing, duration and reason (block ids),
 * callback_id "dibs.modal". */
json_t *dibs_view_modal(void);
/* The Dibs section of the App Home, appended to blocks: the user's holds
 * and places, then the team's things (n of total), each with its buttons
 * for user (and a Dibs on... button opening the modal) (Release and Extend 1h on their hold, Leave
 * the queue on their place, else Take or Join the queue). */
void dibs_view_home_section(const struct dibs_thing *things, int n, int total, const char *user_id,
                            json_t *blocks);

/* Handlers registered by dibs_init(). */
void dibs_slash(struct tx *tx, struct slash *cmd, struct response *res);
void dibs_action(struct tx *tx, struct slack_action *act, struct response *res);
void dibs_jobs_init(void);

#endif
