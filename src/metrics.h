/* Process-wide counters and histograms exposed at /metrics in Prometheus'
 * text format. Updates are lock-free atomics. */
#ifndef CONCH_METRICS_H
#define CONCH_METRICS_H

#include "util.h"

/* One HTTP request: its route label, status and latency. */
void metrics_http(const char *route, int status, double seconds);
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
