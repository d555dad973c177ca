/* Runs every registered Check suite; the exit code is the number failed. */
#include <stdio.h>
#include <stdlib.h>

#include "unit.h"

static Suite *(*suites[64])(void);
static int nsuites;

void
unit_register(Suite *(*make)(void))
{
	if (nsuites == (int)(sizeof(suites) / sizeof(suites[0]))) {
		fprintf(stderr, "unit: too many suites\n");
		exit(2);
	}
	suites[nsuites++] = make;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	if (nsuites == 0) {
		fprintf(stderr, "unit: no suites registered\n");
		return 2;
	}
	sr = srunner_create(suites[0]());
	for (int i = 1; i < nsuites; i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
