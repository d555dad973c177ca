/* Operator accounts' names and passwords (src/admin/password.c). */
#ifndef CONCH_ADMIN_PASSWORD_H
#define CONCH_ADMIN_PASSWORD_H

#define ADMIN_NAME_MAX     64
#define ADMIN_PASSWORD_MIN 12
#define ADMIN_PASSWORD_MAX 1024

/* 1 when name is 1-64 characters of [a-z0-9._-]. */
int admin_name_valid(const char *name);

/* "scrypt$N$r$p$SALT_B64$HASH_B64" with a fresh 16-byte salt; NULL when
 * the KDF fails. */
char *admin_password_hash(const char *password);
/* 1 when password matches stored, 0 when not, -1 when stored is malformed
 * (the KDF still runs, with default parameters, so timing stays alike). */
int admin_password_verify(const char *password, const char *stored);
/* A well-formed hash no password matches, checked for unknown names. */
extern const char admin_dummy_hash[];

#endif
