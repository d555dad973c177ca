/* Dibs views against Slack's limits: q shows the whole queue in as many
 * sections as it takes, each within 3,000 characters, the message within
 * 50 blocks, and says how many it could not show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "dibs/dibs.h"

static struct dibs_thing
queued_thing(int n)
{
	struct dibs_thing t = {0};

	t.name = "staging";
	t.display = "staging";
	t.holder = "U0HOLDER01";
	t.since = 1700000000;
	t.nqueue = n;
	t.queue = calloc((size_t)n + 1, sizeof(char *));
	for (int i = 0; i < n; i++) {
		t.queue[i] = malloc(16);
		snprintf(t.queue[i], 16, "U%09d", i + 1);
	}
	return t;
}

static void
free_thing(struct dibs_thing *t)
{
	for (int i = 0; i < t->nqueue; i++)
		free(t->queue[i]);
	free(t->queue);
}

/* Checks the limits and returns how many queue lines the blocks hold. */
static int
check_limits(json_t *msg, int *more)
{
	json_t *blocks = json_object_get(msg, "blocks"), *b;
	size_t i;
	int lines = 0;

	*more = -1;
	ck_assert_uint_le(json_array_size(blocks), 50);
	json_array_foreach(blocks, i, b)
	{
		const char *type = json_string_value(json_object_get(b, "type"));
		const char *text =
		    json_string_value(json_object_get(json_object_get(b, "text"), "text"));

		if (strcmp(type, "context") == 0) {
			text = json_string_value(json_object_get(
			    json_array_get(json_object_get(b, "elements"), 0), "text"));
			ck_assert_int_eq(sscanf(text, "and %d more in line", more), 1);
			continue;
		}
		ck_assert_uint_le(strlen(text), 3000);
		for (const char *p = text; (p = strstr(p, ". <@U")) != NULL; p++)
			lines++;
	}
	return lines;
}

static const int sizes[] = {0, 1, 10, 11, 29, 200, 7000, 20000};

START_TEST(test_q_whole_queue)
{
	struct dibs_thing t = queued_thing(sizes[_i]);
	json_t *msg = dibs_view_one(&t);
	int more, lines = check_limits(msg, &more);
	char *dump = json_dumps(msg, 0);

	if (more < 0) {
		ck_assert_int_eq(lines, sizes[_i]);
		/* the last place is shown by its number */
		if (sizes[_i] > 0) {
			char last[32];
			snprintf(last, sizeof(last), "%d. <@U%09d>", sizes[_i], sizes[_i]);
			ck_assert_ptr_nonnull(strstr(dump, last));
		}
	} else {
		ck_assert_int_gt(lines, 5000);
		ck_assert_int_eq(lines + more, sizes[_i]);
	}
	ck_assert_ptr_null(strstr(dump, "more\""));
	free(dump);
	json_decref(msg);
	free_thing(&t);
}
END_TEST

/* The channel's line for each event (user text escaped), with and
 * without a next holder; an unknown event reads as a release. */
static const struct {
	const char *event, *display, *next, *want;
} announce_cases[] = {
    {"took", "staging", NULL, "<@U0A> took *staging*."},
    {"released", "staging", "U0B", "<@U0A> released *staging*. It is now <@U0B>'s."},
    {"expired", "staging", "U0B",
     "<@U0A>'s hold on *staging* ended: its time was up. It is now <@U0B>'s."},
    {"expired", "staging", "", "<@U0A>'s hold on *staging* ended: its time was up."},
    {"auto_released", "qa/eu", NULL,
     "<@U0A>'s hold on *qa/eu* was released: the check-in went unanswered."},
    {"whatever", "a<b", NULL, "<@U0A> released *a&lt;b*."},
};

START_TEST(test_announce_lines)
{
	json_t *msg = dibs_view_announce(announce_cases[_i].event, announce_cases[_i].display,
	                                 "U0A", announce_cases[_i].next);

	ck_assert_str_eq(json_string_value(json_object_get(msg, "text")), announce_cases[_i].want);
	ck_assert_str_eq(json_string_value(json_object_get(msg, "response_type")), "in_channel");
	json_decref(msg);
}
END_TEST

static Suite *
dibs_view_suite(void)
{
	Suite *s = suite_create("dibs_view");
	TCase *tc = tcase_create("limits");

	tcase_add_loop_test(tc, test_q_whole_queue, 0, (int)(sizeof(sizes) / sizeof(sizes[0])));
	tcase_add_loop_test(tc, test_announce_lines, 0,
	                    (int)(sizeof(announce_cases) / sizeof(announce_cases[0])));
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(dibs_view_suite)
