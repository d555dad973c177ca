/* The outbound engine: a queue of calls, one thread running a libcurl
 * multi handle, limits per instance and per team, and token buckets for
 * pacing. Callers on any thread submit; done callbacks run on the engine
 * thread. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define SLOTS_HASH   1024
#define NAME_MAX_LEN 200
#define POLL_MAX_MS  1000
#define SLOT_IDLE    60.0 /* seconds: every bucket refills within it (the slowest in ~10 s) */

/* A team's calls in flight, or a pacing bucket: named, created on first
 * use, dropped once unused and idle for SLOT_IDLE seconds (a bucket is
 * full again by then, so dropping it changes nothing). */
struct slot {
	char name[NAME_MAX_LEN];
	int refs; /* calls queued or in flight that name it */
	int inflight;
	double tokens, last, paused_until;
	struct slot *next;
};

struct entry {
	struct engine_call c;
	struct slot *team, *bucket[ENGINE_PACES];
	struct entry *next;                      /* submitted or waiting list */
	struct entry *prev_active, *next_active; /* in flight */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots[SLOTS_HASH];
static struct entry *submitted, **submitted_tail = &submitted;
static struct entry *waiting, **waiting_tail = &waiting; /* engine thread only */
static struct entry *active;                             /* engine thread only */
static int nqueued, ninflight;
static int stopping, running;
static double deadline_at;
static CURLM *multi;
static pthread_t thread;

/* Before conf is loaded (unit tests) the documented defaults apply. */
static int
limit(int configured, int dflt)
{
	return configured > 0 ? configured : dflt;
}

static unsigned
hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % SLOTS_HASH;
}

/* With lock held. */
static struct slot *
slot_get(const char *name)
{
	unsigned h;
	struct slot *s;

	if (name == NULL || *name == '\0')
		return NULL;
	h = hash(name);
	for (s = slots[h]; s; s = s->next)
		if (strncmp(s->name, name, NAME_MAX_LEN - 1) == 0)
			return s;
	s = xcalloc(1, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->tokens = -1; /* full on first use */
	s->next = slots[h];
	slots[h] = s;
	return s;
}

/* With lock held: refills b and says when it can give a call (now when
 * it can give one at once). */
static double
bucket_ready(struct slot *b, const struct engine_pace *p, double now)
{
	double burst = p->burst >= 1 ? p->burst : 1;

	if (p->rate <= 0) /* not paced: only a pause holds it */
		return b->paused_until > now ? b->paused_until : now;
	if (b->tokens < 0) {
		b->tokens = burst;
		b->last = now;
	}
	if (now > b->last) {
		b->tokens = fmin(burst, b->tokens + (now - b->last) * p->rate);
		b->last = now;
	}
	if (b->paused_until > now)
		return b->paused_until;
	return b->tokens >= 1 ? now : now + (1 - b->tokens) / p->rate;
}

/* With lock held: 1 when every bucket of e gives a call now (and takes
 * it); else lowers *wake to when they might. */
static int
buckets_take(struct entry *e, double now, double *wake)
{
	double when = now, t;

	for (int i = 0; i < ENGINE_PACES; i++)
		if (e->bucket[i] && (t = bucket_ready(e->bucket[i], &e->c.pace[i], now)) > when)
			when = t;
	if (when > now) {
		if (when < *wake)
			*wake = when;
		return 0;
	}
	for (int i = 0; i < ENGINE_PACES; i++)
		if (e->bucket[i] && e->c.pace[i].rate > 0)
			e->bucket[i]->tokens -= 1;
	return 1;
}

static void
entry_end(struct entry *e, CURLcode rc)
{
	pthread_mutex_lock(&lock);
	if (e->team)
		e->team->refs--;
	for (int i = 0; i < ENGINE_PACES; i++)
		if (e->bucket[i])
			e->bucket[i]->refs--;
	pthread_mutex_unlock(&lock);
	e->c.done(e->c.easy, rc, e->c.arg);
	free(e);
}

/* Drops unused idle slots: one slot per team, method and DM channel
 * would otherwise grow for the life of the process. O(slots). */
static void
prune_slots(double now)
{
	struct slot **pp, *sl;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < SLOTS_HASH; i++)
		for (pp = &slots[i]; (sl = *pp) != NULL;) {
			if (sl->refs == 0 && sl->paused_until < now && now - sl->last > SLOT_IDLE) {
				*pp = sl->next;
				free(sl);
			} else
				pp = &sl->next;
		}
	pthread_mutex_unlock(&lock);
}

/* Starts what the limits allow, in submission order; O(queued) a pass. */
static double
start_ready(double now)
{
	struct entry **pp = &waiting, *e;
	double wake = now + POLL_MAX_MS / 1000.0;

	pthread_mutex_lock(&lock);
	while ((e = *pp) != NULL && ninflight < limit(conf.outbound_max_inflight, 256)) {
		if (e->c.not_before > now) {
			if (e->c.not_before < wake)
				wake = e->c.not_before;
			pp = &e->next;
			continue;
		}
		if ((e->team && e->team->inflight >= limit(conf.outbound_team_inflight, 32)) ||
		    !buckets_take(e, now, &wake)) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		if (*pp == NULL)
			waiting_tail = pp;
		if (e->team)
			e->team->inflight++;
		ninflight++;
		nqueued--;
		metrics_outbound_inflight_add(1);
		metrics_outbound_queued_set(nqueued);
		e->prev_active = NULL;
		e->next_active = active;
		if (active)
			active->prev_active = e;
		active = e;
		curl_easy_setopt(e->c.easy, CURLOPT_PRIVATE, e);
		/* No CURLOPT_PIPEWAIT: over plain HTTP/1.1 it made every call wait
		 * for the first answer; an HTTP/2 connection once open is shared. */
		if (curl_multi_add_handle(multi, e->c.easy) != CURLM_OK)
			fatal("engine: curl_multi_add_handle failed");
	}
	pthread_mutex_unlock(&lock);
	return wake;
}

static void
finished(struct entry *e, CURLcode rc)
{
	curl_multi_remove_handle(multi, e->c.easy);
	if (e->prev_active)
		e->prev_active->next_active = e->next_active;
	else
		active = e->next_active;
	if (e->next_active)
		e->next_active->prev_active = e->prev_active;
	pthread_mutex_lock(&lock);
	if (e->team)
		e->team->inflight--;
	ninflight--;
	metrics_outbound_inflight_add(-1);
	pthread_mutex_unlock(&lock);
	entry_end(e, rc);
}

static void
collect(void)
{
	struct entry *e;
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&e);
		finished(e, m->data.result);
	}
}

/* Moves submissions to the waiting list; 1 when the engine should exit. */
static int
take_submitted(void)
{
	int done;

	pthread_mutex_lock(&lock);
	if (submitted) {
		*waiting_tail = submitted;
		waiting_tail = submitted_tail;
		submitted = NULL;
		submitted_tail = &submitted;
	}
	done = stopping && ninflight == 0 && waiting == NULL;
	pthread_mutex_unlock(&lock);
	return done;
}

/* Shutdown: queued calls end now, calls in flight at the deadline. */
static void
cut_off(double now)
{
	struct entry *e, *next;

	pthread_mutex_lock(&lock);
	e = waiting;
	waiting = NULL;
	waiting_tail = &waiting;
	nqueued = 0;
	metrics_outbound_queued_set(0);
	pthread_mutex_unlock(&lock);
	for (; e; e = next) {
		next = e->next;
		entry_end(e, ENGINE_STOPPED);
	}
	if (now < deadline_at)
		return;
	while (active)
		finished(active, ENGINE_STOPPED);
}

static void *
engine_main(void *arg)
{
	double now, wake, pruned = now_seconds();
	int still, ms, stop;

	(void)arg;
	pthread_setname_np(pthread_self(), "outbound");
	for (;;) {
		now = now_seconds();
		if (now - pruned > SLOT_IDLE) {
			prune_slots(now);
			pruned = now;
		}
		if (take_submitted())
			break;
		pthread_mutex_lock(&lock);
		stop = stopping;
		pthread_mutex_unlock(&lock);
		if (stop)
			cut_off(now);
		wake = start_ready(now);
		curl_multi_perform(multi, &still);
		collect();
		ms = (int)ceil((wake - now_seconds()) * 1000.0);
		if (stop)
			ms = 50;
		curl_multi_poll(multi, NULL, 0,
		                ms < 1             ? 1
		                : ms > POLL_MAX_MS ? POLL_MAX_MS
		                                   : ms,
		                NULL);
	}
	return NULL;
}

static int
ensure_started(void)
{
	if (running)
		return stopping ? -1 : 0;
	if (stopping)
		return -1;
	multi = curl_multi_init();
	if (multi == NULL)
		return -1;
	curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS,
	                  (long)limit(conf.outbound_max_inflight, 256));
	if (pthread_create(&thread, NULL, engine_main, NULL) != 0) {
		curl_multi_cleanup(multi);
		multi = NULL;
		return -1;
	}
	running = 1;
	return 0;
}

int
engine_start(void)
{
	int rc;

	pthread_mutex_lock(&lock);
	rc = ensure_started();
	pthread_mutex_unlock(&lock);
	return rc;
}

int
engine_submit(const struct engine_call *call)
{
	struct entry *e;
	int rc = -1;

	pthread_mutex_lock(&lock);
	if (ensure_started() == 0 && nqueued < ENGINE_QUEUE_MAX) {
		e = xcalloc(1, sizeof(*e));
		e->c = *call;
		if ((e->team = slot_get(call->team)) != NULL)
			e->team->refs++;
		for (int i = 0; i < ENGINE_PACES; i++) {
			if ((e->bucket[i] = slot_get(call->pace[i].key)) != NULL)
				e->bucket[i]->refs++;
			e->c.pace[i].key = NULL; /* not kept: the slots hold the names */
		}
		e->c.team = NULL;
		*submitted_tail = e;
		submitted_tail = &e->next;
		nqueued++;
		metrics_outbound_queued_set(nqueued);
		rc = 0;
		curl_multi_wakeup(multi);
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

struct waiter {
	pthread_mutex_t m;
	pthread_cond_t cond;
	int done;
	CURLcode rc;
};

static void
waiter_done(CURL *easy, CURLcode rc, void *arg)
{
	struct waiter *w = arg;

	(void)easy;
	pthread_mutex_lock(&w->m);
	w->rc = rc;
	w->done = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->m);
}

CURLcode
engine_perform(const struct engine_call *call)
{
	struct waiter w = {.m = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	struct engine_call c = *call;

	c.done = waiter_done;
	c.arg = &w;
	if (engine_submit(&c) < 0)
		return ENGINE_STOPPED;
	pthread_mutex_lock(&w.m);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.m);
	pthread_mutex_unlock(&w.m);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.m);
	return w.rc;
}

void
engine_pause(const char *pace_key, double seconds)
{
	struct slot *b;
	double until = now_seconds() + seconds;

	pthread_mutex_lock(&lock);
	if ((b = slot_get(pace_key)) != NULL && until > b->paused_until) {
		b->paused_until = until;
		b->tokens = 0;
		b->last = until;
	}
	pthread_mutex_unlock(&lock);
}

void
engine_counts(int *queued, int *inflight)
{
	pthread_mutex_lock(&lock);
	*queued = nqueued;
	*inflight = ninflight;
	pthread_mutex_unlock(&lock);
}

void
engine_stop(double deadline)
{
	int was_running;

	pthread_mutex_lock(&lock);
	stopping = 1;
	deadline_at = now_seconds() + deadline;
	was_running = running;
	pthread_mutex_unlock(&lock);
	if (!was_running)
		return;
	curl_multi_wakeup(multi);
	pthread_join(thread, NULL);
	pthread_mutex_lock(&lock);
	curl_multi_cleanup(multi);
	multi = NULL;
	running = 0;
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < SLOTS_HASH; i++)
		while (slots[i]) {
			struct slot *next = slots[i]->next;
			free(slots[i]);
			slots[i] = next;
		}
}
