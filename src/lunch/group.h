/* Lunch grouping: splits the people who said yes to one time slot into
 * groups of nearly equal size, preferring people who have not lunched
 * together recently. Pure: no I/O, no global state; the randomness comes
 * from an explicitly seeded generator, so a seed always gives the same
 * groups. */
#ifndef CONCH_LUNCH_GROUP_H
#define CONCH_LUNCH_GROUP_H

#include <stddef.h>
#include <stdint.h>

#define LUNCH_GROUP_MIN      2
#define LUNCH_GROUP_MAX      8 /* Slack's group DM limit, counting the bot out */
#define LUNCH_HISTORY_ROUNDS 8 /* closed polls of the team that count as recent */

/* xoshiro256** seeded through splitmix64. */
struct lunch_rng {
	uint64_t s[4];
};

void lunch_rng_seed(struct lunch_rng *r, uint64_t seed);
uint64_t lunch_rng_next(struct lunch_rng *r);
/* Uniform in [0, bound); bound > 0. */
uint32_t lunch_rng_below(struct lunch_rng *r, uint32_t bound);

/* How much each pair of participants should avoid being grouped again: a
 * list of weighted pairs over participants 0..n-1. A pair may appear more
 * than once; its weights add up. */
struct lunch_edge {
	int a, b;
	unsigned weight;
};

struct lunch_pairs {
	int n;
	struct lunch_edge *edge;
	size_t len, cap;
};

void lunch_pairs_init(struct lunch_pairs *p, int n);
/* Adds weight to {a, b}; a != b, both in 0..n-1. Amortised O(1). */
void lunch_pairs_add(struct lunch_pairs *p, int a, int b, unsigned weight);
void lunch_pairs_free(struct lunch_pairs *p);

/* One group of a past round. round numbers the team's closed polls, 0 the
 * newest; groups of rounds >= LUNCH_HISTORY_ROUNDS are ignored. */
struct lunch_past_group {
	const char *const *users;
	int nusers;
	int round;
};

/* The weight of having lunched together in a round (0 the newest, 24)
 * down to the oldest counted (17): any two repeats outweigh one, so fewer
 * repeats win first and older ones second. 0 outside the recent rounds. */
unsigned lunch_history_weight(int round);

/* Fills p (lunch_pairs_init is done here) with the history of the n
 * participants ids[0..n-1] (distinct user ids): each pair that shared a
 * past group costs lunch_history_weight(round). Past members who are not
 * participants are skipped.
 * Cost: O((n + M) log n + P) for M past members and P pairs among them. */
void lunch_pairs_from_history(struct lunch_pairs *p, const char *const *ids, int n,
                              const struct lunch_past_group *past, size_t npast);

enum lunch_group_status {
	LUNCH_GROUP_NONE,  /* nobody: no groups */
	LUNCH_GROUP_ALONE, /* one participant (index 0): nobody joined them */
	LUNCH_GROUP_OK,    /* ngroups >= 1 groups, each of 2..8 */
};

/* Group k holds member[first[k]] .. member[first[k + 1] - 1]. */
struct lunch_grouping {
	int ngroups;
	int *first;  /* ngroups + 1 offsets */
	int *member; /* every participant index exactly once */
};

/* Number of groups for n people and target size: round(n / size), moved
 * just enough that no group exceeds LUNCH_GROUP_MAX and none has 1 person.
 * 0 when n < 2. */
int lunch_group_count(int n, int size);

/* Groups participants 0..n-1 into lunch_group_count(n, size) groups whose
 * sizes differ by at most one, minimising the summed weight of pairs that
 * share a group: a randomised greedy start, then swaps between groups
 * while one lowers the cost, then up to 64 rounds of "kick the best
 * grouping with 3 random swaps and search again". pairs may be NULL (no
 * history); otherwise pairs->n must be n. Returns a lunch_group_status,
 * or -1 for a size outside 2..8 or a bad n. Free out with
 * lunch_grouping_free.
 * Cost: O(E + n) to index the E pairs, O(n * n / size) for the start,
 * and each search at most 16 passes of O(n * (n + 8 * d)), d being the
 * most pairs one person has (d <= 56 from 8 rounds of history). The
 * number of kicks shrinks as that bound grows (a fixed budget of 8e6
 * steps), and stops at a grouping with no repeat: n = 500 takes well
 * under a millisecond when history can be avoided, a few ms otherwise. */
int lunch_group(int n, int size, const struct lunch_pairs *pairs, uint64_t seed,
                struct lunch_grouping *out);
void lunch_grouping_free(struct lunch_grouping *g);

/* Summed weight of the pairs that share a group in g. O(E + n). */
unsigned long lunch_grouping_cost(const struct lunch_grouping *g, int n,
                                  const struct lunch_pairs *pairs);

#endif
