/* What operator pages may show of stored data: job payloads with secret
 * keys redacted, credentials scrubbed from free text, long text cut; and
 * the shape check of the paging cursors they read back. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/redact.h"
#include "util.h"

#define REDACTED "[redacted]"

/* Key names whose values are never shown (a response_url lets whoever
 * has it post to that person for 30 minutes). */
static const char *const secret_words[] = {"token", "secret", "key", "password", "response_url"};

/* Prefixes of Slack and Stripe credentials; what follows is the secret. */
static const char *const secret_prefixes[] = {"xoxb-",    "xoxp-",    "xoxa-",    "xoxe-",
                                              "xoxr-",    "xoxs-",    "xapp-",    "sk_live_",
                                              "sk_test_", "rk_live_", "rk_test_", "whsec_"};

static int
secret_key(const char *key)
{
	for (size_t i = 0; i < ARRAY_LEN(secret_words); i++)
		if (strcasestr(key, secret_words[i]) != NULL)
			return 1;
	return 0;
}

static int
token_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

static int
b64_char(char c)
{
	return isalnum((unsigned char)c) || c == '+' || c == '/' || c == '=';
}

/* Length of a credential starting at s (0 when none): a known prefix and
 * its token characters, or a sealed vault value "v1.<digits>.<base64>". */
static size_t
secret_at(const char *s)
{
	size_t n, i;

	for (i = 0; i < ARRAY_LEN(secret_prefixes); i++) {
		n = strlen(secret_prefixes[i]);
		if (strncasecmp(s, secret_prefixes[i], n) == 0) {
			while (token_char(s[n]))
				n++;
			return n;
		}
	}
	if (strncmp(s, "v1.", 3) != 0 || !isdigit((unsigned char)s[3]))
		return 0;
	for (n = 3; isdigit((unsigned char)s[n]); n++)
		;
	if (s[n] != '.')
		return 0;
	for (i = ++n; b64_char(s[n]); n++)
		;
	return n - i >= 16 ? n : 0;
}

char *
admin_scrub(const char *text)
{
	struct buf out;
	size_t n;

	buf_init(&out);
	buf_puts(&out, "");
	for (const char *p = text ? text : ""; *p;) {
		/* Only at a word start, so "v1." inside other words stays. */
		n = (p == text || !token_char(p[-1])) ? secret_at(p) : 0;
		if (n > 0) {
			buf_puts(&out, REDACTED);
			p += n;
		} else {
			buf_putc(&out, *p++);
		}
	}
	return buf_steal(&out);
}

char *
admin_truncate(const char *s, size_t max)
{
	size_t len = s ? strlen(s) : 0;

	if (len <= max)
		return xstrdup(s ? s : "");
	/* Back up to the start of a UTF-8 sequence. */
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return xasprintf("%.*s\xe2\x80\xa6", (int)max, s);
}

static json_t *
redact_value(json_t *v, int depth)
{
	const char *key;
	json_t *item, *out;
	char *clean;
	size_t i;

	if (depth > 32)
		return json_string(REDACTED);
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		out = json_object();
		json_object_foreach(v, key, item)
		{
			json_object_set_new(out, key,
			                    secret_key(key) ? json_string(REDACTED)
			                                    : redact_value(item, depth + 1));
		}
		return out;
	case JSON_ARRAY:
		out = json_array();
		json_array_foreach(v, i, item)
		{
			json_array_append_new(out, redact_value(item, depth + 1));
		}
		return out;
	case JSON_STRING:
		clean = admin_scrub(json_string_value(v));
		out = json_string(clean);
		free(clean);
		return out ? out : json_string(REDACTED);
	default:
		return json_deep_copy(v);
	}
}

json_t *
admin_redact(json_t *payload)
{
	return payload ? redact_value(payload, 0) : json_object();
}

static void
clean_field(json_t *row, const char *field, size_t max, int is_json)
{
	json_t *v = json_object_get(row, field), *parsed, *red;
	char *text = NULL, *cut;

	if (!json_is_string(v))
		return;
	if (is_json) {
		parsed = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
		red = admin_redact(parsed);
		text = json_dumps(red, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(parsed);
		json_decref(red);
	} else {
		text = admin_scrub(json_string_value(v));
	}
	cut = admin_truncate(text ? text : "", max);
	v = json_string(cut);
	/* Never leave the original in place, even when the cut text is odd. */
	json_object_set_new(row, field, v ? v : json_string("[unprintable]"));
	free(text);
	free(cut);
}

/* Which buttons a job gets: jobs_retry takes dead, cancelled and queued
 * jobs (queued: run now); jobs_cancel takes queued ones. */
static void
mark_actions(json_t *row)
{
	const char *st = json_string_value(json_object_get(row, "state"));

	st = st ? st : "";
	json_object_set_new(row, "can_retry",
	                    json_boolean(strcmp(st, "dead") == 0 || strcmp(st, "cancelled") == 0 ||
	                                 strcmp(st, "queued") == 0));
	json_object_set_new(row, "can_cancel", json_boolean(strcmp(st, "queued") == 0));
}

void
admin_clean_job_rows(json_t *rows)
{
	size_t i;
	json_t *row;

	json_array_foreach(rows, i, row)
	{
		clean_field(row, "payload", 300, 1);
		clean_field(row, "last_error", 200, 0);
		mark_actions(row);
	}
}

int
admin_cursor_valid(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

	if (s == NULL || strlen(s) != sizeof(shape) - 1)
		return 0;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
			return 0;
	return 1;
}
