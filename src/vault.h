/* The secret vault: AES-256-GCM with a fresh 96-bit nonce per encryption,
 * associated data binding each ciphertext to its team and purpose, and the
 * key id stored with it. Keys come from `token_keys` (ID:BASE64KEY,...);
 * the highest id encrypts, all decrypt. */
#ifndef CONCH_VAULT_H
#define CONCH_VAULT_H

#include <stddef.h>

/* Parses token_keys; "" or NULL leaves the vault empty (sealing fails).
 * On a malformed value writes a reason and returns -1. */
int vault_init(const char *token_keys, char *err, size_t errlen);
void vault_clear(void);
int vault_ready(void);
int vault_current_key(void);

/* Sealed form: "v1.<keyid>.<base64(nonce || ciphertext || tag)>".
 * Returns malloc'd text or NULL. */
char *vault_seal(const char *plaintext, const char *team_id, const char *purpose);
/* Returns malloc'd plaintext or NULL (unknown key, wrong team/purpose,
 * tampered). Free with vault_free_secret(). */
char *vault_open(const char *sealed, const char *team_id, const char *purpose);
/* Key id of a sealed value, or -1. */
int vault_key_of(const char *sealed);
/* Wipes and frees a plaintext secret. */
void vault_free_secret(char *s);

#endif
