/* Hashing, MACs, encodings and randomness over OpenSSL. */
#ifndef CONCH_CRYPTO_H
#define CONCH_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                 unsigned char out[32]);
void sha256(const void *msg, size_t len, unsigned char out[32]);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const unsigned char *in, size_t len, char *out);
/* Returns decoded length or -1. */
int hex_decode(const char *in, unsigned char *out, size_t outcap);

/* Standard base64 (with padding) and base64url (no padding). Return a
 * malloc'd string; decode returns -1 on malformed input. */
char *base64_encode(const unsigned char *in, size_t len);
int base64_decode(const char *in, unsigned char *out, size_t outcap);
char *base64url_encode(const unsigned char *in, size_t len);
int base64url_decode(const char *in, unsigned char *out, size_t outcap);

/* Constant-time equality of two byte strings (lengths compared first). */
int ct_equal(const void *a, size_t alen, const void *b, size_t blen);

void random_bytes(void *out, size_t len);   /* fatal() if the RNG fails */
/* A random token of nbytes of entropy as base64url, malloc'd. */
char *random_token(size_t nbytes);
/* 32 lower-case hex characters + NUL. */
void random_hex16(char out[33]);

/* SHA-256 of s as hex (65 bytes). Used for API tokens at rest. */
void sha256_hex(const char *s, char out[65]);

/* Signed values: "payload.sig" where sig = base64url(HMAC(secret, purpose
 * || '\n' || payload)). Verification checks in constant time. */
char *sign_value(const char *secret, const char *purpose, const char *payload);
/* Returns the payload (malloc'd) or NULL when the signature is wrong. */
char *verify_value(const char *secret, const char *purpose, const char *signed_value);

#endif
