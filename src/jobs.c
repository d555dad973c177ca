/* Background jobs: rows in the jobs table, claimed by runner threads with
 * FOR UPDATE SKIP LOCKED. Runners LISTEN on conch_jobs and otherwise sleep
 * until the next due time or lease expiry; nothing polls. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "crypto.h"
#include "db.h"
#include "engine.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define KINDS_MAX   64
#define RUNNERS_MAX 64
#define CLAIM_BATCH 4
/* Seconds: jobs due within it NOTIFY (migration 014); a runner sleeps at
 * most this long, so it sees later jobs coming before they are due. */
#define NOTIFY_HORIZON  10.0
#define IDLE_MAX_WAIT   NOTIFY_HORIZON
#define CLAIM_PAUSE_MIN 0.1    /* seconds after a failed claim, doubling ... */
#define CLAIM_PAUSE_MAX 5.0    /* ... up to this, with jitter */
#define ERROR_LOG_EVERY 60.0   /* seconds between log lines of one repeated error */
#define BACKOFF_BASE    2.0    /* seconds before the second attempt */
#define BACKOFF_CAP     3600.0 /* seconds */
#define DAILY_MAX       16
#define KEEP_FINISHED   "7 days" /* done and cancelled jobs; dead ones stay */
#define CLEANUP_BATCH   "10000"  /* rows a statement deletes: short locks */

/* A kind's limits are its row in job_kinds (migrations); here only its
 * handler. */
struct kind {
	const char *name;
	job_handler handler;
};

static struct kind kinds[KINDS_MAX];
static int nkinds;
static pthread_t runners[RUNNERS_MAX];
static int nrunners;
static atomic_int stopping;
static int wake_pipe[2] = {-1, -1};  /* stop: stays readable */
static int ready_pipe[2] = {-1, -1}; /* a suspended job was resumed: drained */
static const char *daily[DAILY_MAX];
static int ndaily;

void
jobs_register(const char *name, job_handler handler)
{
	if (nkinds == KINDS_MAX)
		fatal("jobs: too many kinds (raise KINDS_MAX)");
	kinds[nkinds].name = name;
	kinds[nkinds].handler = handler;
	nkinds++;
}

static const struct kind *
kind_find(const char *name)
{
	for (int i = 0; i < nkinds; i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

int64_t
job_enqueue(struct tx *tx, const char *kind, const char *team_id, json_t *payload, double due_at,
            const char *dedupe_key)
{
	json_t *obj = payload ? payload : json_object();
	char due[32];
	char *text = json_dumps(obj, JSON_COMPACT);
	const char *p[5] = {kind, team_id, text, due, dedupe_key};
	PGresult *r;
	int64_t id = -1;

	snprintf(due, sizeof(due), "%.6f", due_at);
	/* job_enqueue() (migrations/023_job_kinds.sql) gives the kind's attempts. */
	r = tx_query(tx,
	             "SELECT job_enqueue($1, $2, $3::jsonb, "
	             "CASE WHEN $4::float8 > 0 THEN to_timestamp($4::float8) END, $5)",
	             5, p);
	if (r != NULL) {
		id = db_int(r, 0, 0, 0); /* NULL: deduplicated */
		PQclear(r);
	}
	free(text);
	json_decref(obj);
	return id;
}

double
jobs_backoff(int attempts)
{
	double base = BACKOFF_BASE, jitter;
	unsigned char r;

	for (int i = 1; i < attempts && base < BACKOFF_CAP; i++)
		base *= 2;
	if (base > BACKOFF_CAP)
		base = BACKOFF_CAP;
	random_bytes(&r, 1);
	/* Up to +/-25% so retries of a burst do not arrive together. */
	jitter = base * 0.25 * ((double)r / 127.5 - 1.0);
	return base + jitter;
}

/* --- housekeeping ---------------------------------------------------- */

void
jobs_register_daily(const char *kind, job_handler handler)
{
	if (ndaily == DAILY_MAX)
		fatal("jobs: too many daily kinds (raise DAILY_MAX)");
	jobs_register(kind, handler);
	daily[ndaily++] = kind;
}

/* Enqueues kind for the next 03:00 UTC after `after` (unix seconds), once
 * per date whoever asks. */
static void
schedule_daily(const char *kind, double after)
{
	char when[32];
	const char *p[2] = {kind, when};
	struct tx tx;

	snprintf(when, sizeof(when), "%.0f", after);
	if (tx_begin_system(&tx) < 0)
		return;
	tx_exec(&tx,
	        "WITH t AS (SELECT date_trunc('day', to_timestamp($2::float8) AT TIME ZONE 'UTC' "
	        "- interval '3 hours') + interval '1 day 3 hours' AS local) "
	        "SELECT job_enqueue($1, NULL, '{}', local AT TIME ZONE 'UTC', "
	        "$1 || ':' || to_char(local, 'YYYY-MM-DD')) FROM t",
	        2, p);
	tx_commit(&tx);
}

/* Rows a batch removed: a DELETE's count, or the one value of a SELECT of
 * a function that deletes (a batch across teams, in a definer function). */
static int
batch_count(PGresult *r)
{
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQnfields(r) == 1 && PQntuples(r) == 1)
		return (int)strtol(db_str(r, 0, 0), NULL, 10);
	return (int)strtol(PQcmdTuples(r), NULL, 10);
}

enum job_result
jobs_delete_batches(struct job *job, const char *delete_sql)
{
	struct tx tx;
	PGresult *r;
	int n;

	do {
		if (tx_begin_system(&tx) < 0) {
			snprintf(job->error, sizeof(job->error), "database unavailable");
			return JOB_RETRY;
		}
		r = tx_query(&tx, delete_sql, 0, NULL);
		n = r ? batch_count(r) : 0;
		if (r)
			PQclear(r);
		if (tx_commit(&tx) < 0) {
			snprintf(job->error, sizeof(job->error), "cleanup failed");
			return JOB_RETRY;
		}
	} while (n > 0);
	return JOB_DONE;
}

/* Finished jobs go after a week, through the (state, kind) index. */
static enum job_result
cleanup_job(struct job *job)
{
	return jobs_delete_batches(job, "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE "
	                                "state IN ('done', 'cancelled') AND finished_at < now() - "
	                                "interval '" KEEP_FINISHED "' LIMIT " CLEANUP_BATCH ")");
}

/* Every daily job schedules the next day's run before it runs. */
static void
schedule_next_daily(const char *kind, double due_at)
{
	for (int i = 0; i < ndaily; i++)
		if (strcmp(daily[i], kind) == 0)
			schedule_daily(kind, due_at + 60);
}

/* --- the runner ------------------------------------------------------ */

struct claimed {
	int64_t id;
	char *kind;
	char *team_id;
	char *payload;
	int attempts;
	int max_attempts;
	double due_at;
	double lateness;
};

/* Jobs whose runner died are due again; the attempt they used counts. */
static void
reclaim_expired(void)
{
	struct tx tx;

	if (tx_begin_system(&tx) < 0)
		return;
	tx_exec(
	    &tx,
	    "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' "
	    "END, "
	    "last_error = 'lease expired: the runner stopped', lease_until = NULL, due_at = now(), "
	    "finished_at = CASE WHEN attempts >= max_attempts THEN now() END "
	    "WHERE state = 'running' AND lease_until < now()",
	    0, NULL);
	tx_commit(&tx);
}

static int
claim(struct claimed *out, int max)
{
	char lease[16], limit[16];
	const char *p[2] = {lease, limit};
	struct tx tx;
	PGresult *r;
	int n;

	snprintf(lease, sizeof(lease), "%d", conf.job_lease_seconds);
	snprintf(limit, sizeof(limit), "%d", max);
	if (tx_begin_system(&tx) < 0)
		return -1;
	/* MATERIALIZED, evaluated once: as a subquery in FROM, concurrent
	 * claims made one UPDATE take up to 188 rows for a LIMIT of 4. */
	r = tx_query(
	    &tx,
	    "WITH c AS MATERIALIZED (SELECT id FROM jobs "
	    "      WHERE state = 'queued' AND due_at <= now() "
	    "      ORDER BY due_at LIMIT $2::int FOR UPDATE SKIP LOCKED) "
	    "UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, "
	    "lease_until = now() + make_interval(secs => $1::int), started_at = now() "
	    "FROM c WHERE j.id = c.id "
	    "RETURNING j.id, j.kind, j.team_id, j.payload::text, j.attempts, j.max_attempts, "
	    "extract(epoch FROM j.due_at), extract(epoch FROM now() - j.due_at)",
	    2, p);
	if (r == NULL || tx_commit(&tx) < 0) {
		if (r)
			PQclear(r);
		tx_rollback(&tx);
		return -1;
	}
	n = PQntuples(r);
	if (n > max) {
		/* out has room for max: the rest wait for their leases to expire. */
		log_error("jobs: claimed %d jobs, more than the %d asked for", n, max);
		n = max;
	}
	for (int i = 0; i < n; i++) {
		out[i].id = db_int(r, i, 0, 0);
		out[i].kind = db_strdup(r, i, 1);
		out[i].team_id = db_strdup(r, i, 2);
		out[i].payload = db_strdup(r, i, 3);
		out[i].attempts = (int)db_int(r, i, 4, 0);
		out[i].max_attempts = (int)db_int(r, i, 5, 1);
		out[i].due_at = db_double(r, i, 6, 0);
		out[i].lateness = db_double(r, i, 7, 0);
	}
	PQclear(r);
	return n;
}

/* Parameters: $1 id, $2 attempts, $3 when (retries), $4 error. */
static const struct {
	const char *sql;
	int nparams;
} finish_sql[] = {
    [JOB_DONE] = {"UPDATE jobs SET state = 'done', finished_at = now(), lease_until = NULL, "
                  "last_error = NULL WHERE id = $1 AND attempts = $2::int AND state = 'running'",
                  2},
    [JOB_RETRY] = {"UPDATE jobs SET "
                   "state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, "
                   "finished_at = CASE WHEN attempts >= max_attempts THEN now() END, "
                   "due_at = now() + make_interval(secs => $3::float8), last_error = $4, "
                   "lease_until = NULL WHERE id = $1 AND attempts = $2::int AND state = 'running'",
                   4},
    [JOB_RETRY_AT] = {"UPDATE jobs SET state = 'queued', attempts = attempts - 1, "
                      "due_at = to_timestamp($3::float8), last_error = $4, lease_until = NULL "
                      "WHERE id = $1 AND attempts = $2::int AND state = 'running'",
                      4},
    [JOB_DEAD] = {"UPDATE jobs SET state = 'dead', finished_at = now(), last_error = $4, "
                  "lease_until = NULL WHERE id = $1 AND attempts = $2::int AND state = 'running' "
                  "AND $3::text IS NOT NULL",
                  4},
};

static const char *const result_label[] = {[JOB_DONE] = "done",
                                           [JOB_RETRY] = "retry",
                                           [JOB_RETRY_AT] = "rescheduled",
                                           [JOB_DEAD] = "dead"};

/* Records the outcome; the attempts guard ignores a runner whose lease
 * expired and whose job another runner took meanwhile. */
static void
finish(const struct claimed *c, enum job_result res, const struct job *job)
{
	char id[24], attempts[16], when[32];
	const char *p[4] = {id, attempts, when, job->error};
	struct tx tx;

	snprintf(id, sizeof(id), "%lld", (long long)c->id);
	snprintf(attempts, sizeof(attempts), "%d", c->attempts);
	if (res == JOB_RETRY)
		snprintf(when, sizeof(when), "%.3f", jobs_backoff(c->attempts));
	else
		snprintf(when, sizeof(when), "%.6f", job->retry_at);
	if (res == JOB_RETRY && c->attempts >= c->max_attempts)
		log_warn("job %lld (%s) is dead after %d attempts: %s", (long long)c->id, c->kind,
		         c->attempts, job->error);
	if (tx_begin_system(&tx) == 0) {
		tx_exec(&tx, finish_sql[res].sql, finish_sql[res].nparams, p);
		tx_commit(&tx);
	}
	if (tx.failed)
		log_error("job %lld: could not record its result; its lease will expire",
		          (long long)c->id);
}

/* --- asynchronous completion ------------------------------------------ */

/* A claimed job from its handler to its result; while it waits for an
 * outbound call it is on the pending list (its lease renewed) and, once
 * answered, on the ready list for any runner to continue. */
struct job_ticket {
	struct claimed c;
	struct job job;
	job_continue cont;
	void *arg;
	int suspended; /* job_suspend() ran in the current step */
	int waiting;   /* the step returned JOB_PENDING: the answer is awaited */
	int resumed;   /* the answer came before the step returned */
	int listed;
	struct job_ticket *prev, *next, *next_ready;
};

static pthread_mutex_t async_lock = PTHREAD_MUTEX_INITIALIZER;
static struct job_ticket *pending, *ready, **ready_tail = &ready;
static int npending;
static atomic_int renewing;
static double renewed_at;

static struct job_ticket *
ticket_of(struct job *job)
{
	return (struct job_ticket *)((char *)job - offsetof(struct job_ticket, job));
}

struct job_ticket *
job_suspend(struct job *job, job_continue cont, void *arg)
{
	struct job_ticket *t = ticket_of(job);

	pthread_mutex_lock(&async_lock);
	t->cont = cont;
	t->arg = arg;
	t->suspended = 1;
	t->resumed = 0;
	if (!t->listed) {
		t->listed = 1;
		t->prev = NULL;
		t->next = pending;
		if (pending)
			pending->prev = t;
		pending = t;
		npending++;
	}
	pthread_mutex_unlock(&async_lock);
	return t;
}

/* With async_lock held. */
static void
make_ready(struct job_ticket *t)
{
	t->waiting = t->suspended = 0;
	t->next_ready = NULL;
	*ready_tail = t;
	ready_tail = &t->next_ready;
	if (write(ready_pipe[1], "r", 1) < 0 && errno != EAGAIN)
		log_warn("jobs: cannot wake runners: %s", strerror(errno));
}

void
job_resume(struct job_ticket *t)
{
	pthread_mutex_lock(&async_lock);
	if (t->waiting)
		make_ready(t);
	else
		t->resumed = 1;
	pthread_mutex_unlock(&async_lock);
}

static struct job_ticket *
ready_pop(void)
{
	struct job_ticket *t;

	pthread_mutex_lock(&async_lock);
	if ((t = ready) != NULL && (ready = t->next_ready) == NULL)
		ready_tail = &ready;
	pthread_mutex_unlock(&async_lock);
	return t;
}

static int
pending_count(void)
{
	int n;

	pthread_mutex_lock(&async_lock);
	n = npending;
	pthread_mutex_unlock(&async_lock);
	return n;
}

static void
unlist(struct job_ticket *t)
{
	pthread_mutex_lock(&async_lock);
	if (t->listed) {
		if (t->prev)
			t->prev->next = t->next;
		else
			pending = t->next;
		if (t->next)
			t->next->prev = t->prev;
		npending--;
		t->listed = 0;
	}
	pthread_mutex_unlock(&async_lock);
}

/* Records a final result and frees the ticket. */
static void
settle(struct job_ticket *t, enum job_result res)
{
	struct claimed *c = &t->c;

	if (res == JOB_RETRY_AT && t->job.retry_at <= 0)
		t->job.retry_at = now_seconds() + 1;
	if (res != JOB_DONE && t->job.error[0] == '\0')
		snprintf(t->job.error, sizeof(t->job.error), "%s failed", c->kind);
	finish(c, res, &t->job);
	metrics_job(c->kind, result_label[res], c->lateness);
	if (res != JOB_DONE)
		log_info("job %lld (%s) attempt %d: %s: %s", (long long)c->id, c->kind, c->attempts,
		         result_label[res], t->job.error);
	unlist(t);
	json_decref(t->job.payload);
	free(c->kind);
	free(c->team_id);
	free(c->payload);
	free(t);
}

/* After a handler or continuation step returned res. */
static void
step_done(struct job_ticket *t, enum job_result res)
{
	if (res != JOB_PENDING && t->suspended) {
		/* A handler bug: it started a call (job_suspend) and then gave a
		 * final result. The call will resume this ticket, so it cannot be
		 * freed now: wait for the answer and let its step decide. */
		log_error("jobs: job %lld (%s) returned %s with a call in flight; waiting for the "
		          "call's answer instead",
		          (long long)t->c.id, t->c.kind, result_label[res]);
		res = JOB_PENDING;
	}
	if (res == JOB_PENDING) {
		pthread_mutex_lock(&async_lock);
		if (!t->suspended)
			res = JOB_RETRY; /* a handler bug: it never suspended */
		else if (t->resumed) {
			t->resumed = 0;
			make_ready(t);
		} else
			t->waiting = 1;
		pthread_mutex_unlock(&async_lock);
		if (res == JOB_PENDING)
			return;
		snprintf(t->job.error, sizeof(t->job.error), "%s: pending without job_suspend",
		         t->c.kind);
	}
	settle(t, res);
}

/* Continues every answered job; returns how many. */
static int
run_ready(void)
{
	struct job_ticket *t;
	char drain[64];
	int n = 0;

	while (read(ready_pipe[0], drain, sizeof(drain)) > 0)
		;
	while ((t = ready_pop()) != NULL) {
		log_set_team(t->c.team_id);
		step_done(t, t->cont(&t->job, t->arg));
		log_set_team(NULL);
		n++;
	}
	return n;
}

/* Suspended jobs keep their leases: one runner at a time renews them all,
 * every third of a lease (one UPDATE of up to PENDING_MAX rows). */
static void
renew_leases(void)
{
	struct buf ids;
	char lease[16];
	const char *p[2] = {NULL, lease};
	struct tx tx;
	int expected = 0;

	if (now_seconds() - renewed_at < conf.job_lease_seconds / 3.0 ||
	    !atomic_compare_exchange_strong(&renewing, &expected, 1))
		return;
	buf_init(&ids);
	buf_putc(&ids, '{');
	pthread_mutex_lock(&async_lock);
	for (struct job_ticket *t = pending; t; t = t->next)
		buf_printf(&ids, "%s%lld", t == pending ? "" : ",", (long long)t->c.id);
	pthread_mutex_unlock(&async_lock);
	buf_putc(&ids, '}');
	p[0] = ids.data;
	snprintf(lease, sizeof(lease), "%d", conf.job_lease_seconds);
	if (ids.len > 2 && tx_begin_system(&tx) == 0) {
		/* SKIP LOCKED: a row another transaction holds (a command cancelling
		 * the job) is renewed next time; waiting on it could deadlock. */
		tx_exec(&tx,
		        "UPDATE jobs j SET lease_until = now() + make_interval(secs => $2::int) "
		        "FROM (SELECT id FROM jobs WHERE id = ANY($1::bigint[]) AND state = "
		        "'running' ORDER BY id FOR UPDATE SKIP LOCKED) c WHERE j.id = c.id",
		        2, p);
		tx_commit(&tx);
	}
	renewed_at = now_seconds();
	buf_free(&ids);
	atomic_store(&renewing, 0);
}

static void
run_one(struct claimed *c)
{
	struct job_ticket *t = xcalloc(1, sizeof(*t));
	const struct kind *k = kind_find(c->kind);
	struct job *job = &t->job;
	json_error_t jerr;
	enum job_result res;

	t->c = *c; /* takes its strings */
	job->id = c->id;
	job->kind = t->c.kind;
	job->team_id = t->c.team_id;
	job->attempts = c->attempts;
	job->max_attempts = c->max_attempts;
	job->due_at = c->due_at;
	job->payload = json_loads(c->payload, 0, &jerr);
	log_set_team(c->team_id);
	schedule_next_daily(c->kind, c->due_at);
	if (k == NULL) {
		snprintf(job->error, sizeof(job->error), "no handler for kind %s", c->kind);
		res = JOB_RETRY; /* perhaps a newer instance knows it */
	} else if (job->payload == NULL) {
		snprintf(job->error, sizeof(job->error), "payload is not JSON");
		res = JOB_DEAD;
	} else {
		res = k->handler(job);
	}
	step_done(t, res);
	log_set_team(NULL);
}

/* Seconds until the next job is due or a lease expires, at most IDLE_MAX_WAIT. */
static double
next_wake(void)
{
	struct tx tx;
	PGresult *r;
	double wait = IDLE_MAX_WAIT;

	if (tx_begin_system(&tx) < 0)
		return 1.0;
	r = tx_query(&tx,
	             "SELECT extract(epoch FROM least("
	             "(SELECT min(due_at) FROM jobs WHERE state = 'queued'), "
	             "(SELECT min(lease_until) FROM jobs WHERE state = 'running')) - now())",
	             0, NULL);
	wait = db_double(r, 0, 0, wait);
	if (r)
		PQclear(r);
	tx_commit(&tx);
	if (wait < 0)
		wait = 0;
	return wait > IDLE_MAX_WAIT ? IDLE_MAX_WAIT : wait;
}

/* Drains notifications already read by libpq; returns how many. */
static int
drain_notifies(PGconn *pg)
{
	PGnotify *n;
	int count = 0;

	PQconsumeInput(pg);
	while ((n = PQnotifies(pg)) != NULL) {
		PQfreemem(n);
		count++;
	}
	return count;
}

static void
sleep_until_woken(PGconn *pg, double seconds)
{
	struct pollfd fds[3] = {{.fd = wake_pipe[0], .events = POLLIN},
	                        {.fd = ready_pipe[0], .events = POLLIN},
	                        {.fd = -1, .events = POLLIN}};
	int ms = (int)(seconds * 1000.0 + 0.999);

	if (atomic_load(&stopping))
		fds[0].fd = -1; /* readable for good now: wait for answers only */
	if (pg)
		fds[2].fd = PQsocket(pg);
	if (poll(fds, 3, ms) < 0 && errno != EINTR)
		log_warn("jobs: poll: %s", strerror(errno));
}

/* Jobs waiting for outbound calls, at most: beyond it runners claim no
 * more until answers come (the engine's queue is bounded too). */
static int
pending_max(void)
{
	int n = conf.outbound_max_inflight * 4;

	return n < ENGINE_QUEUE_MAX / 2 ? n : ENGINE_QUEUE_MAX / 2;
}

/* A failed claim (the database is down, a statement fails) waits, with
 * jitter so the runners of many instances do not retry together, and is
 * logged once a minute with how often it happened. */
static void
claim_failed(int *failures)
{
	static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	static double logged_at;
	static int unlogged;
	double pause = CLAIM_PAUSE_MIN;
	unsigned char r;

	pthread_mutex_lock(&m);
	unlogged++;
	if (now_seconds() - logged_at >= ERROR_LOG_EVERY) {
		log_error("jobs: claiming jobs failed %d time(s) since the last report", unlogged);
		logged_at = now_seconds();
		unlogged = 0;
	}
	pthread_mutex_unlock(&m);
	for (int i = 0; i < *failures && pause < CLAIM_PAUSE_MAX; i++)
		pause *= 2;
	if (pause > CLAIM_PAUSE_MAX)
		pause = CLAIM_PAUSE_MAX;
	(*failures)++;
	random_bytes(&r, 1);
	sleep_until_woken(NULL, pause * (0.5 + r / 255.0));
}

/* Claims and runs a batch when there is room; its count, or -1. */
static int
claim_and_run(void)
{
	struct claimed batch[CLAIM_BATCH];
	int n;

	if (pending_count() >= pending_max())
		return 0;
	n = claim(batch, CLAIM_BATCH);
	for (int i = 0; i < n; i++)
		run_one(&batch[i]);
	return n;
}

static void *
runner_main(void *arg)
{
	PGconn *listening = NULL, *pg;
	int listening_pid = 0;
	double last_reclaim = 0, wait;
	int n, failures = 0;

	(void)arg;
	pthread_setname_np(pthread_self(), "job-runner");
	while (!atomic_load(&stopping) || pending_count() > 0) {
		run_ready();
		if (atomic_load(&stopping)) {
			sleep_until_woken(NULL, 0.1);
			continue;
		}
		/* LISTEN needs a session of its own: database_direct_url, which is
		 * the pooled connection itself unless PgBouncer sits in between. */
		pg = db_thread_direct_conn();
		if (pg == NULL || db_thread_conn() == NULL) {
			sleep_until_woken(NULL, 1.0);
			continue;
		}
		/* A reconnection may reuse the freed PGconn's address; the backend
		 * pid tells a new session from the one that listened. */
		if (pg != listening || PQbackendPID(pg) != listening_pid) {
			PQclear(PQexec(pg, "LISTEN conch_jobs"));
			listening = pg;
			listening_pid = PQbackendPID(pg);
		}
		if (now_seconds() - last_reclaim >= 1.0) {
			reclaim_expired();
			last_reclaim = now_seconds();
		}
		renew_leases();
		n = claim_and_run();
		if (n < 0) {
			claim_failed(&failures);
			continue;
		}
		failures = 0;
		if (n > 0)
			continue; /* more may be due */
		wait = pending_count() >= pending_max() ? IDLE_MAX_WAIT : next_wake();
		if (pending_count() > 0 && wait > conf.job_lease_seconds / 3.0)
			wait = conf.job_lease_seconds / 3.0;
		/* Notifications read during those queries would not wake poll(). */
		if (drain_notifies(pg) == 0 && wait > 0)
			sleep_until_woken(pg, wait);
		drain_notifies(pg);
	}
	run_ready();
	db_thread_close();
	return NULL;
}

/* 0 when every kind registered here has its row in job_kinds; else -1,
 * having logged each missing kind by name. */
static int
kinds_check(void)
{
	struct buf list;
	struct tx tx;
	PGresult *r;
	const char *p[1];
	int missing = -1;

	buf_init(&list);
	buf_puts(&list, "{");
	for (int i = 0; i < nkinds; i++)
		buf_printf(&list, "%s\"%s\"", i ? "," : "", kinds[i].name);
	buf_puts(&list, "}");
	p[0] = list.data;
	if (tx_begin_system(&tx) == 0 &&
	    (r = tx_query(&tx,
	                  "SELECT k FROM unnest($1::text[]) k WHERE NOT EXISTS "
	                  "(SELECT 1 FROM job_kinds j WHERE j.kind = k) ORDER BY k",
	                  1, p)) != NULL) {
		missing = PQntuples(r);
		for (int i = 0; i < missing; i++)
			log_error(
			    "jobs: this server handles job kind \"%s\", which has no row in "
			    "job_kinds: a migration must add it (INSERT INTO job_kinds (kind, "
			    "max_attempts) VALUES ('%s', N) ON CONFLICT DO NOTHING)",
			    db_str(r, i, 0), db_str(r, i, 0));
		PQclear(r);
	} else {
		log_error("jobs: cannot read job_kinds (see the log above)");
	}
	tx_rollback(&tx);
	buf_free(&list);
	return missing == 0 ? 0 : -1;
}

int
jobs_start(int n)
{
	if (kind_find("jobs.cleanup") == NULL)
		jobs_register_daily("jobs.cleanup", cleanup_job);
	if (kinds_check() < 0)
		return -1;
	for (int i = 0; i < ndaily; i++)
		schedule_daily(daily[i], now_seconds());
	if (n > RUNNERS_MAX)
		n = RUNNERS_MAX;
	if (pipe(wake_pipe) < 0 || pipe2(ready_pipe, O_NONBLOCK) < 0)
		return -1;
	atomic_store(&stopping, 0);
	for (nrunners = 0; nrunners < n; nrunners++)
		if (pthread_create(&runners[nrunners], NULL, runner_main, NULL) != 0)
			return -1;
	log_info("jobs: %d runners started", n);
	return 0;
}

void
jobs_stop(void)
{
	atomic_store(&stopping, 1);
	if (wake_pipe[1] >= 0 && write(wake_pipe[1], "x", 1) < 0)
		log_warn("jobs: cannot wake runners: %s", strerror(errno));
	/* Calls in flight get outbound_stop_seconds; the rest stay queued jobs. */
	engine_stop(conf.outbound_stop_seconds);
	for (int i = 0; i < nrunners; i++)
		pthread_join(runners[i], NULL);
	nrunners = 0;
	for (int i = 0; i < 2; i++) {
		close(wake_pipe[i]);
		close(ready_pipe[i]);
		wake_pipe[i] = ready_pipe[i] = -1;
	}
}

/* --- operator actions ------------------------------------------------ */

/* Runs an UPDATE of one job by id; 0 when exactly that job changed. */
static int
update_job(struct tx *tx, const char *sql, int64_t id)
{
	char ids[24];
	const char *p[1] = {ids};
	PGresult *r;
	int n;

	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	r = tx_query(tx, sql, 1, p);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	PQclear(r);
	return n == 1 ? 0 : -1;
}

int
jobs_retry(struct tx *tx, int64_t id)
{
	return update_job(tx,
	                  "UPDATE jobs SET state = 'queued', due_at = now(), lease_until = NULL, "
	                  "max_attempts = greatest(max_attempts, attempts + 1), finished_at = NULL "
	                  "WHERE id = $1 AND state IN ('dead', 'cancelled', 'queued') RETURNING id",
	                  id);
}

int
jobs_cancel(struct tx *tx, int64_t id)
{
	return update_job(tx,
	                  "UPDATE jobs SET state = 'cancelled', finished_at = now(), lease_until = "
	                  "NULL WHERE id = $1 AND state = 'queued' RETURNING id",
	                  id);
}
