/* Every route of conch, and the features' start-up. This file and main.c
 * are the only shared files that include feature headers. */
#include "health.h"
#include "routes.h"
#include "slack.h"

const struct route conch_routes[] = {
	{"GET", "/healthz", 0, health_http_healthz},
	{"GET", "/metrics", 0, health_http_metrics},
	{"POST", "/slack/commands", 0, slack_http_commands},
	{"POST", "/slack/interactivity", 0, slack_http_interactivity},
	{"POST", "/slack/events", 0, slack_http_events},
	{0},
};

void
features_init(void)
{
	slack_init();
}
