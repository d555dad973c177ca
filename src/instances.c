/* Live instances (see instances.h): a heartbeat thread and the count it
 * last read. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "instances.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define ID_MAX 128

static char id[ID_MAX];
static atomic_int live = 1;
static pthread_t thread;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int stopping, started;

int
instances_live(void)
{
	int n = atomic_load(&live);

	return n > 0 ? n : 1;
}

static void
beat(void)
{
	static const char stale[] = INSTANCES_STALE_TEXT;
	const char *p[2] = {id, stale};
	struct tx tx;
	PGresult *r;
	int n, was;

	if (tx_begin_system(&tx) < 0)
		return;
	r = tx_query(&tx, "SELECT outbound_heartbeat($1, $2::interval)", 2, p);
	n = r && PQntuples(r) == 1 ? atoi(db_str(r, 0, 0)) : 0;
	PQclear(r);
	if (tx_commit(&tx) < 0 || n < 1)
		return; /* the last count stands */
	was = atomic_exchange(&live, n);
	metrics_instances_set(n);
	if (was != n)
		log_info("instances: %d live; Slack's limits are split %d ways", n, n);
}

static void *
instances_main(void *arg)
{
	struct timespec until;

	(void)arg;
	pthread_setname_np(pthread_self(), "instances");
	pthread_mutex_lock(&lock);
	while (!stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += INSTANCES_BEAT;
		pthread_cond_timedwait(&cond, &lock, &until);
		if (stopping)
			break;
		pthread_mutex_unlock(&lock);
		beat();
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
	db_thread_close();
	return NULL;
}

int
instances_start(void)
{
	char host[64] = "";

	gethostname(host, sizeof(host) - 1);
	snprintf(id, sizeof(id), "%.63s:%ld:%08x", host, (long)getpid(),
	         (unsigned)(now_seconds() * 1e6));
	beat();
	if (pthread_create(&thread, NULL, instances_main, NULL) != 0)
		return -1;
	started = 1;
	return 0;
}

void
instances_stop(void)
{
	const char *p[1] = {id};
	struct tx tx;

	if (!started)
		return;
	pthread_mutex_lock(&lock);
	stopping = 1;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	started = 0;
	if (tx_begin_system(&tx) == 0 &&
	    tx_exec(&tx, "DELETE FROM outbound_instances WHERE id = $1", 1, p) == 0)
		tx_commit(&tx);
	else
		tx_rollback(&tx);
}
