/* libFuzzer target for Slack request signatures. The input is split at its
 * first two newlines into the timestamp header, the signature header and
 * the raw body; any bytes verify or fail cleanly, and the verdict agrees
 * with what slack_sign produces for the same request. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slack.h"

#define SECRET "8f742231b10e8888abcd99yyyzzz85a5"
#define NOW    1531420618L

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next newline-terminated piece as a NUL-terminated copy (an embedded
 * NUL cuts it short, as a header value would be), or NULL at the end. */
static char *
piece(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl;
	size_t n;
	char *s;

	if (*p >= end)
		return NULL;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	s = malloc(n + 1);
	if (s == NULL)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += nl ? n + 1 : n;
	return s;
}

/* What slack_verify should accept as a timestamp: 1 to 15 digits, within
 * 300 seconds of NOW. */
static int
acceptable_timestamp(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 15)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return labs(atol(s) - NOW) <= 300;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	char *ts = piece(&p, end);
	char *sig = piece(&p, end);
	const char *body = (const char *)p;
	size_t len = (size_t)(end - p);
	char good[68];
	enum slack_sig got;

	got = slack_verify(SECRET, ts, sig, body, len, NOW);
	if (got < SLACK_SIG_OK || got > SLACK_SIG_MISMATCH)
		abort();
	if ((ts == NULL || sig == NULL) && got != SLACK_SIG_MISSING)
		abort();
	if (ts != NULL) {
		/* Signing this very request must verify unless the timestamp is
		 * malformed (MISSING) or out of the window (STALE). */
		slack_sign(SECRET, ts, body, len, good);
		got = slack_verify(SECRET, ts, good, body, len, NOW);
		if (got == SLACK_SIG_MISMATCH || (got == SLACK_SIG_OK) != acceptable_timestamp(ts))
			abort();
		if (sig != NULL && strcmp(sig, good) != 0 &&
		    slack_verify(SECRET, ts, sig, body, len, NOW) == SLACK_SIG_OK)
			abort();
	}
	free(ts);
	free(sig);
	return 0;
}
