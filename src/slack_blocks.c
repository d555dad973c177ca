/* Slack replies: the message and Block Kit builders every feature uses,
 * and the reply helpers that send them as a 200 answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "slack.h"
#include "util.h"

static const char db_down_text[] =
    "conch can't reach its database right now; nothing changed. Please try again in a minute.";

/* Message text often quotes what a user typed; jansson refuses invalid
 * UTF-8, so bad bytes become '?' rather than losing the whole reply. */
static json_t *
text_value(const char *s)
{
	json_t *j;
	char *copy;
	size_t n, len;

	if (s == NULL)
		s = "";
	if ((j = json_string(s)) != NULL)
		return j;
	copy = xstrdup(s);
	len = strlen(copy);
	for (unsigned char *p = (unsigned char *)copy; *p; p += n) {
		n = utf8_seq_len(p, len - (size_t)((char *)p - copy));
		if (n == 0) {
			*p = '?';
			n = 1;
		}
	}
	j = json_string(copy);
	free(copy);
	return j;
}

static json_t *
text_object(const char *type, const char *text)
{
	json_t *o = json_object();

	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "text", text_value(text));
	return o;
}

json_t *
slack_msg(int in_channel, const char *text, json_t *blocks)
{
	json_t *msg = json_object();

	json_object_set_new(msg, "response_type",
	                    json_string(in_channel ? "in_channel" : "ephemeral"));
	json_object_set_new(msg, "text", text_value(text));
	if (blocks)
		json_object_set_new(msg, "blocks", blocks);
	return msg;
}

json_t *
slack_section(const char *mrkdwn)
{
	json_t *block = json_object();

	json_object_set_new(block, "type", json_string("section"));
	json_object_set_new(block, "text", text_object("mrkdwn", mrkdwn));
	return block;
}

json_t *
slack_context(const char *mrkdwn)
{
	json_t *block = json_object();
	json_t *elements = json_array();

	json_array_append_new(elements, text_object("mrkdwn", mrkdwn));
	json_object_set_new(block, "type", json_string("context"));
	json_object_set_new(block, "elements", elements);
	return block;
}

json_t *
slack_button(const char *text, const char *action_id, const char *value, const char *style)
{
	json_t *button = json_object();
	json_t *label = text_object("plain_text", text);

	json_object_set_new(label, "emoji", json_true());
	json_object_set_new(button, "type", json_string("button"));
	json_object_set_new(button, "text", label);
	json_object_set_new(button, "action_id", text_value(action_id));
	if (value)
		json_object_set_new(button, "value", text_value(value));
	if (style)
		json_object_set_new(button, "style", json_string(style));
	return button;
}

json_t *
slack_actions(json_t *elements)
{
	json_t *block = json_object();

	json_object_set_new(block, "type", json_string("actions"));
	json_object_set_new(block, "elements", elements ? elements : json_array());
	return block;
}

void
slack_reply(struct response *res, json_t *msg)
{
	char *body = msg ? json_dumps(msg, JSON_COMPACT) : NULL;

	json_decref(msg);
	if (body == NULL) {
		log_error("slack: reply could not be serialised");
		http_reply_text(res, 500, "internal error");
		return;
	}
	http_reply(res, 200, "application/json", body, strlen(body));
}

void
slack_reply_text(struct response *res, const char *text)
{
	slack_reply(res, slack_msg(0, text, NULL));
}

const char *
slack_db_error_text(enum db_error error)
{
	return error == DB_UNAVAILABLE ? db_down_text : "Something went wrong; nothing changed.";
}

void
slack_reply_db_error(struct response *res, enum db_error error)
{
	slack_reply_text(res, slack_db_error_text(error));
}

const char *
slack_date_token(char *out, size_t n, double epoch, const char *format)
{
	time_t t = (time_t)epoch;
	char fallback[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(fallback, sizeof(fallback), "%Y-%m-%d %H:%M UTC", &tm);
	snprintf(out, n, "<!date^%lld^%s|%s>", (long long)t, format, fallback);
	return out;
}
