/* The tables of Slack commands, action prefixes and event types that
 * features register at start-up, and their lookups for the dispatcher. */
#include <string.h>

#include "log.h"
#include "slack.h"
#include "slack_registry.h"
#include "util.h"

#define REGISTRY_MAX 32

/* Handlers of every kind are stored as one generic function type and cast
 * back by the typed lookups. */
typedef void (*any_fn)(void);

/* Filled before serving starts and only read afterwards: no locking. */
struct entry {
	const char *name;
	any_fn fn;
	const char *description; /* commands: for the app manifest */
	const char *usage_hint;
};

struct registry {
	const char *what;
	struct entry rows[REGISTRY_MAX];
	int n;
};

static struct registry commands = {.what = "command"};
static struct registry actions = {.what = "action prefix"};
static struct registry events = {.what = "event type"};

static struct entry *
registry_add(struct registry *r, const char *name, any_fn fn)
{
	for (int i = 0; i < r->n; i++) {
		if (strcmp(r->rows[i].name, name) == 0) {
			r->rows[i].fn = fn;
			return &r->rows[i];
		}
	}
	if (r->n == REGISTRY_MAX)
		fatal("slack: too many %s registrations (%d)", r->what, REGISTRY_MAX);
	r->rows[r->n].name = name;
	r->rows[r->n].fn = fn;
	return &r->rows[r->n++];
}

static any_fn
registry_find(const struct registry *r, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->rows[i].name, name) == 0)
			return r->rows[i].fn;
	return NULL;
}

/* O(n) over at most REGISTRY_MAX prefixes; the longest match wins so
 * "lunch.answer." can sit beside "lunch.". */
static any_fn
registry_find_prefix(const struct registry *r, const char *name)
{
	any_fn best = NULL;
	size_t bestlen = 0;

	for (int i = 0; i < r->n; i++) {
		size_t n = strlen(r->rows[i].name);

		if (strncmp(r->rows[i].name, name, n) == 0 && (best == NULL || n > bestlen)) {
			best = r->rows[i].fn;
			bestlen = n;
		}
	}
	return best;
}

void
slack_register_command(const char *command, const char *description, const char *usage_hint,
                       slash_handler fn)
{
	struct entry *e = registry_add(&commands, command, (any_fn)fn);

	e->description = description;
	e->usage_hint = usage_hint;
}

int
slack_command_at(int i, const char **command, const char **description, const char **usage_hint)
{
	if (i < 0 || i >= commands.n)
		return -1;
	*command = commands.rows[i].name;
	*description = commands.rows[i].description;
	*usage_hint = commands.rows[i].usage_hint;
	return 0;
}

const char *
slack_event_at(int i)
{
	return i >= 0 && i < events.n ? events.rows[i].name : NULL;
}

void
slack_register_action(const char *prefix, action_handler fn)
{
	registry_add(&actions, prefix, (any_fn)fn);
}

void
slack_register_event(const char *type, event_handler fn)
{
	registry_add(&events, type, (any_fn)fn);
}

slash_handler
slack_command_find(const char *command)
{
	return (slash_handler)registry_find(&commands, command);
}

action_handler
slack_action_find(const char *action_id)
{
	return (action_handler)registry_find_prefix(&actions, action_id);
}

event_handler
slack_event_find(const char *type)
{
	return (event_handler)registry_find(&events, type);
}
