/* The Slack Web API client: calls as transfers in the outbound engine,
 * paced per team and method from Slack's published tiers, answered
 * either to a waiting caller or, for jobs, asynchronously. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "conf.h"
#include "db.h"
#include "engine.h"
#include "instances.h"
#include "log.h"
#include "metrics.h"
#include "outbound.h"
#include "slack.h"
#include "teams.h"
#include "util.h"
#include "vault.h"

#define METHOD_NAME_MAX     64
#define RESPONSE_MAX        (4 * 1024 * 1024)
#define CONNECT_TIMEOUT     5
#define RETRY_AFTER_DEFAULT 30
#define RETRY_AFTER_MAX     3600
#define PACE_KEY_MAX        160

/* --- pacing ------------------------------------------------------------ */

/* Slack limits each method per app and workspace by tier (calls a
 * minute, some burst): Tier 1 1+, Tier 2 20+, Tier 3 50+, Tier 4 100+.
 * One row per method conch calls. The bucket refills at the published
 * floor and holds BURST_SHARE of a minute's calls, so any 60 seconds see
 * at most 1.15 times the floor: inside the "+" Slack allows. */
static const struct pace_row {
	const char *method;
	int tier; /* as Slack's reference page gives it; 0: special */
	double per_minute;
} pace_rows[] = {
    {"chat.postMessage", 0, 525}, /* special: ~1/s per channel; ~525/min a workspace */
    {"chat.update", 3, 50},       {"conversations.members", 4, 100}, {"conversations.open", 3, 50},
    {"users.info", 4, 100},       {"views.publish", 4, 100},         {"auth.test", 4, 100},
};

#define BURST_SHARE 0.15
/* chat.postMessage to one channel: one a second, two at once. */
#define CHANNEL_RATE  1.0
#define CHANNEL_BURST 2.0
/* Methods missing from the table are paced as Tier 2, the most common. */
#define DEFAULT_PER_MINUTE 20

static const struct pace_row *
pace_row(const char *method)
{
	static const struct pace_row fallback = {"", 2, DEFAULT_PER_MINUTE};

	for (size_t i = 0; i < ARRAY_LEN(pace_rows); i++)
		if (strcmp(pace_rows[i].method, method) == 0)
			return &pace_rows[i];
	return &fallback;
}

static void
method_key(char out[PACE_KEY_MAX], const char *team, const char *method)
{
	snprintf(out, PACE_KEY_MAX, "slack/%s/%s", team, method);
}

/* --- one call ------------------------------------------------------------ */

struct xfer {
	CURL *h;
	struct curl_slist *headers;
	struct outbound_sink sink;
	char *url;
	char *body;
	size_t len;
	int basic; /* HTTP Basic client credentials instead of a bearer token */
	int hook;  /* a response_url: answered "ok" (or an error word), not JSON */
	char method[METHOD_NAME_MAX + 1];
	char team[64];
	char key[PACE_KEY_MAX], channel_key[PACE_KEY_MAX + 32];
	int64_t start;
	struct slack_result *out;
	slack_done done;
	void *arg;
};

static struct curl_slist *
call_headers(const char *content_type, const char *token)
{
	struct curl_slist *headers = NULL;
	char *line;

	line = xasprintf("Content-Type: %s", content_type);
	headers = curl_slist_append(headers, line);
	free(line);
	/* Without this curl waits for "100 Continue" on larger bodies. */
	headers = curl_slist_append(headers, "Expect:");
	if (token) {
		line = xasprintf("Authorization: Bearer %s", token);
		headers = curl_slist_append(headers, line);
		OPENSSL_cleanse(line, strlen(line));
		free(line);
	}
	return headers;
}

static void
call_options(struct xfer *x)
{
	CURL *h = x->h;

	curl_easy_setopt(h, CURLOPT_URL, x->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "conch");
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)SLACK_TIMEOUT_SECONDS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, outbound_sink_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x->sink);
	if (x->basic) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME,
		                 conf.slack_client_id ? conf.slack_client_id : "");
		curl_easy_setopt(h, CURLOPT_PASSWORD,
		                 conf.slack_client_secret ? conf.slack_client_secret : "");
	}
}

static double
retry_after(CURL *h)
{
	struct curl_header *hdr;
	long long secs;

	if (curl_easy_header(h, "Retry-After", 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK ||
	    strnum(hdr->value, 0, 1000000000LL, &secs) < 0)
		return RETRY_AFTER_DEFAULT;
	if (secs < 1)
		return 1;
	return secs > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : (double)secs;
}

static enum slack_outcome
transport_error(struct slack_result *out, const char *reason)
{
	snprintf(out->error, sizeof(out->error), "%s", reason);
	return out->outcome = SLACK_TRANSPORT;
}

/* A response_url answers 200 with "ok" or {"ok":true}, or an error, 404
 * for one expired or used up, as {"ok":false,"error":"expired_url"} or
 * the bare word; 5xx may pass. */
static enum slack_outcome
classify_hook(struct outbound_sink *sink, struct slack_result *out)
{
	json_t *body = json_loadb(sink->buf.data, sink->buf.len, 0, NULL);
	const char *word = json_string_value(json_object_get(body, "error"));
	size_t n = 0;

	if (out->http_status == 200 && !json_is_false(json_object_get(body, "ok"))) {
		json_decref(body);
		return out->outcome = SLACK_OK;
	}
	if (word == NULL) {
		while (n < sink->buf.len && n + 1 < sizeof(out->error) &&
		       (islower((unsigned char)sink->buf.data[n]) || sink->buf.data[n] == '_'))
			n++;
	}
	if (word)
		snprintf(out->error, sizeof(out->error), "%s", word);
	else if (n > 0)
		snprintf(out->error, sizeof(out->error), "%.*s", (int)n, sink->buf.data);
	else
		snprintf(out->error, sizeof(out->error), "HTTP %ld", out->http_status);
	json_decref(body);
	return out->outcome = out->http_status >= 500 ? SLACK_TRANSPORT : SLACK_FAILED;
}

static enum slack_outcome
classify(CURL *h, CURLcode rc, struct outbound_sink *sink, int hook, struct slack_result *out)
{
	const char *error;

	if (rc == ENGINE_STOPPED) {
		out->stopped = 1;
		return transport_error(out, "not sent: conch is stopping or busy");
	}
	if (rc != CURLE_OK)
		return transport_error(out, sink->overflow ? "response over 4 MiB"
		                                           : curl_easy_strerror(rc));
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->http_status);
	if (out->http_status == 429) {
		out->retry_after = retry_after(h);
		snprintf(out->error, sizeof(out->error), "ratelimited");
		return out->outcome = SLACK_RATELIMITED;
	}
	if (hook)
		return classify_hook(sink, out);
	if (out->http_status != 200) {
		snprintf(out->error, sizeof(out->error), "HTTP %ld", out->http_status);
		return out->outcome = SLACK_TRANSPORT;
	}
	out->body = json_loadb(sink->buf.data, sink->buf.len, 0, NULL);
	if (!json_is_object(out->body)) {
		json_decref(out->body);
		out->body = NULL;
		return transport_error(out, "response is not a JSON object");
	}
	if (json_is_true(json_object_get(out->body, "ok")))
		return out->outcome = SLACK_OK;
	error = json_string_value(json_object_get(out->body, "error"));
	snprintf(out->error, sizeof(out->error), "%s", error && *error ? error : "unknown_error");
	return out->outcome = SLACK_FAILED;
}

static const char *
outcome_label(const struct slack_result *r)
{
	switch (r->outcome) {
	case SLACK_OK:
		return "ok";
	case SLACK_FAILED:
		return "error";
	case SLACK_RATELIMITED:
		return "ratelimited";
	default:
		return r->stopped ? "deferred" : "transport";
	}
}

static void
log_outcome(const char *method, const struct slack_result *out)
{
	if (out->outcome == SLACK_RATELIMITED)
		log_info("slack: %s rate limited; retry after %.0f s", method, out->retry_after);
	else if (out->outcome == SLACK_FAILED)
		log_warn("slack: %s failed: %s", method, out->error);
	else if (out->outcome == SLACK_TRANSPORT)
		log_warn("slack: %s did not complete: %s", method, out->error);
}

/* Method names go into the URL path: letters, digits and dots only. */
static int
valid_method(const char *method)
{
	size_t n = method ? strlen(method) : 0;

	if (n == 0 || n > METHOD_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)method[i]) && method[i] != '.')
			return 0;
	return 1;
}

static void
result_init(struct slack_result *out)
{
	memset(out, 0, sizeof(*out));
	out->body = NULL;
}

/* A transfer to url (NULL: {slack_api_url}/method) ready for the engine,
 * or NULL with out set (no curl handle). Steals body. */
static struct xfer *
xfer_alloc(const char *team, const char *method, const char *url, const char *content_type,
           char *body, const char *token, struct slack_result *out)
{
	struct xfer *x = xcalloc(1, sizeof(*x));

	if ((x->h = curl_easy_init()) == NULL) {
		transport_error(out, "curl_easy_init failed");
		free(body);
		free(x);
		return NULL;
	}
	x->sink.max = RESPONSE_MAX;
	buf_init(&x->sink.buf);
	x->body = body;
	x->len = strlen(body);
	x->basic = token == NULL && url == NULL;
	x->hook = url != NULL;
	x->out = out;
	snprintf(x->method, sizeof(x->method), "%s", method);
	snprintf(x->team, sizeof(x->team), "%s", team ? team : "");
	x->url = url ? xstrdup(url)
	             : xasprintf("%s/%s", conf.slack_api_url ? conf.slack_api_url : "", method);
	x->headers = call_headers(content_type, token);
	call_options(x);
	x->start = mono_usec();
	return x;
}

/* A Web API call ready for the engine, or NULL with out set (a bad method
 * name, no curl handle). Steals body; the token is wiped from our copies. */
static struct xfer *
xfer_new(const char *team, const char *method, const char *content_type, char *body,
         const char *token, struct slack_result *out)
{
	if (!valid_method(method)) {
		log_error("slack: refusing to call a method named \"%s\"", method ? method : "");
		snprintf(out->error, sizeof(out->error), "unknown_method");
		out->outcome = SLACK_FAILED;
		free(body);
		return NULL;
	}
	return xfer_alloc(team, method, NULL, content_type, body, token, out);
}

/* The engine's view of x: its team, its buckets (with slack_pacing off
 * the buckets only carry a 429's pause). Slack's limits are the app's in
 * a workspace, whichever instance calls: each instance paces at an even
 * share of them (src/instances.h). */
static struct engine_call
xfer_engine_call(struct xfer *x, json_t *args)
{
	struct engine_call c = {.easy = x->h, .team = x->team[0] ? x->team : NULL};
	const struct pace_row *row = pace_row(x->method);
	const char *channel = json_string_value(json_object_get(args, "channel"));
	double on = conf.slack_pacing ? 1 : 0, share = 1.0 / instances_live();

	if (x->team[0] == '\0' || x->hook)
		return c; /* a response_url is no method of the Web API's tiers */
	method_key(x->key, x->team, x->method);
	c.pace[0] = (struct engine_pace){x->key, on * share * row->per_minute / 60.0,
	                                 share * row->per_minute * BURST_SHARE};
	if (strcmp(x->method, "chat.postMessage") == 0 && channel) {
		snprintf(x->channel_key, sizeof(x->channel_key), "%s/%s", x->key, channel);
		c.pace[1] = (struct engine_pace){x->channel_key, on * share * CHANNEL_RATE,
		                                 share * CHANNEL_BURST};
	}
	return c;
}

/* Reads the answer, accounts for it, frees everything but the result. */
static void
xfer_finish(struct xfer *x, CURLcode rc)
{
	classify(x->h, rc, &x->sink, x->hook, x->out);
	if (x->out->outcome == SLACK_RATELIMITED && x->key[0])
		engine_pause(x->key, x->out->retry_after);
	log_outcome(x->method, x->out);
	metrics_call("slack", x->method, outcome_label(x->out),
	             (double)(mono_usec() - x->start) / 1e6);
	if (x->basic) {
		/* Drop curl's copies of the client credentials now. */
		curl_easy_setopt(x->h, CURLOPT_USERNAME, NULL);
		curl_easy_setopt(x->h, CURLOPT_PASSWORD, NULL);
	}
	curl_easy_cleanup(x->h);
	outbound_headers_free(x->headers);
	free(x->url);
	OPENSSL_cleanse(x->body, x->len); /* an OAuth code, a message */
	free(x->body);
	buf_free(&x->sink.buf);
	free(x);
}

static enum slack_outcome
perform(struct xfer *x, json_t *args)
{
	struct slack_result *out = x->out;
	struct engine_call c = xfer_engine_call(x, args);

	xfer_finish(x, engine_perform(&c));
	return out->outcome;
}

static void
xfer_done(CURL *easy, CURLcode rc, void *arg)
{
	struct xfer *x = arg;
	struct slack_result *out = x->out;
	slack_done done = x->done;
	void *done_arg = x->arg;

	(void)easy;
	xfer_finish(x, rc);
	done(out, done_arg);
}

static char *
json_body(json_t *args, struct slack_result *out)
{
	char *body = args ? json_dumps(args, JSON_COMPACT) : xstrdup("{}");

	if (body == NULL) {
		snprintf(out->error, sizeof(out->error), "invalid_arguments");
		out->outcome = SLACK_FAILED;
	}
	return body;
}

static struct xfer *
json_xfer(const char *team, const char *token, const char *method, json_t *args,
          struct slack_result *out)
{
	char *body;

	result_init(out);
	if (token == NULL || *token == '\0') {
		out->outcome = SLACK_NO_TOKEN;
		return NULL;
	}
	if ((body = json_body(args, out)) == NULL)
		return NULL;
	return xfer_new(team, method, "application/json; charset=utf-8", body, token, out);
}

static enum slack_outcome
call_as(const char *team, const char *token, const char *method, json_t *args,
        struct slack_result *out)
{
	struct xfer *x = json_xfer(team, token, method, args, out);

	return x ? perform(x, args) : out->outcome;
}

enum slack_outcome
slack_call(const char *token, const char *method, json_t *args, struct slack_result *out)
{
	return call_as(NULL, token, method, args, out);
}

enum slack_outcome
slack_call_basic(const char *method, const char *form_body, struct slack_result *out)
{
	struct xfer *x;

	result_init(out);
	x = xfer_new(NULL, method, "application/x-www-form-urlencoded",
	             xstrdup(form_body ? form_body : ""), NULL, out);
	return x ? perform(x, NULL) : out->outcome;
}

/* Hands x to the engine; done(out, arg) runs when it ends, or at once
 * when there is no call (x NULL: out says why) or the engine refuses. */
static void
submit(struct xfer *x, json_t *args, slack_done done, void *arg, struct slack_result *out)
{
	struct engine_call c;

	if (x == NULL) {
		done(out, arg);
		return;
	}
	x->done = done;
	x->arg = arg;
	c = xfer_engine_call(x, args);
	c.done = xfer_done;
	c.arg = x;
	if (engine_submit(&c) < 0)
		xfer_done(x->h, ENGINE_STOPPED, x);
}

void
slack_call_basic_async(const char *method, const char *form_body, slack_done done, void *arg,
                       struct slack_result *out)
{
	result_init(out);
	submit(xfer_new(NULL, method, "application/x-www-form-urlencoded",
	                xstrdup(form_body ? form_body : ""), NULL, out),
	       NULL, done, arg, out);
}

static int
revokes_token(const char *error)
{
	return strcmp(error, "invalid_auth") == 0 || strcmp(error, "account_inactive") == 0 ||
	       strcmp(error, "token_revoked") == 0;
}

static void
deactivate(const char *team_id, const char *reason)
{
	struct tx tx;

	log_warn("slack: deactivating the installation: %s", reason);
	if (tx_begin(&tx, team_id) < 0)
		return;
	team_deactivate(&tx, team_id, reason);
	tx_commit(&tx);
}

/* The team's bot token (the caller frees it with vault_free_secret), or
 * NULL with out set. */
static char *
load_token(const char *team_id, struct slack_result *out)
{
	struct tx tx;
	char *token;
	int db_failed;

	result_init(out);
	if (tx_begin(&tx, team_id) < 0) {
		transport_error(out, "database unavailable");
		return NULL;
	}
	token = team_bot_token(&tx, team_id);
	db_failed = tx.failed;
	if (tx_commit(&tx) < 0)
		db_failed = 1;
	if (token == NULL) {
		if (db_failed)
			transport_error(out, "database error");
		else
			out->outcome = SLACK_NO_TOKEN;
	}
	return token;
}

static void
after_call(const char *team_id, const struct slack_result *out)
{
	if (out->outcome == SLACK_FAILED && revokes_token(out->error))
		deactivate(team_id, out->error);
}

enum slack_outcome
slack_call_team(const char *team_id, const char *method, json_t *args, struct slack_result *out)
{
	char *token = load_token(team_id, out);

	if (token == NULL)
		return out->outcome;
	call_as(team_id, token, method, args, out);
	vault_free_secret(token);
	after_call(team_id, out);
	return out->outcome;
}

void
slack_call_team_async(const char *team_id, const char *method, json_t *args, slack_done done,
                      void *arg, struct slack_result *out)
{
	char *token = load_token(team_id, out);
	struct xfer *x = token ? json_xfer(team_id, token, method, args, out) : NULL;

	vault_free_secret(token);
	submit(x, args, done, arg, out);
}

/* --- response_url --------------------------------------------------------- */

int
slack_response_url_ok(const char *url)
{
	static const char hooks[] = "https://hooks.slack.com/";
	const char *api = conf.slack_api_url ? conf.slack_api_url : "", *host, *end;
	size_t n;

	if (url == NULL || strlen(url) > 2000)
		return 0;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return 0;
	if (strncmp(url, hooks, sizeof(hooks) - 1) == 0)
		return 1;
	if ((host = strstr(api, "://")) == NULL)
		return 0;
	end = strchr(host + 3, '/');
	n = end ? (size_t)(end - api) : strlen(api);
	return strncmp(url, api, n) == 0 && url[n] == '/';
}

void
slack_respond_async(const char *team_id, const char *url, json_t *msg, slack_done done, void *arg,
                    struct slack_result *out)
{
	char *body;

	result_init(out);
	if (!slack_response_url_ok(url)) {
		log_warn("slack: not posting to a response_url outside Slack");
		snprintf(out->error, sizeof(out->error), "response_url_not_allowed");
		out->outcome = SLACK_FAILED;
		done(out, arg);
		return;
	}
	if ((body = json_body(msg, out)) == NULL) {
		done(out, arg);
		return;
	}
	submit(xfer_alloc(team_id, "response_url", url, "application/json; charset=utf-8", body,
	                  NULL, out),
	       NULL, done, arg, out);
}

void
slack_result_free(struct slack_result *r)
{
	json_decref(r->body);
	r->body = NULL;
}

/* --- as a job's last step ------------------------------------------------ */

/* Errors that say "not now" rather than "never"; any other ok:false code
 * is permanent for the same request (invalid_auth, channel_not_found,
 * not_in_channel, user_not_found, is_archived, invalid_blocks, ...). */
static const char *const transient_errors[] = {
    "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
};

static int
transient(const char *error)
{
	for (size_t i = 0; i < ARRAY_LEN(transient_errors); i++)
		if (strcmp(error, transient_errors[i]) == 0)
			return 1;
	return 0;
}

enum job_result
slack_job_result(const struct slack_result *r, struct job *job)
{
	switch (r->outcome) {
	case SLACK_OK:
		return JOB_DONE;
	case SLACK_RATELIMITED:
		job->retry_at =
		    now_seconds() + (r->retry_after > 0 ? r->retry_after : RETRY_AFTER_DEFAULT);
		snprintf(job->error, sizeof(job->error), "ratelimited");
		return JOB_RETRY_AT;
	case SLACK_TRANSPORT:
		snprintf(job->error, sizeof(job->error), "%s", r->error);
		if (r->stopped) {
			/* Never sent: again soon, without spending an attempt. */
			job->retry_at = now_seconds() + 1;
			return JOB_RETRY_AT;
		}
		return JOB_RETRY;
	case SLACK_FAILED:
		snprintf(job->error, sizeof(job->error), "%s", r->error);
		return transient(r->error) ? JOB_RETRY : JOB_DEAD;
	case SLACK_NO_TOKEN:
	default:
		snprintf(job->error, sizeof(job->error), "team has no active installation");
		return JOB_DEAD;
	}
}

struct job_call {
	struct slack_result r;
	struct job_ticket *ticket;
	slack_job_then then;
	void *arg;
	int as_bot; /* a call with the team's bot token: a revoked one deactivates */
};

/* On the engine thread: a runner takes it from here. */
static void
job_call_answered(struct slack_result *r, void *arg)
{
	struct job_call *jc = arg;

	(void)r;
	job_resume(jc->ticket);
}

/* On a runner, with the answer. */
static enum job_result
job_call_finish(struct job *job, void *arg)
{
	struct job_call *jc = arg;
	enum job_result res;

	if (jc->as_bot)
		after_call(job->team_id, &jc->r);
	res = jc->then ? jc->then(job, &jc->r, jc->arg) : slack_job_result(&jc->r, job);
	slack_result_free(&jc->r);
	free(jc);
	return res;
}

/* Suspends job until the call started by the caller answers. */
static struct job_call *
job_call_new(struct job *job, slack_job_then then, void *arg, int as_bot)
{
	struct job_call *jc = xcalloc(1, sizeof(*jc));

	jc->then = then;
	jc->arg = arg;
	jc->as_bot = as_bot;
	jc->ticket = job_suspend(job, job_call_finish, jc);
	return jc;
}

enum job_result
slack_job_call_then(struct job *job, const char *method, json_t *args, slack_job_then then,
                    void *arg)
{
	struct job_call *jc = job_call_new(job, then, arg, 1);

	slack_call_team_async(job->team_id, method, args, job_call_answered, jc, &jc->r);
	return JOB_PENDING;
}

enum job_result
slack_job_call_basic_then(struct job *job, const char *method, const char *form_body,
                          slack_job_then then, void *arg)
{
	struct job_call *jc = job_call_new(job, then, arg, 0);

	slack_call_basic_async(method, form_body, job_call_answered, jc, &jc->r);
	return JOB_PENDING;
}

enum job_result
slack_job_respond_then(struct job *job, const char *url, json_t *msg, slack_job_then then,
                       void *arg)
{
	struct job_call *jc = job_call_new(job, then, arg, 0);

	slack_respond_async(job->team_id, url, msg, job_call_answered, jc, &jc->r);
	return JOB_PENDING;
}

enum job_result
slack_job_call(struct job *job, const char *method, json_t *args)
{
	return slack_job_call_then(job, method, args, NULL, NULL);
}

int64_t
slack_enqueue(struct tx *tx, const char *team_id, const char *method, json_t *args,
              const char *dedupe_key)
{
	json_t *payload = json_object();

	json_object_set_new(payload, "method", json_string(method));
	json_object_set_new(payload, "args", args ? args : json_object());
	return job_enqueue(tx, "slack.call", team_id, payload, 0, dedupe_key);
}

static enum job_result
slack_call_job(struct job *job)
{
	const char *method = json_string_value(json_object_get(job->payload, "method"));
	json_t *args = json_object_get(job->payload, "args");

	if (method == NULL || job->team_id == NULL) {
		snprintf(job->error, sizeof(job->error), "slack.call needs a team and a method");
		return JOB_DEAD;
	}
	return slack_job_call(job, method, args);
}

void
slack_api_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatal("slack: curl_global_init failed");
	jobs_register("slack.call", slack_call_job);
}
