#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "unit.h"
#include "util.h"

/* Runs fn with stderr sent to a temporary file and returns what it wrote. */
static char *
capture(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	struct buf b;
	char chunk[4096];
	size_t n;

	ck_assert_ptr_nonnull(tmp);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fileno(tmp), STDERR_FILENO), 0);
	fn();
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);
	rewind(tmp);
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), tmp)) > 0)
		buf_append(&b, chunk, n);
	fclose(tmp);
	return buf_steal(&b);
}

static json_t *
parse_line(const char *line)
{
	json_error_t e;
	json_t *j = json_loads(line, JSON_DISABLE_EOF_CHECK, &e);

	ck_assert_msg(j != NULL, "not JSON: %s (%s)", line, e.text);
	return j;
}

static void
log_plain(void)
{
	log_set_level(LOGL_INFO);
	log_set_request(NULL);
	log_set_team(NULL);
	log_info("hello %d", 5);
}

START_TEST(test_plain_line)
{
	char *out = capture(log_plain);
	json_t *j = parse_line(out);
	const char *t = json_string_value(json_object_get(j, "time"));

	/* exactly one line */
	ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
	ck_assert_str_eq(json_string_value(json_object_get(j, "level")), "info");
	ck_assert_str_eq(json_string_value(json_object_get(j, "msg")), "hello 5");
	ck_assert_ptr_null(json_object_get(j, "request_id"));
	ck_assert_ptr_null(json_object_get(j, "team_id"));
	/* 2026-11-23T14:40:01.123Z */
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(strlen(t), 24);
	ck_assert_int_eq(t[10], 'T');
	ck_assert_int_eq(t[19], '.');
	ck_assert_int_eq(t[23], 'Z');
	json_decref(j);
	free(out);
}
END_TEST

static void
log_context_and_escapes(void)
{
	log_set_level(LOGL_DEBUG);
	log_set_request("req-1");
	log_set_team("T123");
	log_debug("quote \" backslash \\ newline \n tab \t bell \x07 utf8 \xc3\xa9 bad \xff end");
	log_set_request(NULL);
	log_set_team(NULL);
}

START_TEST(test_context_and_escapes)
{
	char *out = capture(log_context_and_escapes);
	json_t *j = parse_line(out);

	ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
	ck_assert_str_eq(json_string_value(json_object_get(j, "level")), "debug");
	ck_assert_str_eq(json_string_value(json_object_get(j, "request_id")), "req-1");
	ck_assert_str_eq(json_string_value(json_object_get(j, "team_id")), "T123");
	ck_assert_str_eq(json_string_value(json_object_get(j, "msg")),
	                 "quote \" backslash \\ newline \n tab \t bell \x07 utf8 \xc3\xa9 bad "
	                 "\xef\xbf\xbd end");
	json_decref(j);
	free(out);
}
END_TEST

static void
log_filtered(void)
{
	log_set_level(LOGL_WARN);
	log_info("dropped");
	log_debug("dropped");
	log_warn("kept");
	log_error("kept too");
	log_set_level(LOGL_INFO);
}

START_TEST(test_level_filter)
{
	char *out = capture(log_filtered);

	ck_assert_ptr_null(strstr(out, "dropped"));
	ck_assert_ptr_nonnull(strstr(out, "\"level\":\"warn\",\"msg\":\"kept\""));
	ck_assert_ptr_nonnull(strstr(out, "\"level\":\"error\",\"msg\":\"kept too\""));
	free(out);
}
END_TEST

START_TEST(test_level_parse)
{
	ck_assert_int_eq(log_level_parse("debug"), LOGL_DEBUG);
	ck_assert_int_eq(log_level_parse("info"), LOGL_INFO);
	ck_assert_int_eq(log_level_parse("warn"), LOGL_WARN);
	ck_assert_int_eq(log_level_parse("error"), LOGL_ERROR);
	ck_assert_int_eq(log_level_parse("INFO"), -1);
	ck_assert_int_eq(log_level_parse(""), -1);
	ck_assert_int_eq(log_level_parse(NULL), -1);
}
END_TEST

/* Each thread logs lines under its own team id; every line must parse and
 * carry the id of the thread that wrote it. */
static void *
log_thread(void *arg)
{
	char id[16];

	snprintf(id, sizeof(id), "T%d", (int)(intptr_t)arg);
	log_set_team(id);
	for (int i = 0; i < 200; i++)
		log_info("thread %s line %d %0300d", id, i, 0);
	return NULL;
}

static void
log_threads(void)
{
	pthread_t th[4];

	log_set_level(LOGL_INFO);
	for (intptr_t i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, log_thread, (void *)i);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
}

START_TEST(test_threads_do_not_interleave)
{
	char *out = capture(log_threads), *save = NULL;
	int lines = 0;

	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *j = parse_line(line);
		const char *team = json_string_value(json_object_get(j, "team_id"));
		const char *msg = json_string_value(json_object_get(j, "msg"));
		char want[32];

		ck_assert_ptr_nonnull(team);
		snprintf(want, sizeof(want), "thread %s ", team);
		ck_assert_msg(strncmp(msg, want, strlen(want)) == 0, "line of %s: %s", team, msg);
		json_decref(j);
		lines++;
	}
	ck_assert_int_eq(lines, 800);
	free(out);
}
END_TEST

/* The access log's fields follow msg; a 128-character request id (what
 * http.c keeps from a client) is not cut short. */
static void
log_with_fields(void)
{
	const struct log_field f[] = {
	    {"method", "GET", 0},     {"route", "/api/v1/things/{name}", 0},
	    {"status", NULL, 200},    {"duration_ms", NULL, 1.25},
	    {"bytes", NULL, 5525},    {"odd", "a\"b\xff", 0},
	    {"nan", NULL, 0.0 / 0.0},
	};
	char id[129];

	memset(id, 'r', 128);
	id[128] = '\0';
	log_set_level(LOGL_INFO);
	log_set_request(id);
	log_set_team("T0FIELDS1");
	log_fields(LOGL_INFO, f, (int)ARRAY_LEN(f), "GET /api/v1/things/%s 200", "web");
	log_set_request(NULL);
	log_set_team(NULL);
}

START_TEST(test_fields)
{
	char *out = capture(log_with_fields), id[129];
	json_t *j = parse_line(out);

	memset(id, 'r', 128);
	id[128] = '\0';
	ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
	ck_assert_str_eq(json_string_value(json_object_get(j, "request_id")), id);
	ck_assert_str_eq(json_string_value(json_object_get(j, "team_id")), "T0FIELDS1");
	ck_assert_str_eq(json_string_value(json_object_get(j, "msg")),
	                 "GET /api/v1/things/web 200");
	ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "GET");
	ck_assert_str_eq(json_string_value(json_object_get(j, "route")), "/api/v1/things/{name}");
	ck_assert(json_is_integer(json_object_get(j, "status")));
	ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 200);
	ck_assert_double_eq(json_number_value(json_object_get(j, "duration_ms")), 1.25);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "bytes")), 5525);
	ck_assert_str_eq(json_string_value(json_object_get(j, "odd")), "a\"b\xef\xbf\xbd");
	ck_assert(json_is_null(json_object_get(j, "nan")));
	json_decref(j);
	free(out);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_plain_line);
	tcase_add_test(tc, test_context_and_escapes);
	tcase_add_test(tc, test_level_filter);
	tcase_add_test(tc, test_level_parse);
	tcase_add_test(tc, test_threads_do_not_interleave);
	tcase_add_test(tc, test_fields);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(log_suite)
