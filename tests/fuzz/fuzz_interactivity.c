/* libFuzzer target for interactivity payloads. Each input goes the way a
 * button press does (a form whose payload field holds JSON, then
 * slack_parse_action) and, as raw JSON, straight to slack_parse_action:
 * any bytes parse or fail cleanly, and a parsed action keeps slack.h's
 * promises (a team, a user and an action id; strings from the payload
 * that can go back into a reply). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "form.h"
#include "slack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A string slack_parse_action hands out must be one of the payload's own
 * strings: valid UTF-8 without NUL, so it fits back into a JSON reply. */
static void
check_string(const char *s, int may_be_null)
{
	json_t *j;

	if (s == NULL) {
		if (!may_be_null)
			abort();
		return;
	}
	j = json_string(s);
	if (j == NULL)
		abort();
	json_decref(j);
}

static const char *
path_string(json_t *root, const char *a, const char *b)
{
	return json_string_value(json_object_get(json_object_get(root, a), b));
}

static void
check_action(json_t *payload)
{
	struct slack_action act;
	json_t *first = json_array_get(json_object_get(payload, "actions"), 0);
	const char *team = path_string(payload, "team", "id");

	memset(&act, 0xa5, sizeof(act));
	if (slack_parse_action(payload, &act) != 0) {
		/* Refused only when something needed is missing. */
		if (act.team_id && *act.team_id && act.user_id && *act.user_id && act.action_id)
			abort();
		return;
	}
	if (act.payload != payload || !act.team_id || !*act.team_id || !act.user_id ||
	    !*act.user_id || !act.action_id || !act.value)
		abort();
	if (act.team_id != (team ? team : path_string(payload, "user", "team_id")))
		abort();
	if (act.action_id != json_string_value(json_object_get(first, "action_id")))
		abort();
	check_string(act.team_id, 0);
	check_string(act.user_id, 0);
	check_string(act.action_id, 0);
	check_string(act.value, 0);
	check_string(act.channel_id, 1);
	check_string(act.response_url, 1);
	check_string(act.message_ts, 1);
}

/* What slack_http_interactivity does after the signature check. */
static void
as_form(const uint8_t *data, size_t size)
{
	struct form form;
	const char *raw, *type;
	json_t *payload;

	if (form_parse((const char *)data, size, &form) != 0)
		return;
	raw = form_get(&form, "payload");
	payload = raw ? json_loads(raw, 0, NULL) : NULL;
	type = json_string_value(json_object_get(payload, "type"));
	if (json_is_object(payload) && type && strcmp(type, "block_actions") == 0)
		check_action(payload);
	json_decref(payload);
	form_free(&form);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *payload;

	as_form(data, size);
	payload = json_loadb((const char *)data, size, 0, NULL);
	if (payload != NULL)
		check_action(payload);
	json_decref(payload);
	return 0;
}
