/* Webhook subscriptions (README "Webhooks"): the API's
 * /api/v1/subscriptions[/ID] and the 'api.webhook' job that POSTs one
 * delivery, signed Conch-Signature: t=UNIX,v1=HEX (HMAC-SHA256 of "t.body"
 * with the subscription's secret). Deliveries are rows written by a
 * trigger on the dibs event log (migrations/016).
 *
 * The URL is a server-side request forgery surface, so: https only; every
 * address its host resolves to must be public (not loopback, private,
 * link-local, CGNAT, unspecified, multicast, reserved or the cloud
 * metadata address), checked when it is made and again at each delivery,
 * where each address curl is about to connect to is checked in its socket
 * callback (CURLOPT_OPENSOCKETFUNCTION) after curl's own resolver
 * (asynchronous: a slow DNS server holds no job runner) answered, so a DNS
 * answer that changes after a check cannot redirect the connection; no
 * proxy, no redirects, short timeouts, and at most a few KiB of the answer
 * read.
 * The POST is a transfer in the outbound engine (src/engine.h) on a
 * connection of its own (never reused), counted toward the team's share;
 * the job runner is free while the receiver takes its time.
 * webhook_allow_loopback (tests only) also allows http and loopback. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api/api.h"
#include "cidr.h"
#include "conf.h"
#include "crypto.h"
#include "db.h"
#include "dibs/command.h"
#include "engine.h"
#include "jobs.h"
#include "log.h"
#include "slack.h"
#include "util.h"
#include "vault.h"

#define SUBS_PER_USER  10
#define SUBS_PER_TEAM  100
#define PAUSE_AFTER    20 /* failed attempts in a row */
#define ATTEMPTS_MAX   8  /* of one delivery */
#define ANSWER_MAX     4096
#define THINGS_MAX     50
#define SECRET_PURPOSE "webhook"
#define FORBIDDEN_CIDRS                                                                            \
	"0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, "       \
	"192.0.0.0/24, 192.0.2.0/24, 192.168.0.0/16, 198.18.0.0/15, 198.51.100.0/24, "             \
	"203.0.113.0/24, 224.0.0.0/4, 240.0.0.0/4, ::/128, ::1/128, 64:ff9b::/96, 100::/64, "      \
	"2001:db8::/32, fc00::/7, fe80::/10, fec0::/10, ff00::/8"
#define LOOPBACK_CIDRS "127.0.0.0/8, ::1/128"

static const char *const event_names[] = {"your_turn", "released", "expired",
                                          "queued",    "kicked",   "auto_released"};

static struct cidr_list forbidden, loopback;
static pthread_once_t lists_once = PTHREAD_ONCE_INIT;

static void
lists_init(void)
{
	char why[128];

	if (cidr_list_parse(FORBIDDEN_CIDRS, &forbidden, why, sizeof(why)) < 0 ||
	    cidr_list_parse(LOOPBACK_CIDRS, &loopback, why, sizeof(why)) < 0)
		fatal("webhooks: address lists: %s", why);
}

/* --- the address check ----------------------------------------------------- */

struct target {
	char scheme[8];
	char host[256];
	int port;
};

/* 0 when the address may be called; else -1 with why. */
static int
address_allowed(const struct sockaddr *sa, char *text, size_t textlen, char *why, size_t whylen)
{
	uint8_t a[16];

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text,
		          (socklen_t)textlen);
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text,
		          (socklen_t)textlen);
	} else {
		snprintf(why, whylen, "not an IP address");
		return -1;
	}
	pthread_once(&lists_once, lists_init);
	if (cidr_addr_parse(text, strlen(text), a) < 0) {
		snprintf(why, whylen, "unreadable address %s", text);
		return -1;
	}
	if (conf.webhook_allow_loopback && cidr_list_has(&loopback, a))
		return 0;
	if (cidr_list_has(&forbidden, a)) {
		snprintf(why, whylen,
		         "%s is not a public address (loopback, private, link-local, shared, "
		         "multicast, reserved or cloud metadata addresses are refused)",
		         text);
		return -1;
	}
	return 0;
}

/* Parses url without resolving it: https (or http with
 * webhook_allow_loopback), no credentials, a port; a host that is an IP
 * address must be allowed. 0, or -1 with why. */
static int
target_parse(const char *url, struct target *t, char *why, size_t whylen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
	struct addrinfo *ai = NULL;
	char text[INET6_ADDRSTRLEN], portstr[8];
	int rc = -1;

	memset(t, 0, sizeof(*t));
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(why, whylen, "not a URL");
		goto done;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		snprintf(why, whylen, "a URL with credentials in it is refused");
		goto done;
	}
	if (strcmp(scheme, "https") != 0 &&
	    !(conf.webhook_allow_loopback && strcmp(scheme, "http") == 0)) {
		snprintf(why, whylen, "only https URLs are allowed");
		goto done;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		snprintf(why, whylen, "no port");
		goto done;
	}
	snprintf(t->scheme, sizeof(t->scheme), "%s", scheme);
	/* "[::1]" in a URL is ::1 to the resolver. */
	if (host[0] == '[') {
		size_t l = strlen(host);
		snprintf(t->host, sizeof(t->host), "%.*s", (int)(l > 2 ? l - 2 : 0), host + 1);
	} else {
		snprintf(t->host, sizeof(t->host), "%s", host);
	}
	t->port = atoi(port);
	snprintf(portstr, sizeof(portstr), "%d", t->port);
	/* An address written as the host (AI_NUMERICHOST: no DNS) is checked
	 * here; a name, when it is resolved. */
	if (getaddrinfo(t->host, portstr, &hints, &ai) == 0 && ai &&
	    address_allowed(ai->ai_addr, text, sizeof(text), why, whylen) < 0)
		goto done;
	rc = 0;
done:
	if (ai)
		freeaddrinfo(ai);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_url_cleanup(u);
	return rc;
}

/* target_parse, then the host resolved here: every address must be
 * allowed. For a subscription being made (the API request waits for the
 * answer); deliveries check at connect time instead. 0, or -1 with why. */
static int
target_check(const char *url, struct target *t, char *why, size_t whylen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char text[INET6_ADDRSTRLEN], portstr[8];
	int rc = 0;

	if (target_parse(url, t, why, whylen) < 0)
		return -1;
	snprintf(portstr, sizeof(portstr), "%d", t->port);
	if (getaddrinfo(t->host, portstr, &hints, &ai) != 0 || ai == NULL) {
		snprintf(why, whylen, "%.100s does not resolve", t->host);
		return -1;
	}
	for (struct addrinfo *p = ai; p && rc == 0; p = p->ai_next)
		rc = address_allowed(p->ai_addr, text, sizeof(text), why, whylen);
	freeaddrinfo(ai);
	return rc;
}

/* --- delivery --------------------------------------------------------------- */

static size_t
discard(char *p, size_t size, size_t n, void *cls)
{
	size_t *seen = cls;

	(void)p;
	*seen += size * n;
	return *seen > ANSWER_MAX ? 0 : size * n; /* stop reading a long answer */
}

/* One delivery's transfer in the outbound engine: the job is suspended
 * until it ends, and the runner that continues it reads the outcome. */
struct delivery {
	CURL *c;
	struct curl_slist *headers, *pin;
	char *body;
	size_t seen;
	char refused[256]; /* why an address curl resolved was not connected to */
	CURLcode rc;
	struct job_ticket *ticket;
	char sub[24], id[24];
	int attempts;
};

/* On the engine thread. */
static void
delivered(CURL *easy, CURLcode rc, void *arg)
{
	struct delivery *d = arg;

	(void)easy;
	d->rc = rc;
	job_resume(d->ticket);
}

static void
delivery_free(struct delivery *d)
{
	if (d->c)
		curl_easy_cleanup(d->c);
	curl_slist_free_all(d->headers);
	curl_slist_free_all(d->pin);
	free(d->body);
	free(d);
}

/* On the engine thread, for each address curl is about to connect to:
 * a socket only for an allowed one. Refusing every address ends the
 * transfer with CURLE_COULDNT_CONNECT, and refused says why. */
static curl_socket_t
open_checked(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct delivery *d = arg;
	char text[INET6_ADDRSTRLEN], why[256] = "not an IP connection";

	if (purpose != CURLSOCKTYPE_IPCXN ||
	    address_allowed(&a->addr, text, sizeof(text), why, sizeof(why)) < 0) {
		if (d->refused[0] == '\0')
			snprintf(d->refused, sizeof(d->refused), "%s", why);
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* A signed POST of body to url, ready for the engine (NULL with why when
 * curl cannot make one). Steals body. */
static struct delivery *
delivery_new(const char *url, const char *secret, char *body, char *why, size_t whylen)
{
	struct delivery *d = xcalloc(1, sizeof(*d));
	char ts[24], sig[65], header[128];
	unsigned char mac[32];
	struct buf msg;

	d->body = body;
	snprintf(ts, sizeof(ts), "%lld", (long long)now_seconds());
	buf_init(&msg);
	buf_printf(&msg, "%s.%s", ts, body);
	hmac_sha256(secret, strlen(secret), msg.data, msg.len, mac);
	buf_free(&msg);
	for (int i = 0; i < 32; i++)
		snprintf(sig + 2 * i, 3, "%02x", mac[i]);
	snprintf(header, sizeof(header), "Conch-Signature: t=%s,v1=%s", ts, sig);
	d->headers = curl_slist_append(d->headers, "Content-Type: application/json");
	d->headers = curl_slist_append(d->headers, "User-Agent: conch-webhooks");
	d->headers = curl_slist_append(d->headers, header);
	/* Expect: 100-continue would wait a second on a larger body. */
	d->headers = curl_slist_append(d->headers, "Expect:");
	if (conf.webhook_test_resolve && *conf.webhook_test_resolve)
		d->pin = curl_slist_append(d->pin, conf.webhook_test_resolve);
	if ((d->c = curl_easy_init()) == NULL) {
		snprintf(why, whylen, "curl_easy_init failed");
		delivery_free(d);
		return NULL;
	}
	curl_easy_setopt(d->c, CURLOPT_URL, url);
	if (d->pin)
		curl_easy_setopt(d->c, CURLOPT_RESOLVE, d->pin);
	curl_easy_setopt(d->c, CURLOPT_OPENSOCKETFUNCTION, open_checked);
	curl_easy_setopt(d->c, CURLOPT_OPENSOCKETDATA, d);
	curl_easy_setopt(d->c, CURLOPT_PROTOCOLS_STR,
	                 conf.webhook_allow_loopback ? "http,https" : "https");
	curl_easy_setopt(d->c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(d->c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(d->c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(d->c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(d->c, CURLOPT_NOSIGNAL, 1L);
	/* The engine's connections are shared by every call: a receiver's
	 * must not be reused for another address's name. */
	curl_easy_setopt(d->c, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(d->c, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(d->c, CURLOPT_HTTPHEADER, d->headers);
	curl_easy_setopt(d->c, CURLOPT_POSTFIELDS, d->body);
	curl_easy_setopt(d->c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(d->c, CURLOPT_WRITEDATA, &d->seen);
	return d;
}

/* The HTTP status of an ended transfer, or 0 with why. */
static long
delivery_status(struct delivery *d, char *why, size_t whylen)
{
	long status = 0;

	if (d->rc == ENGINE_STOPPED) {
		snprintf(why, whylen, "not sent: conch is stopping or busy");
		return 0;
	}
	curl_easy_getinfo(d->c, CURLINFO_RESPONSE_CODE, &status);
	if (d->rc != CURLE_OK && !(d->rc == CURLE_WRITE_ERROR && status > 0)) {
		snprintf(why, whylen, "%s", curl_easy_strerror(d->rc));
		status = 0;
	}
	return status;
}

/* Records an attempt's outcome: failed 1 counts a failure (on the
 * PAUSE_AFTER-th in a row the subscription is paused and its owner DMed),
 * 0 a success (the count starts again), -1 neither (nothing was sent). */
#define PAUSE_SQL                                                                                  \
	"UPDATE api_subscriptions SET failures = failures + 1, paused_at = CASE WHEN failures + "  \
	"1 "                                                                                       \
	">= 20 THEN now() END WHERE team_id = $1 AND id = $2::bigint AND paused_at IS NULL "       \
	"RETURNING paused_at IS NOT NULL, user_id, url"
#define RESET_SQL                                                                                  \
	"UPDATE api_subscriptions SET failures = 0 WHERE team_id = $1 AND id = $2::bigint "        \
	"RETURNING false, user_id, url"

static int
record(const char *team, const char *sub, const char *delivery, const char *state, long status,
       const char *error, int failed)
{
	char st[16];
	const char *p[6] = {team, sub, delivery, state, status ? st : NULL, error};
	struct tx tx;
	PGresult *r;

	snprintf(st, sizeof(st), "%ld", status);
	if (tx_begin(&tx, team) < 0)
		goto fail;
	if (tx_exec(&tx,
	            "UPDATE api_deliveries SET state = $4, attempts = attempts + 1, "
	            "http_status = $5::int, error = $6, finished_at = CASE WHEN $4 = 'pending' "
	            "THEN NULL ELSE now() END WHERE team_id = $1 AND subscription_id = $2::bigint "
	            "AND id = "
	            "$3::bigint",
	            6, p) < 0)
		goto fail;
	if (failed < 0)
		return tx_commit(&tx);
	r = tx_query(&tx, failed ? PAUSE_SQL : RESET_SQL, 2, p);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) == 1 && db_str(r, 0, 0)[0] == 't') {
		char *url = slack_escape(db_str(r, 0, 2));
		char *text =
		    xasprintf("Your conch webhook subscription %s (%s) is paused: its last "
		              "%d deliveries failed. Once the receiver works, resume it (POST "
		              "/api/v1/subscriptions/%s/resume) or delete it.",
		              sub, url, PAUSE_AFTER, sub);
		slack_enqueue(&tx, team, "chat.postMessage",
		              json_pack("{s:s, s:s}", "channel", db_str(r, 0, 1), "text", text),
		              NULL);
		log_info("webhooks: subscription %s paused after %d failures", sub, PAUSE_AFTER);
		free(text);
		free(url);
	}
	PQclear(r);
	return tx_commit(&tx);
fail:
	tx_rollback(&tx);
	return -1;
}

static double
retry_delay(int attempts)
{
	double d = conf.webhook_retry_base_seconds;

	for (int i = 1; i < attempts && d < 3600; i++)
		d *= 2;
	return d;
}

/* Records an attempt that ended with status (0: why says what failed). */
static enum job_result
attempt_over(struct job *job, const char *sub, const char *delivery, int attempts, long status,
             char *why, size_t whylen)
{
	if (status >= 200 && status < 300) {
		record(job->team_id, sub, delivery, "delivered", status, NULL, 0);
		return JOB_DONE;
	}
	if (status)
		snprintf(why, whylen, "HTTP %ld", status);
	record(job->team_id, sub, delivery, attempts >= ATTEMPTS_MAX ? "failed" : "pending", status,
	       why, 1);
	if (attempts >= ATTEMPTS_MAX)
		return JOB_DONE;
	snprintf(job->error, sizeof(job->error), "webhook: %.200s", why);
	job->retry_at = now_seconds() + retry_delay(attempts);
	return JOB_RETRY_AT;
}

/* On a runner, once the receiver answered (or did not). */
static enum job_result
delivery_over(struct job *job, void *arg)
{
	struct delivery *d = arg;
	char why[256] = "";
	long status = delivery_status(d, why, sizeof(why));
	enum job_result res;

	if (d->rc == ENGINE_STOPPED) { /* never sent: again soon, no attempt spent */
		snprintf(job->error, sizeof(job->error), "webhook: %.200s", why);
		job->retry_at = now_seconds() + 1;
		delivery_free(d);
		return JOB_RETRY_AT;
	}
	if (status == 0 && d->refused[0]) { /* refused, not failed: never called */
		log_warn("webhooks: delivery %s refused: %s", d->id, d->refused);
		record(job->team_id, d->sub, d->id, "refused", 0, d->refused, 1);
		delivery_free(d);
		return JOB_DONE;
	}
	res = attempt_over(job, d->sub, d->id, d->attempts, status, why, sizeof(why));
	delivery_free(d);
	return res;
}

static enum job_result
webhook_job(struct job *job)
{
	json_t *s = json_object_get(job->payload, "subscription");
	json_t *dv = json_object_get(job->payload, "delivery");
	char sub[24], delivery[24], why[256] = "";
	const char *p[3] = {job->team_id, sub, delivery};
	struct engine_call call = {0};
	struct delivery *d;
	struct target t;
	struct tx tx;
	PGresult *r;
	char *url, *secret;
	int attempts;

	if (!json_is_integer(s) || !json_is_integer(dv) || job->team_id == NULL)
		return JOB_DEAD;
	snprintf(sub, sizeof(sub), "%lld", (long long)json_integer_value(s));
	snprintf(delivery, sizeof(delivery), "%lld", (long long)json_integer_value(dv));
	if (tx_begin(&tx, job->team_id) < 0)
		goto retry_db;
	r = tx_query(
	    &tx,
	    "SELECT s.url, s.secret, d.body::text, d.attempts, s.paused_at IS NOT NULL "
	    "FROM api_deliveries d JOIN api_subscriptions s ON s.team_id = d.team_id AND "
	    "s.id = d.subscription_id WHERE d.team_id = $1 AND s.id = $2::bigint AND d.id = "
	    "$3::bigint AND d.state = 'pending'",
	    3, p);
	if (r == NULL || tx_commit(&tx) < 0) {
		if (r)
			PQclear(r);
		goto retry_db;
	}
	if (PQntuples(r) == 0) { /* deleted, or already done */
		PQclear(r);
		return JOB_DONE;
	}
	if (db_str(r, 0, 4)[0] == 't') {
		PQclear(r);
		record(job->team_id, sub, delivery, "paused", 0, "the subscription is paused", -1);
		return JOB_DONE;
	}
	url = xstrdup(db_str(r, 0, 0));
	attempts = atoi(db_str(r, 0, 3)) + 1;
	if (target_parse(url, &t, why, sizeof(why)) < 0) {
		/* Refused, not failed: the receiver was never called. */
		PQclear(r);
		log_warn("webhooks: delivery %s refused: %s", delivery, why);
		record(job->team_id, sub, delivery, "refused", 0, why, 1);
		free(url);
		return JOB_DONE;
	}
	secret = vault_open(db_str(r, 0, 1), job->team_id, SECRET_PURPOSE);
	d = secret ? delivery_new(url, secret, xstrdup(db_str(r, 0, 2)), why, sizeof(why)) : NULL;
	PQclear(r);
	vault_free_secret(secret);
	free(url);
	if (secret == NULL)
		snprintf(why, sizeof(why), "the secret cannot be opened (token_keys)");
	if (d == NULL)
		return attempt_over(job, sub, delivery, attempts, 0, why, sizeof(why));
	snprintf(d->sub, sizeof(d->sub), "%s", sub);
	snprintf(d->id, sizeof(d->id), "%s", delivery);
	d->attempts = attempts;
	d->ticket = job_suspend(job, delivery_over, d);
	call.easy = d->c;
	call.team = job->team_id;
	call.done = delivered;
	call.arg = d;
	if (engine_submit(&call) < 0)
		delivered(d->c, ENGINE_STOPPED, d);
	return JOB_PENDING;
retry_db:
	tx_rollback(&tx);
	snprintf(job->error, sizeof(job->error), "database unavailable");
	return JOB_RETRY;
}

/* --- the API -------------------------------------------------------------- */

static void
error(struct response *res, int status, const char *code, const char *message)
{
	http_reply_error_json(res, status, code, message);
}

static json_t *
iso(const char *epoch)
{
	char s[32];
	time_t t = (time_t)strtoll(epoch, NULL, 10);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(s);
}

/* A text[] value as PostgreSQL prints it: {a,b} (our words need no quotes). */
static json_t *
array_of(const char *pg)
{
	json_t *a = json_array();
	char *copy = xstrdup(pg), *save = NULL;

	if (copy[0] == '{' && copy[strlen(copy) - 1] == '}') {
		copy[strlen(copy) - 1] = '\0';
		for (char *w = strtok_r(copy + 1, ",", &save); w; w = strtok_r(NULL, ",", &save))
			json_array_append_new(a, json_string(w));
	}
	free(copy);
	return a;
}

#define SUB_COLUMNS                                                                                \
	"id, url, events::text, things::text, dibs_epoch(created_at), failures, "                  \
	"dibs_epoch(paused_at)"

static json_t *
sub_json(PGresult *r, int i)
{
	return json_pack("{s:I, s:s, s:o, s:o, s:o, s:i, s:b, s:o}", "id",
	                 (json_int_t)strtoll(db_str(r, i, 0), NULL, 10), "url", db_str(r, i, 1),
	                 "events", array_of(db_str(r, i, 2)), "things", array_of(db_str(r, i, 3)),
	                 "created_at", iso(db_str(r, i, 4)), "failures", atoi(db_str(r, i, 5)),
	                 "paused", !db_null(r, i, 6), "paused_at",
	                 db_null(r, i, 6) ? json_null() : iso(db_str(r, i, 6)));
}

/* The body's events and things as PostgreSQL array literals, checked. */
static int
read_sub_body(struct request *req, char **url, struct buf *events, struct buf *things, char *why,
              size_t whylen)
{
	json_t *body = json_loadb(req->body, req->body_len, 0, NULL), *u, *ev, *th, *v;
	char thing[DIBS_THING_MAX + 1], err[128];
	size_t i;
	int rc = -1;

	*url = NULL;
	if (!json_is_object(body)) {
		snprintf(why, whylen, "the body must be a JSON object");
		goto done;
	}
	u = json_object_get(body, "url");
	ev = json_object_get(body, "events");
	th = json_object_get(body, "things");
	if (!json_is_string(u) || json_string_length(u) > 2000 ||
	    memchr(json_string_value(u), 0, json_string_length(u))) {
		snprintf(why, whylen, "\"url\" must be an https URL");
		goto done;
	}
	if (!json_is_array(ev) || json_array_size(ev) == 0) {
		snprintf(why, whylen, "\"events\" must be a non-empty array of event names");
		goto done;
	}
	buf_puts(events, "{");
	json_array_foreach(ev, i, v)
	{
		size_t k;
		for (k = 0; k < ARRAY_LEN(event_names); k++)
			if (json_is_string(v) && strcmp(json_string_value(v), event_names[k]) == 0)
				break;
		if (k == ARRAY_LEN(event_names)) {
			snprintf(why, whylen,
			         "unknown event in \"events\": use your_turn, released, expired, "
			         "queued, "
			         "kicked or auto_released");
			goto done;
		}
		buf_printf(events, "%s%s", i ? "," : "", event_names[k]);
	}
	buf_puts(events, "}");
	buf_puts(things, "{");
	if (th && !json_is_null(th)) {
		if (!json_is_array(th) || json_array_size(th) > THINGS_MAX) {
			snprintf(why, whylen,
			         "\"things\" must be an array of at most %d thing names",
			         THINGS_MAX);
			goto done;
		}
		json_array_foreach(th, i, v)
		{
			if (!json_is_string(v) ||
			    strlen(json_string_value(v)) != json_string_length(v) ||
			    dibs_thing_name(json_string_value(v), thing, NULL, err, sizeof(err)) <
			        0) {
				snprintf(why, whylen,
				         "\"things\" holds a name that is not a thing name");
				goto done;
			}
			buf_printf(things, "%s%s", i ? "," : "", thing);
		}
	}
	buf_puts(things, "}");
	*url = xstrdup(json_string_value(u));
	rc = 0;
done:
	json_decref(body);
	return rc;
}

/* The address check resolves the URL's name (a wait on DNS), so the
 * request's transaction is committed before it (it only read) and a new
 * one holds the insert. */
static void
create(struct tx *tx, const char *team, const char *user, struct request *req, struct response *res)
{
	struct buf events, things;
	char why[256], umax[8], tmax[8], *url = NULL, *secret = NULL, *sealed = NULL;
	struct target t;
	PGresult *r = NULL;

	buf_init(&events);
	buf_init(&things);
	if (read_sub_body(req, &url, &events, &things, why, sizeof(why)) < 0) {
		error(res, 400, "bad_request", why);
		goto out;
	}
	if (tx_commit(tx) < 0) {
		error(res, 503, "unavailable", "the database is unavailable; try again");
		goto out;
	}
	if (target_check(url, &t, why, sizeof(why)) < 0) {
		error(res, 400, "url_not_allowed", why);
		goto out;
	}
	{
		char *raw = random_token(32);
		secret = xasprintf("whsec_%s", raw);
		vault_free_secret(raw);
	}
	if ((sealed = vault_seal(secret, team, SECRET_PURPOSE)) == NULL) {
		error(res, 503, "unavailable", "secrets cannot be stored right now (token_keys)");
		goto out;
	}
	snprintf(umax, sizeof(umax), "%d", SUBS_PER_USER);
	snprintf(tmax, sizeof(tmax), "%d", SUBS_PER_TEAM);
	{
		const char *p[8] = {team, user, url, events.data, things.data, sealed, umax, tmax};
		if (tx_begin(tx, team) < 0 ||
		    (r = tx_query(
		         tx,
		         "SELECT api_subscription_create($1, $2, $3, $4::text[], $5::text[], "
		         "$6, $7::int, $8::int)",
		         8, p)) == NULL) {
			error(res, 503, "unavailable", "the database is unavailable; try again");
			goto out;
		}
	}
	if (db_null(r, 0, 0)) {
		char msg[160];
		snprintf(msg, sizeof(msg),
		         "at most %d subscriptions a person and %d a team; delete one first",
		         SUBS_PER_USER, SUBS_PER_TEAM);
		error(res, 409, "limit", msg);
		goto out;
	}
	http_reply_json(res, 201,
	                json_pack("{s:I, s:s, s:s, s:o, s:o}", "id",
	                          (json_int_t)strtoll(db_str(r, 0, 0), NULL, 10), "url", url,
	                          "secret", secret, "events", array_of(events.data), "things",
	                          array_of(things.data)));
out:
	PQclear(r);
	buf_free(&events);
	buf_free(&things);
	free(url);
	free(sealed);
	if (secret)
		vault_free_secret(secret);
}

static void
list(struct tx *tx, const char *team, const char *user, struct response *res)
{
	const char *p[2] = {team, user};
	PGresult *r;

	if ((r = tx_query(tx,
	                  "SELECT " SUB_COLUMNS " FROM api_subscriptions WHERE team_id = $1 AND "
	                  "user_id = $2 ORDER BY id",
	                  2, p)) == NULL) {
		error(res, 503, "unavailable", "the database is unavailable; try again");
		return;
	}
	api_reply_rows(res, r, "subscriptions", sub_json);
}

static void
show(struct tx *tx, const char *team, const char *user, const char *id, struct response *res)
{
	const char *p[3] = {team, user, id};
	PGresult *r = NULL, *d = NULL;
	json_t *sub, *arr;

	if ((r = tx_query(tx,
	                  "SELECT " SUB_COLUMNS " FROM api_subscriptions WHERE team_id = $1 AND "
	                  "user_id = $2 AND id = $3::bigint",
	                  3, p)) == NULL ||
	    (d = tx_query(tx,
	                  "SELECT d.id, d.event, dibs_epoch(d.created_at), d.state, d.attempts, "
	                  "d.http_status, d.error, dibs_epoch(d.finished_at) FROM api_deliveries d "
	                  "JOIN api_subscriptions s ON s.team_id = d.team_id AND s.id = "
	                  "d.subscription_id WHERE d.team_id = $1 AND s.user_id = $2 AND s.id = "
	                  "$3::bigint ORDER BY d.id DESC LIMIT 20",
	                  3, p)) == NULL) {
		PQclear(r);
		error(res, 503, "unavailable", "the database is unavailable; try again");
		return;
	}
	if (PQntuples(r) == 0) {
		error(res, 404, "not_found", "you have no subscription with that id");
	} else {
		sub = sub_json(r, 0);
		arr = json_array();
		for (int i = 0; i < PQntuples(d); i++)
			json_array_append_new(
			    arr,
			    json_pack("{s:I, s:s, s:o, s:s, s:i, s:o, s:o, s:o}", "id",
			              (json_int_t)strtoll(db_str(d, i, 0), NULL, 10), "event",
			              db_str(d, i, 1), "created_at", iso(db_str(d, i, 2)), "state",
			              db_str(d, i, 3), "attempts", atoi(db_str(d, i, 4)),
			              "http_status",
			              db_null(d, i, 5) ? json_null()
			                               : json_integer(atoi(db_str(d, i, 5))),
			              "error",
			              db_null(d, i, 6) ? json_null() : json_string(db_str(d, i, 6)),
			              "finished_at",
			              db_null(d, i, 7) ? json_null() : iso(db_str(d, i, 7))));
		json_object_set_new(sub, "deliveries", arr);
		http_reply_json(res, 200, sub);
	}
	PQclear(r);
	PQclear(d);
}

/* Runs sql ($1 team, $2 user, $3 id) on one of the caller's
 * subscriptions; its row, or NULL when it has answered (503 when the
 * database fails, 404 when no row is theirs). */
static PGresult *
change_sub(struct tx *tx, const char *team, const char *user, const char *id, const char *sql,
           struct response *res)
{
	const char *p[3] = {team, user, id};
	PGresult *r;

	if ((r = tx_query(tx, sql, 3, p)) == NULL) {
		error(res, 503, "unavailable", "the database is unavailable; try again");
		return NULL;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		error(res, 404, "not_found", "you have no subscription with that id");
		return NULL;
	}
	return r;
}

static void
delete_sub(struct tx *tx, const char *team, const char *user, const char *id, struct response *res)
{
	PGresult *r =
	    change_sub(tx, team, user, id,
	               "DELETE FROM api_subscriptions WHERE team_id = $1 AND user_id = $2 "
	               "AND id = $3::bigint RETURNING id",
	               res);

	if (r == NULL)
		return;
	http_reply_json(
	    res, 200,
	    json_pack("{s:s, s:I}", "status", "deleted", "id", (json_int_t)strtoll(id, NULL, 10)));
	PQclear(r);
}

/* Un-pauses the caller's subscription: the failure count starts again at
 * 0 and later events are delivered (those that came while it was paused
 * are not). Resuming one that is not paused resets its count only. */
static void
resume(struct tx *tx, const char *team, const char *user, const char *id, struct response *res)
{
	PGresult *r =
	    change_sub(tx, team, user, id,
	               "UPDATE api_subscriptions SET failures = 0, paused_at = NULL WHERE "
	               "team_id = $1 AND user_id = $2 AND id = $3::bigint "
	               "RETURNING " SUB_COLUMNS,
	               res);

	if (r == NULL)
		return;
	http_reply_json(res, 200, sub_json(r, 0));
	PQclear(r);
}

static void
method_not_allowed(struct response *res, const char *allow)
{
	char msg[32];

	snprintf(msg, sizeof(msg), "use %s", allow);
	http_set_header(res, "Allow", allow);
	error(res, 405, "method_not_allowed", msg);
}

int
api_subscriptions_route(struct tx *tx, const char *team, const char *user, struct request *req,
                        struct response *res)
{
	const char *sub = req->subpath, *rest;
	char id[24];
	long long n;

	if (strcmp(sub, "subscriptions") == 0) {
		if (strcmp(req->method, "POST") == 0)
			create(tx, team, user, req, res);
		else if (strcmp(req->method, "GET") == 0)
			list(tx, team, user, res);
		else
			method_not_allowed(res, "GET, POST");
		return 1;
	}
	if (strncmp(sub, "subscriptions/", 14) != 0)
		return 0;
	rest = strchr(sub + 14, '/');
	if (rest && strcmp(rest, "/resume") != 0)
		return 0;
	if (strnum_digits(sub + 14, rest ? (size_t)(rest - sub - 14) : strlen(sub + 14), 1,
	                  INT64_MAX, &n) < 0) {
		error(res, 404, "not_found", "subscription ids are whole numbers");
		return 1;
	}
	snprintf(id, sizeof(id), "%lld", n);
	if (rest && strcmp(req->method, "POST") == 0)
		resume(tx, team, user, id, res);
	else if (rest)
		method_not_allowed(res, "POST");
	else if (strcmp(req->method, "GET") == 0)
		show(tx, team, user, id, res);
	else if (strcmp(req->method, "DELETE") == 0)
		delete_sub(tx, team, user, id, res);
	else
		method_not_allowed(res, "GET, DELETE");
	return 1;
}

void
api_webhooks_init(void)
{
	jobs_register("api.webhook", webhook_job);
}
