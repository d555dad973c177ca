/* Lunch grouping: the size rules hold for thousands of random inputs, a
 * seed fixes the result, and history is avoided far better than chance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit.h"
#include "util.h"
#include "lunch/group.h"

#define FAIR_PEOPLE 24
#define FAIR_SIZE   4
#define FAIR_ROUNDS 20

/* Largest distance of any group size from the target when n people form g
 * groups as evenly as possible; -1 when such groups break the 2..8 rule. */
static int
spread_from_target(int n, int g, int size)
{
	int small = n / g, big = small + (n % g != 0);
	int worst = abs(small - size) > abs(big - size) ? abs(small - size) : abs(big - size);

	if (small < LUNCH_GROUP_MIN || big > LUNCH_GROUP_MAX)
		return -1;
	return worst;
}

/* The best spread any valid group count reaches, by trying them all. */
static int
best_spread(int n, int size)
{
	int best = -1;

	for (int g = 1; g <= n; g++) {
		int d = spread_from_target(n, g, size);

		if (d >= 0 && (best < 0 || d < best))
			best = d;
	}
	return best;
}

/* Random history: up to 8 rounds, each grouping a random subset. */
static void
random_history(struct lunch_pairs *p, int n, struct lunch_rng *rng)
{
	int rounds = (int)lunch_rng_below(rng, LUNCH_HISTORY_ROUNDS + 1);
	int *perm = xcalloc(n ? n : 1, sizeof(*perm));

	lunch_pairs_init(p, n);
	for (int r = 0; r < rounds; r++) {
		int i = 0, kept = n ? (int)lunch_rng_below(rng, (uint32_t)n + 1) : 0;

		for (int k = 0; k < n; k++)
			perm[k] = k;
		for (int k = n - 1; k > 0; k--) {
			int j = (int)lunch_rng_below(rng, (uint32_t)k + 1), t = perm[k];

			perm[k] = perm[j];
			perm[j] = t;
		}
		while (i + 2 <= kept) {
			int len = 2 + (int)lunch_rng_below(rng, 7);

			for (int a = i; a < i + len && a < kept; a++)
				for (int b = a + 1; b < i + len && b < kept; b++)
					lunch_pairs_add(p, perm[a], perm[b],
					                lunch_history_weight(r));
			i += len;
		}
	}
	free(perm);
}

static void
check_grouping(const struct lunch_grouping *g, int n, int size, int rc)
{
	int *seen = xcalloc(n ? n : 1, sizeof(*seen));
	int smallest = n, largest = 0;

	if (n < 2) {
		ck_assert_int_eq(rc, n == 0 ? LUNCH_GROUP_NONE : LUNCH_GROUP_ALONE);
		ck_assert_int_eq(g->ngroups, 0);
		free(seen);
		return;
	}
	ck_assert_int_eq(rc, LUNCH_GROUP_OK);
	ck_assert_int_eq(g->ngroups, lunch_group_count(n, size));
	ck_assert_int_eq(spread_from_target(n, g->ngroups, size), best_spread(n, size));
	ck_assert_int_eq(g->first[0], 0);
	ck_assert_int_eq(g->first[g->ngroups], n);
	for (int k = 0; k < g->ngroups; k++) {
		int len = g->first[k + 1] - g->first[k];

		smallest = len < smallest ? len : smallest;
		largest = len > largest ? len : largest;
		for (int i = g->first[k]; i < g->first[k + 1]; i++) {
			ck_assert(g->member[i] >= 0 && g->member[i] < n);
			seen[g->member[i]]++;
		}
	}
	for (int p = 0; p < n; p++)
		ck_assert_int_eq(seen[p], 1);
	ck_assert_int_ge(smallest, LUNCH_GROUP_MIN);
	ck_assert_int_le(largest, LUNCH_GROUP_MAX);
	ck_assert_int_le(largest - smallest, 1);
	free(seen);
}

START_TEST(random_inputs_keep_the_rules)
{
	struct lunch_rng rng;

	lunch_rng_seed(&rng, 20240601);
	for (int iter = 0; iter < 3000; iter++) {
		int n = (int)lunch_rng_below(&rng, 201);
		int size = LUNCH_GROUP_MIN + (int)lunch_rng_below(&rng, 7);
		struct lunch_pairs pairs;
		struct lunch_grouping g;
		int rc;

		random_history(&pairs, n, &rng);
		rc = lunch_group(n, size, &pairs, lunch_rng_next(&rng), &g);
		check_grouping(&g, n, size, rc);
		lunch_grouping_free(&g);
		lunch_pairs_free(&pairs);
	}
}
END_TEST

START_TEST(every_small_case_without_history)
{
	for (int n = 0; n <= 64; n++)
		for (int size = LUNCH_GROUP_MIN; size <= LUNCH_GROUP_MAX; size++) {
			struct lunch_grouping g;
			int rc = lunch_group(n, size, NULL, (uint64_t)n * 31 + size, &g);

			check_grouping(&g, n, size, rc);
			lunch_grouping_free(&g);
		}
}
END_TEST

START_TEST(known_counts)
{
	static const struct {
		int n, size, groups;
	} rows[] = {
	    {0, 4, 0},  {1, 4, 0},  {2, 4, 1},     {3, 2, 1},    {5, 4, 1},     {6, 4, 2},
	    {7, 2, 3},  {9, 8, 2},  {10, 4, 3},    {17, 8, 3},   {24, 4, 6},    {25, 4, 6},
	    {26, 4, 7}, {16, 8, 2}, {500, 4, 125}, {500, 8, 63}, {500, 2, 250},
	};

	for (size_t i = 0; i < ARRAY_LEN(rows); i++)
		ck_assert_msg(lunch_group_count(rows[i].n, rows[i].size) == rows[i].groups,
		              "n=%d size=%d: %d groups, want %d", rows[i].n, rows[i].size,
		              lunch_group_count(rows[i].n, rows[i].size), rows[i].groups);
}
END_TEST

START_TEST(bad_arguments)
{
	struct lunch_pairs pairs;
	struct lunch_grouping g;

	ck_assert_int_eq(lunch_group(10, 1, NULL, 1, &g), -1);
	ck_assert_int_eq(lunch_group(10, 9, NULL, 1, &g), -1);
	ck_assert_int_eq(lunch_group(-1, 4, NULL, 1, &g), -1);
	lunch_pairs_init(&pairs, 9);
	ck_assert_int_eq(lunch_group(10, 4, &pairs, 1, &g), -1);
	lunch_pairs_free(&pairs);
	lunch_grouping_free(&g);
}
END_TEST

START_TEST(a_seed_fixes_the_groups)
{
	struct lunch_rng rng;
	struct lunch_pairs pairs;
	struct lunch_grouping a, b;
	int differ = 0;

	lunch_rng_seed(&rng, 7);
	random_history(&pairs, 60, &rng);
	ck_assert_int_eq(lunch_group(60, 5, &pairs, 42, &a), LUNCH_GROUP_OK);
	ck_assert_int_eq(lunch_group(60, 5, &pairs, 42, &b), LUNCH_GROUP_OK);
	ck_assert_int_eq(a.ngroups, b.ngroups);
	ck_assert_mem_eq(a.first, b.first, (a.ngroups + 1) * sizeof(int));
	ck_assert_mem_eq(a.member, b.member, 60 * sizeof(int));
	lunch_grouping_free(&b);
	for (uint64_t seed = 43; seed < 48; seed++) {
		lunch_group(60, 5, &pairs, seed, &b);
		differ += memcmp(a.member, b.member, 60 * sizeof(int)) != 0;
		lunch_grouping_free(&b);
	}
	ck_assert_int_gt(differ, 0);
	lunch_grouping_free(&a);
	lunch_pairs_free(&pairs);
}
END_TEST

START_TEST(the_generator_is_fixed_and_bounded)
{
	struct lunch_rng a, b;
	int hits[10] = {0};

	lunch_rng_seed(&a, 1);
	lunch_rng_seed(&b, 1);
	for (int i = 0; i < 100; i++)
		ck_assert_uint_eq(lunch_rng_next(&a), lunch_rng_next(&b));
	lunch_rng_seed(&b, 2);
	ck_assert_uint_ne(lunch_rng_next(&a), lunch_rng_next(&b));
	for (int i = 0; i < 10000; i++) {
		uint32_t v = lunch_rng_below(&a, 10);

		ck_assert_uint_lt(v, 10);
		hits[v]++;
	}
	for (int i = 0; i < 10; i++)
		ck_assert_int_gt(hits[i], 800);
}
END_TEST

/* Last round's four tables of four: a grouping that splits every table
 * exists (one from each), and the search must find it. */
START_TEST(avoids_last_rounds_tables_when_it_can)
{
	struct lunch_pairs pairs;

	lunch_pairs_init(&pairs, 16);
	for (int t = 0; t < 4; t++)
		for (int a = 0; a < 4; a++)
			for (int b = a + 1; b < 4; b++)
				lunch_pairs_add(&pairs, t * 4 + a, t * 4 + b,
				                lunch_history_weight(0));
	for (uint64_t seed = 0; seed < 50; seed++) {
		struct lunch_grouping g;

		ck_assert_int_eq(lunch_group(16, 4, &pairs, seed, &g), LUNCH_GROUP_OK);
		ck_assert_uint_eq(lunch_grouping_cost(&g, 16, &pairs), 0);
		lunch_grouping_free(&g);
	}
	lunch_pairs_free(&pairs);
}
END_TEST

/* Sums the weights the pair list holds for {a, b}. */
static unsigned
pair_weight(const struct lunch_pairs *p, int a, int b)
{
	unsigned sum = 0;

	for (size_t i = 0; i < p->len; i++)
		if ((p->edge[i].a == a && p->edge[i].b == b) ||
		    (p->edge[i].a == b && p->edge[i].b == a))
			sum += p->edge[i].weight;
	return sum;
}

START_TEST(history_from_user_ids)
{
	static const char *const ids[] = {"U03", "U01", "U02", "U04"};
	static const char *const r0[] = {"U01", "U02", "UXX"};
	static const char *const r1[] = {"U01", "U03", "U02"};
	static const char *const r7[] = {"U04", "U03"};
	static const char *const r8[] = {"U04", "U01"};
	static const char *const dup[] = {"U04", "U04"};
	const struct lunch_past_group past[] = {
	    {r0, 3, 0}, {r1, 3, 1}, {r7, 2, 7}, {r8, 2, 8}, {dup, 2, 2}, {r8, 2, -1},
	};
	struct lunch_pairs pairs;

	lunch_pairs_from_history(&pairs, ids, 4, past, ARRAY_LEN(past));
	ck_assert_int_eq(pairs.n, 4);
	/* U01 = 1, U02 = 2, U03 = 0, U04 = 3 */
	ck_assert_uint_eq(pair_weight(&pairs, 1, 2),
	                  lunch_history_weight(0) + lunch_history_weight(1));
	ck_assert_uint_eq(pair_weight(&pairs, 0, 1), lunch_history_weight(1));
	ck_assert_uint_eq(pair_weight(&pairs, 0, 2), lunch_history_weight(1));
	ck_assert_uint_eq(pair_weight(&pairs, 0, 3), lunch_history_weight(7));
	ck_assert_uint_eq(pair_weight(&pairs, 1, 3), 0);
	ck_assert_uint_eq(pair_weight(&pairs, 2, 3), 0);
	ck_assert_uint_eq(pairs.len, 5);
	lunch_pairs_free(&pairs);
}
END_TEST

static double
elapsed_ms(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Adds 8 rounds of everyone lunching in groups of size. */
static void
full_history(struct lunch_pairs *pairs, int n, int size, struct lunch_rng *rng)
{
	for (int r = 0; r < LUNCH_HISTORY_ROUNDS; r++) {
		struct lunch_grouping g;

		ck_assert_int_eq(lunch_group(n, size, NULL, lunch_rng_next(rng), &g),
		                 LUNCH_GROUP_OK);
		for (int k = 0; k < g.ngroups; k++)
			for (int i = g.first[k]; i < g.first[k + 1]; i++)
				for (int j = i + 1; j < g.first[k + 1]; j++)
					lunch_pairs_add(pairs, g.member[i], g.member[j],
					                lunch_history_weight(r));
		lunch_grouping_free(&g);
	}
}

/* Best of 3 runs, so that a busy machine does not fail the test. */
static double
best_ms(const struct lunch_pairs *pairs, int n, int size)
{
	double best = 1e9;

	for (int run = 0; run < 3; run++) {
		struct timespec t0, t1;
		struct lunch_grouping g;
		int rc;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = lunch_group(n, size, pairs, (uint64_t)run, &g);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		best = elapsed_ms(&t0, &t1) < best ? elapsed_ms(&t0, &t1) : best;
		check_grouping(&g, n, size, rc);
		lunch_grouping_free(&g);
	}
	return best;
}

/* 500 people with 8 full rounds of history in groups of 8 (the most pairs
 * history can give), once as it is and once with 64 of them all paired
 * up, which 63 groups cannot keep apart: the search then runs its full
 * course instead of stopping at a grouping with no repeat. */
START_TEST(five_hundred_people_are_fast)
{
	struct lunch_rng rng;
	struct lunch_pairs pairs;
	double easy, hard;

	lunch_rng_seed(&rng, 500);
	lunch_pairs_init(&pairs, 500);
	full_history(&pairs, 500, 8, &rng);
	easy = best_ms(&pairs, 500, 8);
	for (int a = 0; a < 64; a++)
		for (int b = a + 1; b < 64; b++)
			lunch_pairs_add(&pairs, a * 7, b * 7, lunch_history_weight(0));
	hard = best_ms(&pairs, 500, 8);
	printf("lunch grouping: 500 people in %.2f ms, %.2f ms with unavoidable repeats\n", easy,
	       hard);
	ck_assert_double_lt(easy, 50.0);
	ck_assert_double_lt(hard, 50.0);
	lunch_pairs_free(&pairs);
}
END_TEST

/* --- fairness ------------------------------------------------------------ */

/* The rounds so far, newest last; together[r][a][b] says a and b lunched
 * together in round r. */
struct sim {
	unsigned char together[FAIR_ROUNDS][FAIR_PEOPLE][FAIR_PEOPLE];
	int rounds;
};

static void
recent_pairs(const struct sim *s, struct lunch_pairs *pairs)
{
	lunch_pairs_init(pairs, FAIR_PEOPLE);
	for (int age = 0; age < LUNCH_HISTORY_ROUNDS && age < s->rounds; age++)
		for (int a = 0; a < FAIR_PEOPLE; a++)
			for (int b = a + 1; b < FAIR_PEOPLE; b++)
				if (s->together[s->rounds - 1 - age][a][b])
					lunch_pairs_add(pairs, a, b, lunch_history_weight(age));
}

static int
met_recently(const struct sim *s, int a, int b)
{
	for (int age = 0; age < LUNCH_HISTORY_ROUNDS && age < s->rounds; age++)
		if (s->together[s->rounds - 1 - age][a][b])
			return 1;
	return 0;
}

/* Records one round; returns how many of its pairs met in the last 8. */
static int
record_round(struct sim *s, const int *member, const int *first, int ngroups)
{
	int repeats = 0;

	for (int k = 0; k < ngroups; k++)
		for (int i = first[k]; i < first[k + 1]; i++)
			for (int j = first[k]; j < first[k + 1]; j++) {
				int a = member[i], b = member[j];

				if (a == b)
					continue;
				repeats += a < b && met_recently(s, a, b);
				s->together[s->rounds][a][b] = 1;
			}
	s->rounds++;
	return repeats;
}

static int
simulate_preferring_new(void)
{
	static struct sim s;
	int repeats = 0;

	memset(&s, 0, sizeof(s));
	for (int r = 0; r < FAIR_ROUNDS; r++) {
		struct lunch_pairs pairs;
		struct lunch_grouping g;

		recent_pairs(&s, &pairs);
		ck_assert_int_eq(lunch_group(FAIR_PEOPLE, FAIR_SIZE, &pairs, 1000 + r, &g),
		                 LUNCH_GROUP_OK);
		repeats += record_round(&s, g.member, g.first, g.ngroups);
		lunch_grouping_free(&g);
		lunch_pairs_free(&pairs);
	}
	return repeats;
}

/* Shuffle and cut into the same sizes as lunch_group would use. */
static int
simulate_random(void)
{
	static struct sim s;
	int ngroups = lunch_group_count(FAIR_PEOPLE, FAIR_SIZE);
	int member[FAIR_PEOPLE], first[FAIR_PEOPLE + 1];
	struct lunch_rng rng;
	int repeats = 0;

	memset(&s, 0, sizeof(s));
	lunch_rng_seed(&rng, 99);
	first[0] = 0;
	for (int k = 0; k < ngroups; k++)
		first[k + 1] = first[k] + FAIR_PEOPLE / ngroups + (k < FAIR_PEOPLE % ngroups);
	for (int r = 0; r < FAIR_ROUNDS; r++) {
		for (int i = 0; i < FAIR_PEOPLE; i++)
			member[i] = i;
		for (int i = FAIR_PEOPLE - 1; i > 0; i--) {
			int j = (int)lunch_rng_below(&rng, (uint32_t)i + 1), t = member[i];

			member[i] = member[j];
			member[j] = t;
		}
		repeats += record_round(&s, member, first, ngroups);
	}
	return repeats;
}

START_TEST(prefers_people_who_have_not_met)
{
	int fair = simulate_preferring_new();
	int chance = simulate_random();

	printf("lunch fairness: repeated pairs over 20 rounds: preferring-new=%d random=%d\n", fair,
	       chance);
	fflush(stdout);
	ck_assert_int_gt(chance, 0);
	ck_assert_int_le(fair, chance / 2);
}
END_TEST

static Suite *
lunch_group_suite(void)
{
	Suite *s = suite_create("lunch_group");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, random_inputs_keep_the_rules);
	tcase_add_test(tc, every_small_case_without_history);
	tcase_add_test(tc, known_counts);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, a_seed_fixes_the_groups);
	tcase_add_test(tc, the_generator_is_fixed_and_bounded);
	tcase_add_test(tc, avoids_last_rounds_tables_when_it_can);
	tcase_add_test(tc, history_from_user_ids);
	tcase_add_test(tc, five_hundred_people_are_fast);
	tcase_add_test(tc, prefers_people_who_have_not_met);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(lunch_group_suite)
