/* The Slack app manifest (bin/conch manifest): every URL comes from the
 * route table, every command and event from the Slack registries. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "manifest.h"
#include "oauth/oauth.h"
#include "slack.h"
#include "util.h"

#define APP_NAME "conch"
#define APP_DESCRIPTION                                                                            \
	"Dibs: take turns on shared things. Lunch Buddies: lunch polls that end in small groups."

/* public_url + the path of the route served by handler. */
static json_t *
url_of(const struct route *routes, http_handler handler)
{
	for (const struct route *r = routes; r->method != NULL; r++)
		if (r->handler == handler)
			return json_sprintf("%s%s", conf.public_url, r->path);
	fatal("manifest: a Slack endpoint is missing from the route table");
}

json_t *
manifest_scopes(const char *list)
{
	json_t *scopes = json_array();
	const char *p = list ? list : "";

	while (*p) {
		size_t n = strcspn(p, ",");
		char *one = xstrndup(p, n);
		char *s = one, *end;

		while (*s == ' ')
			s++;
		end = s + strlen(s);
		while (end > s && end[-1] == ' ')
			*--end = '\0';
		if (*s)
			json_array_append_new(scopes, json_string(s));
		free(one);
		p += n + (p[n] == ',');
	}
	return scopes;
}

static json_t *
slash_commands(const struct route *routes)
{
	json_t *list = json_array();
	const char *command, *description, *hint;

	for (int i = 0; slack_command_at(i, &command, &description, &hint) == 0; i++)
		json_array_append_new(
		    list, json_pack("{s:s, s:o, s:s, s:s, s:b}", "command", command, "url",
		                    url_of(routes, slack_http_commands), "description",
		                    description ? description : command, "usage_hint",
		                    hint ? hint : "", "should_escape", 0));
	return list;
}

static json_t *
bot_events(void)
{
	json_t *list = json_array();
	const char *type;

	for (int i = 0; (type = slack_event_at(i)) != NULL; i++)
		json_array_append_new(list, json_string(type));
	return list;
}

json_t *
manifest_build(const struct route *routes)
{
	json_t *features = json_pack(
	    "{s:{s:s, s:b}, s:{s:b, s:b, s:b}, s:o}", "bot_user", "display_name", APP_NAME,
	    "always_online", 1, "app_home", "home_tab_enabled", 1, "messages_tab_enabled", 1,
	    "messages_tab_read_only_enabled", 1, "slash_commands", slash_commands(routes));
	json_t *oauth =
	    json_pack("{s:[o], s:{s:o}}", "redirect_urls", url_of(routes, oauth_http_callback),
	              "scopes", "bot", manifest_scopes(conf.slack_scopes));
	json_t *settings = json_pack(
	    "{s:{s:o, s:o}, s:{s:b, s:o}, s:b, s:b, s:b}", "event_subscriptions", "request_url",
	    url_of(routes, slack_http_events), "bot_events", bot_events(), "interactivity",
	    "is_enabled", 1, "request_url", url_of(routes, slack_http_interactivity),
	    "org_deploy_enabled", 1, "socket_mode_enabled", 0, "token_rotation_enabled", 1);

	return json_pack("{s:{s:i, s:i}, s:{s:s, s:s}, s:o, s:o, s:o}", "_metadata",
	                 "major_version", 1, "minor_version", 1, "display_information", "name",
	                 APP_NAME, "description", APP_DESCRIPTION, "features", features,
	                 "oauth_config", oauth, "settings", settings);
}
