/* Hashing, MACs, encodings and randomness over OpenSSL 3. The base64
 * decoders are our own because EVP_DecodeBlock accepts blanks, pads
 * inconsistently and never rejects stray bits; ours accept only the
 * canonical encoding. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "crypto.h"
#include "util.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void
hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen, unsigned char out[32])
{
	unsigned int outlen = 32;

	if (keylen > INT_MAX)
		fatal("hmac key too long");
	/* HMAC() with a zero-length key needs a non-NULL pointer. */
	if (HMAC(EVP_sha256(), keylen ? key : "", (int)keylen, msglen ? msg : (const void *)"",
	         msglen, out, &outlen) == NULL)
		fatal("HMAC-SHA256 failed");
}

void
sha256(const void *msg, size_t len, unsigned char out[32])
{
	if (!EVP_Digest(len ? msg : "", len, out, NULL, EVP_sha256(), NULL))
		fatal("SHA-256 failed");
}

void
hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hex_decode(const char *in, unsigned char *out, size_t outcap)
{
	size_t len = strlen(in);

	if (len % 2 != 0 || len / 2 > outcap || len / 2 > INT_MAX)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hex_value(in[i]), lo = hex_value(in[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	return (int)(len / 2);
}

static char *
b64_encode(const char *alphabet, int pad, const unsigned char *in, size_t len)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	for (i = 0; i + 3 <= len; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16 | in[i + 1] << 8 | in[i + 2];
		char q[4] = {alphabet[v >> 18], alphabet[v >> 12 & 63], alphabet[v >> 6 & 63],
		             alphabet[v & 63]};

		buf_append(&b, q, 4);
	}
	if (len - i == 1) {
		unsigned long v = (unsigned long)in[i] << 16;

		buf_putc(&b, alphabet[v >> 18]);
		buf_putc(&b, alphabet[v >> 12 & 63]);
		if (pad)
			buf_puts(&b, "==");
	} else if (len - i == 2) {
		unsigned long v = (unsigned long)in[i] << 16 | in[i + 1] << 8;

		buf_putc(&b, alphabet[v >> 18]);
		buf_putc(&b, alphabet[v >> 12 & 63]);
		buf_putc(&b, alphabet[v >> 6 & 63]);
		if (pad)
			buf_putc(&b, '=');
	}
	return buf_steal(&b);
}

/* Strict decoding: only alphabet characters, padding exactly as the
 * encoder writes it (or none, for base64url), and zero leftover bits. */
static int
b64_decode(const char *alphabet, int pad, const char *in, unsigned char *out, size_t outcap)
{
	size_t len = strlen(in), n = 0, tail;
	unsigned long acc = 0;
	int bits = 0;

	if (pad) {
		if (len % 4 != 0)
			return -1;
		if (len > 0 && in[len - 1] == '=')
			len -= (len > 1 && in[len - 2] == '=') ? 2 : 1;
	} else if (len % 4 == 1) {
		return -1;
	}
	tail = len % 4;
	if (tail == 1 || len / 4 * 3 + (tail ? tail - 1 : 0) > outcap || len / 4 * 3 > INT_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *p = in[i] ? strchr(alphabet, in[i]) : NULL;

		if (p == NULL)
			return -1;
		acc = (acc << 6 | (unsigned long)(p - alphabet)) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	if (bits > 0 && (acc & ((1ul << bits) - 1)) != 0)
		return -1;
	return (int)n;
}

char *
base64_encode(const unsigned char *in, size_t len)
{
	return b64_encode(b64_std, 1, in, len);
}

int
base64_decode(const char *in, unsigned char *out, size_t outcap)
{
	return b64_decode(b64_std, 1, in, out, outcap);
}

char *
base64url_encode(const unsigned char *in, size_t len)
{
	return b64_encode(b64_url, 0, in, len);
}

int
base64url_decode(const char *in, unsigned char *out, size_t outcap)
{
	return b64_decode(b64_url, 0, in, out, outcap);
}

int
ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen != blen)
		return 0;
	if (alen == 0)
		return 1;
	return CRYPTO_memcmp(a, b, alen) == 0;
}

void
random_bytes(void *out, size_t len)
{
	unsigned char *p = out;

	while (len > 0) {
		int chunk = len > INT_MAX ? INT_MAX : (int)len;

		if (RAND_bytes(p, chunk) != 1)
			fatal("the random number generator failed");
		p += chunk;
		len -= (size_t)chunk;
	}
}

char *
random_token(size_t nbytes)
{
	unsigned char *raw = xmalloc(nbytes);
	char *token;

	random_bytes(raw, nbytes);
	token = base64url_encode(raw, nbytes);
	OPENSSL_cleanse(raw, nbytes);
	free(raw);
	return token;
}

void
random_hex16(char out[33])
{
	unsigned char raw[16];

	random_bytes(raw, sizeof(raw));
	hex_encode(raw, sizeof(raw), out);
}

void
sha256_hex(const char *s, char out[65])
{
	unsigned char md[32];

	sha256(s, strlen(s), md);
	hex_encode(md, sizeof(md), out);
}

/* HMAC(secret, purpose '\n' payload); the newline keeps one purpose's
 * signature from being replayed as another's. */
static void
value_mac(const char *secret, const char *purpose, const char *payload, size_t plen,
          unsigned char mac[32])
{
	struct buf msg;

	if (strchr(purpose, '\n') != NULL)
		fatal("signing purpose contains a newline");
	buf_init(&msg);
	buf_puts(&msg, purpose);
	buf_putc(&msg, '\n');
	buf_append(&msg, payload, plen);
	hmac_sha256(secret, strlen(secret), msg.data, msg.len, mac);
	buf_free(&msg);
}

char *
sign_value(const char *secret, const char *purpose, const char *payload)
{
	unsigned char mac[32];
	char *sig, *out;

	value_mac(secret, purpose, payload, strlen(payload), mac);
	sig = base64url_encode(mac, sizeof(mac));
	out = xasprintf("%s.%s", payload, sig);
	free(sig);
	return out;
}

char *
verify_value(const char *secret, const char *purpose, const char *signed_value)
{
	unsigned char want[32], got[32];
	const char *dot;

	if (secret == NULL || purpose == NULL || signed_value == NULL)
		return NULL;
	/* The signature never contains '.', the payload may. */
	dot = strrchr(signed_value, '.');
	if (dot == NULL || base64url_decode(dot + 1, got, sizeof(got)) != (int)sizeof(got))
		return NULL;
	value_mac(secret, purpose, signed_value, (size_t)(dot - signed_value), want);
	if (!ct_equal(want, sizeof(want), got, sizeof(got)))
		return NULL;
	return xstrndup(signed_value, (size_t)(dot - signed_value));
}
