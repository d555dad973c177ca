/* The outbound engine: every Slack and Stripe call is a transfer on one
 * libcurl multi handle driven by one thread, so many calls are in flight
 * at once and no other thread waits on a socket. Connections stay in the
 * multi handle's pool and are reused (HTTP/2 streams are multiplexed).
 *
 * Limits, in the order they are checked before a call starts:
 *   outbound_max_inflight   calls in flight in this instance;
 *   outbound_team_inflight  calls in flight for one team;
 *   a pacing bucket         (key, rate, burst), e.g. one per team and
 *                           Slack method; engine_pause() empties it.
 * Calls beyond them wait in the engine (at most ENGINE_QUEUE_MAX). */
#ifndef CONCH_ENGINE_H
#define CONCH_ENGINE_H

#include <curl/curl.h>

#define ENGINE_QUEUE_MAX 8192

/* Runs on the engine thread when the transfer ends (rc is CURLE_OK or
 * curl's error; ENGINE_STOPPED when shutdown cut it off). It must not
 * block: hand any database work to another thread. The easy handle is
 * still the caller's to read and clean up. */
typedef void (*engine_done)(CURL *easy, CURLcode rc, void *arg);

#define ENGINE_STOPPED CURLE_ABORTED_BY_CALLBACK

/* A token bucket: rate calls a second, up to burst at once. */
struct engine_pace {
	const char *key; /* NULL: none */
	double rate;
	double burst;
};

#define ENGINE_PACES 2 /* e.g. a Slack method per team, and per channel */

struct engine_call {
	CURL *easy;
	const char *team; /* counts toward outbound_team_inflight; may be NULL */
	struct engine_pace pace[ENGINE_PACES]; /* a call starts when every bucket gives */
	double not_before;                     /* unix seconds (a retry's pause); 0: at once */
	engine_done done;
	void *arg;
};

int engine_start(void);
/* Refuses new calls, lets those queued or in flight run for at most
 * deadline seconds, ends the rest with ENGINE_STOPPED, and returns when
 * every done callback has run. */
void engine_stop(double deadline);

/* Queues a call (fields are copied). 0, or -1 when the engine is stopped
 * or its queue is full: then done is not called. */
int engine_submit(const struct engine_call *call);

/* Submits and waits for the answer: for callers that cannot continue
 * asynchronously. Returns curl's code (ENGINE_STOPPED when refused). */
CURLcode engine_perform(const struct engine_call *call);

/* No call of pace_key starts for seconds (a 429's Retry-After). */
void engine_pause(const char *pace_key, double seconds);

/* Calls queued and in flight now (for tests and the bench). */
void engine_counts(int *queued, int *inflight);

#endif
