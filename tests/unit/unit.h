/* Unit tests use Check. Each test file registers its suite at load time:
 *
 *     static Suite *vault_suite(void) { ... }
 *     UNIT_SUITE(vault_suite)
 *
 * so adding a file is all it takes; tests/unit/main.c runs them all. */
#ifndef CONCH_UNIT_H
#define CONCH_UNIT_H

#include <check.h>

void unit_register(Suite *(*make)(void));

#define UNIT_SUITE(fn)                                                                             \
	static void __attribute__((constructor)) unit_register_##fn(void)                          \
	{                                                                                          \
		unit_register(fn);                                                                 \
	}

#endif
