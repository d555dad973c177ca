/* The dispatcher's lookups into the registered Slack handlers
 * (src/slack_registry.c); features register through slack.h. */
#ifndef CONCH_SLACK_REGISTRY_H
#define CONCH_SLACK_REGISTRY_H

#include "slack.h"

/* The handler of a slash command, or NULL. */
slash_handler slack_command_find(const char *command);
/* The handler whose prefix is the longest match of action_id, or NULL. */
action_handler slack_action_find(const char *action_id);
/* The handler of an event type, or NULL. */
event_handler slack_event_find(const char *type);

#endif
