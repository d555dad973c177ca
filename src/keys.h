/* Key rotation: re-encrypting every stored secret with the newest key. */
#ifndef CONCH_KEYS_H
#define CONCH_KEYS_H

/* Re-seals every sealed column (the table in keys.c) whose key is not the
 * newest of token_keys. Returns the number re-sealed, or -1. */
long keys_rotate(void);

#endif
