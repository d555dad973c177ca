/* Assertions compare renders taken before and after the updates, so they
 * hold whatever other tests in the same process counted. */
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "metrics.h"
#include "procfs.h"
#include "unit.h"
#include "util.h"

/* The real db.c wins when it is linked in; the unit binary built from only
 * the core objects uses this one. */
__attribute__((weak)) long
db_error_count(void)
{
	return 0;
}

__attribute__((weak)) void
db_conn_stats(struct db_conn_stats *out)
{
	memset(out, 0, sizeof(*out));
}

static char *
render(void)
{
	struct buf b;

	buf_init(&b);
	metrics_render(&b);
	return buf_steal(&b);
}

/* The value of the sample whose name and labels are exactly series, or -1. */
static double
sample(const char *text, const char *series)
{
	size_t len = strlen(series);

	for (const char *p = text; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, series, len) == 0 && p[len] == ' ')
			return strtod(p + len + 1, NULL);
	return -1;
}

static double
delta(const char *before, const char *after, const char *series)
{
	double b = sample(before, series), a = sample(after, series);

	ck_assert_msg(a >= 0, "no sample %s in:\n%s", series, after);
	return a - (b < 0 ? 0 : b);
}

START_TEST(test_http)
{
	char *before = render(), *after;

	for (int i = 0; i < 3; i++)
		metrics_http("/slack/commands", 200, 0.003);
	metrics_http("/slack/commands", 418, 0.2);
	metrics_http("/healthz", 503, 0.006);
	after = render();
	ck_assert_double_eq(
	    delta(before, after,
	          "conch_http_requests_total{route=\"/slack/commands\",status=\"200\"}"),
	    3);
	ck_assert_double_eq(
	    delta(before, after,
	          "conch_http_requests_total{route=\"/slack/commands\",status=\"other\"}"),
	    1);
	ck_assert_double_eq(
	    delta(before, after, "conch_http_requests_total{route=\"/healthz\",status=\"503\"}"),
	    1);
	ck_assert_double_eq(
	    sample(after, "conch_http_requests_total{route=\"/healthz\",status=\"200\"}"), -1);
	/* buckets are cumulative, by route: /slack/commands 3 at 0.003 and 1 at
	 * 0.2, /healthz 1 at 0.006 */
	static const struct {
		const char *route, *le;
		double n;
	} buckets[] = {
	    {"/slack/commands", "0.001", 0}, {"/slack/commands", "0.0025", 0},
	    {"/slack/commands", "0.005", 3}, {"/slack/commands", "0.01", 3},
	    {"/slack/commands", "0.1", 3},   {"/slack/commands", "0.25", 4},
	    {"/slack/commands", "+Inf", 4},  {"/healthz", "0.005", 0},
	    {"/healthz", "0.01", 1},         {"/healthz", "+Inf", 1},
	};
	for (size_t i = 0; i < ARRAY_LEN(buckets); i++) {
		char series[128];

		snprintf(series, sizeof(series),
		         "conch_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"}",
		         buckets[i].route, buckets[i].le);
		ck_assert_msg(delta(before, after, series) == buckets[i].n, "%s", series);
	}
	ck_assert_double_eq(
	    delta(before, after,
	          "conch_http_request_duration_seconds_count{route=\"/slack/commands\"}"),
	    4);
	ck_assert_double_eq_tol(
	    delta(before, after,
	          "conch_http_request_duration_seconds_sum{route=\"/slack/commands\"}"),
	    0.209, 1e-6);
	ck_assert_double_eq(
	    delta(before, after, "conch_http_request_duration_seconds_count{route=\"/healthz\"}"),
	    1);
	free(before);
	free(after);
}
END_TEST

START_TEST(test_calls_and_jobs)
{
	char *before = render(), *after;

	metrics_call("slack", "chat.postMessage", "ok", 0.05);
	metrics_call("slack", "chat.postMessage", "ok", 0.07);
	metrics_call("slack", "chat.postMessage", "ratelimited", 0.01);
	metrics_call("stripe", "checkout.sessions", "transport", 3);
	metrics_job("dibs.release", "done", 0.3);
	metrics_job("dibs.release", "retry", 12);
	metrics_job("lunch.fanout", "dead", -0.5);
	after = render();
	ck_assert_double_eq(delta(before, after,
	                          "conch_outbound_calls_total{service=\"slack\","
	                          "method=\"chat.postMessage\",outcome=\"ok\"}"),
	                    2);
	ck_assert_double_eq(delta(before, after,
	                          "conch_outbound_calls_total{service=\"slack\","
	                          "method=\"chat.postMessage\",outcome=\"ratelimited\"}"),
	                    1);
	ck_assert_double_eq(delta(before, after,
	                          "conch_outbound_calls_total{service=\"stripe\","
	                          "method=\"checkout.sessions\",outcome=\"transport\"}"),
	                    1);
	ck_assert_double_eq(
	    delta(before, after,
	          "conch_outbound_call_duration_seconds_bucket{service=\"slack\",le=\"0.05\"}"),
	    2);
	ck_assert_double_eq(
	    delta(before, after,
	          "conch_outbound_call_duration_seconds_bucket{service=\"slack\",le=\"0.1\"}"),
	    3);
	ck_assert_double_eq(
	    delta(before, after,
	          "conch_outbound_call_duration_seconds_bucket{service=\"stripe\",le=\"2.5\"}"),
	    0);
	ck_assert_double_eq(
	    delta(before, after, "conch_outbound_call_duration_seconds_count{service=\"stripe\"}"),
	    1);
	ck_assert_double_eq(
	    delta(before, after,
	          "conch_jobs_finished_total{kind=\"dibs.release\",result=\"done\"}"),
	    1);
	ck_assert_double_eq(
	    delta(before, after,
	          "conch_jobs_finished_total{kind=\"lunch.fanout\",result=\"dead\"}"),
	    1);
	ck_assert_double_eq(delta(before, after, "conch_job_lateness_seconds_bucket{le=\"0.01\"}"),
	                    1);
	ck_assert_double_eq(delta(before, after, "conch_job_lateness_seconds_bucket{le=\"0.5\"}"),
	                    2);
	ck_assert_double_eq(delta(before, after, "conch_job_lateness_seconds_bucket{le=\"10\"}"),
	                    2);
	ck_assert_double_eq(delta(before, after, "conch_job_lateness_seconds_bucket{le=\"30\"}"),
	                    3);
	ck_assert_double_eq(delta(before, after, "conch_job_lateness_seconds_count"), 3);
	free(before);
	free(after);
}
END_TEST

START_TEST(test_label_escaping)
{
	char route[] = "a\"b\\c\nd"; /* a stack buffer: metrics must copy it */
	char *text;

	metrics_http(route, 200, 0.001);
	memset(route, 'x', sizeof(route) - 1);
	text = render();
	ck_assert_double_ge(
	    sample(text, "conch_http_requests_total{route=\"a\\\"b\\\\c\\nd\",status=\"200\"}"), 1);
	free(text);
}
END_TEST

/* Every line is a comment or a well-formed sample, and every family has
 * its HELP and TYPE. */
START_TEST(test_exposition_format)
{
	static const char *const families[] = {
	    "conch_build_info gauge",
	    "process_cpu_seconds_total counter",
	    "process_resident_memory_bytes gauge",
	    "process_start_time_seconds gauge",
	    "process_open_fds gauge",
	    "process_max_fds gauge",
	    "conch_http_requests_total counter",
	    "conch_http_request_duration_seconds histogram",
	    "conch_http_requests_in_flight gauge",
	    "conch_http_requests_queued gauge",
	    "conch_outbound_calls_total counter",
	    "conch_outbound_call_duration_seconds histogram",
	    "conch_outbound_calls_in_flight gauge",
	    "conch_outbound_calls_queued gauge",
	    "conch_instances_live gauge",
	    "conch_jobs_finished_total counter",
	    "conch_job_lateness_seconds histogram",
	    "conch_db_errors_total counter",
	    "conch_db_connections_open gauge",
	    "conch_db_connections_in_transaction gauge",
	    "conch_db_connections_waiting gauge",
	};
	regex_t re;
	char *text, *save = NULL, want[128];

	metrics_http("/x", 200, 0.5);
	metrics_call("slack", "auth.test", "ok", 0.1);
	metrics_job("k", "done", 1);
	text = render();
	for (size_t i = 0; i < ARRAY_LEN(families); i++) {
		snprintf(want, sizeof(want), "\n# TYPE %s\n", families[i]);
		ck_assert_msg(strstr(text, want) != NULL ||
		                  strncmp(text, want + 1, strlen(want) - 1) == 0,
		              "missing %s", want);
		snprintf(want, sizeof(want), "# HELP %.*s ", (int)strcspn(families[i], " "),
		         families[i]);
		ck_assert_msg(strstr(text, want) != NULL, "missing %s", want);
	}
	snprintf(want, sizeof(want), "\nconch_db_errors_total %ld\n", db_error_count());
	ck_assert_ptr_nonnull(strstr(text, want));
	ck_assert_int_eq(text[strlen(text) - 1], '\n');
	ck_assert_int_eq(regcomp(&re,
	                         "^[a-zA-Z_:][a-zA-Z0-9_:]*"
	                         "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\""
	                         "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\")*\\})?"
	                         " -?[0-9]+(\\.[0-9]+)?$",
	                         REG_EXTENDED | REG_NOSUB),
	                 0);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0)
			continue;
		ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "bad line: %s", line);
	}
	regfree(&re);
	free(text);
}
END_TEST

/* More route labels than the table holds end up in one "other" row. */
START_TEST(test_route_overflow)
{
	static const char prefix[] = "conch_http_requests_total{route=\"";
	char route[32], *text, *seen[128];
	int distinct = 0;

	for (int i = 0; i < 100; i++) {
		snprintf(route, sizeof(route), "/r%d", i);
		metrics_http(route, 204, 0.001);
	}
	text = render();
	for (const char *p = text; (p = strstr(p, prefix)) != NULL; p++) {
		char *label = xstrndup(p + strlen(prefix), strcspn(p + strlen(prefix), "\""));
		int known = 0;

		for (int i = 0; i < distinct; i++)
			known |= strcmp(seen[i], label) == 0;
		if (known || distinct == (int)ARRAY_LEN(seen))
			free(label);
		else
			seen[distinct++] = label;
	}
	for (int i = 0; i < distinct; i++)
		free(seen[i]);
	ck_assert_int_le(distinct, 64);
	ck_assert_double_ge(
	    sample(text, "conch_http_requests_total{route=\"other\",status=\"204\"}"), 100 - 63);
	free(text);
}
END_TEST

static void *
hammer(void *arg)
{
	for (int i = 0; i < 10000; i++) {
		metrics_http("/hammer", 201, 0.0001);
		metrics_job("hammer", "done", 0.001);
	}
	return NULL;
}

START_TEST(test_concurrent_counts_are_exact)
{
	char *before = render(), *after;
	pthread_t th[4];

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	after = render();
	ck_assert_double_eq(
	    delta(before, after, "conch_http_requests_total{route=\"/hammer\",status=\"201\"}"),
	    40000);
	ck_assert_double_eq(
	    delta(before, after, "conch_jobs_finished_total{kind=\"hammer\",result=\"done\"}"),
	    40000);
	ck_assert_double_eq(delta(before, after, "conch_job_lateness_seconds_bucket{le=\"0.01\"}"),
	                    40000);
	free(before);
	free(after);
}
END_TEST

START_TEST(test_build_info)
{
	char *text;

	metrics_set_build("1.2.3", "abc1234");
	text = render();
	ck_assert_double_eq(sample(text, "conch_build_info{version=\"1.2.3\",commit=\"abc1234\"}"),
	                    1);
	ck_assert_ptr_null(strstr(strstr(text, "\nconch_build_info{") + 1, "\nconch_build_info{"));
	free(text);
}
END_TEST

/* The process figures are this test process's own: plausible, and the
 * descriptor count follows descriptors opened here (Check forks each test
 * into a process of its own, so nothing else opens any meanwhile). */
START_TEST(test_process_figures)
{
	char *before = render(), *after;
	FILE *f[3];
	double open_fds, max_fds, start;

	ck_assert_double_gt(sample(before, "process_resident_memory_bytes"), 0);
	ck_assert_double_ge(sample(before, "process_cpu_seconds_total"), 0);
	start = sample(before, "process_start_time_seconds");
	ck_assert_double_gt(start, 1.6e9);
	ck_assert_double_le(start, (double)now_unix() + 1);
	open_fds = sample(before, "process_open_fds");
	max_fds = sample(before, "process_max_fds");
	ck_assert_double_ge(open_fds, 3); /* stdin, stdout, stderr */
	ck_assert_double_gt(max_fds, open_fds);
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(f[i] = tmpfile());
	after = render();
	ck_assert_double_eq(delta(before, after, "process_open_fds"), 3);
	for (int i = 0; i < 3; i++)
		fclose(f[i]);
	free(before);
	free(after);
}
END_TEST

static const struct {
	const char *stat;
	int rc;
	double cpu, start, rss;
} stats[] = {
    /* ticks 100, pages of 4096, boot at 1000 */
    {"42 (conch) S 1 42 42 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 9 0 12345 "
     "200000000 1500 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n",
     0, 3.0, 1123.45, 1500 * 4096.0},
    /* a command name with spaces and parentheses */
    {"7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 1 2 3\n", 0, 0.02, 1001, 8192},
    {"7 (conch) S 1 7 7 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100\n", -1, 0, 0, 0}, /* cut short */
    {"7 (conch) S 1 7 7 0 -1 0 0 0 0 0 x 1 0 0 20 0 1 0 100 1 2 3\n", -1, 0, 0, 0},
    {"7 conch S 1 7 7 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 1 2 3\n", -1, 0, 0, 0},
    {"", -1, 0, 0, 0},
};

START_TEST(test_proc_stat_parse)
{
	for (size_t i = 0; i < ARRAY_LEN(stats); i++) {
		struct proc_figures p = {-1, -1, -1, -1, -1};

		ck_assert_msg(procfs_parse_stat(stats[i].stat, 100, 4096, 1000, &p) == stats[i].rc,
		              "row %zu", i);
		if (stats[i].rc != 0)
			continue;
		ck_assert_double_eq_tol(p.cpu_seconds, stats[i].cpu, 1e-9);
		ck_assert_double_eq_tol(p.start_time, stats[i].start, 1e-9);
		ck_assert_double_eq(p.resident_bytes, stats[i].rss);
	}
}
END_TEST

START_TEST(test_gauges)
{
	char *before, *after;

	metrics_outbound_queued_set(0);
	before = render();
	metrics_http_inflight_add(1);
	metrics_http_inflight_add(1);
	metrics_http_inflight_add(-1);
	metrics_http_queued_add(1);
	metrics_outbound_inflight_add(1);
	metrics_outbound_queued_set(7);
	after = render();
	ck_assert_double_eq(delta(before, after, "conch_http_requests_in_flight"), 1);
	ck_assert_double_eq(delta(before, after, "conch_http_requests_queued"), 1);
	ck_assert_double_eq(delta(before, after, "conch_outbound_calls_in_flight"), 1);
	ck_assert_double_eq(sample(after, "conch_outbound_calls_queued"), 7);
	metrics_http_inflight_add(-1);
	metrics_http_queued_add(-1);
	metrics_outbound_inflight_add(-1);
	metrics_outbound_queued_set(0);
	free(before);
	free(after);
	after = render();
	ck_assert_double_ge(sample(after, "conch_db_connections_open"), 0);
	ck_assert_double_ge(sample(after, "conch_db_connections_in_transaction"), 0);
	ck_assert_double_ge(sample(after, "conch_db_connections_waiting"), 0);
	free(after);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_http);
	tcase_add_test(tc, test_calls_and_jobs);
	tcase_add_test(tc, test_label_escaping);
	tcase_add_test(tc, test_exposition_format);
	tcase_add_test(tc, test_concurrent_counts_are_exact);
	tcase_add_test(tc, test_route_overflow);
	tcase_add_test(tc, test_build_info);
	tcase_add_test(tc, test_process_figures);
	tcase_add_test(tc, test_proc_stat_parse);
	tcase_add_test(tc, test_gauges);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(metrics_suite)
