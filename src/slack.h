/* Slack plumbing: request signatures, the inbound endpoints' dispatch
 * tables, reply builders, and the Web API client (used only from jobs). */
#ifndef CONCH_SLACK_H
#define CONCH_SLACK_H

#include <stddef.h>
#include <jansson.h>

#include "db.h"
#include "http.h"
#include "jobs.h"
#include "util.h"

struct tx;

/* --- signatures: v0=hex HMAC-SHA256(secret, "v0:" ts ":" body) --- */

enum slack_sig {
	SLACK_SIG_OK = 0,
	SLACK_SIG_MISSING, /* a header is absent or malformed */
	SLACK_SIG_STALE,   /* |now - timestamp| > 300 */
	SLACK_SIG_MISMATCH,
};

#define SLACK_SIG_TOLERANCE 300

enum slack_sig slack_verify(const char *secret, const char *timestamp, const char *signature,
                            const char *body, size_t len, long now);
/* "v0=" + hex HMAC into out (68 bytes); used by tests and the bench client. */
void slack_sign(const char *secret, const char *timestamp, const char *body, size_t len,
                char out[68]);

/* --- inbound dispatch ------------------------------------------------- */

struct slash {
	const char *team_id;
	const char *user_id;
	const char *user_name;
	const char *channel_id;
	const char *command; /* "/dibs" */
	const char *text;    /* trimmed */
	const char *response_url;
	const char *trigger_id;
};

struct slack_action {
	const char *team_id;
	const char *user_id;
	const char *channel_id; /* may be NULL */
	const char *action_id;
	const char *value;        /* may be "" */
	const char *response_url; /* may be NULL */
	const char *message_ts;   /* may be NULL */
	json_t *payload;          /* the whole block_actions payload */
};

/* Fills act from a block_actions payload, borrowing its strings (the team
 * from team.id, else user.team_id; the channel from channel.id, else
 * container.channel_id; the first action's action_id and value). Returns
 * -1 when the team, the user or the action id is missing. Pure: the
 * interactivity handler and the fuzz target share it. */
int slack_parse_action(json_t *payload, struct slack_action *act);

/* The team of an Events API envelope: team_id, else the first
 * authorization's team_id, else (an org-level event of an org-wide
 * install) the org's enterprise id; NULL when there is none. */
const char *slack_event_team(json_t *envelope);
/* The org (enterprise id) when the event is for an org-wide install
 * (authorizations[0].is_enterprise_install), else NULL. */
const char *slack_event_enterprise(json_t *envelope);

/* A handler fills res (usually with a Slack JSON message). It runs
 * inside the request's transaction, tx: open, scoped to the team, with the
 * request already admitted (its signature recorded, the team installed).
 * The dispatcher commits tx after the handler returns; a handler that
 * makes an outbound call or waits first closes tx itself (tx_commit, or
 * tx_query_commit for its last statement). A handler that hits a database
 * failure replies with it (slack_reply_db_error) and returns; the
 * dispatcher rolls back, and runs the whole request once more after a
 * serialization failure or a deadlock (so handlers have no effect outside
 * tx before they return). */
typedef void (*slash_handler)(struct tx *tx, struct slash *cmd, struct response *res);
typedef void (*action_handler)(struct tx *tx, struct slack_action *act, struct response *res);
/* Returns 0 when handled (or ignorable), -1 to answer 503 so Slack retries.
 * It runs in the delivery's transaction, which first recorded the
 * event_id: a handler that fails rolls the record back with its work, so
 * Slack's retry is handled again, and a second delivery of one event waits
 * for the first one's transaction and then skips it. Inside Slack's
 * 3-second window on the HTTP thread, like the others. */
typedef int (*event_handler)(struct tx *tx, const char *team_id, json_t *event, json_t *envelope);

/* The description and usage hint are what Slack shows beside the command
 * (the app manifest carries them). */
void slack_register_command(const char *command, const char *description, const char *usage_hint,
                            slash_handler fn);
/* Actions whose action_id starts with prefix go to fn. */
void slack_register_action(const char *prefix, action_handler fn);
void slack_register_event(const char *type, event_handler fn);
/* The registrations, in order, for the app manifest: the i-th command
 * (-1 past the last) and the i-th event type (NULL past the last). */
int slack_command_at(int i, const char **command, const char **description,
                     const char **usage_hint);
const char *slack_event_at(int i);

/* The route handlers for /slack/commands, /slack/interactivity, /slack/events. */
void slack_http_commands(struct request *req, struct response *res);
void slack_http_interactivity(struct request *req, struct response *res);
void slack_http_events(struct request *req, struct response *res);

/* --- replies ---------------------------------------------------------- */

/* {"response_type": "ephemeral"|"in_channel", "text": text} (+ blocks). */
json_t *slack_msg(int in_channel, const char *text, json_t *blocks /* stolen, may be NULL */);
json_t *slack_section(const char *mrkdwn);
json_t *slack_context(const char *mrkdwn);
json_t *slack_button(const char *text, const char *action_id, const char *value,
                     const char *style /* NULL, "primary", "danger" */);
json_t *slack_actions(json_t *elements /* stolen array */);
/* Replies 200 with the message as JSON (steals msg). */
void slack_reply(struct response *res, json_t *msg);
/* 200 ephemeral text. */
void slack_reply_text(struct response *res, const char *text);
/* slack_escape() (util.h) escapes user text for these. */
/* "<!date^EPOCH^FORMAT|2026-12-07 14:51 UTC>" into out (returned): each
 * reader sees the time in their own zone, others the UTC fallback. The
 * epoch may be PostgreSQL's with a fraction: Slack reads only whole
 * seconds in a date token. */
const char *slack_date_token(char *out, size_t n, double epoch, const char *format);
#define SLACK_DATE_TOKEN_MAX 128
/* The reply to a command whose transaction failed (nothing changed): the
 * database-down line for DB_UNAVAILABLE, the generic error otherwise. */
void slack_reply_db_error(struct response *res, enum db_error error);
/* That line, for replies that say more. */
const char *slack_db_error_text(enum db_error error);

/* --- Web API client (src/slack_api.c) ---------------------------------- */
/* Every call is a transfer in the outbound engine (src/engine.h), paced
 * per team and method from Slack's tiers; a 429 pauses that team+method
 * for Retry-After. The blocking calls below wait on a condition variable
 * for the engine's answer (the unit tests, and the lunch fan-out's calls
 * for now); jobs use slack_job_call() and its kin and wait for nothing. */

enum slack_outcome {
	SLACK_OK,
	SLACK_FAILED,      /* ok:false; result.error has the code */
	SLACK_RATELIMITED, /* HTTP 429; result.retry_after seconds */
	SLACK_TRANSPORT,   /* connection, timeout, non-JSON, 5xx */
	SLACK_NO_TOKEN,    /* the team has no active installation */
};

struct slack_result {
	enum slack_outcome outcome;
	char error[64];
	double retry_after;
	long http_status;
	json_t *body; /* parsed answer when JSON; owned */
	int stopped;  /* SLACK_TRANSPORT: never sent (shutdown, engine full) */
};

#define SLACK_TIMEOUT_SECONDS 10

/* POST {slack_api_url}/method with a JSON body and a bearer token. */
enum slack_outcome slack_call(const char *token, const char *method, json_t *args,
                              struct slack_result *out);
/* POST a form with HTTP Basic client_id:client_secret (oauth.v2.access). */
enum slack_outcome slack_call_basic(const char *method, const char *form_body,
                                    struct slack_result *out);
/* Calls as the team's bot: loads and decrypts the token; on invalid_auth,
 * account_inactive or token_revoked marks the installation inactive. */
enum slack_outcome slack_call_team(const char *team_id, const char *method, json_t *args,
                                   struct slack_result *out);
void slack_result_free(struct slack_result *r);

int slack_response_url_ok(const char *url);

/* Runs on the outbound engine's thread when the answer is in out (or at
 * once on the caller's when the call could not start): must not block. */
typedef void (*slack_done)(struct slack_result *out, void *arg);

/* As slack_call_team / slack_call_basic without waiting: done(out, arg)
 * is called exactly once. out must live until then. */
void slack_call_team_async(const char *team_id, const char *method, json_t *args, slack_done done,
                           void *arg, struct slack_result *out);
void slack_call_basic_async(const char *method, const char *form_body, slack_done done, void *arg,
                            struct slack_result *out);
/* Posts msg to a command's or button's response_url (Slack honours one
 * for 30 minutes and 5 posts): SLACK_OK, or SLACK_FAILED with the
 * answer's word (expired_url, used_url, ...). Only to Slack's hooks host
 * (https://hooks.slack.com/) or the host of slack_api_url (a test's fake
 * Slack): anything else is refused unsent (done is called at once). */
void slack_respond_async(const char *team_id, const char *url, json_t *msg, slack_done done,
                         void *arg, struct slack_result *out);

/* A job's last step: hands the call to the engine and returns JOB_PENDING;
 * the job then finishes with slack_job_result() of the answer (a revoked
 * token deactivates the installation). args is borrowed. */
enum job_result slack_job_call(struct job *job, const char *method, json_t *args);
/* As slack_job_call, but then(job, answer, arg) on a runner gives the
 * job's result (it may do its own short transaction; the answer is freed
 * after it returns). */
typedef enum job_result (*slack_job_then)(struct job *job, struct slack_result *r, void *arg);
enum job_result slack_job_call_then(struct job *job, const char *method, json_t *args,
                                    slack_job_then then, void *arg);
/* The same for a form with the app's client credentials (oauth.v2.access:
 * the answer holds tokens; then wipes what it keeps), and for a post to a
 * response_url. Neither deactivates the installation on an error. */
enum job_result slack_job_call_basic_then(struct job *job, const char *method,
                                          const char *form_body, slack_job_then then, void *arg);
enum job_result slack_job_respond_then(struct job *job, const char *url, json_t *msg,
                                       slack_job_then then, void *arg);

/* Maps an outcome to what a job should do (retry, reschedule at
 * Retry-After, dead for permanent errors). */
enum job_result slack_job_result(const struct slack_result *r, struct job *job);

/* Enqueues one Web API call as a "slack.call" job (payload {method, args})
 * in tx. Steals args. */
int64_t slack_enqueue(struct tx *tx, const char *team_id, const char *method, json_t *args,
                      const char *dedupe_key);

/* Registers the "slack.call" job kind (slack_api_init) and the events cleanup. */
void slack_init(void);
void slack_api_init(void);

#endif
