/* Lunch grouping: balanced group sizes, then a local search that swaps
 * people between groups while that lowers the weight of repeated pairs,
 * restarted from small random kicks of the best grouping found. */
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "lunch/group.h"

/* Each pass tries one swap per person; passes stop early once none helps. */
#define SEARCH_PASSES 16
/* Kicks after the first search: as many as fit in KICK_WORK steps of the
 * worst case, so small dense teams get many and n = 500 gets one or two. */
#define KICK_WORK  8000000LL
#define MAX_KICKS  64
#define KICK_SWAPS 3
/* Added to every repeat's weight so that two repeats always cost more than
 * one, however recent: the count of repeats comes first, recency second. */
#define WEIGHT_BASE (2 * LUNCH_HISTORY_ROUNDS)

/* --- random numbers ----------------------------------------------------- */

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
lunch_rng_seed(struct lunch_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
lunch_rng_next(struct lunch_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Lemire's multiply-and-reject: unbiased, rarely loops. */
uint32_t
lunch_rng_below(struct lunch_rng *r, uint32_t bound)
{
	uint64_t m = (lunch_rng_next(r) >> 32) * bound;
	uint32_t threshold;

	if ((uint32_t)m < bound) {
		threshold = -bound % bound;
		while ((uint32_t)m < threshold)
			m = (lunch_rng_next(r) >> 32) * bound;
	}
	return (uint32_t)(m >> 32);
}

/* --- pair weights ------------------------------------------------------- */

void
lunch_pairs_init(struct lunch_pairs *p, int n)
{
	p->n = n;
	p->edge = NULL;
	p->len = 0;
	p->cap = 0;
}

void
lunch_pairs_add(struct lunch_pairs *p, int a, int b, unsigned weight)
{
	if (a == b || a < 0 || b < 0 || a >= p->n || b >= p->n)
		fatal("lunch_pairs_add: bad pair %d, %d of %d", a, b, p->n);
	if (p->len == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->edge = xrealloc(p->edge, p->cap * sizeof(*p->edge));
	}
	p->edge[p->len++] = (struct lunch_edge){a, b, weight};
}

void
lunch_pairs_free(struct lunch_pairs *p)
{
	free(p->edge);
	lunch_pairs_init(p, 0);
}

unsigned
lunch_history_weight(int round)
{
	if (round < 0 || round >= LUNCH_HISTORY_ROUNDS)
		return 0;
	return WEIGHT_BASE + LUNCH_HISTORY_ROUNDS - round;
}

struct id_index {
	const char *id;
	int index;
};

static int
id_cmp(const void *x, const void *y)
{
	return strcmp(((const struct id_index *)x)->id, ((const struct id_index *)y)->id);
}

static int
id_find(const struct id_index *sorted, int n, const char *id)
{
	struct id_index key = {id, -1};
	const struct id_index *hit = bsearch(&key, sorted, n, sizeof(*sorted), id_cmp);

	return hit ? hit->index : -1;
}

/* Adds every pair of participants in one past group. O(k log n + k * k). */
static void
add_past_group(struct lunch_pairs *p, const struct id_index *sorted,
               const struct lunch_past_group *pg, int *scratch)
{
	unsigned weight = lunch_history_weight(pg->round);
	int k = 0;

	for (int i = 0; i < pg->nusers; i++) {
		int idx = id_find(sorted, p->n, pg->users[i]);

		if (idx >= 0)
			scratch[k++] = idx;
	}
	for (int i = 0; i < k; i++)
		for (int j = i + 1; j < k; j++)
			if (scratch[i] != scratch[j])
				lunch_pairs_add(p, scratch[i], scratch[j], weight);
}

void
lunch_pairs_from_history(struct lunch_pairs *p, const char *const *ids, int n,
                         const struct lunch_past_group *past, size_t npast)
{
	struct id_index *sorted = xcalloc(n, sizeof(*sorted));
	int maxusers = 0;
	int *scratch;

	lunch_pairs_init(p, n);
	for (int i = 0; i < n; i++)
		sorted[i] = (struct id_index){ids[i], i};
	qsort(sorted, n, sizeof(*sorted), id_cmp);
	for (size_t g = 0; g < npast; g++)
		if (past[g].nusers > maxusers)
			maxusers = past[g].nusers;
	scratch = xcalloc(maxusers, sizeof(*scratch));
	for (size_t g = 0; g < npast; g++)
		if (past[g].round >= 0 && past[g].round < LUNCH_HISTORY_ROUNDS)
			add_past_group(p, sorted, &past[g], scratch);
	free(scratch);
	free(sorted);
}

/* --- group sizes -------------------------------------------------------- */

int
lunch_group_count(int n, int size)
{
	long long g, lo, hi;

	if (n < 2 || size < LUNCH_GROUP_MIN || size > LUNCH_GROUP_MAX)
		return 0;
	g = (2LL * n + size) / (2LL * size); /* n / size rounded half up */
	lo = ((long long)n + LUNCH_GROUP_MAX - 1) / LUNCH_GROUP_MAX;
	hi = n / 2; /* lo <= hi for every n >= 2, so both bounds hold */
	if (g < lo)
		g = lo;
	if (g > hi)
		g = hi;
	return (int)g;
}

/* --- search state ------------------------------------------------------- */

/* The pairs in both directions, indexed by person (CSR), plus where
 * everyone sits and what their seat costs. */
struct search {
	int n, ngroups;
	int *off;           /* n + 1 offsets into nbr and wt */
	int *nbr;           /* neighbours of each person */
	unsigned *wt;       /* weight to that neighbour */
	int *group;         /* person -> group */
	int *slot;          /* person -> index in out->member */
	long long *own;     /* weight between a person and their group */
	long long *to_grp;  /* scratch: weight from the mover to each group */
	long long *to_home; /* scratch: weight from each person to the mover's group */
	long long *to_mov;  /* scratch: weight from each person to the mover */
	int *order;         /* random visiting order */
	int max_degree;     /* most pairs one person has */
	struct lunch_grouping *out;
};

/* O(E + n). */
static void
index_pairs(struct search *s, const struct lunch_pairs *pairs)
{
	size_t len = pairs ? pairs->len : 0;
	int *fill = xcalloc(s->n + 1, sizeof(*fill));

	s->off = xcalloc(s->n + 1, sizeof(*s->off));
	for (size_t i = 0; i < len; i++) {
		s->off[pairs->edge[i].a + 1]++;
		s->off[pairs->edge[i].b + 1]++;
	}
	s->max_degree = 0;
	for (int i = 0; i < s->n; i++) {
		if (s->off[i + 1] > s->max_degree)
			s->max_degree = s->off[i + 1];
		s->off[i + 1] += s->off[i];
	}
	s->nbr = xcalloc(2 * len, sizeof(*s->nbr));
	s->wt = xcalloc(2 * len, sizeof(*s->wt));
	for (size_t i = 0; i < len; i++) {
		const struct lunch_edge *e = &pairs->edge[i];
		int ia = s->off[e->a] + fill[e->a]++;
		int ib = s->off[e->b] + fill[e->b]++;

		s->nbr[ia] = e->b;
		s->wt[ia] = e->weight;
		s->nbr[ib] = e->a;
		s->wt[ib] = e->weight;
	}
	free(fill);
}

static void
search_init(struct search *s, int n, int ngroups, const struct lunch_pairs *pairs,
            struct lunch_grouping *out)
{
	s->n = n;
	s->ngroups = ngroups;
	s->out = out;
	index_pairs(s, pairs);
	s->group = xcalloc(n, sizeof(*s->group));
	s->slot = xcalloc(n, sizeof(*s->slot));
	s->own = xcalloc(n, sizeof(*s->own));
	s->to_grp = xcalloc(ngroups, sizeof(*s->to_grp));
	s->to_home = xcalloc(n, sizeof(*s->to_home));
	s->to_mov = xcalloc(n, sizeof(*s->to_mov));
	s->order = xcalloc(n, sizeof(*s->order));
	out->ngroups = ngroups;
	out->first = xcalloc(ngroups + 1, sizeof(*out->first));
	out->member = xcalloc(n, sizeof(*out->member));
}

static void
search_free(struct search *s)
{
	free(s->off);
	free(s->nbr);
	free(s->wt);
	free(s->group);
	free(s->slot);
	free(s->own);
	free(s->to_grp);
	free(s->to_home);
	free(s->to_mov);
	free(s->order);
}

/* O(d). */
static long long
own_cost(const struct search *s, int p)
{
	long long sum = 0;

	for (int i = s->off[p]; i < s->off[p + 1]; i++)
		if (s->group[s->nbr[i]] == s->group[p])
			sum += s->wt[i];
	return sum;
}

/* Adds sign * weight from p to each of its neighbours' groups. O(d). */
static void
mark_groups(struct search *s, int p, int sign)
{
	for (int i = s->off[p]; i < s->off[p + 1]; i++)
		if (s->group[s->nbr[i]] >= 0)
			s->to_grp[s->group[s->nbr[i]]] += sign * (long long)s->wt[i];
}

/* --- greedy start ------------------------------------------------------- */

static void
shuffle(int *a, int n, struct lunch_rng *rng)
{
	for (int i = 0; i < n; i++)
		a[i] = i;
	for (int i = n - 1; i > 0; i--) {
		int j = (int)lunch_rng_below(rng, (uint32_t)i + 1);
		int t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

/* The open group p minds least; on a tie the lowest, so with no history
 * this is a shuffle cut into consecutive groups. O(ngroups). */
static int
cheapest_open_group(const struct search *s, const int *fill)
{
	const int *first = s->out->first;
	int best = -1;

	for (int k = 0; k < s->ngroups; k++) {
		if (fill[k] == first[k + 1] - first[k])
			continue;
		if (best < 0 || s->to_grp[k] < s->to_grp[best])
			best = k;
	}
	return best;
}

/* Seats people in random order, each where they have the least history.
 * O(n * ngroups + E). */
static void
greedy_start(struct search *s, int size_base, int size_extra)
{
	int *first = s->out->first;
	int *fill = xcalloc(s->ngroups, sizeof(*fill));

	for (int k = 0; k < s->ngroups; k++)
		first[k + 1] = first[k] + size_base + (k < size_extra);
	for (int p = 0; p < s->n; p++)
		s->group[p] = -1;
	for (int i = 0; i < s->n; i++) {
		int p = s->order[i], k;

		mark_groups(s, p, 1);
		k = cheapest_open_group(s, fill);
		mark_groups(s, p, -1);
		s->group[p] = k;
		s->slot[p] = first[k] + fill[k]++;
		s->out->member[s->slot[p]] = p;
	}
	for (int p = 0; p < s->n; p++)
		s->own[p] = own_cost(s, p);
	free(fill);
}

/* --- local search ------------------------------------------------------- */

/* Adds sign * weight of every pair between p's group and each person into
 * to_home, and between p and each person into to_mov. O(8 * d). */
static void
mark_mover(struct search *s, int p, int sign)
{
	const int *first = s->out->first;
	int home = s->group[p];

	for (int i = first[home]; i < first[home + 1]; i++) {
		int q = s->out->member[i];

		for (int j = s->off[q]; j < s->off[q + 1]; j++)
			s->to_home[s->nbr[j]] += sign * (long long)s->wt[j];
	}
	for (int j = s->off[p]; j < s->off[p + 1]; j++)
		s->to_mov[s->nbr[j]] += sign * (long long)s->wt[j];
	mark_groups(s, p, sign);
}

/* The change in total cost if p and q swap groups: p leaves its group for
 * q's (minus q), q the reverse; the pair {p, q} is never together. O(1). */
static long long
swap_delta(const struct search *s, int p, int q)
{
	return s->to_grp[s->group[q]] + s->to_home[q] - 2 * s->to_mov[q] - s->own[p] - s->own[q];
}

/* Recomputes own for p and its neighbours. O(d * d). */
static void
refresh_around(struct search *s, int p)
{
	s->own[p] = own_cost(s, p);
	for (int i = s->off[p]; i < s->off[p + 1]; i++)
		s->own[s->nbr[i]] = own_cost(s, s->nbr[i]);
}

static void
apply_swap(struct search *s, int p, int q)
{
	int gp = s->group[p], sp = s->slot[p];

	s->group[p] = s->group[q];
	s->slot[p] = s->slot[q];
	s->group[q] = gp;
	s->slot[q] = sp;
	s->out->member[s->slot[p]] = p;
	s->out->member[s->slot[q]] = q;
	refresh_around(s, p);
	refresh_around(s, q);
}

/* Makes the best swap for p if one lowers the cost. O(n + 8 * d). */
static int
improve(struct search *s, int p)
{
	long long best = 0;
	int best_q = -1;

	mark_mover(s, p, 1);
	for (int q = 0; q < s->n; q++) {
		long long d;

		if (s->group[q] == s->group[p])
			continue;
		d = swap_delta(s, p, q);
		if (d < best) {
			best = d;
			best_q = q;
		}
	}
	mark_mover(s, p, -1);
	if (best_q >= 0)
		apply_swap(s, p, best_q);
	return best_q >= 0;
}

/* Only people who sit with history can start an improving swap: any swap
 * that helps lowers someone's own cost, and that someone is visited. */
static void
local_search(struct search *s)
{
	for (int pass = 0; pass < SEARCH_PASSES; pass++) {
		int swaps = 0;

		for (int i = 0; i < s->n; i++)
			if (s->own[s->order[i]] > 0)
				swaps += improve(s, s->order[i]);
		if (swaps == 0)
			break;
	}
}

/* --- kicks -------------------------------------------------------------- */

/* Puts everyone back where member says. O(n + E). */
static void
seat_as(struct search *s, const int *member)
{
	for (int k = 0; k < s->ngroups; k++)
		for (int i = s->out->first[k]; i < s->out->first[k + 1]; i++) {
			s->out->member[i] = member[i];
			s->group[member[i]] = k;
			s->slot[member[i]] = i;
		}
	for (int p = 0; p < s->n; p++)
		s->own[p] = own_cost(s, p);
}

/* A few random swaps, enough to leave a local optimum. O(d * d). */
static void
kick(struct search *s, struct lunch_rng *rng)
{
	for (int i = 0; i < KICK_SWAPS; i++) {
		int p = (int)lunch_rng_below(rng, (uint32_t)s->n);
		int q = (int)lunch_rng_below(rng, (uint32_t)s->n);

		if (s->group[p] != s->group[q])
			apply_swap(s, p, q);
	}
}

static int
kicks_for(const struct search *s)
{
	long long pass = (long long)s->n * (s->n + 8LL * s->max_degree);
	long long k = KICK_WORK / (SEARCH_PASSES * pass);

	return s->ngroups < 2 ? 0 : k > MAX_KICKS ? MAX_KICKS : (int)k;
}

static long long
total_cost(const struct search *s)
{
	long long sum = 0;

	for (int p = 0; p < s->n; p++)
		sum += s->own[p];
	return sum / 2;
}

/* Iterated local search: kick the best grouping so far, search again, keep
 * the result when it is no worse (equal moves let it drift off plateaus).
 * Ends with the best grouping in out->member. */
static void
search_best(struct search *s, struct lunch_rng *rng)
{
	int *best_member = xcalloc(s->n, sizeof(*best_member));
	long long best;

	shuffle(s->order, s->n, rng);
	greedy_start(s, s->n / s->ngroups, s->n % s->ngroups);
	local_search(s);
	best = total_cost(s);
	memcpy(best_member, s->out->member, s->n * sizeof(*best_member));
	for (int k = kicks_for(s); k > 0 && best > 0; k--) {
		seat_as(s, best_member);
		kick(s, rng);
		local_search(s);
		if (total_cost(s) <= best) {
			best = total_cost(s);
			memcpy(best_member, s->out->member, s->n * sizeof(*best_member));
		}
	}
	memcpy(s->out->member, best_member, s->n * sizeof(*best_member));
	free(best_member);
}

/* --- entry points ------------------------------------------------------- */

int
lunch_group(int n, int size, const struct lunch_pairs *pairs, uint64_t seed,
            struct lunch_grouping *out)
{
	struct search s;
	struct lunch_rng rng;

	memset(out, 0, sizeof(*out));
	if (n < 0 || size < LUNCH_GROUP_MIN || size > LUNCH_GROUP_MAX || (pairs && pairs->n != n))
		return -1;
	if (n < 2) {
		out->member = xcalloc(1, sizeof(*out->member));
		return n == 0 ? LUNCH_GROUP_NONE : LUNCH_GROUP_ALONE;
	}
	search_init(&s, n, lunch_group_count(n, size), pairs, out);
	lunch_rng_seed(&rng, seed);
	search_best(&s, &rng);
	search_free(&s);
	return LUNCH_GROUP_OK;
}

void
lunch_grouping_free(struct lunch_grouping *g)
{
	free(g->first);
	free(g->member);
	memset(g, 0, sizeof(*g));
}

unsigned long
lunch_grouping_cost(const struct lunch_grouping *g, int n, const struct lunch_pairs *pairs)
{
	int *group = xcalloc(n, sizeof(*group));
	unsigned long cost = 0;

	for (int p = 0; p < n; p++)
		group[p] = -1;
	for (int k = 0; k < g->ngroups; k++)
		for (int i = g->first[k]; i < g->first[k + 1]; i++)
			group[g->member[i]] = k;
	for (size_t i = 0; pairs && i < pairs->len; i++) {
		const struct lunch_edge *e = &pairs->edge[i];

		if (e->a < n && e->b < n && group[e->a] >= 0 && group[e->a] == group[e->b])
			cost += e->weight;
	}
	free(group);
	return cost;
}
