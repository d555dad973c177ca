/* Every route of conch, and the features' start-up. This file and main.c
 * are the only shared files that include feature headers. */
#include "admin/admin.h"
#include "api/api.h"
#include "billing/billing.h"
#include "dibs/dibs.h"
#include "health.h"
#include "home.h"
#include "lunch/lunch.h"
#include "members.h"
#include "oauth/oauth.h"
#include "routes.h"
#include "slack.h"

const struct route conch_routes[] = {
    {"GET", "/", 0, oauth_http_landing},
    {"GET", "/livez", 0, health_http_livez},
    {"GET", "/healthz", 0, health_http_healthz},
    {"GET", "/metrics", HTTP_METRICS_ONLY, health_http_metrics},
    {"GET", "/slack/install", 0, oauth_http_install},
    {"GET", "/slack/oauth", 0, oauth_http_callback},
    {"GET", "/installed", 0, oauth_http_installed},
    {"GET", "/privacy", 0, oauth_http_privacy},
    {"GET", "/terms", 0, oauth_http_terms},
    {"GET", "/favicon.svg", 0, oauth_http_favicon},
    {"GET", "/favicon.ico", 0, oauth_http_favicon},
    {"POST", "/slack/commands", 0, slack_http_commands},
    {"POST", "/slack/interactivity", 0, slack_http_interactivity},
    {"POST", "/slack/events", 0, slack_http_events},
    {"GET", "/api/v1/", 1, api_http},
    {"POST", "/api/v1/", 1, api_http},
    {"DELETE", "/api/v1/", 1, api_http},
    {"PUT", "/api/v1/", 1, api_http}, /* answered with a JSON 405 */
    {"PATCH", "/api/v1/", 1, api_http},
    {"GET", "/billing/upgrade", 0, billing_http_upgrade},
    {"GET", "/billing/portal", 0, billing_http_portal},
    {"POST", "/stripe/webhook", 0, billing_http_webhook},
    {"GET", "/admin", HTTP_ADMIN_ONLY, admin_http_home},
    {"GET", "/admin/login", HTTP_ADMIN_ONLY, admin_http_login_form},
    {"POST", "/admin/login", HTTP_ADMIN_ONLY, admin_http_login},
    {"POST", "/admin/logout", HTTP_ADMIN_ONLY, admin_http_logout},
    {"GET", "/admin/", HTTP_PREFIX | HTTP_ADMIN_ONLY, admin_http_get},
    {"POST", "/admin/", HTTP_PREFIX | HTTP_ADMIN_ONLY, admin_http_post},
    {0},
};

void
features_init(void)
{
	slack_init();
	api_init();
	home_init(); /* before the features that add App Home sections */
	members_init();
	oauth_init();
	billing_init();
	dibs_init();
	lunch_init();
}

void
features_start(void)
{
	oauth_scopes_check_soon();
}
