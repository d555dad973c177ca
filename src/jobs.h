/* Background jobs stored in PostgreSQL: one mechanism for everything slow
 * or scheduled. A job has a kind, a team, a JSON payload, a due time,
 * attempts, a lease, a last error and an optional dedupe key. */
#ifndef CONCH_JOBS_H
#define CONCH_JOBS_H

#include <stdint.h>
#include <jansson.h>

struct tx;

enum job_result {
	JOB_DONE,     /* finished: never run again */
	JOB_RETRY,    /* failed: try again after backoff, or dead after the last attempt */
	JOB_RETRY_AT, /* not now (rate limit): run again at job->retry_at, attempt not counted */
	JOB_DEAD,     /* failed for good: keep for inspection */
	JOB_PENDING,  /* waiting for an outbound call: see job_suspend() */
};

struct job {
	int64_t id;
	const char *kind;
	const char *team_id; /* NULL for system jobs */
	json_t *payload;     /* borrowed */
	int attempts;        /* including this one */
	int max_attempts;
	double due_at; /* unix seconds it was due */
	/* Set by the handler. */
	char error[256];
	double retry_at;
};

typedef enum job_result (*job_handler)(struct job *job);

/* Asynchronous completion. A handler whose work is an outbound call calls
 * job_suspend() (its database work is done and committed), starts the
 * call, and returns JOB_PENDING; the runner thread moves on. Whoever gets
 * the answer (the engine thread) calls job_resume(ticket); a runner then
 * calls cont(job, arg), which returns the job's result (in its own short
 * transaction if it needs one) or JOB_PENDING again after another
 * job_suspend(). Meanwhile the runners renew the job's lease. */
struct job_ticket;
typedef enum job_result (*job_continue)(struct job *job, void *arg);
struct job_ticket *job_suspend(struct job *job, job_continue cont, void *arg);
void job_resume(struct job_ticket *ticket);

/* Registers the handler of a kind (before jobs_start). A kind's limits
 * (its attempts) are its row in the job_kinds table, which a migration
 * adds; jobs_start() refuses to start when a registered kind has none. */
void jobs_register(const char *kind, job_handler handler);

/* Enqueues (SQL job_enqueue(), with the kind's attempts) inside the caller's transaction (nothing
 * is enqueued if it rolls back). due_at <= 0 means now. A dedupe key, when given, is unique per
 * kind: enqueuing it again does nothing and returns 0. Returns the new job id, 0 when deduplicated,
 * -1 on failure. Steals payload. */
int64_t job_enqueue(struct tx *tx, const char *kind, const char *team_id, json_t *payload,
                    double due_at, const char *dedupe_key);

/* Registers a housekeeping kind that runs once a day (at 03:00 UTC): the
 * runner schedules the first run at start and each run the next, deduped
 * per date, so any number of instances run it once a day. */
void jobs_register_daily(const char *kind, job_handler handler);

/* For housekeeping jobs: runs delete_sql (a DELETE of at most a batch of
 * rows, so locks stay short) in transactions scoped to no team until it
 * deletes nothing. It reaches the global tables only (jobs, the dedupe
 * logs): expired rows of team tables need a SECURITY DEFINER function. */
enum job_result jobs_delete_batches(struct job *job, const char *delete_sql);

/* Starts n runner threads, or returns -1 (logging the kind) when a
 * registered kind has no row in job_kinds; stops them (waiting for
 * running handlers). */
int jobs_start(int n);
void jobs_stop(void);

/* Operator actions: retry a dead/failed job now, or cancel a queued one. */
int jobs_retry(struct tx *tx, int64_t id);
int jobs_cancel(struct tx *tx, int64_t id);

/* Backoff before attempt n+1 (seconds, with jitter); exposed for tests. */
double jobs_backoff(int attempts);

#endif
