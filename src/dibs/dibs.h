/* Dibs: taking turns on shared things. The state and its atomic changes
 * live in SQL (migrations/003_dibs.sql); this folder parses commands,
 * calls those functions, renders Slack messages and runs the timers. */
#ifndef CONCH_DIBS_H
#define CONCH_DIBS_H

#include <jansson.h>
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
	DIBS_ST_NO_SUCH_THING,
};

struct dibs_outcome {
	enum dibs_status status;
	int position;       /* queued: place in line, 1 = next */
	double release_at;  /* holding: 0 when untimed */
	char holder[32];    /* who holds it now (queued, holding) */
	char next_user[32]; /* released: the new holder, "" when none */
	enum db_error db_error; /* DIBS_ST_ERROR: the class of the failure */
};

int dibs_take(const char *team_id, const char *user_id, const char *channel_id, const char *thing,
              long long seconds, const char *reason, struct dibs_outcome *out);
int dibs_release(const char *team_id, const char *user_id, const char *thing,
                 struct dibs_outcome *out);

/* API tokens of one user (store.c), for /dibs token list and the API:
 * rows of id, made, last used (NULL: never), expires (unix seconds) and
 * expired ('t'/'f'), oldest first; NULL on error. */
PGresult *dibs_tokens_load(struct tx *tx, const char *team_id, const char *user_id);
/* Revokes (deletes) one of the user's tokens: 1, 0 when they have no such
 * token, -1 on error. */
int dibs_token_revoke(struct tx *tx, const char *team_id, const char *user_id, long long id);
/* The daily "dibs.tokens_cleanup" job. */
enum job_result dibs_tokens_cleanup_job(struct job *job);

/* Views (view.c). */
char *dibs_view_thing_text(const struct dibs_thing *t);
json_t *dibs_view_list(const struct dibs_thing *things, int n, int total);
json_t *dibs_view_one(const struct dibs_thing *t);
json_t *dibs_view_your_turn(const char *display, const char *thing, long long hold_id,
                            double release_at);
json_t *dibs_view_reminder(const char *display, const char *thing, long long hold_id,
                           double release_at);
json_t *dibs_view_kicked(const char *display, const char *by_user);
json_t *dibs_view_kick_announce(const char *display, const char *kicked, const char *by_user,
                                const char *next_user);
/* billing_prompt: mrkdwn shown at the end, or NULL (billing_home_prompt). */
json_t *dibs_view_home(const struct dibs_thing *things, int n, int total, const char *user_id,
                       const char *billing_prompt);

/* Handlers registered by dibs_init(). */
void dibs_slash(struct slash *cmd, struct response *res);
void dibs_action(struct slack_action *act, struct response *res);
int dibs_home_opened(const char *team_id, json_t *event, json_t *envelope);
void dibs_jobs_init(void);

#endif
