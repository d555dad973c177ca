/* Process-wide counters and histograms exposed at /metrics in Prometheus'
 * text format. Updates are lock-free atomics. */
#ifndef CONCH_METRICS_H
#define CONCH_METRICS_H

#include "util.h"

/* One HTTP request: its route label (a route table pattern, never a raw
 * path), status and latency. */
void metrics_http(const char *route, int status, double seconds);
/* Requests being served (head in, answer not yet sent), and requests
 * waiting for an HTTP worker; delta is +1 or -1. */
void metrics_http_inflight_add(int delta);
void metrics_http_queued_add(int delta);
/* Outbound calls being made (transfers in the engine's multi handle) and
 * calls waiting in the engine's queue; src/engine.c keeps them current. */
void metrics_outbound_inflight_add(int delta);
void metrics_outbound_queued_set(long n);
/* Live instances sharing Slack's limits (src/instances.h). */
void metrics_instances_set(long n);
/* The release and commit for conch_build_info (main.c knows them). */
void metrics_set_build(const char *version, const char *commit);
/* One outbound call: service "slack" or "stripe", method, outcome
 * ("ok", "error", "ratelimited", "transport"). */
void metrics_call(const char *service, const char *method, const char *outcome, double seconds);
/* A job finished: kind, result ("done", "retry", "dead", "rescheduled"),
 * and lateness (start - due) in seconds. */
void metrics_job(const char *kind, const char *result, double lateness);

/* Appends the exposition text; the caller adds gauges read from the
 * database (jobs by kind and state). */
void metrics_render(struct buf *out);

#endif
