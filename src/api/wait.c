/* POST /api/v1/things/NAME/dibs?wait=S: a queued caller waits up to S
 * seconds for its turn without holding a worker or a transaction.
 *
 * The request is queued in one transaction (api.c), then suspended
 * (http_suspend). One thread per instance LISTENs on conch_dibs_turn, the
 * NOTIFY that migrations/016 sends whenever a hold starts ("TEAM THING
 * USER"), and resumes the matching waiter; it also resumes waiters at
 * their deadline, all of them every RECHECK_SECONDS (a NOTIFY lost while
 * its connection was down), and all of them at once when the instance
 * drains. A resumed waiter reads its place in one transaction and either
 * answers or suspends again.
 *
 * A waiter is on the list from the moment it is made until it answers, so
 * a NOTIFY that comes while its read runs is not lost: it marks the waiter
 * `again` and the read is repeated. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "conf.h"
#include "db.h"
#include "log.h"
#include "util.h"

#define RECHECK_SECONDS 5.0
#define TICK_MS         200

enum waiter_state { W_RUNNING, W_PARKED };

struct waiter {
	struct request *req;
	char team[32], user[32], thing[72];
	double deadline; /* now_seconds() */
	enum waiter_state state;
	int again; /* a wake came while it ran */
	api_wait_reply reply;
	struct waiter *prev, *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct waiter *waiters;
static int nwaiters;
static pthread_once_t started = PTHREAD_ONCE_INIT;

/* Under lock. */
static void
wake_locked(struct waiter *w)
{
	if (w->state == W_PARKED) {
		w->state = W_RUNNING;
		http_resume(w->req);
	} else {
		w->again = 1;
	}
}

static void
unlink_locked(struct waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	nwaiters--;
}

/* "TEAM THING USER" from the hold trigger. */
static void
on_notify(const char *payload)
{
	char team[32], thing[72], user[32];

	if (sscanf(payload, "%31s %71s %31s", team, thing, user) != 3)
		return;
	pthread_mutex_lock(&lock);
	for (struct waiter *w = waiters; w; w = w->next)
		if (strcmp(w->team, team) == 0 && strcmp(w->thing, thing) == 0 &&
		    strcmp(w->user, user) == 0)
			wake_locked(w);
	pthread_mutex_unlock(&lock);
}

/* Wakes those past their deadline, or all (recheck, draining). */
static void
wake_due(int all)
{
	double now = now_seconds();

	pthread_mutex_lock(&lock);
	for (struct waiter *w = waiters; w; w = w->next)
		if (all || now >= w->deadline)
			wake_locked(w);
	pthread_mutex_unlock(&lock);
}

static void *
listener_main(void *arg)
{
	PGconn *listening = NULL, *pg;
	int listening_pid = 0;
	double last_recheck = now_seconds();
	PGnotify *n;
	struct pollfd fd;

	(void)arg;
	pthread_setname_np(pthread_self(), "api-wait");
	for (;;) {
		pg = db_thread_direct_conn(); /* LISTEN needs a direct session */
		if (pg && (pg != listening || PQbackendPID(pg) != listening_pid)) {
			PQclear(PQexec(pg, "LISTEN conch_dibs_turn"));
			listening = pg;
			listening_pid = PQbackendPID(pg);
			wake_due(1); /* a turn may have come while nobody listened */
		}
		fd = (struct pollfd){.fd = pg ? PQsocket(pg) : -1, .events = POLLIN};
		if (poll(&fd, 1, TICK_MS) < 0 && errno != EINTR)
			log_warn("api wait: poll: %s", strerror(errno));
		if (pg) {
			PQconsumeInput(pg);
			while ((n = PQnotifies(pg)) != NULL) {
				on_notify(n->extra);
				PQfreemem(n);
			}
		}
		if (http_draining() || pg == NULL ||
		    now_seconds() - last_recheck >= RECHECK_SECONDS) {
			wake_due(1);
			last_recheck = now_seconds();
		} else {
			wake_due(0);
		}
	}
	return NULL;
}

static void
start_listener(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, listener_main, NULL) != 0)
		fatal("api wait: cannot start the listener thread");
	pthread_detach(t);
}

/* The caller's place, in one transaction: 0 with *holding, *position
 * (1 = next, 0 = not in line) and *release_at (0: untimed), or -1. */
static int
read_place(const struct waiter *w, int *holding, int *position, double *release_at)
{
	const char *p[3] = {w->team, w->thing, w->user};
	struct tx tx;
	PGresult *r;

	*holding = *position = 0;
	*release_at = 0;
	if (tx_begin(&tx, w->team) < 0)
		return -1;
	r = tx_query(
	    &tx,
	    "SELECT (SELECT extract(epoch FROM coalesce(h.release_at, 'epoch')) FROM holds h "
	    "WHERE h.team_id = $1 AND h.thing = $2 AND h.user_id = $3), "
	    "(SELECT count(*) FROM queue q JOIN queue me ON me.team_id = q.team_id AND "
	    "me.thing = q.thing AND me.user_id = $3 WHERE q.team_id = $1 AND q.thing = $2 "
	    "AND q.position <= me.position)",
	    3, p);
	if (r == NULL || tx_commit(&tx) < 0) {
		if (r)
			PQclear(r);
		tx_rollback(&tx);
		return -1;
	}
	*holding = !db_null(r, 0, 0);
	*release_at = *holding ? strtod(db_str(r, 0, 0), NULL) : 0;
	*position = (int)strtol(db_str(r, 0, 1), NULL, 10);
	PQclear(r);
	return 0;
}

/* Reads the caller's place and answers, or suspends again. */
static void
resume_waiter(struct request *req, struct response *res)
{
	struct waiter *w = req->ctx;
	int holding, position, rc, waiting;
	double release_at;

	for (;;) {
		rc = read_place(w, &holding, &position, &release_at);
		pthread_mutex_lock(&lock);
		waiting = rc == 0 && !holding && position > 0 && now_seconds() < w->deadline &&
		          !http_draining();
		if (waiting && w->again) {
			w->again = 0; /* its turn may have come during the read: read again */
			pthread_mutex_unlock(&lock);
			continue;
		}
		if (waiting) {
			w->state = W_PARKED;
			http_suspend(req, resume_waiter);
			pthread_mutex_unlock(&lock);
			return;
		}
		unlink_locked(w);
		pthread_mutex_unlock(&lock);
		break;
	}
	req->ctx = NULL;
	w->reply(res, rc, holding, position, release_at);
	free(w);
}

int
api_wait_begin(struct request *req, struct response *res, const char *team, const char *user,
               const char *thing, int seconds, api_wait_reply reply)
{
	struct waiter *w;

	if (seconds <= 0 || http_draining())
		return -1;
	pthread_once(&started, start_listener);
	pthread_mutex_lock(&lock);
	if (nwaiters >= conf.api_wait_max) {
		pthread_mutex_unlock(&lock);
		log_info("api wait: %d requests wait already (api_wait_max); answering at once",
		         nwaiters);
		return -1;
	}
	w = xcalloc(1, sizeof(*w));
	w->req = req;
	snprintf(w->team, sizeof(w->team), "%s", team);
	snprintf(w->user, sizeof(w->user), "%s", user);
	for (size_t i = 0; thing[i] && i + 1 < sizeof(w->thing); i++)
		w->thing[i] = (char)(thing[i] >= 'A' && thing[i] <= 'Z' ? thing[i] + 32 : thing[i]);
	w->deadline = now_seconds() + seconds;
	w->state = W_RUNNING; /* on the list before its first read: no NOTIFY is missed */
	w->reply = reply;
	w->next = waiters;
	if (waiters)
		waiters->prev = w;
	waiters = w;
	nwaiters++;
	pthread_mutex_unlock(&lock);
	req->ctx = w;
	resume_waiter(req, res);
	return 0;
}
