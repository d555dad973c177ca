/* Slack request signatures: v0 HMAC-SHA256 over "v0:" timestamp ":" body,
 * checked in constant time within a five-minute window. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto.h"
#include "slack.h"
#include "util.h"

#define TIMESTAMP_DIGITS_MAX 15
#define SIGNATURE_HEX_LEN    64

void
slack_sign(const char *secret, const char *timestamp, const char *body, size_t len, char out[68])
{
	size_t tslen = strlen(timestamp);
	size_t baselen = 3 + tslen + 1 + len;
	char *base = xmalloc(baselen);
	unsigned char mac[32];

	memcpy(base, "v0:", 3);
	memcpy(base + 3, timestamp, tslen);
	base[3 + tslen] = ':';
	if (len)
		memcpy(base + 4 + tslen, body, len);
	hmac_sha256(secret, strlen(secret), base, baselen, mac);
	free(base);
	memcpy(out, "v0=", 3);
	hex_encode(mac, sizeof(mac), out + 3);
}

/* Digits only: strtoll alone would take a sign, and the basestring must be
 * exactly what Slack signed. */
static int
parse_timestamp(const char *s, long long *out)
{
	size_t n = strlen(s);

	if (n == 0 || n > TIMESTAMP_DIGITS_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	return strnum(s, 0, 999999999999999LL, out);
}

static int
well_formed_signature(const char *sig)
{
	if (strncmp(sig, "v0=", 3) != 0 || strlen(sig) != 3 + SIGNATURE_HEX_LEN)
		return 0;
	for (const char *p = sig + 3; *p; p++)
		if (!isxdigit((unsigned char)*p))
			return 0;
	return 1;
}

enum slack_sig
slack_verify(const char *secret, const char *timestamp, const char *signature, const char *body,
             size_t len, long now)
{
	long long ts, skew;
	char want[68];
	int equal;

	if (!secret || !*secret || !timestamp || !signature)
		return SLACK_SIG_MISSING;
	if (parse_timestamp(timestamp, &ts) < 0 || !well_formed_signature(signature))
		return SLACK_SIG_MISSING;
	skew = (long long)now - ts;
	if (skew > SLACK_SIG_TOLERANCE || skew < -SLACK_SIG_TOLERANCE)
		return SLACK_SIG_STALE;
	slack_sign(secret, timestamp, body, len, want);
	equal = ct_equal(want, 3 + SIGNATURE_HEX_LEN, signature, 3 + SIGNATURE_HEX_LEN);
	OPENSSL_cleanse(want, sizeof(want));
	return equal ? SLACK_SIG_OK : SLACK_SIG_MISMATCH;
}
