/* Operator passwords: scrypt (RFC 7914) through OpenSSL 3's EVP_KDF, stored
 * as "scrypt$N$r$p$SALT_B64$HASH_B64" so the cost can be raised later
 * without invalidating older hashes. */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/password.h"
#include "crypto.h"
#include "log.h"
#include "util.h"

/* N = 2^15, r = 8: 32 MiB and about 100 ms a check on one core. */
#define SCRYPT_N      32768
#define SCRYPT_R      8
#define SCRYPT_P      1
#define SCRYPT_N_MAX  (1 << 20) /* bounds accepted from a stored hash */
#define SCRYPT_R_MAX  32
#define SCRYPT_P_MAX  16
#define SCRYPT_MEMMAX ((uint64_t)1100 * 1024 * 1024)
#define SALT_LEN      16
#define HASH_LEN      32

/* Salt and hash of a random password that was thrown away. */
const char admin_dummy_hash[] = "scrypt$32768$8$1$ZHVtbXktc2FsdC1jb25jaA==$"
                                "Cw1wbmQ5c0v3b2hqZGx0eW9xZ2JxZ2N1c2Z5aXJ0bW8=";

struct scrypt_params {
	uint64_t n;
	uint32_t r, p;
};

int
admin_name_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > ADMIN_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

static int
derive(const char *password, const unsigned char *salt, size_t saltlen,
       const struct scrypt_params *sp, unsigned char *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SCRYPT, NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	uint64_t n = sp->n, maxmem = SCRYPT_MEMMAX;
	uint32_t r = sp->r, p = sp->p;
	OSSL_PARAM params[7], *pp = params;
	int ok = 0;

	EVP_KDF_free(kdf);
	if (kctx == NULL)
		goto done;
	*pp++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password,
	                                          strlen(password));
	*pp++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
	*pp++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	*pp++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	*pp++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	*pp++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	*pp = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(kctx, out, outlen, params) > 0;
done:
	if (!ok)
		log_error("admin: the scrypt KDF failed");
	EVP_KDF_CTX_free(kctx);
	return ok ? 0 : -1;
}

char *
admin_password_hash(const char *password)
{
	static const struct scrypt_params sp = {SCRYPT_N, SCRYPT_R, SCRYPT_P};
	unsigned char salt[SALT_LEN], hash[HASH_LEN];
	char *salt64 = NULL, *hash64 = NULL, *out = NULL;

	random_bytes(salt, sizeof(salt));
	if (derive(password, salt, sizeof(salt), &sp, hash, sizeof(hash)) < 0)
		goto done;
	salt64 = base64_encode(salt, sizeof(salt));
	hash64 = base64_encode(hash, sizeof(hash));
	out = xasprintf("scrypt$%d$%d$%d$%s$%s", SCRYPT_N, SCRYPT_R, SCRYPT_P, salt64, hash64);
done:
	OPENSSL_cleanse(hash, sizeof(hash));
	free(salt64);
	free(hash64);
	return out;
}

/* Splits the next '$'-separated field of *s into field (NUL-terminated). */
static int
next_field(const char **s, char *field, size_t cap)
{
	const char *end = strchr(*s, '$');
	size_t len = end ? (size_t)(end - *s) : strlen(*s);

	if (len == 0 || len >= cap)
		return -1;
	memcpy(field, *s, len);
	field[len] = '\0';
	*s += len + (end ? 1 : 0);
	return 0;
}

static int
parse_number(const char **s, long long max, long long *out)
{
	char field[16];

	if (next_field(s, field, sizeof(field)) < 0)
		return -1;
	return strnum(field, 1, max, out);
}

/* Parses a stored hash; salt and hash lengths are returned in *saltlen and
 * *hashlen. */
static int
parse_stored(const char *stored, struct scrypt_params *sp, unsigned char *salt, size_t *saltlen,
             unsigned char *hash, size_t *hashlen)
{
	char salt64[64], hash64[128];
	long long n, r, p;
	int sl, hl;

	if (stored == NULL || strncmp(stored, "scrypt$", 7) != 0)
		return -1;
	stored += 7;
	if (parse_number(&stored, SCRYPT_N_MAX, &n) < 0 || (n & (n - 1)) != 0 || n < 2 ||
	    parse_number(&stored, SCRYPT_R_MAX, &r) < 0 ||
	    parse_number(&stored, SCRYPT_P_MAX, &p) < 0 ||
	    next_field(&stored, salt64, sizeof(salt64)) < 0 ||
	    next_field(&stored, hash64, sizeof(hash64)) < 0 || *stored != '\0')
		return -1;
	sl = base64_decode(salt64, salt, 48);
	hl = base64_decode(hash64, hash, 96);
	if (sl < 4 || hl < 16)
		return -1;
	*sp = (struct scrypt_params){(uint64_t)n, (uint32_t)r, (uint32_t)p};
	*saltlen = (size_t)sl;
	*hashlen = (size_t)hl;
	return 0;
}

int
admin_password_verify(const char *password, const char *stored)
{
	struct scrypt_params sp = {SCRYPT_N, SCRYPT_R, SCRYPT_P};
	unsigned char salt[48], want[96], got[96];
	size_t saltlen = SALT_LEN, wantlen = HASH_LEN;
	int malformed, match = 0;

	memset(salt, 0, sizeof(salt));
	memset(want, 0, sizeof(want));
	malformed = parse_stored(stored, &sp, salt, &saltlen, want, &wantlen) < 0;
	if (malformed) {
		sp = (struct scrypt_params){SCRYPT_N, SCRYPT_R, SCRYPT_P};
		saltlen = SALT_LEN;
		wantlen = HASH_LEN;
	}
	if (derive(password, salt, saltlen, &sp, got, wantlen) == 0)
		match = ct_equal(got, wantlen, want, wantlen);
	OPENSSL_cleanse(got, sizeof(got));
	if (malformed)
		return -1;
	return match;
}
