/* src/slack*.c: signatures, reply shapes, the job-result mapping, the route
 * handlers' first step, and the Web API client against a local fake. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "crypto.h"
#include "slack.h"
#include "unit.h"
#include "util.h"

/* --- signatures ------------------------------------------------------- */

#define VEC_SECRET "8f742231b10e8888abcd99yyyzzz85a5"
#define VEC_TS     "1531420618"
#define VEC_TS_NUM 1531420618L
#define VEC_SIG    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
/* The body in three parts so that one byte of it can be altered. */
#define VEC_BODY_HEAD "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3"
#define VEC_BODY_TAIL                                                                              \
	"&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&"     \
	"user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks."  \
	"slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id="   \
	"398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
#define VEC_BODY         VEC_BODY_HEAD "J" VEC_BODY_TAIL
#define VEC_BODY_ALTERED VEC_BODY_HEAD "K" VEC_BODY_TAIL
#define VEC_SIG_UPPER    "v0=A2114D57B48EAC39B9AD189DD8316235A7B4A8D21A10BD27519666489C69B503"
#define VEC_SIG_ALTERED  "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b504"

static const struct {
	const char *name;
	const char *secret, *ts, *sig, *body;
	long now;
	enum slack_sig want;
} sig_cases[] = {
    {"official vector", VEC_SECRET, VEC_TS, VEC_SIG, VEC_BODY, VEC_TS_NUM, SLACK_SIG_OK},
    {"299 s later", VEC_SECRET, VEC_TS, VEC_SIG, VEC_BODY, VEC_TS_NUM + 299, SLACK_SIG_OK},
    {"300 s later", VEC_SECRET, VEC_TS, VEC_SIG, VEC_BODY, VEC_TS_NUM + 300, SLACK_SIG_OK},
    {"300 s earlier", VEC_SECRET, VEC_TS, VEC_SIG, VEC_BODY, VEC_TS_NUM - 300, SLACK_SIG_OK},
    {"301 s later", VEC_SECRET, VEC_TS, VEC_SIG, VEC_BODY, VEC_TS_NUM + 301, SLACK_SIG_STALE},
    {"301 s earlier", VEC_SECRET, VEC_TS, VEC_SIG, VEC_BODY, VEC_TS_NUM - 301, SLACK_SIG_STALE},
    {"wrong secret", "8f742231b10e8888abcd99yyyzzz85a6", VEC_TS, VEC_SIG, VEC_BODY, VEC_TS_NUM,
     SLACK_SIG_MISMATCH},
    {"altered body", VEC_SECRET, VEC_TS, VEC_SIG, VEC_BODY_ALTERED, VEC_TS_NUM, SLACK_SIG_MISMATCH},
    {"altered signature", VEC_SECRET, VEC_TS, VEC_SIG_ALTERED, VEC_BODY, VEC_TS_NUM,
     SLACK_SIG_MISMATCH},
    {"upper-case hex", VEC_SECRET, VEC_TS, VEC_SIG_UPPER, VEC_BODY, VEC_TS_NUM, SLACK_SIG_MISMATCH},
    {"no v0= prefix", VEC_SECRET, VEC_TS, &VEC_SIG[3], VEC_BODY, VEC_TS_NUM, SLACK_SIG_MISSING},
    {"v1= prefix", VEC_SECRET, VEC_TS,
     "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", VEC_BODY, VEC_TS_NUM,
     SLACK_SIG_MISSING},
    {"short signature", VEC_SECRET, VEC_TS, "v0=a2114d57", VEC_BODY, VEC_TS_NUM, SLACK_SIG_MISSING},
    {"signature with trailing byte", VEC_SECRET, VEC_TS, VEC_SIG "0", VEC_BODY, VEC_TS_NUM,
     SLACK_SIG_MISSING},
    {"non-hex signature", VEC_SECRET, VEC_TS,
     "v0=g2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", VEC_BODY, VEC_TS_NUM,
     SLACK_SIG_MISSING},
    {"non-digit timestamp", VEC_SECRET, "1531420618x", VEC_SIG, VEC_BODY, VEC_TS_NUM,
     SLACK_SIG_MISSING},
    {"signed timestamp", VEC_SECRET, "+1531420618", VEC_SIG, VEC_BODY, VEC_TS_NUM,
     SLACK_SIG_MISSING},
    {"blank before timestamp", VEC_SECRET, " 1531420618", VEC_SIG, VEC_BODY, VEC_TS_NUM,
     SLACK_SIG_MISSING},
    {"huge timestamp", VEC_SECRET, "99999999999999999999999", VEC_SIG, VEC_BODY, VEC_TS_NUM,
     SLACK_SIG_MISSING},
    {"empty timestamp", VEC_SECRET, "", VEC_SIG, VEC_BODY, VEC_TS_NUM, SLACK_SIG_MISSING},
    {"empty signature", VEC_SECRET, VEC_TS, "", VEC_BODY, VEC_TS_NUM, SLACK_SIG_MISSING},
    {"absent timestamp", VEC_SECRET, NULL, VEC_SIG, VEC_BODY, VEC_TS_NUM, SLACK_SIG_MISSING},
    {"absent signature", VEC_SECRET, VEC_TS, NULL, VEC_BODY, VEC_TS_NUM, SLACK_SIG_MISSING},
    {"empty secret", "", VEC_TS, VEC_SIG, VEC_BODY, VEC_TS_NUM, SLACK_SIG_MISSING},
};

START_TEST(test_verify)
{
	const char *body = sig_cases[_i].body;
	enum slack_sig got = slack_verify(sig_cases[_i].secret, sig_cases[_i].ts, sig_cases[_i].sig,
	                                  body, strlen(body), sig_cases[_i].now);

	ck_assert_msg(got == sig_cases[_i].want, "%s: got %d, want %d", sig_cases[_i].name, got,
	              sig_cases[_i].want);
}
END_TEST

START_TEST(test_sign_vector)
{
	char sig[68];

	slack_sign(VEC_SECRET, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig);
	ck_assert_str_eq(sig, VEC_SIG);
}
END_TEST

/* The body length counts: bytes past len are not signed, embedded NULs are. */
START_TEST(test_sign_raw_bytes)
{
	static const char body[] = "a=1\0b=2";
	char whole[68], prefix[68];

	slack_sign("s", "100", body, sizeof(body) - 1, whole);
	slack_sign("s", "100", body, 3, prefix);
	ck_assert_str_ne(whole, prefix);
	ck_assert_int_eq(slack_verify("s", "100", whole, body, sizeof(body) - 1, 100),
	                 SLACK_SIG_OK);
	ck_assert_int_eq(slack_verify("s", "100", whole, body, 3, 100), SLACK_SIG_MISMATCH);
	ck_assert_int_eq(slack_verify("s", "100", prefix, body, 3, 100), SLACK_SIG_OK);
}
END_TEST

START_TEST(test_sign_empty_body)
{
	char sig[68];

	slack_sign("secret", "1700000000", NULL, 0, sig);
	ck_assert_uint_eq(strlen(sig), 67);
	ck_assert_int_eq(slack_verify("secret", "1700000000", sig, "", 0, 1700000000),
	                 SLACK_SIG_OK);
}
END_TEST

/* --- route handlers: the checks that come before anything else -------- */

typedef void (*route_fn)(struct request *, struct response *);

static const route_fn routes[] = {slack_http_commands, slack_http_interactivity, slack_http_events};

static char *saved_signing_secret;

static void
save_conf(void)
{
	saved_signing_secret = conf.slack_signing_secret;
}

static void
restore_conf(void)
{
	conf.slack_signing_secret = saved_signing_secret;
}

/* A request without a connection has no headers at all. */
static void
run_route(route_fn fn, const char *body, struct response *res)
{
	struct request req = {.method = "POST", .path = "/slack/test"};

	req.body = xstrdup(body);
	req.body_len = strlen(body);
	memset(res, 0, sizeof(*res));
	fn(&req, res);
	free(req.body);
}

START_TEST(test_route_unconfigured)
{
	struct response res;

	conf.slack_signing_secret = "";
	run_route(routes[_i], "team_id=T1&user_id=U1&channel_id=C1&command=%2Fdibs", &res);
	ck_assert_int_eq(res.status, 503);
	ck_assert_ptr_nonnull(strstr(res.body, "set slack_signing_secret"));
	free(res.body);
}
END_TEST

START_TEST(test_route_unsigned)
{
	struct response res;

	conf.slack_signing_secret = "topsecret";
	run_route(routes[_i], "{\"type\":\"url_verification\",\"challenge\":\"c\"}", &res);
	ck_assert_int_eq(res.status, 401);
	ck_assert_ptr_null(strstr(res.body, "topsecret"));
	ck_assert_ptr_null(strstr(res.body, "\"challenge\""));
	free(res.body);
}
END_TEST

/* --- replies ---------------------------------------------------------- */

static void
assert_json_eq(json_t *got, const char *want_text)
{
	json_t *want = json_loads(want_text, 0, NULL);
	char *dump = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);

	ck_assert_ptr_nonnull(want);
	ck_assert_msg(json_equal(got, want), "got %s, want %s", dump, want_text);
	free(dump);
	json_decref(want);
}

START_TEST(test_msg_ephemeral)
{
	json_t *msg = slack_msg(0, "hi", NULL);

	assert_json_eq(msg, "{\"response_type\":\"ephemeral\",\"text\":\"hi\"}");
	json_decref(msg);
}
END_TEST

START_TEST(test_msg_in_channel_with_blocks)
{
	json_t *blocks = json_array();
	json_t *msg;

	json_array_append_new(blocks, slack_section("*x* holds it"));
	msg = slack_msg(1, "x holds it", blocks);
	assert_json_eq(msg, "{\"response_type\":\"in_channel\",\"text\":\"x holds it\","
	                    "\"blocks\":[{\"type\":\"section\","
	                    "\"text\":{\"type\":\"mrkdwn\",\"text\":\"*x* holds it\"}}]}");
	json_decref(msg);
}
END_TEST

START_TEST(test_context)
{
	json_t *b = slack_context("_queued_");

	assert_json_eq(b, "{\"type\":\"context\","
	                  "\"elements\":[{\"type\":\"mrkdwn\",\"text\":\"_queued_\"}]}");
	json_decref(b);
}
END_TEST

START_TEST(test_buttons_and_actions)
{
	json_t *elements = json_array();
	json_t *block;

	json_array_append_new(elements, slack_button("Yes", "lunch.yes", "12:00", "primary"));
	json_array_append_new(elements, slack_button("No", "lunch.no", "", NULL));
	block = slack_actions(elements);
	assert_json_eq(block,
	               "{\"type\":\"actions\",\"elements\":["
	               "{\"type\":\"button\",\"text\":{\"type\":\"plain_text\",\"text\":\"Yes\","
	               "\"emoji\":true},\"action_id\":\"lunch.yes\",\"value\":\"12:00\","
	               "\"style\":\"primary\"},"
	               "{\"type\":\"button\",\"text\":{\"type\":\"plain_text\",\"text\":\"No\","
	               "\"emoji\":true},\"action_id\":\"lunch.no\",\"value\":\"\"}]}");
	json_decref(block);
}
END_TEST

/* Invalid UTF-8 (a lone continuation byte, an overlong, a surrogate) is
 * replaced rather than losing the whole message. */
START_TEST(test_msg_invalid_utf8)
{
	json_t *msg = slack_msg(0,
	                        "a\x80"
	                        "b\xc0\xaf"
	                        "c\xed\xa0\x80"
	                        "d\xc3\xa9",
	                        NULL);

	ck_assert_ptr_nonnull(msg);
	ck_assert_str_eq(json_string_value(json_object_get(msg, "text")), "a?b??c???d\xc3\xa9");
	json_decref(msg);
}
END_TEST

START_TEST(test_reply)
{
	struct response res = {0};
	json_t *body;

	slack_reply(&res, slack_msg(1, "done", NULL));
	ck_assert_int_eq(res.status, 200);
	ck_assert_str_eq(res.content_type, "application/json");
	ck_assert_uint_eq(res.body_len, strlen(res.body));
	body = json_loadb(res.body, res.body_len, 0, NULL);
	assert_json_eq(body, "{\"response_type\":\"in_channel\",\"text\":\"done\"}");
	json_decref(body);
	free(res.body);
}
END_TEST

START_TEST(test_reply_text)
{
	struct response res = {0};
	json_t *body;

	slack_reply_text(&res, "Unknown command");
	ck_assert_int_eq(res.status, 200);
	ck_assert_str_eq(res.content_type, "application/json");
	body = json_loadb(res.body, res.body_len, 0, NULL);
	assert_json_eq(body, "{\"response_type\":\"ephemeral\",\"text\":\"Unknown command\"}");
	json_decref(body);
	free(res.body);
}
END_TEST

/* --- job results ------------------------------------------------------ */

static const struct {
	enum slack_outcome outcome;
	const char *error;
	enum job_result want;
	const char *want_error; /* NULL: not checked */
} job_cases[] = {
    {SLACK_OK, "", JOB_DONE, NULL},
    {SLACK_TRANSPORT, "Timeout was reached", JOB_RETRY, "Timeout was reached"},
    {SLACK_TRANSPORT, "HTTP 502", JOB_RETRY, "HTTP 502"},
    {SLACK_NO_TOKEN, "", JOB_DEAD, "team has no active installation"},
    {SLACK_FAILED, "invalid_auth", JOB_DEAD, "invalid_auth"},
    {SLACK_FAILED, "account_inactive", JOB_DEAD, "account_inactive"},
    {SLACK_FAILED, "token_revoked", JOB_DEAD, "token_revoked"},
    {SLACK_FAILED, "channel_not_found", JOB_DEAD, "channel_not_found"},
    {SLACK_FAILED, "not_in_channel", JOB_DEAD, "not_in_channel"},
    {SLACK_FAILED, "user_not_found", JOB_DEAD, "user_not_found"},
    {SLACK_FAILED, "is_archived", JOB_DEAD, "is_archived"},
    {SLACK_FAILED, "invalid_blocks", JOB_DEAD, "invalid_blocks"},
    {SLACK_FAILED, "invalid_arguments", JOB_DEAD, "invalid_arguments"},
    {SLACK_FAILED, "missing_scope", JOB_DEAD, "missing_scope"},
    {SLACK_FAILED, "no_permission", JOB_DEAD, "no_permission"},
    {SLACK_FAILED, "cannot_dm_bot", JOB_DEAD, "cannot_dm_bot"},
    {SLACK_FAILED, "user_disabled", JOB_DEAD, "user_disabled"},
    {SLACK_FAILED, "unknown_method", JOB_DEAD, "unknown_method"},
    {SLACK_FAILED, "ratelimited", JOB_RETRY, "ratelimited"},
    {SLACK_FAILED, "internal_error", JOB_RETRY, "internal_error"},
    {SLACK_FAILED, "fatal_error", JOB_RETRY, "fatal_error"},
    {SLACK_FAILED, "service_unavailable", JOB_RETRY, "service_unavailable"},
    {SLACK_FAILED, "request_timeout", JOB_RETRY, "request_timeout"},
};

START_TEST(test_job_result)
{
	struct slack_result r = {.outcome = job_cases[_i].outcome};
	struct job job = {.kind = "slack.call"};
	enum job_result got;

	snprintf(r.error, sizeof(r.error), "%s", job_cases[_i].error);
	got = slack_job_result(&r, &job);
	ck_assert_msg(got == job_cases[_i].want, "%d/%s: got %d, want %d", job_cases[_i].outcome,
	              job_cases[_i].error, got, job_cases[_i].want);
	if (job_cases[_i].want_error)
		ck_assert_str_eq(job.error, job_cases[_i].want_error);
}
END_TEST

START_TEST(test_job_result_ratelimited)
{
	struct slack_result r = {.outcome = SLACK_RATELIMITED, .retry_after = 42};
	struct job job = {.kind = "slack.call"};
	double before = now_seconds();

	ck_assert_int_eq(slack_job_result(&r, &job), JOB_RETRY_AT);
	ck_assert(job.retry_at >= before + 42 && job.retry_at <= now_seconds() + 42);
}
END_TEST

/* --- Web API client against a local fake ------------------------------ */

/* One connection at a time: read a request, remember it, send the canned
 * answer, close. */
static struct {
	pthread_t thread;
	int fd;
	int port;
	pthread_mutex_t lock;
	const char *answer; /* whole HTTP response */
	size_t answer_len;
	struct buf last; /* the last request, head and body */
	int requests;
	char *saved_api_url, *saved_client_id, *saved_client_secret;
	char api_url[64];
} fake = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void
read_request(int c, struct buf *req)
{
	char chunk[4096], *head_end, *cl;
	long long want = 0;
	ssize_t n;

	while ((head_end = strstr(req->data, "\r\n\r\n")) == NULL ||
	       (long long)(req->len - (size_t)(head_end + 4 - req->data)) < want) {
		if ((n = read(c, chunk, sizeof(chunk))) <= 0)
			return;
		buf_append(req, chunk, (size_t)n);
		head_end = strstr(req->data, "\r\n\r\n");
		cl = strcasestr(req->data, "\r\nContent-Length: ");
		if (head_end && cl && cl < head_end)
			want = strtoll(cl + 18, NULL, 10);
	}
}

static void *
fake_serve(void *arg)
{
	int c;

	while ((c = accept(fake.fd, NULL, NULL)) >= 0) {
		struct buf req;
		char *answer;
		size_t len;

		buf_init(&req);
		read_request(c, &req);
		/* A copy: the client may return, and the test free its answer,
		 * before send() is done with these bytes. */
		pthread_mutex_lock(&fake.lock);
		buf_free(&fake.last);
		fake.last = req;
		fake.requests++;
		len = fake.answer_len;
		answer = xmalloc(len + 1);
		memcpy(answer, fake.answer, len);
		pthread_mutex_unlock(&fake.lock);
		for (size_t off = 0; off < len;) {
			ssize_t n = send(c, answer + off, len - off, MSG_NOSIGNAL);

			if (n <= 0)
				break;
			off += (size_t)n;
		}
		free(answer);
		close(c);
	}
	return NULL;
}

static void
fake_answer(const char *answer)
{
	pthread_mutex_lock(&fake.lock);
	fake.answer = answer;
	fake.answer_len = strlen(answer);
	pthread_mutex_unlock(&fake.lock);
}

static void
fake_start(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);

	buf_init(&fake.last);
	fake.requests = 0;
	fake.fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fake.fd, 0);
	ck_assert_int_eq(bind(fake.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fake.fd, 8), 0);
	ck_assert_int_eq(getsockname(fake.fd, (struct sockaddr *)&a, &alen), 0);
	fake.port = ntohs(a.sin_port);
	snprintf(fake.api_url, sizeof(fake.api_url), "http://127.0.0.1:%d/api", fake.port);
	fake.saved_api_url = conf.slack_api_url;
	fake.saved_client_id = conf.slack_client_id;
	fake.saved_client_secret = conf.slack_client_secret;
	conf.slack_api_url = fake.api_url;
	conf.slack_client_id = "cid";
	conf.slack_client_secret = "csecret";
	ck_assert_int_eq(pthread_create(&fake.thread, NULL, fake_serve, NULL), 0);
}

static void
fake_stop(void)
{
	shutdown(fake.fd, SHUT_RDWR);
	pthread_join(fake.thread, NULL);
	close(fake.fd);
	buf_free(&fake.last);
	conf.slack_api_url = fake.saved_api_url;
	conf.slack_client_id = fake.saved_client_id;
	conf.slack_client_secret = fake.saved_client_secret;
}

static int
last_request_has(const char *s)
{
	int found;

	pthread_mutex_lock(&fake.lock);
	found = strstr(fake.last.data, s) != NULL;
	pthread_mutex_unlock(&fake.lock);
	return found;
}

static char *
http_answer(int status, const char *extra_headers, const char *body)
{
	return xasprintf("HTTP/1.1 %d X\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n%s",
	                 status, extra_headers, strlen(body), body);
}

START_TEST(test_call_ok)
{
	char *answer = http_answer(200, "", "{\"ok\":true,\"ts\":\"1.2\"}");
	json_t *args = json_pack("{s:s, s:s}", "channel", "C1", "text", "hi");
	struct slack_result r;

	fake_answer(answer);
	ck_assert_int_eq(slack_call("xoxb-test", "chat.postMessage", args, &r), SLACK_OK);
	ck_assert_int_eq(r.outcome, SLACK_OK);
	ck_assert_int_eq(r.http_status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.body, "ts")), "1.2");
	ck_assert(last_request_has("POST /api/chat.postMessage HTTP/1.1\r\n"));
	ck_assert(last_request_has("\r\nAuthorization: Bearer xoxb-test\r\n"));
	ck_assert(last_request_has("\r\nContent-Type: application/json; charset=utf-8\r\n"));
	ck_assert(last_request_has("\r\n\r\n{\"channel\":\"C1\",\"text\":\"hi\"}"));
	slack_result_free(&r);
	ck_assert_ptr_null(r.body);
	json_decref(args);
	free(answer);
}
END_TEST

/* The handle is kept per thread: a second call must not inherit the first
 * one's state (its body, its auth). */
START_TEST(test_call_twice)
{
	char *answer = http_answer(200, "", "{\"ok\":true}");
	struct slack_result r;

	fake_answer(answer);
	ck_assert_int_eq(slack_call("xoxb-one", "auth.test", NULL, &r), SLACK_OK);
	slack_result_free(&r);
	ck_assert_int_eq(slack_call_basic("oauth.v2.access", "code=abc", &r), SLACK_OK);
	slack_result_free(&r);
	ck_assert(!last_request_has("Bearer"));
	ck_assert(last_request_has("\r\n\r\ncode=abc"));
	ck_assert_int_eq(slack_call("xoxb-two", "auth.test", NULL, &r), SLACK_OK);
	slack_result_free(&r);
	ck_assert(last_request_has("\r\nAuthorization: Bearer xoxb-two\r\n"));
	ck_assert(last_request_has("\r\n\r\n{}"));
	ck_assert_int_eq(fake.requests, 3);
	free(answer);
}
END_TEST

START_TEST(test_call_basic)
{
	char *answer = http_answer(200, "", "{\"ok\":true,\"access_token\":\"xoxb-new\"}");
	char *creds = base64_encode((const unsigned char *)"cid:csecret", 11);
	char *want = xasprintf("\r\nAuthorization: Basic %s\r\n", creds);
	struct slack_result r;

	fake_answer(answer);
	ck_assert_int_eq(slack_call_basic("oauth.v2.access", "code=c1&redirect_uri=x", &r),
	                 SLACK_OK);
	ck_assert(last_request_has("POST /api/oauth.v2.access HTTP/1.1\r\n"));
	ck_assert(last_request_has(want));
	ck_assert(last_request_has("\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
	ck_assert(last_request_has("\r\n\r\ncode=c1&redirect_uri=x"));
	slack_result_free(&r);
	free(want);
	free(creds);
	free(answer);
}
END_TEST

static const struct {
	int status;
	const char *headers, *body;
	enum slack_outcome want;
	const char *want_error;
	double want_retry_after;
} answer_cases[] = {
    {200, "", "{\"ok\":false,\"error\":\"channel_not_found\"}", SLACK_FAILED, "channel_not_found",
     0},
    {200, "", "{\"ok\":false}", SLACK_FAILED, "unknown_error", 0},
    {200, "",
     "{\"ok\":false,\"error\":\"a_very_long_error_code_that_does_not_fit_in_sixty_four_bytes_"
     "of_room\"}",
     SLACK_FAILED, "a_very_long_error_code_that_does_not_fit_in_sixty_four_bytes_of", 0},
    {429, "Retry-After: 7\r\n", "", SLACK_RATELIMITED, "ratelimited", 7},
    {429, "", "", SLACK_RATELIMITED, "ratelimited", 30},
    {429, "Retry-After: soon\r\n", "", SLACK_RATELIMITED, "ratelimited", 30},
    {429, "Retry-After: 0\r\n", "", SLACK_RATELIMITED, "ratelimited", 1},
    {429, "Retry-After: 86400\r\n", "", SLACK_RATELIMITED, "ratelimited", 3600},
    {429, "Retry-After: -5\r\n", "", SLACK_RATELIMITED, "ratelimited", 30},
    {500, "", "{\"ok\":false,\"error\":\"internal_error\"}", SLACK_TRANSPORT, "HTTP 500", 0},
    {503, "", "", SLACK_TRANSPORT, "HTTP 503", 0},
    {200, "", "<html>oops</html>", SLACK_TRANSPORT, "response is not a JSON object", 0},
    {200, "", "[true]", SLACK_TRANSPORT, "response is not a JSON object", 0},
};

START_TEST(test_call_answers)
{
	char *answer =
	    http_answer(answer_cases[_i].status, answer_cases[_i].headers, answer_cases[_i].body);
	struct slack_result r;

	fake_answer(answer);
	ck_assert_int_eq(slack_call("xoxb-test", "chat.postMessage", NULL, &r),
	                 answer_cases[_i].want);
	ck_assert_int_eq(r.outcome, answer_cases[_i].want);
	ck_assert_str_eq(r.error, answer_cases[_i].want_error);
	ck_assert_int_eq(r.http_status, answer_cases[_i].status);
	if (answer_cases[_i].want == SLACK_RATELIMITED)
		ck_assert(r.retry_after == answer_cases[_i].want_retry_after);
	slack_result_free(&r);
	free(answer);
}
END_TEST

START_TEST(test_call_too_large)
{
	size_t n = 5 * 1024 * 1024;
	char *body = xmalloc(n + 1);
	char *answer;
	struct slack_result r;

	memset(body, ' ', n);
	body[n] = '\0';
	answer = http_answer(200, "", body);
	free(body);
	fake_answer(answer);
	ck_assert_int_eq(slack_call("xoxb-test", "conversations.members", NULL, &r),
	                 SLACK_TRANSPORT);
	ck_assert_str_eq(r.error, "response over 4 MiB");
	ck_assert_ptr_null(r.body);
	slack_result_free(&r);
	free(answer);
}
END_TEST

START_TEST(test_call_refused)
{
	struct slack_result r;

	/* Our own listening socket, shut: nothing answers on that port now. */
	shutdown(fake.fd, SHUT_RDWR);
	close(fake.fd);
	fake.fd = -1;
	ck_assert_int_eq(slack_call("xoxb-test", "auth.test", NULL, &r), SLACK_TRANSPORT);
	ck_assert_str_ne(r.error, "");
	slack_result_free(&r);
}
END_TEST

START_TEST(test_call_no_token)
{
	struct slack_result r;

	ck_assert_int_eq(slack_call(NULL, "auth.test", NULL, &r), SLACK_NO_TOKEN);
	ck_assert_int_eq(slack_call("", "auth.test", NULL, &r), SLACK_NO_TOKEN);
	ck_assert_int_eq(fake.requests, 0);
}
END_TEST

START_TEST(test_call_bad_method)
{
	struct slack_result r;

	ck_assert_int_eq(slack_call("xoxb-test", "../admin", NULL, &r), SLACK_FAILED);
	ck_assert_str_eq(r.error, "unknown_method");
	ck_assert_int_eq(slack_call("xoxb-test", "chat.postMessage?x=1", NULL, &r), SLACK_FAILED);
	ck_assert_int_eq(slack_call("xoxb-test", "", NULL, &r), SLACK_FAILED);
	ck_assert_int_eq(fake.requests, 0);
}
END_TEST

/* Where a response_url may point: Slack's hooks host, or the host (and
 * port) of slack_api_url for a test's fake; nothing else. */
static const struct {
	const char *api, *url;
	int ok;
} response_url_cases[] = {
    {"https://slack.com/api", "https://hooks.slack.com/commands/T1/123/abc", 1},
    {"https://slack.com/api", "https://hooks.slack.com/actions/T1/123/abc", 1},
    {"https://slack.com/api", "http://hooks.slack.com/commands/T1/123/abc", 0},
    {"https://slack.com/api", "https://hooks.slack.com.evil.example/commands/x", 0},
    {"https://slack.com/api", "https://hooks.slack.com", 0},
    {"https://slack.com/api", "https://evil.example/https://hooks.slack.com/", 0},
    {"https://slack.com/api", "https://hooks.slack.com/commands/a b", 0},
    {"https://slack.com/api", "https://hooks.slack.com/commands/a\nb", 0},
    {"https://slack.com/api", "https://slack.com/api/chat.postMessage", 1},
    {"https://slack.com/api", "https://slack.com.evil.example/x", 0},
    {"https://slack.com/api", "", 0},
    {"http://127.0.0.1:9000/api", "http://127.0.0.1:9000/hooks/commands/x", 1},
    {"http://127.0.0.1:9000/api", "http://127.0.0.1:9001/hooks/commands/x", 0},
    {"http://127.0.0.1:9000/api", "http://127.0.0.1:90000/hooks/commands/x", 0},
    {"http://127.0.0.1:9000/api", "http://127.0.0.1:9000@evil.example/x", 0},
    {"http://127.0.0.1:9000", "http://127.0.0.1:9000/hooks/commands/x", 1},
    {"", "http://127.0.0.1:9000/hooks/commands/x", 0},
};

START_TEST(test_response_url_ok)
{
	char *saved = conf.slack_api_url, api[64];

	snprintf(api, sizeof(api), "%s", response_url_cases[_i].api);
	conf.slack_api_url = api;
	ck_assert_msg(slack_response_url_ok(response_url_cases[_i].url) ==
	                  response_url_cases[_i].ok,
	              "%s with %s", response_url_cases[_i].url, response_url_cases[_i].api);
	ck_assert_int_eq(slack_response_url_ok(NULL), 0);
	conf.slack_api_url = saved;
}
END_TEST

/* Which team and org an Events API envelope is for: the workspace when
 * there is one, the org (an org-level event of an org-wide install) when
 * not; the org only when authorizations[0] says is_enterprise_install. */
static const struct {
	const char *json;
	const char *team;
	const char *org;
} envelope_cases[] = {
    {"{\"team_id\":\"T0AAA0001\",\"authorizations\":[{\"team_id\":\"T0AAA0001\","
     "\"is_enterprise_install\":false}]}",
     "T0AAA0001", NULL},
    {"{\"authorizations\":[{\"team_id\":\"T0AAA0002\"}]}", "T0AAA0002", NULL},
    {"{\"team_id\":\"T0WS00001\",\"enterprise_id\":\"E0123ABCD\",\"authorizations\":[{"
     "\"enterprise_id\":\"E0123ABCD\",\"team_id\":null,\"is_enterprise_install\":true}]}",
     "T0WS00001", "E0123ABCD"},
    {"{\"enterprise_id\":\"E0123ABCD\",\"authorizations\":[{\"enterprise_id\":\"E0123ABCD\","
     "\"team_id\":null,\"is_enterprise_install\":true}]}",
     "E0123ABCD", "E0123ABCD"},
    {"{\"team_id\":\"\",\"enterprise_id\":\"E0123ABCD\",\"authorizations\":[{"
     "\"is_enterprise_install\":true}]}",
     "E0123ABCD", "E0123ABCD"},
    /* an org named without the flag is not an org-wide install */
    {"{\"team_id\":\"T0WS00001\",\"enterprise_id\":\"E0123ABCD\",\"authorizations\":[{"
     "\"enterprise_id\":\"E0123ABCD\",\"team_id\":\"T0WS00001\",\"is_enterprise_install\":false}]}",
     "T0WS00001", NULL},
    /* malformed org ids are no org */
    {"{\"authorizations\":[{\"enterprise_id\":\"T0123ABCD\",\"is_enterprise_install\":true}]}",
     NULL, NULL},
    {"{\"authorizations\":[{\"enterprise_id\":\"E0'; DROP\",\"is_enterprise_install\":true}]}",
     NULL, NULL},
    {"{\"authorizations\":[{\"enterprise_id\":\"E0\",\"is_enterprise_install\":true}]}", NULL,
     NULL},
    {"{}", NULL, NULL},
};

START_TEST(test_event_team)
{
	json_t *env = json_loads(envelope_cases[_i].json, 0, NULL);
	const char *team, *org;

	ck_assert_ptr_nonnull(env);
	team = slack_event_team(env);
	org = slack_event_enterprise(env);
	if (envelope_cases[_i].team == NULL)
		ck_assert_msg(team == NULL, "case %d: team %s", _i, team);
	else
		ck_assert_msg(team && strcmp(team, envelope_cases[_i].team) == 0,
		              "case %d: team %s", _i, team ? team : "(null)");
	if (envelope_cases[_i].org == NULL)
		ck_assert_msg(org == NULL, "case %d: org %s", _i, org);
	else
		ck_assert_msg(org && strcmp(org, envelope_cases[_i].org) == 0, "case %d: org %s",
		              _i, org ? org : "(null)");
	json_decref(env);
}
END_TEST

/* One date token for every reply: whole seconds (PostgreSQL's epochs carry
 * a fraction, which Slack does not read) and a UTC fallback. */
START_TEST(test_date_token)
{
	char out[SLACK_DATE_TOKEN_MAX];

	ck_assert_str_eq(slack_date_token(out, sizeof(out), 1796660787.759496, "{time}"),
	                 "<!date^1796660787^{time}|2026-12-07 16:26 UTC>");
	ck_assert_str_eq(slack_date_token(out, sizeof(out), 0, "{date_short_pretty} at {time}"),
	                 "<!date^0^{date_short_pretty} at {time}|1970-01-01 00:00 UTC>");
}
END_TEST

static Suite *
slack_suite(void)
{
	Suite *s = suite_create("slack");
	TCase *sig = tcase_create("signatures");
	TCase *routes_tc = tcase_create("routes");
	TCase *replies = tcase_create("replies");
	TCase *jobs = tcase_create("job results");
	TCase *client = tcase_create("web api client");

	tcase_add_loop_test(sig, test_verify, 0, ARRAY_LEN(sig_cases));
	tcase_add_test(sig, test_sign_vector);
	tcase_add_test(sig, test_sign_raw_bytes);
	tcase_add_test(sig, test_sign_empty_body);
	tcase_add_loop_test(sig, test_event_team, 0, ARRAY_LEN(envelope_cases));
	suite_add_tcase(s, sig);

	tcase_add_checked_fixture(routes_tc, save_conf, restore_conf);
	tcase_add_loop_test(routes_tc, test_route_unconfigured, 0, ARRAY_LEN(routes));
	tcase_add_loop_test(routes_tc, test_route_unsigned, 0, ARRAY_LEN(routes));
	suite_add_tcase(s, routes_tc);

	tcase_add_test(replies, test_msg_ephemeral);
	tcase_add_test(replies, test_msg_in_channel_with_blocks);
	tcase_add_test(replies, test_context);
	tcase_add_test(replies, test_buttons_and_actions);
	tcase_add_test(replies, test_msg_invalid_utf8);
	tcase_add_test(replies, test_reply);
	tcase_add_test(replies, test_reply_text);
	suite_add_tcase(s, replies);

	tcase_add_loop_test(jobs, test_job_result, 0, ARRAY_LEN(job_cases));
	tcase_add_test(jobs, test_job_result_ratelimited);
	tcase_add_loop_test(jobs, test_response_url_ok, 0, ARRAY_LEN(response_url_cases));
	suite_add_tcase(s, jobs);

	tcase_add_checked_fixture(client, fake_start, fake_stop);
	tcase_set_timeout(client, 30);
	tcase_add_test(client, test_call_ok);
	tcase_add_test(client, test_call_twice);
	tcase_add_test(client, test_call_basic);
	tcase_add_loop_test(client, test_call_answers, 0, ARRAY_LEN(answer_cases));
	tcase_add_test(client, test_call_too_large);
	tcase_add_test(client, test_call_refused);
	tcase_add_test(client, test_call_no_token);
	tcase_add_test(client, test_call_bad_method);
	tcase_add_test(replies, test_date_token);
	suite_add_tcase(s, client);
	return s;
}

UNIT_SUITE(slack_suite)
