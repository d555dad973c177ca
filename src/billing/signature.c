/* Stripe webhook signatures: Stripe-Signature is "t=<unix>,v1=<hex>
 * [,v1=<hex>...]", each v1 the hex HMAC-SHA256 of t "." raw body keyed by
 * the endpoint secret as given (whsec_ included); any matching v1 will do
 * (there are several while a secret rolls), other schemes are ignored. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "billing/stripe.h"
#include "crypto.h"
#include "util.h"

#define TIMESTAMP_DIGITS_MAX 15
#define SIGNATURE_HEX_LEN    64

void
stripe_sign(const char *secret, const char *t, const char *body, size_t len, char out[65])
{
	size_t tlen = strlen(t);
	char *msg = xmalloc(tlen + 1 + len + 1);
	unsigned char mac[32];

	memcpy(msg, t, tlen);
	msg[tlen] = '.';
	if (len)
		memcpy(msg + tlen + 1, body, len);
	hmac_sha256(secret, strlen(secret), msg, tlen + 1 + len, mac);
	free(msg);
	hex_encode(mac, sizeof(mac), out);
	OPENSSL_cleanse(mac, sizeof(mac));
}

/* The parsed header: t as sent (the signed text is exactly those digits)
 * and the v1 values, pointing into a copy of the header. */
struct sig_header {
	char *copy;
	const char *t;
	const char **v1;
	size_t nv1;
};

static int
all_digits(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* One "key=value" item; -1 when it is not one. Only t and v1 are kept:
 * other schemes (v0, future ones) are Stripe's to add and ours to ignore. */
static int
header_item(char *item, struct sig_header *h)
{
	char *eq = strchr(item, '=');

	if (eq == NULL || eq == item || eq[1] == '\0')
		return -1;
	*eq = '\0';
	for (char *p = item; *p; p++)
		if (!isalnum((unsigned char)*p))
			return -1;
	if (strcmp(item, "t") == 0) {
		if (h->t != NULL || !all_digits(eq + 1, TIMESTAMP_DIGITS_MAX))
			return -1;
		h->t = eq + 1;
	} else if (strcmp(item, "v1") == 0) {
		h->v1[h->nv1++] = eq + 1;
	}
	return 0;
}

/* Splits the header on commas; no whitespace, no empty items: Stripe
 * sends none, so anything else is not Stripe's. */
static int
header_parse(const char *header, struct sig_header *h)
{
	size_t items = 1;
	char *p, *next;

	if (header == NULL || *header == '\0' || strlen(header) > STRIPE_SIG_HEADER_MAX)
		return -1;
	for (const char *c = header; *c; c++) {
		if (*c == ',')
			items++;
		else if (!isgraph((unsigned char)*c))
			return -1;
	}
	h->copy = xstrdup(header);
	h->v1 = xcalloc(items, sizeof(*h->v1));
	for (p = h->copy; p != NULL; p = next) {
		next = strchr(p, ',');
		if (next != NULL)
			*next++ = '\0';
		if (header_item(p, h) < 0)
			return -1;
	}
	return h->t != NULL && h->nv1 > 0 ? 0 : -1;
}

static void
header_free(struct sig_header *h)
{
	free(h->copy);
	free(h->v1);
}

/* Every v1 is compared, matched or not, so the time taken does not say
 * which one matched. */
static int
any_matches(const struct sig_header *h, const char *want)
{
	int found = 0;

	for (size_t i = 0; i < h->nv1; i++)
		found |= ct_equal(want, SIGNATURE_HEX_LEN, h->v1[i], strlen(h->v1[i]));
	return found;
}

enum stripe_sig
stripe_verify(const char *secret, const char *header, const char *body, size_t len, long now)
{
	struct sig_header h;
	enum stripe_sig verdict = STRIPE_SIG_MISSING;
	long long t;
	char want[65];

	memset(&h, 0, sizeof(h));
	if (secret == NULL || *secret == '\0' || header_parse(header, &h) < 0 ||
	    strnum(h.t, 0, 999999999999999LL, &t) < 0)
		goto out;
	if (llabs((long long)now - t) > STRIPE_SIG_TOLERANCE) {
		verdict = STRIPE_SIG_STALE;
		goto out;
	}
	stripe_sign(secret, h.t, body, len, want);
	verdict = any_matches(&h, want) ? STRIPE_SIG_OK : STRIPE_SIG_MISMATCH;
	OPENSSL_cleanse(want, sizeof(want));
out:
	header_free(&h);
	return verdict;
}
