/* AES-256-GCM for secrets at rest. The key table is written only by
 * vault_init/vault_clear (at start-up, before threads); seal and open only
 * read it and each builds its own EVP context, so they run concurrently. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "util.h"
#include "vault.h"

#define VAULT_MAX_KEYS 16
#define KEY_LEN        32
#define NONCE_LEN      12
#define TAG_LEN        16
/* A sealed secret is a token or a key, never a document. */
#define VAULT_MAX_PLAIN (64 * 1024)

struct vault_key {
	int id;
	unsigned char key[KEY_LEN];
};

static struct vault_key keys[VAULT_MAX_KEYS];
static int nkeys;
static int current; /* index into keys of the highest id */

void
vault_clear(void)
{
	OPENSSL_cleanse(keys, sizeof(keys));
	nkeys = 0;
	current = 0;
}

int
vault_ready(void)
{
	return nkeys > 0;
}

int
vault_current_key(void)
{
	return nkeys > 0 ? keys[current].id : 0;
}

/* A canonical positive decimal id: no sign, no leading zero. */
static int
parse_id(const char *s, size_t len)
{
	char tmp[16];
	long long v;

	if (len == 0 || len >= sizeof(tmp) || s[0] < '1' || s[0] > '9')
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (strnum(tmp, 1, INT_MAX, &v) != 0)
		return -1;
	return (int)v;
}

/* Parses one "ID:BASE64KEY" entry of length len into k. Reasons leave out
 * the key name (the caller prefixes "token_keys: ") and never quote key
 * material. */
static int
parse_entry(const char *s, size_t len, int index, struct vault_key *k, char *err, size_t errlen)
{
	unsigned char raw[KEY_LEN + 3];
	const char *colon = memchr(s, ':', len);
	char *b64 = NULL;
	int n, rc = -1;

	if (len == 0) {
		snprintf(err, errlen, "entry %d is empty", index);
		goto fail;
	}
	if (colon == NULL || (k->id = parse_id(s, (size_t)(colon - s))) < 0) {
		snprintf(err, errlen, "entry %d: expected ID:BASE64KEY with a positive integer ID",
		         index);
		goto fail;
	}
	b64 = xstrndup(colon + 1, len - (size_t)(colon - s) - 1);
	n = base64_decode(b64, raw, sizeof(raw));
	if (n < 0) {
		snprintf(err, errlen, "key %d is not valid base64", k->id);
		goto fail;
	}
	if (n != KEY_LEN) {
		snprintf(err, errlen, "key %d must be %d bytes after base64 decoding, got %d",
		         k->id, KEY_LEN, n);
		goto fail;
	}
	memcpy(k->key, raw, KEY_LEN);
	rc = 0;
fail:
	OPENSSL_cleanse(raw, sizeof(raw));
	if (b64 != NULL) {
		OPENSSL_cleanse(b64, strlen(b64));
		free(b64);
	}
	return rc;
}

/* Parses the whole list into tab; returns the count or -1. */
static int
parse_keys(const char *s, struct vault_key *tab, char *err, size_t errlen)
{
	int n = 0;

	for (;;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);

		if (n == VAULT_MAX_KEYS) {
			snprintf(err, errlen, "more than %d keys", VAULT_MAX_KEYS);
			return -1;
		}
		if (parse_entry(s, len, n + 1, &tab[n], err, errlen) != 0)
			return -1;
		for (int i = 0; i < n; i++) {
			if (tab[i].id == tab[n].id) {
				snprintf(err, errlen, "duplicate key id %d", tab[n].id);
				return -1;
			}
		}
		n++;
		if (comma == NULL)
			return n;
		s = comma + 1;
	}
}

int
vault_init(const char *token_keys, char *err, size_t errlen)
{
	struct vault_key tab[VAULT_MAX_KEYS];
	int n, rc = -1;

	vault_clear();
	if (token_keys == NULL || token_keys[0] == '\0')
		return 0;
	n = parse_keys(token_keys, tab, err, errlen);
	if (n < 0)
		goto fail;
	memcpy(keys, tab, sizeof(tab[0]) * (size_t)n);
	nkeys = n;
	for (int i = 1; i < n; i++)
		if (keys[i].id > keys[current].id)
			current = i;
	rc = 0;
fail:
	OPENSSL_cleanse(tab, sizeof(tab));
	return rc;
}

static const struct vault_key *
find_key(int id)
{
	for (int i = 0; i < nkeys; i++)
		if (keys[i].id == id)
			return &keys[i];
	return NULL;
}

/* "conch-vault-v1\n<id>\n<team>\n<purpose>"; NULL when a part contains a
 * newline, which would make two different bindings look alike. */
static char *
make_aad(int id, const char *team_id, const char *purpose)
{
	if (team_id == NULL)
		team_id = "";
	if (purpose == NULL || strchr(team_id, '\n') || strchr(purpose, '\n'))
		return NULL;
	return xasprintf("conch-vault-v1\n%d\n%s\n%s", id, team_id, purpose);
}

/* Encrypts or decrypts n bytes of in into out with GCM; on encryption tag
 * is written, on decryption it is checked. Returns 0 or -1. */
static int
gcm(int enc, const struct vault_key *k, const unsigned char *nonce, const char *aad,
    const unsigned char *in, int n, unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len, rc = -1;

	if (ctx == NULL)
		fatal("out of memory creating a cipher context");
	if (!EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->key, nonce, enc) ||
	    !EVP_CipherUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) ||
	    (n > 0 && !EVP_CipherUpdate(ctx, out, &len, in, n)))
		goto fail;
	if (!enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag))
		goto fail;
	if (EVP_CipherFinal_ex(ctx, out + n, &len) != 1)
		goto fail;
	if (enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag))
		goto fail;
	rc = 0;
fail:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

char *
vault_seal(const char *plaintext, const char *team_id, const char *purpose)
{
	const struct vault_key *k = nkeys > 0 ? &keys[current] : NULL;
	size_t n = plaintext ? strlen(plaintext) : 0;
	unsigned char *blob = NULL;
	char *aad = NULL, *b64 = NULL, *out = NULL;

	if (k == NULL || plaintext == NULL || n > VAULT_MAX_PLAIN)
		goto fail;
	aad = make_aad(k->id, team_id, purpose);
	if (aad == NULL)
		goto fail;
	blob = xmalloc(NONCE_LEN + n + TAG_LEN);
	random_bytes(blob, NONCE_LEN);
	if (gcm(1, k, blob, aad, (const unsigned char *)plaintext, (int)n, blob + NONCE_LEN,
	        blob + NONCE_LEN + n) != 0)
		goto fail;
	b64 = base64_encode(blob, NONCE_LEN + n + TAG_LEN);
	out = xasprintf("v1.%d.%s", k->id, b64);
fail:
	free(blob);
	free(b64);
	free(aad);
	return out;
}

/* Splits "v1.<id>.<rest>": returns the id and points *rest past the dot. */
static int
parse_sealed(const char *sealed, const char **rest)
{
	const char *dot;
	int id;

	if (sealed == NULL || strncmp(sealed, "v1.", 3) != 0)
		return -1;
	dot = strchr(sealed + 3, '.');
	if (dot == NULL || (id = parse_id(sealed + 3, (size_t)(dot - sealed - 3))) < 0)
		return -1;
	*rest = dot + 1;
	return id;
}

int
vault_key_of(const char *sealed)
{
	const char *rest;

	return parse_sealed(sealed, &rest);
}

char *
vault_open(const char *sealed, const char *team_id, const char *purpose)
{
	const struct vault_key *k;
	unsigned char *blob = NULL, *plain = NULL;
	char *aad = NULL, *out = NULL;
	const char *rest;
	size_t cap;
	int id, n, clen = 0;

	id = parse_sealed(sealed, &rest);
	if (id < 0 || (k = find_key(id)) == NULL)
		goto fail;
	cap = strlen(rest) / 4 * 3 + 3;
	if (cap > (VAULT_MAX_PLAIN + NONCE_LEN + TAG_LEN) * 2)
		goto fail;
	blob = xmalloc(cap);
	n = base64_decode(rest, blob, cap);
	if (n < NONCE_LEN + TAG_LEN)
		goto fail;
	aad = make_aad(id, team_id, purpose);
	if (aad == NULL)
		goto fail;
	clen = n - NONCE_LEN - TAG_LEN;
	plain = xmalloc((size_t)clen + 1);
	if (gcm(0, k, blob, aad, blob + NONCE_LEN, clen, plain, blob + NONCE_LEN + clen) != 0 ||
	    memchr(plain, '\0', (size_t)clen) != NULL)
		goto fail;
	plain[clen] = '\0';
	out = (char *)plain;
	plain = NULL;
fail:
	if (plain != NULL) {
		OPENSSL_cleanse(plain, (size_t)clen + 1);
		free(plain);
	}
	free(blob);
	free(aad);
	return out;
}

void
vault_free_secret(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}
