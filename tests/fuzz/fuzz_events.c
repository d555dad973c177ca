/* libFuzzer target for Events API bodies: the JSON envelope is read the
 * way slack_http_events reads it (url_verification's challenge, an
 * event_callback's event_id, event type and team through
 * slack_event_team). Any bytes parse or fail cleanly; JSON nested past
 * jansson's depth limit is refused, not recursed into. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "slack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_team(json_t *envelope)
{
	const char *team = slack_event_team(envelope);
	const char *top = json_string_value(json_object_get(envelope, "team_id"));
	json_t *auth = json_array_get(json_object_get(envelope, "authorizations"), 0);
	const char *inner = json_string_value(json_object_get(auth, "team_id"));
	json_t *copy;

	/* The first non-empty of the top-level team_id and the first
	 * authorization's, else the org of an org-wide install. */
	if (top != NULL && *top != '\0') {
		if (team != top)
			abort();
	} else if (inner != NULL && *inner != '\0') {
		if (team != inner)
			abort();
	} else if (team != slack_event_enterprise(envelope)) {
		abort();
	}
	if (team != NULL) {
		/* It goes into SQL parameters and log lines as a C string. */
		copy = json_string(team);
		if (copy == NULL)
			abort();
		json_decref(copy);
	}
}

/* The steps of event_callback before the database is asked. */
static void
check_callback(json_t *envelope)
{
	json_t *event = json_object_get(envelope, "event");
	const char *event_id = json_string_value(json_object_get(envelope, "event_id"));
	const char *type = json_string_value(json_object_get(event, "type"));
	const char *team = slack_event_team(envelope);
	int well_formed = event_id && *event_id && type && team && *team;

	if (well_formed && (strlen(event_id) == 0 || strlen(team) == 0))
		abort();
	/* app_home_opened and tokens_revoked read these fields. */
	(void)json_string_value(json_object_get(event, "user"));
	(void)json_string_value(json_object_get(event, "tab"));
	(void)json_array_size(json_object_get(json_object_get(event, "tokens"), "bot"));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *envelope = json_loadb((const char *)data, size, 0, NULL);
	const char *type;
	char *again;

	if (envelope == NULL)
		return 0;
	check_team(envelope);
	type = json_string_value(json_object_get(envelope, "type"));
	if (json_is_object(envelope) && type && strcmp(type, "event_callback") == 0)
		check_callback(envelope);
	if (json_is_object(envelope) && type && strcmp(type, "url_verification") == 0)
		(void)json_string_value(json_object_get(envelope, "challenge"));
	/* What was accepted serialises again (replies and job payloads do). */
	again = json_dumps(envelope, JSON_COMPACT | JSON_ENCODE_ANY);
	if (again == NULL)
		abort();
	free(again);
	json_decref(envelope);
	return 0;
}
