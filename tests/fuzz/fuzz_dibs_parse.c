/* libFuzzer target for the /dibs grammar: any bytes parse or fail cleanly,
 * and whatever comes out keeps the promises of command.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dibs/command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Valid UTF-8 (loosely: lead and continuation bytes) without NUL. */
static int
utf8_chars(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int chars = 0;

	while (*p) {
		int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : 4;

		if ((*p >= 0x80 && *p < 0xc2) || *p > 0xf4)
			return -1;
		for (int i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return -1;
		p += n;
		chars++;
	}
	return chars;
}

static void
check_error(const char *err)
{
	if (err[0] == '\0' || utf8_chars(err) < 0)
		abort();
	for (const char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20)
			abort();
}

static void
check_cmd(const struct dibs_cmd *cmd)
{
	size_t n = strlen(cmd->thing);
	int chars;

	if (n > DIBS_THING_MAX || strlen(cmd->display) != n)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789-_./", cmd->thing[i]))
			abort();
	if ((cmd->verb == DIBS_ON || cmd->verb == DIBS_OFF || cmd->verb == DIBS_Q ||
	     cmd->verb == DIBS_KICK || cmd->verb == DIBS_REMOVE || cmd->verb == DIBS_EXTEND) !=
	    (n > 0))
		abort();
	if (cmd->has_for != (cmd->seconds != 0) || (cmd->verb == DIBS_EXTEND && !cmd->has_for))
		abort();
	if (cmd->has_for && (cmd->seconds < 1 || cmd->seconds > DIBS_DURATION_MAX))
		abort();
	chars = utf8_chars(cmd->reason);
	if (chars < 0 || chars > DIBS_REASON_MAX || cmd->has_reason != (chars > 0))
		abort();
	/* A token id only with token revoke, and then a positive one. */
	if ((cmd->verb != DIBS_TOKEN && cmd->token_op != DIBS_TOKEN_CREATE) ||
	    ((cmd->verb == DIBS_TOKEN && cmd->token_op == DIBS_TOKEN_REVOKE) !=
	     (cmd->token_id > 0)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dibs_cmd cmd;
	char err[200];
	char *text = malloc(size + 1);
	int64_t secs = 0;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (dibs_parse(text, &cmd, err, sizeof(err)) == 0)
		check_cmd(&cmd);
	else
		check_error(err);
	if (dibs_parse_duration(text, &secs, err, sizeof(err)) == 0) {
		if (secs < 1 || secs > DIBS_DURATION_MAX)
			abort();
	} else {
		check_error(err);
	}
	free(text);
	return 0;
}
