/* Installing, refreshing and uninstalling conch in a Slack workspace: the
 * Add to Slack flow (OAuth v2), its pages, token rotation, and the purge
 * that keeps the data-retention promise. */
#ifndef CONCH_OAUTH_H
#define CONCH_OAUTH_H

#include <jansson.h>

#include "http.h"
#include "jobs.h"

struct tx;

#define OAUTH_STATE_TTL    600           /* seconds an install link stays valid */
#define OAUTH_COOKIE       "conch_oauth" /* binds a state to the browser that asked */
#define OAUTH_PURGE_DELAY  (30 * 86400)  /* seconds from uninstall to deleting the data */
#define OAUTH_REFRESH_LEAD 1800          /* refresh this long before a token expires */
#define OAUTH_EXPIRES_MAX  (366 * 86400) /* sanity bound on expires_in */

/* Routes: GET /, GET /slack/install, GET /slack/oauth, GET /installed. */
void oauth_http_landing(struct request *req, struct response *res);
void oauth_http_install(struct request *req, struct response *res);
void oauth_http_callback(struct request *req, struct response *res);
void oauth_http_installed(struct request *req, struct response *res);
/* GET /privacy, /terms, and the favicon (/favicon.svg and /favicon.ico). */
void oauth_http_privacy(struct request *req, struct response *res);
void oauth_http_terms(struct request *req, struct response *res);
void oauth_http_favicon(struct request *req, struct response *res);

/* Registers the job kinds "oauth.refresh", "oauth.scopes_check" and "team.purge" and the
 * app_uninstalled and tokens_revoked event handlers (before jobs_start). */
void oauth_init(void);

/* --- within src/oauth ---------------------------------------------------- */

/* What oauth.v2.access granted. Strings point into the answer's JSON. */
struct oauth_grant {
	const char *team_id;   /* an org-wide install: the enterprise id (E...) */
	const char *team_name; /* an org-wide install: the org's name */
	int org_wide;          /* is_enterprise_install: the token is the org's */
	const char *app_id;
	const char *bot_user_id;
	const char *scopes;
	const char *installer_user_id; /* "" when Slack did not say */
	const char *access_token;      /* xoxb-... */
	const char *refresh_token;     /* NULL without token rotation */
	long long expires_in;          /* 0 without token rotation */
};

enum oauth_grant_kind {
	OAUTH_GRANT_INSTALL, /* the answer to a code exchange: every field */
	OAUTH_GRANT_REFRESH, /* the answer to a refresh: tokens and expiry */
};

/* Checks an oauth.v2.access answer and points g into it. Returns 0, or -1
 * with a short reason (never a field's value) in *why. */
int oauth_grant_parse(json_t *body, enum oauth_grant_kind kind, struct oauth_grant *g,
                      const char **why);
/* Overwrites the token strings inside an answer before it is freed. */
void oauth_grant_wipe(json_t *body);

/* Enqueues the "oauth.refresh" job for a token expiring at expires_at
 * (unix seconds): OAUTH_REFRESH_LEAD before, or halfway for short ones. */
int oauth_schedule_refresh(struct tx *tx, const char *team_id, double expires_at);

/* Queues the "oauth.scopes_check" job (src/oauth/scopes.c): installs
 * lacking a scope of slack_scopes get one DM asking to reinstall. Called
 * once jobs run (features_start). */
void oauth_scopes_check_soon(void);
enum job_result oauth_scopes_check_job(struct job *job);

enum job_result oauth_refresh_job(struct job *job);
enum job_result oauth_purge_job(struct job *job);
int oauth_on_app_uninstalled(struct tx *tx, const char *team_id, json_t *event, json_t *envelope);
int oauth_on_tokens_revoked(struct tx *tx, const char *team_id, json_t *event, json_t *envelope);

#endif
