/* The operator pages under /admin and `conch admin-user`: accounts with
 * scrypt password hashes, server-side sessions, CSRF tokens on every form,
 * a login throttle, and read-mostly pages over teams, jobs and webhooks.
 * Nothing here ever shows a token, key or secret. */
#ifndef CONCH_ADMIN_H
#define CONCH_ADMIN_H

#include <jansson.h>
#include <stddef.h>

#include "http.h"

/* `conch admin-user NAME`: reads one password line from standard input and
 * creates or resets the account (a reset ends its sessions). Prints
 * "admin user NAME created|updated". Returns 0 or -1 (message printed). */
int admin_user_command(const char *name);

/* Route handlers (rows for src/routes.c):
 *   GET  /admin          admin_http_home
 *   GET  /admin/login    admin_http_login_form
 *   POST /admin/login    admin_http_login
 *   POST /admin/logout   admin_http_logout
 *   GET  /admin/ prefix  admin_http_get   (teams, teams/ID, jobs, webhooks)
 *   POST /admin/ prefix  admin_http_post  (jobs/ID/retry, jobs/ID/cancel)
 * The prefix handlers also serve login and logout, so the exact rows are
 * optional. */
void admin_http_home(struct request *req, struct response *res);
void admin_http_login_form(struct request *req, struct response *res);
void admin_http_login(struct request *req, struct response *res);
void admin_http_logout(struct request *req, struct response *res);
void admin_http_get(struct request *req, struct response *res);
void admin_http_post(struct request *req, struct response *res);

/* --- shared by the files of src/admin (and the unit tests) --------------- */

#define ADMIN_NAME_MAX     64
#define ADMIN_PASSWORD_MIN 12
#define ADMIN_PASSWORD_MAX 1024
#define ADMIN_COUNT_CAP    10000 /* job counts stop here ("10000+") to stay cheap */

/* 1 when name is 1-64 characters of [a-z0-9._-]. */
int admin_name_valid(const char *name);

/* "scrypt$N$r$p$SALT_B64$HASH_B64" with a fresh 16-byte salt; NULL when
 * the KDF fails. */
char *admin_password_hash(const char *password);
/* 1 when password matches stored, 0 when not, -1 when stored is malformed
 * (the KDF still runs, with default parameters, so timing stays alike). */
int admin_password_verify(const char *password, const char *stored);
/* A well-formed hash no password matches, checked for unknown names. */
extern const char admin_dummy_hash[];

/* A copy of a job payload with the value of every key containing "token",
 * "secret", "key" or "password" (any case, at any depth) replaced by
 * "[redacted]", and secret-looking strings scrubbed. */
json_t *admin_redact(json_t *payload);
/* Replaces Slack/Stripe credentials and sealed vault values inside free
 * text (errors, payload strings) by "[redacted]"; malloc'd. */
char *admin_scrub(const char *text);
/* At most max bytes of s (cut on a UTF-8 boundary) plus "…" when cut;
 * malloc'd. */
char *admin_truncate(const char *s, size_t max);

/* Rewrites job rows for display: "payload" (JSON text) redacted and
 * "last_error" scrubbed, both cut to a readable length; adds can_retry
 * and can_cancel from "state". */
void admin_clean_job_rows(json_t *rows);

/* 1 when s is a keyset cursor time as admin_cursor() prints it in SQL:
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ". */
int admin_cursor_valid(const char *s);

struct tx;
/* Runs sql and returns its rows as an array of objects keyed by column
 * name (booleans and integers typed, SQL NULL as null); NULL on failure. */
json_t *admin_rows(struct tx *tx, const char *sql, int nparams, const char *const *params);
/* 1 when the table exists (other features create theirs), 0 when not,
 * -1 on failure. */
int admin_table_exists(struct tx *tx, const char *table);

/* The signed-in operator of a request. */
struct admin_session {
	char user[ADMIN_NAME_MAX + 1];
	char csrf[64];
	char id_hash[65]; /* SHA-256 (hex) of the cookie's token */
};

/* Loads the session from the conch_admin cookie and slides its expiry.
 * Returns 1 (signed in), 0 (no or expired session) or -1 (database
 * unavailable or failed). */
int admin_session_load(struct request *req, struct admin_session *s);
/* For a POST: the Origin header (when present) is ours and the form's
 * csrf field equals expected, in constant time. */
int admin_csrf_ok(struct request *req, const char *form_csrf, const char *expected);

/* Renders assets/<page> with data (stolen) plus the layout's fields. */
void admin_page(struct response *res, int status, const struct admin_session *s, const char *page,
                const char *title, json_t *data);
/* A short error page inside the layout (s may be NULL). */
void admin_error(struct response *res, int status, const struct admin_session *s,
                 const char *message);

/* The pages (session already checked). */
void admin_page_home(struct request *req, struct response *res, const struct admin_session *s);
void admin_page_teams(struct request *req, struct response *res, const struct admin_session *s);
void admin_page_team(struct request *req, struct response *res, const struct admin_session *s,
                     const char *team_id);
void admin_page_jobs(struct request *req, struct response *res, const struct admin_session *s);
void admin_page_webhooks(struct request *req, struct response *res, const struct admin_session *s);
/* Adds the team's billing (subscription, webhook events) to a team page's
 * data when the billing tables exist. */
int admin_team_billing(struct tx *tx, const char *team_id, json_t *data);
/* POST jobs/ID/retry and jobs/ID/cancel (CSRF already checked). */
void admin_job_action(struct request *req, struct response *res, const struct admin_session *s,
                      const char *id, const char *action, const char *back);

#endif
