/* Counters and histograms for /metrics. Label sets live in small fixed
 * tables: a new label set is registered once under a mutex, after which
 * every update is a lock-free lookup (O(rows), pointer compare first) and
 * an atomic add. A table that fills up sends new label sets to a last
 * row labelled "other", so memory stays bounded whatever callers pass.
 * Gauges are atomics their owners keep current; process figures are read
 * from /proc when scraped. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "metrics.h"
#include "procfs.h"

#define MAX_LABELS   3
#define MAX_ROUTES   64
#define MAX_CALLS    256
#define MAX_SERVICES 16
#define MAX_JOBS     128
#define MAX_BUCKETS  16

typedef atomic_uint_least64_t counter;

struct table {
	size_t max;
	const char *(*keys)[MAX_LABELS]; /* max rows, written before n is published */
	atomic_size_t n;
};

struct bounds {
	size_t n; /* finite buckets; +Inf is bucket n */
	const double *le;
	const char *const *label;
};

struct hist {
	counter bucket[MAX_BUCKETS]; /* not cumulative; summed when rendered */
	atomic_int_least64_t sum_usec;
};

static const double http_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,   0.25,   0.5,   1,    2.5,   5};
static const char *const http_le_label[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                            "0.1",   "0.25",   "0.5",   "1",    "2.5",   "5"};
static const struct bounds http_bounds = {ARRAY_LEN(http_le), http_le, http_le_label};

static const double late_le[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60};
static const char *const late_le_label[] = {"0.01", "0.05", "0.1", "0.25", "0.5", "1",
                                            "2",    "5",    "10",  "30",   "60"};
static const struct bounds late_bounds = {ARRAY_LEN(late_le), late_le, late_le_label};

static const int status_codes[] = {200, 201, 204, 301, 302, 303, 304, 400, 401, 403,
                                   404, 405, 409, 413, 415, 429, 431, 500, 502, 503};
#define NSTATUS (ARRAY_LEN(status_codes) + 1) /* the last counts every other code */

static pthread_mutex_t register_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *route_keys[MAX_ROUTES][MAX_LABELS];
static struct table routes = {MAX_ROUTES, route_keys, 0};
static counter http_count[MAX_ROUTES][NSTATUS];
static struct hist http_hist[MAX_ROUTES];
static atomic_long http_inflight, http_queued, outbound_inflight, outbound_queued;
static atomic_long instances_live_n = 1;

static char build_version[64] = "unknown", build_commit[64] = "unknown";

static const char *call_keys[MAX_CALLS][MAX_LABELS];
static struct table calls = {MAX_CALLS, call_keys, 0};
static counter call_count[MAX_CALLS];

static const char *service_keys[MAX_SERVICES][MAX_LABELS];
static struct table services = {MAX_SERVICES, service_keys, 0};
static struct hist call_hist[MAX_SERVICES];

static const char *job_keys[MAX_JOBS][MAX_LABELS];
static struct table jobs = {MAX_JOBS, job_keys, 0};
static counter job_count[MAX_JOBS];
static struct hist job_hist;

/* --- registration ------------------------------------------------------- */

static int
row_matches(const char *const *row, const char *const *vals, int nlabels)
{
	for (int i = 0; i < nlabels; i++)
		if (row[i] != vals[i] && strcmp(row[i], vals[i]) != 0)
			return 0;
	return 1;
}

static size_t
find_row(const struct table *t, size_t n, const char *const *vals, int nlabels)
{
	for (size_t i = 0; i < n; i++)
		if (row_matches(t->keys[i], vals, nlabels))
			return i;
	return SIZE_MAX;
}

/* The row of a label set, registering it on first use. Label strings are
 * copied: callers may pass buffers that do not outlive the call. */
static size_t
table_row(struct table *t, int nlabels, const char *a, const char *b, const char *c)
{
	const char *vals[MAX_LABELS] = {a ? a : "", b ? b : "", c ? c : ""};
	size_t n = atomic_load_explicit(&t->n, memory_order_acquire);
	size_t row = find_row(t, n, vals, nlabels);

	if (row != SIZE_MAX)
		return row;
	pthread_mutex_lock(&register_lock);
	n = atomic_load_explicit(&t->n, memory_order_relaxed);
	row = find_row(t, n, vals, nlabels);
	if (row == SIZE_MAX && n == t->max) {
		row = t->max - 1;
	} else if (row == SIZE_MAX) {
		row = n;
		for (int i = 0; i < nlabels; i++)
			t->keys[row][i] = xstrdup(row == t->max - 1 ? "other" : vals[i]);
		atomic_store_explicit(&t->n, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&register_lock);
	return row;
}

static size_t
status_index(int status)
{
	for (size_t i = 0; i < ARRAY_LEN(status_codes); i++)
		if (status_codes[i] == status)
			return i;
	return NSTATUS - 1;
}

/* --- updates ------------------------------------------------------------ */

static void
count(counter *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void
observe(struct hist *h, const struct bounds *b, double seconds)
{
	size_t i = 0;

	while (i < b->n && !(seconds <= b->le[i]))
		i++;
	count(&h->bucket[i]);
	/* Clamp so a wild value cannot overflow the conversion. */
	if (isnan(seconds))
		seconds = 0;
	seconds = fmax(-1e9, fmin(1e9, seconds));
	atomic_fetch_add_explicit(&h->sum_usec, (int_least64_t)llround(seconds * 1e6),
	                          memory_order_relaxed);
}

void
metrics_http(const char *route, int status, double seconds)
{
	size_t row = table_row(&routes, 1, route ? route : "unknown", NULL, NULL);

	count(&http_count[row][status_index(status)]);
	observe(&http_hist[row], &http_bounds, seconds);
}

void
metrics_http_inflight_add(int delta)
{
	atomic_fetch_add_explicit(&http_inflight, delta, memory_order_relaxed);
}

void
metrics_http_queued_add(int delta)
{
	atomic_fetch_add_explicit(&http_queued, delta, memory_order_relaxed);
}

void
metrics_outbound_inflight_add(int delta)
{
	atomic_fetch_add_explicit(&outbound_inflight, delta, memory_order_relaxed);
}

void
metrics_instances_set(long n)
{
	atomic_store_explicit(&instances_live_n, n, memory_order_relaxed);
}

void
metrics_outbound_queued_set(long n)
{
	atomic_store_explicit(&outbound_queued, n, memory_order_relaxed);
}

void
metrics_set_build(const char *version, const char *commit)
{
	pthread_mutex_lock(&register_lock);
	snprintf(build_version, sizeof(build_version), "%s", version ? version : "unknown");
	snprintf(build_commit, sizeof(build_commit), "%s", commit ? commit : "unknown");
	pthread_mutex_unlock(&register_lock);
}

void
metrics_call(const char *service, const char *method, const char *outcome, double seconds)
{
	count(&call_count[table_row(&calls, 3, service, method, outcome)]);
	observe(&call_hist[table_row(&services, 1, service, NULL, NULL)], &http_bounds, seconds);
}

void
metrics_job(const char *kind, const char *result, double lateness)
{
	count(&job_count[table_row(&jobs, 2, kind, result, NULL)]);
	observe(&job_hist, &late_bounds, lateness);
}

/* --- exposition --------------------------------------------------------- */

static void
put_label(struct buf *out, const char *name, const char *value, int first)
{
	buf_printf(out, "%s%s=\"", first ? "" : ",", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			buf_puts(out, "\\\\");
		else if (*p == '"')
			buf_puts(out, "\\\"");
		else if (*p == '\n')
			buf_puts(out, "\\n");
		else
			buf_putc(out, *p);
	}
	buf_putc(out, '"');
}

static void
put_header(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t
load(counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* One histogram's series; label is an extra label pair or NULL. */
static void
put_hist(struct buf *out, const char *name, struct hist *h, const struct bounds *b,
         const char *lname, const char *lvalue)
{
	uint64_t cum = 0;

	for (size_t i = 0; i <= b->n; i++) {
		cum += load(&h->bucket[i]);
		buf_printf(out, "%s_bucket{", name);
		if (lname != NULL)
			put_label(out, lname, lvalue, 1);
		put_label(out, "le", i < b->n ? b->label[i] : "+Inf", lname == NULL);
		buf_printf(out, "} %llu\n", (unsigned long long)cum);
	}
	buf_printf(out, "%s_sum", name);
	if (lname != NULL) {
		buf_putc(out, '{');
		put_label(out, lname, lvalue, 1);
		buf_putc(out, '}');
	}
	buf_printf(out, " %.6f\n", (double)atomic_load(&h->sum_usec) / 1e6);
	buf_printf(out, "%s_count", name);
	if (lname != NULL) {
		buf_putc(out, '{');
		put_label(out, lname, lvalue, 1);
		buf_putc(out, '}');
	}
	buf_printf(out, " %llu\n", (unsigned long long)cum);
}

/* One labelled sample line. */
static void
put_sample(struct buf *out, const char *name, const char *const *lnames, const char *const *lvalues,
           int nlabels, uint64_t v)
{
	buf_printf(out, "%s{", name);
	for (int i = 0; i < nlabels; i++)
		put_label(out, lnames[i], lvalues[i], i == 0);
	buf_printf(out, "} %llu\n", (unsigned long long)v);
}

static void
put_gauge(struct buf *out, const char *name, const char *help, long v)
{
	put_header(out, name, "gauge", help);
	buf_printf(out, "%s %ld\n", name, v);
}

static void
render_build(struct buf *out)
{
	static const char *const lnames[] = {"version", "commit"};
	const char *vals[2];

	put_header(out, "conch_build_info", "gauge", "Always 1; the release and commit running.");
	pthread_mutex_lock(&register_lock);
	vals[0] = build_version;
	vals[1] = build_commit;
	put_sample(out, "conch_build_info", lnames, vals, 2, 1);
	pthread_mutex_unlock(&register_lock);
}

/* The standard names of Prometheus' process collector. */
static void
render_process(struct buf *out)
{
	struct proc_figures p = {-1, -1, -1, -1, -1};

	procfs_read(&p);
	if (p.cpu_seconds >= 0) {
		put_header(out, "process_cpu_seconds_total", "counter",
		           "User and system CPU time in seconds.");
		buf_printf(out, "process_cpu_seconds_total %.3f\n", p.cpu_seconds);
		put_header(out, "process_resident_memory_bytes", "gauge",
		           "Resident memory in bytes.");
		buf_printf(out, "process_resident_memory_bytes %.0f\n", p.resident_bytes);
		put_header(out, "process_start_time_seconds", "gauge",
		           "Start time of the process since the Unix epoch in seconds.");
		buf_printf(out, "process_start_time_seconds %.2f\n", p.start_time);
	}
	if (p.open_fds >= 0)
		put_gauge(out, "process_open_fds", "Open file descriptors.", p.open_fds);
	if (p.max_fds >= 0)
		put_gauge(out, "process_max_fds", "The limit of open file descriptors.", p.max_fds);
}

static void
render_db(struct buf *out)
{
	struct db_conn_stats st;

	db_conn_stats(&st);
	put_header(out, "conch_db_errors_total", "counter", "Database errors since start.");
	buf_printf(out, "conch_db_errors_total %ld\n", db_error_count());
	put_gauge(out, "conch_db_connections_open",
	          "Open database connections (one per thread that has used the database).",
	          st.open);
	put_gauge(out, "conch_db_connections_in_transaction",
	          "Database connections inside a transaction.", st.in_transaction);
	put_gauge(out, "conch_db_connections_waiting",
	          "Threads waiting for a database connection to open.", st.connecting);
}

static void
render_http(struct buf *out)
{
	static const char *const lnames[] = {"route", "status"};
	size_t n = atomic_load_explicit(&routes.n, memory_order_acquire);
	char code[16];

	put_header(out, "conch_http_requests_total", "counter",
	           "HTTP requests by route and status.");
	for (size_t r = 0; r < n; r++) {
		for (size_t s = 0; s < NSTATUS; s++) {
			uint64_t v = load(&http_count[r][s]);
			const char *vals[] = {route_keys[r][0], code};

			if (v == 0)
				continue;
			if (s < ARRAY_LEN(status_codes))
				snprintf(code, sizeof(code), "%d", status_codes[s]);
			else
				snprintf(code, sizeof(code), "other");
			put_sample(out, "conch_http_requests_total", lnames, vals, 2, v);
		}
	}
	put_header(out, "conch_http_request_duration_seconds", "histogram",
	           "HTTP request latency in seconds by route.");
	for (size_t r = 0; r < n; r++)
		put_hist(out, "conch_http_request_duration_seconds", &http_hist[r], &http_bounds,
		         "route", route_keys[r][0]);
	put_gauge(out, "conch_http_requests_in_flight",
	          "Requests being served: head received, answer not yet sent.",
	          atomic_load(&http_inflight));
	put_gauge(out, "conch_http_requests_queued",
	          "Requests waiting for an HTTP worker (each worker has its own database "
	          "connection).",
	          atomic_load(&http_queued));
}

static void
render_calls(struct buf *out)
{
	static const char *const lnames[] = {"service", "method", "outcome"};
	size_t n = atomic_load_explicit(&calls.n, memory_order_acquire);

	put_header(out, "conch_outbound_calls_total", "counter",
	           "Calls to Slack and Stripe by service, method and outcome.");
	for (size_t i = 0; i < n; i++)
		put_sample(out, "conch_outbound_calls_total", lnames, call_keys[i], 3,
		           load(&call_count[i]));
	n = atomic_load_explicit(&services.n, memory_order_acquire);
	put_header(out, "conch_outbound_call_duration_seconds", "histogram",
	           "Outbound call latency in seconds by service.");
	for (size_t i = 0; i < n; i++)
		put_hist(out, "conch_outbound_call_duration_seconds", &call_hist[i], &http_bounds,
		         "service", service_keys[i][0]);
	put_gauge(out, "conch_outbound_calls_in_flight", "Calls to Slack and Stripe under way.",
	          atomic_load(&outbound_inflight));
	put_gauge(out, "conch_outbound_calls_queued",
	          "Calls to Slack and Stripe waiting to be made.", atomic_load(&outbound_queued));
	put_gauge(out, "conch_instances_live",
	          "Instances with a fresh heartbeat; each paces Slack calls at its share.",
	          atomic_load(&instances_live_n));
}

static void
render_jobs(struct buf *out)
{
	static const char *const lnames[] = {"kind", "result"};
	size_t n = atomic_load_explicit(&jobs.n, memory_order_acquire);

	put_header(out, "conch_jobs_finished_total", "counter",
	           "Background jobs by kind and result.");
	for (size_t i = 0; i < n; i++)
		put_sample(out, "conch_jobs_finished_total", lnames, job_keys[i], 2,
		           load(&job_count[i]));
	put_header(out, "conch_job_lateness_seconds", "histogram",
	           "Seconds between a job's due time and its start.");
	put_hist(out, "conch_job_lateness_seconds", &job_hist, &late_bounds, NULL, NULL);
}

void
metrics_render(struct buf *out)
{
	render_build(out);
	render_process(out);
	render_http(out);
	render_calls(out);
	render_jobs(out);
	render_db(out);
}
