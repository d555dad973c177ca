/* Billing: teams pay through Stripe and their plan follows their
 * Stripe subscription (active or trialing: pro; past_due: pro for a 7-day
 * grace; anything else: free). Signed links send a browser to
 * Stripe Checkout or the Billing Portal; webhooks at /stripe/webhook keep
 * teams.plan in step; plan limits themselves are answered by plans.h. */
#ifndef CONCH_BILLING_H
#define CONCH_BILLING_H

#include "http.h"

struct tx;

#define BILLING_LINK_TTL 3600 /* seconds a signed link stays valid */

/* Registers the "billing.grace_end" job kind (before jobs_start). */
void billing_init(void);

/* 1 when upgrades can work: stripe_secret_key, stripe_price_pro and
 * session_secret are all set. */
int billing_configured(void);

/* Absolute signed links, valid BILLING_LINK_TTL seconds, naming the team
 * and the user they were made for: public_url + "/billing/upgrade?t=..."
 * and "/billing/portal?t=...". NULL when session_secret is not set or an
 * id is not a Slack id. The caller frees. */
char *billing_upgrade_link(const char *team_id, const char *user_id);
char *billing_portal_link(const char *team_id, const char *user_id);

/* The reply to /dibs upgrade and /lunch upgrade. Upgrades and billing are
 * for the workspace's owners and admins and the installer (the member
 * directory says who): they get a link bound to them (the Billing Portal
 * when the team is on Pro), anyone else is told whom to ask, and a user
 * the directory does not know yet is asked to try again in a minute. */
void billing_upgrade_command(struct tx *tx, const char *team_id, const char *user_id,
                             struct response *res);

/* The App Home's billing line for user (mrkdwn, malloc'd), or NULL when
 * they may not pay or there is nothing to offer: an upgrade link for a
 * free team, the portal for a team on Pro. *unknown is set to 1 when the
 * member directory has not seen the user yet (then NULL: a lookup may
 * tell). Reads the database only. */
char *billing_home_prompt(const char *team_id, const char *user_id, int *unknown);
/* Registers the billing section of the App Home (that prompt). */
void billing_home_init(void);

/* Routes: GET /billing/upgrade, GET /billing/portal, POST /stripe/webhook. */
void billing_http_upgrade(struct request *req, struct response *res);
void billing_http_portal(struct request *req, struct response *res);
void billing_http_webhook(struct request *req, struct response *res);

/* --- within src/billing ------------------------------------------------ */

struct stripe_event;

#define BILLING_PURPOSE_UPGRADE "billing-upgrade"
#define BILLING_PURPOSE_PORTAL  "billing-portal"

/* What a signed link names. The signed payload is "TEAM.USER.EXPIRES". */
struct billing_link {
	char team_id[32];
	char user_id[32];
	long long expires; /* unix seconds */
};

enum billing_link_check {
	BILLING_LINK_OK,
	BILLING_LINK_BAD,     /* missing, forged, altered, or signed for another purpose */
	BILLING_LINK_EXPIRED, /* genuine but older than BILLING_LINK_TTL */
};

/* The token of a link made at `now` (malloc'd; NULL without session_secret
 * or with a malformed id), and its check. */
char *billing_link_token(const char *purpose, const char *team_id, const char *user_id, long now);
enum billing_link_check billing_link_check(const char *purpose, const char *token, long now,
                                           struct billing_link *out);

/* What applying an event did. */
enum billing_applied {
	BILLING_APPLIED,  /* state changed (or a message was queued) */
	BILLING_SKIPPED,  /* nothing to do: note says why (older event, unknown team, ...) */
	BILLING_DB_ERROR, /* the transaction failed: answer 503 and let Stripe retry */
};

/* Applies a newly stored event inside tx (scoped to no team; scoped to the
 * event's team from when it is found). Sets team (when the event names one
 * of ours) and a short note. */
enum billing_applied billing_apply_event(struct tx *tx, const struct stripe_event *ev,
                                         char team[32], char *note, size_t notelen);

#endif
