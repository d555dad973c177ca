/* The Stripe API client, its calls run by the outbound engine: form-encoded POSTs with a bearer
 * key and an Idempotency-Key, bounded in time and size, and Stripe's error
 * object turned into a result the caller can show. The key never reaches
 * a log line; the header that carries it is wiped after each call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "billing/stripe.h"
#include "conf.h"
#include "engine.h"
#include "form.h"
#include "log.h"
#include "metrics.h"
#include "outbound.h"
#include "util.h"

#define RESPONSE_MAX   (1024 * 1024)
#define PATH_MAX_LEN   128
#define RETRY_PAUSE_NS 300000000L /* between attempts: Stripe asks for a short backoff */

void
stripe_form_add(struct buf *form, const char *key, const char *value)
{
	char *k = url_encode(key), *v = url_encode(value ? value : "");

	if (form->len > 0)
		buf_putc(form, '&');
	buf_printf(form, "%s=%s", k, v);
	free(k);
	free(v);
}

/* --- one attempt ------------------------------------------------------ */

static struct curl_slist *
add_header(struct curl_slist *list, const char *fmt, const char *value)
{
	char *line = xasprintf(fmt, value);

	list = curl_slist_append(list, line);
	OPENSSL_cleanse(line, strlen(line));
	free(line);
	return list;
}

static struct curl_slist *
request_headers(const char *idempotency_key)
{
	struct curl_slist *h = NULL;

	h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
	h = curl_slist_append(h, "Expect:");
	h = add_header(h, "Authorization: Bearer %s", conf.stripe_secret_key);
	if (idempotency_key != NULL)
		h = add_header(h, "Idempotency-Key: %s", idempotency_key);
	return h;
}

static void
set_options(CURL *h, const char *url, const char *body, struct curl_slist *headers,
            struct outbound_sink *sink)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "conch");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)STRIPE_CONNECT_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)STRIPE_TOTAL_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, outbound_sink_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
}

static void
copy_field(char *dst, size_t cap, json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));

	snprintf(dst, cap, "%s", v ? v : "");
}

/* Stripe-Should-Retry, when sent, overrides our own guess. */
static int
should_retry(CURL *h, int guess)
{
	struct curl_header *hdr;

	if (curl_easy_header(h, "Stripe-Should-Retry", 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK)
		return guess;
	return strcmp(hdr->value, "true") == 0;
}

/* Reads an answer into out; returns 1 when another attempt may help. */
static int
classify(CURL *h, CURLcode rc, struct outbound_sink *sink, struct stripe_result *out)
{
	json_t *err;
	long st;

	if (rc != CURLE_OK) {
		snprintf(out->message, sizeof(out->message), "%s",
		         sink->overflow ? "answer over 1 MiB" : curl_easy_strerror(rc));
		out->outcome = STRIPE_UNAVAILABLE;
		/* After a timeout the browser has waited long enough. */
		return rc != CURLE_OPERATION_TIMEDOUT && !sink->overflow;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->http_status);
	st = out->http_status;
	out->body = json_loadb(sink->buf.data, sink->buf.len, 0, NULL);
	if (!json_is_object(out->body)) {
		json_decref(out->body);
		out->body = NULL;
		snprintf(out->message, sizeof(out->message), "HTTP %ld without a JSON object", st);
		out->outcome = STRIPE_UNAVAILABLE;
		return should_retry(h, st >= 500);
	}
	if (st >= 200 && st < 300) {
		out->outcome = STRIPE_OK;
		return 0;
	}
	err = json_object_get(out->body, "error");
	copy_field(out->type, sizeof(out->type), err, "type");
	copy_field(out->code, sizeof(out->code), err, "code");
	copy_field(out->message, sizeof(out->message), err, "message");
	if (out->message[0] == '\0')
		snprintf(out->message, sizeof(out->message), "HTTP %ld", st);
	/* 409 is an idempotent request still in flight elsewhere; 429 a rate limit. */
	out->outcome = st == 429 || st >= 500 ? STRIPE_UNAVAILABLE : STRIPE_REFUSED;
	return should_retry(h, st == 409 || st == 429 || st >= 500);
}

static const char *
outcome_label(const struct stripe_result *r)
{
	switch (r->outcome) {
	case STRIPE_OK:
		return "ok";
	case STRIPE_REFUSED:
		return "error";
	default:
		return r->http_status == 429 ? "ratelimited" : "transport";
	}
}

/* --- the call --------------------------------------------------------- */

/* Paths go into the URL: "/v1/" then lower-case words and slashes. */
static int
valid_path(const char *path)
{
	size_t n = path ? strlen(path) : 0;

	if (n < 5 || n > PATH_MAX_LEN || strncmp(path, "/v1/", 4) != 0)
		return 0;
	for (size_t i = 4; i < n; i++)
		if (!((path[i] >= 'a' && path[i] <= 'z') || path[i] == '_' || path[i] == '/'))
			return 0;
	return 1;
}

static void
result_reset(struct stripe_result *out)
{
	json_decref(out->body);
	memset(out, 0, sizeof(*out));
}

static void
log_outcome(const char *path, const struct stripe_result *out, int attempts)
{
	if (out->outcome == STRIPE_REFUSED)
		log_warn("stripe: %s refused (HTTP %ld, %s%s%s): %s", path, out->http_status,
		         out->type, out->code[0] ? "/" : "", out->code, out->message);
	else if (out->outcome == STRIPE_UNAVAILABLE)
		log_warn("stripe: %s failed after %d attempt(s): %s", path, attempts, out->message);
}

/* One call across its attempts, in the outbound engine. */
struct call {
	CURL *h;
	char *url, *path, *body, *key;
	struct curl_slist *headers;
	struct outbound_sink sink;
	int attempts;
	int64_t start;
	struct stripe_result *out;
	stripe_done done;
	void *arg;
};

static void call_answered(CURL *easy, CURLcode rc, void *arg);

/* Starts the next attempt (not before `after`); -1 when the engine refuses. */
static int
attempt(struct call *c, double after)
{
	struct engine_call ec = {
	    .easy = c->h, .not_before = after, .done = call_answered, .arg = c};

	c->attempts++;
	buf_init(&c->sink.buf);
	c->sink.overflow = 0;
	c->headers = request_headers(c->key);
	curl_easy_reset(c->h);
	set_options(c->h, c->url, c->body, c->headers, &c->sink);
	c->start = mono_usec();
	return engine_submit(&ec);
}

static void
call_end(struct call *c)
{
	struct stripe_result *out = c->out;
	stripe_done done = c->done;
	void *arg = c->arg;

	log_outcome(c->path, out, c->attempts);
	curl_easy_cleanup(c->h);
	free(c->url);
	free(c->path);
	OPENSSL_cleanse(c->body, strlen(c->body));
	free(c->body);
	free(c->key);
	free(c);
	done(out, arg);
}

/* On the engine thread: retries reuse the Idempotency-Key after a pause. */
static void
call_answered(CURL *easy, CURLcode rc, void *arg)
{
	struct call *c = arg;
	int retry = classify(easy, rc, &c->sink, c->out);

	metrics_call("stripe", c->path, outcome_label(c->out),
	             (double)(mono_usec() - c->start) / 1e6);
	outbound_headers_free(c->headers);
	c->headers = NULL;
	buf_free(&c->sink.buf);
	if (retry && rc != ENGINE_STOPPED && c->attempts < STRIPE_ATTEMPTS) {
		result_reset(c->out);
		if (attempt(c, now_seconds() + RETRY_PAUSE_NS / 1e9) == 0)
			return;
		outbound_headers_free(c->headers);
		buf_free(&c->sink.buf);
		snprintf(c->out->message, sizeof(c->out->message), "conch is stopping");
		c->out->outcome = STRIPE_UNAVAILABLE;
	}
	call_end(c);
}

void
stripe_post_async(const char *path, const char *form_body, const char *idempotency_key,
                  stripe_done done, void *arg, struct stripe_result *out)
{
	struct call *c;

	memset(out, 0, sizeof(*out));
	if (conf.stripe_secret_key == NULL || conf.stripe_secret_key[0] == '\0') {
		snprintf(out->message, sizeof(out->message), "stripe_secret_key is not set");
		out->outcome = STRIPE_NOT_CONFIGURED;
		done(out, arg);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	if (!valid_path(path) || (c->h = curl_easy_init()) == NULL) {
		snprintf(out->message, sizeof(out->message), "cannot call %s", path ? path : "");
		log_error("stripe: %s", out->message);
		out->outcome = STRIPE_UNAVAILABLE;
		free(c);
		done(out, arg);
		return;
	}
	c->sink.max = RESPONSE_MAX;
	c->url = xasprintf("%s%s", conf.stripe_api_url ? conf.stripe_api_url : "", path);
	c->path = xstrdup(path);
	c->body = xstrdup(form_body ? form_body : "");
	c->key = idempotency_key ? xstrdup(idempotency_key) : NULL;
	c->out = out;
	c->done = done;
	c->arg = arg;
	if (attempt(c, 0) < 0) {
		outbound_headers_free(c->headers);
		buf_free(&c->sink.buf);
		snprintf(out->message, sizeof(out->message), "conch is stopping");
		out->outcome = STRIPE_UNAVAILABLE;
		call_end(c);
	}
}

void
stripe_result_free(struct stripe_result *r)
{
	json_decref(r->body);
	r->body = NULL;
}
