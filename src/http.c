/* The HTTP server on GNU libmicrohttpd: request limits, the raw body kept
 * for signature checks, request ids, the route table, and replies. MHD's
 * one epoll thread does the I/O; handlers, which block on the database, run
 * on a pool of workers (each with its own connection, db.c). */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf.h"
#include "crypto.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "tmpl.h"
#include "util.h"

#define CONNECTIONS_MAX 4096

/* Per-request state; the request is the first member so handlers' struct
 * request pointers lead back to it. */
struct exchange {
	struct request req;
	struct buf body;
	int too_large;
	int64_t started_us;
	char client_ip[INET6_ADDRSTRLEN];
	int status;
	const char *route;
	struct response res; /* filled by a worker */
	int handled;
	struct exchange *next; /* in the work queue */
	/* Deferred replies (http_defer): guarded by defer_lock. */
	int deferred, parked;
	http_continuation cont;
	void *cont_arg;
};

/* Handlers block on the database, so they run on a fixed pool of workers
 * fed from one queue, while MHD's thread only moves bytes: a connection
 * is suspended while a worker has its request, and any idle worker takes
 * the next request, whichever connection it came on. */
#define WORKERS_MAX 256
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static struct exchange *queue_head, *queue_tail;
static int queue_closed;
static pthread_t workers[WORKERS_MAX];
static int nworkers;

static pthread_mutex_t defer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t defer_cond = PTHREAD_COND_INITIALIZER;
static int nparked;

static struct MHD_Daemon *daemon_handle;
static const struct route *route_table;

const char *
http_header(struct request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
http_query(struct request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *
http_cookie(struct request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

const char *
http_client_ip(struct request *req)
{
	struct exchange *ex = (struct exchange *)req;
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	if (ex->client_ip[0])
		return ex->client_ip;
	ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	sa = ci ? ci->client_addr : NULL;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ex->client_ip,
		          sizeof(ex->client_ip));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ex->client_ip,
		          sizeof(ex->client_ip));
	else
		snprintf(ex->client_ip, sizeof(ex->client_ip), "unknown");
	return ex->client_ip;
}

/* --- replies --------------------------------------------------------- */

void
http_reply(struct response *res, int status, const char *ctype, char *body, size_t len)
{
	free(res->body);
	res->status = status;
	res->content_type = ctype;
	res->body = body;
	res->body_len = len;
}

void
http_reply_text(struct response *res, int status, const char *text)
{
	char *body = xasprintf("%s\n", text);

	http_reply(res, status, "text/plain; charset=utf-8", body, strlen(body));
}

void
http_reply_json(struct response *res, int status, json_t *obj)
{
	char *body = json_dumps(obj, JSON_COMPACT);

	json_decref(obj);
	if (body == NULL) {
		http_reply_text(res, 500, "internal error");
		return;
	}
	http_reply(res, status, "application/json", body, strlen(body));
}

void
http_reply_error_json(struct response *res, int status, const char *code, const char *message)
{
	http_reply_json(res, status, json_pack("{s:s, s:s}", "error", code, "message", message));
}

void
http_reply_page(struct response *res, int status, const char *name, json_t *data)
{
	char *html = tmpl_render_file(name, data);

	json_decref(data);
	if (html == NULL) {
		log_error("http: template %s is missing or malformed", name);
		http_reply_text(res, 500, "internal error: page template missing");
		return;
	}
	http_reply(res, status, "text/html; charset=utf-8", html, strlen(html));
}

void
http_set_header(struct response *res, const char *name, const char *value)
{
	if (res->nheaders == (int)ARRAY_LEN(res->headers)) {
		log_error("http: too many response headers; dropped %s", name);
		return;
	}
	res->headers[res->nheaders].name = xstrdup(name);
	res->headers[res->nheaders].value = xstrdup(value);
	res->nheaders++;
}

void
http_redirect(struct response *res, int status, const char *location)
{
	http_set_header(res, "Location", location);
	http_reply(res, status, "text/plain; charset=utf-8", xstrdup(""), 0);
}

void
http_set_cookie(struct response *res, const char *name, const char *value, int max_age)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "%s=%s; Path=/; HttpOnly; SameSite=Lax", name, value);
	if (max_age >= 0)
		buf_printf(&b, "; Max-Age=%d", max_age);
	if (conf.public_https)
		buf_puts(&b, "; Secure");
	http_set_header(res, "Set-Cookie", b.data);
	buf_free(&b);
}

/* Frees what a response owns and empties it, so freeing twice is safe. */
static void
response_free(struct response *res)
{
	free(res->body);
	for (int i = 0; i < res->nheaders; i++) {
		free(res->headers[i].name);
		free(res->headers[i].value);
	}
	memset(res, 0, sizeof(*res));
}

/* --- dispatch -------------------------------------------------------- */

static int
path_matches(const struct route *r, const char *path)
{
	size_t n;

	if (!r->prefix)
		return strcmp(r->path, path) == 0;
	n = strlen(r->path);
	return strncmp(r->path, path, n) == 0 && path[n] != '\0';
}

static void
dispatch(struct exchange *ex, struct response *res)
{
	struct request *req = &ex->req;
	const struct route *r;
	struct buf allow;
	int path_known = 0;

	for (r = route_table; r->path; r++) {
		if (!path_matches(r, req->path))
			continue;
		path_known = 1;
		if (strcmp(r->method, req->method) != 0)
			continue;
		req->route = r->path;
		req->subpath = r->prefix ? req->path + strlen(r->path) : "";
		if (ex->too_large) {
			http_reply_text(res, 413, "request body too large (limit 64 KiB)");
			return;
		}
		r->handler(req, res);
		if (res->status == 0)
			http_reply_text(res, 500, "internal error");
		return;
	}
	req->route = path_known ? "method_not_allowed" : "not_found";
	if (!path_known) {
		http_reply_text(res, 404, "not found");
		return;
	}
	buf_init(&allow);
	for (r = route_table; r->path; r++)
		if (path_matches(r, req->path))
			buf_printf(&allow, "%s%s", allow.len ? ", " : "", r->method);
	http_set_header(res, "Allow", allow.data);
	buf_free(&allow);
	http_reply_text(res, 405, "method not allowed");
}

static enum MHD_Result
send_response(struct exchange *ex, struct response *res)
{
	struct MHD_Response *mr;
	enum MHD_Result ret;

	mr = MHD_create_response_from_buffer(res->body_len, res->body, MHD_RESPMEM_MUST_FREE);
	res->body = NULL; /* MHD owns it now */
	if (mr == NULL)
		return MHD_NO;
	if (res->content_type)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
	MHD_add_response_header(mr, "X-Request-Id", ex->req.id);
	MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(mr, "Referrer-Policy", "same-origin");
	if (res->content_type && strncmp(res->content_type, "text/html", 9) == 0) {
		MHD_add_response_header(mr, "X-Frame-Options", "DENY");
		MHD_add_response_header(
		    mr, "Content-Security-Policy",
		    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' "
		    "data:; form-action 'self'; frame-ancestors 'none'");
		MHD_add_response_header(mr, "Cache-Control", "no-store");
	}
	for (int i = 0; i < res->nheaders; i++)
		MHD_add_response_header(mr, res->headers[i].name, res->headers[i].value);
	ex->status = res->status;
	ret = MHD_queue_response(ex->req.conn, (unsigned)res->status, mr);
	MHD_destroy_response(mr);
	return ret;
}

/* Content-Length is checked before a byte of the body is read. */
static int
declared_too_large(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	long long n;

	if (cl == NULL)
		return 0;
	return strnum(cl, 0, HTTP_BODY_MAX, &n) < 0;
}

static void dispatch(struct exchange *ex, struct response *res);

static void
handle(struct exchange *ex)
{
	log_set_request(ex->req.id);
	dispatch(ex, &ex->res);
	ex->route = ex->req.route;
	log_set_team(NULL);
	log_set_request(NULL);
	ex->handled = 1;
}

/* 0 when queued; -1 when the pool has stopped (the caller handles it). */
static int
enqueue(struct exchange *ex)
{
	int rc = -1;

	pthread_mutex_lock(&queue_lock);
	if (!queue_closed) {
		ex->next = NULL;
		if (queue_tail)
			queue_tail->next = ex;
		else
			queue_head = ex;
		queue_tail = ex;
		pthread_cond_signal(&queue_cond);
		rc = 0;
	}
	pthread_mutex_unlock(&queue_lock);
	return rc;
}

static struct exchange *
dequeue(void)
{
	struct exchange *ex;

	pthread_mutex_lock(&queue_lock);
	while (queue_head == NULL && !queue_closed)
		pthread_cond_wait(&queue_cond, &queue_lock);
	ex = queue_head;
	if (ex) {
		queue_head = ex->next;
		if (queue_head == NULL)
			queue_tail = NULL;
	}
	pthread_mutex_unlock(&queue_lock);
	return ex;
}

/* --- deferred replies ------------------------------------------------ */

void
http_defer(struct request *req)
{
	struct exchange *ex = (struct exchange *)req;

	pthread_mutex_lock(&defer_lock);
	ex->deferred = 1;
	pthread_mutex_unlock(&defer_lock);
}

static void
run_continuation(struct exchange *ex)
{
	http_continuation fn = ex->cont;

	ex->cont = NULL;
	log_set_request(ex->req.id);
	fn(&ex->req, &ex->res, ex->cont_arg);
	log_set_team(NULL);
	log_set_request(NULL);
}

/* Runs ex's continuation on a worker, or here when the pool has stopped;
 * 1 when ex is settled (its reply is ready). */
static int
continue_somewhere(struct exchange *ex)
{
	if (enqueue(ex) == 0)
		return 0;
	run_continuation(ex); /* stopping: rare, and the pool is gone */
	return 1;
}

/* After a step: 1 when the reply is ready to send, 0 when the request
 * waits (parked) or went back to the queue for its continuation. */
static int
step_settled(struct exchange *ex)
{
	int parked = 0;

	pthread_mutex_lock(&defer_lock);
	if (ex->deferred) {
		ex->deferred = 0;
		if (ex->cont == NULL) {
			ex->parked = parked = 1;
			nparked++;
		}
	} else {
		pthread_mutex_unlock(&defer_lock);
		return 1;
	}
	pthread_mutex_unlock(&defer_lock);
	return parked ? 0 : continue_somewhere(ex);
}

void
http_continue(struct request *req, http_continuation fn, void *arg)
{
	struct exchange *ex = (struct exchange *)req;
	int parked;

	pthread_mutex_lock(&defer_lock);
	ex->cont = fn;
	ex->cont_arg = arg;
	if ((parked = ex->parked) != 0) {
		ex->parked = 0;
		nparked--;
		pthread_cond_broadcast(&defer_cond);
	}
	pthread_mutex_unlock(&defer_lock);
	/* Not parked yet: the worker still in the handler sees cont and queues it. */
	if (parked && continue_somewhere(ex) && step_settled(ex))
		MHD_resume_connection(ex->req.conn);
}

static void *
worker_main(void *arg)
{
	struct exchange *ex;

	(void)arg;
	pthread_setname_np(pthread_self(), "http-worker"); /* as top -H and the bench show it */
	while ((ex = dequeue()) != NULL) {
		if (ex->cont)
			run_continuation(ex);
		else
			handle(ex);
		if (step_settled(ex))
			MHD_resume_connection(ex->req.conn);
	}
	db_thread_close();
	return NULL;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct exchange *ex = *state;
	struct response res = {0};
	enum MHD_Result ret;

	(void)cls;
	(void)version;
	if (ex == NULL) {
		ex = xcalloc(1, sizeof(*ex));
		ex->started_us = mono_usec();
		ex->req.conn = c;
		ex->req.method = method;
		ex->req.path = url;
		ex->req.route = "unknown";
		random_hex16(ex->req.id);
		buf_init(&ex->body);
		*state = ex;
		if (!declared_too_large(c))
			return MHD_YES;
		/* Answer before reading the body; MHD closes the connection after. */
		ex->too_large = 1;
		ex->route = ex->req.route = "too_large";
		http_reply_text(&res, 413, "request body too large (limit 64 KiB)");
		ret = send_response(ex, &res);
		response_free(&res);
		return ret;
	}
	if (ex->status != 0) {
		*upload_size = 0; /* already answered */
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (mono_usec() - ex->started_us > (int64_t)HTTP_TOTAL_TIMEOUT * 1000000)
			return MHD_NO; /* a body trickling in forever: drop the connection */
		if (!ex->too_large && ex->body.len + *upload_size > HTTP_BODY_MAX)
			ex->too_large = 1;
		if (!ex->too_large)
			buf_append(&ex->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (!ex->handled) {
		ex->req.body = ex->body.data ? ex->body.data : "";
		ex->req.body_len = ex->body.len;
		MHD_suspend_connection(c);
		if (enqueue(ex) == 0)
			return MHD_YES; /* a worker resumes it; MHD calls us again */
		MHD_resume_connection(c);
		handle(ex); /* stopping: no workers left */
	}
	ret = send_response(ex, &ex->res);
	response_free(&ex->res);
	return ret;
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why)
{
	struct exchange *ex = *state;
	double secs;

	(void)cls;
	(void)c;
	if (ex == NULL)
		return;
	secs = (double)(mono_usec() - ex->started_us) / 1e6;
	if (ex->status) {
		metrics_http(ex->route, ex->status, secs);
		log_set_request(ex->req.id);
		log_msg(ex->status >= 500 ? LOGL_WARN : LOGL_INFO, "%s %s %d %.1fms",
		        ex->req.method, ex->req.path, ex->status, secs * 1000.0);
		log_set_request(NULL);
	} else if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		log_info("%s %s dropped (code %d) after %.1fms", ex->req.method, ex->req.path,
		         (int)why, secs * 1000.0);
	}
	response_free(&ex->res); /* a client gone while a worker had its request */
	buf_free(&ex->body);
	free(ex);
	*state = NULL;
}

/* MHD decodes the path and query before handlers see them, and "%00"
 * would cut the C string short: "/healthz%00.html" would be served as
 * /healthz. Such a string is left undecoded, so it matches no route and
 * no expected value. */
static size_t
unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	if (strstr(s, "%00") != NULL)
		return strlen(s);
	return MHD_http_unescape(s);
}

static void
on_mhd_error(void *cls, const char *fmt, va_list ap)
{
	struct buf b;

	(void)cls;
	buf_init(&b);
	buf_vprintf(&b, fmt, ap);
	while (b.len && (b.data[b.len - 1] == '\n'))
		b.data[--b.len] = '\0';
	log_warn("http: %s", b.data);
	buf_free(&b);
}

int
http_start(const struct route *routes)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
	struct addrinfo *ai = NULL;
	char port[8];
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
	                 MHD_ALLOW_SUSPEND_RESUME;

	route_table = routes;
	snprintf(port, sizeof(port), "%d", conf.listen_port);
	if (getaddrinfo(conf.listen_host, port, &hints, &ai) != 0) {
		log_error("listen: %s is not a numeric address", conf.listen_host);
		return -1;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger goes first so that errors in the other options reach it. */
	daemon_handle = MHD_start_daemon(
	    flags, (uint16_t)conf.listen_port, NULL, NULL, on_request, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)HTTP_IDLE_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)HTTP_HEADER_MAX, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
	    MHD_OPTION_END);
	freeaddrinfo(ai);
	if (daemon_handle == NULL) {
		log_error("listen: cannot serve on %s", conf.listen);
		return -1;
	}
	queue_closed = 0;
	for (nworkers = 0; nworkers < conf.http_threads && nworkers < WORKERS_MAX; nworkers++)
		if (pthread_create(&workers[nworkers], NULL, worker_main, NULL) != 0)
			fatal("http: cannot start a worker thread");
	log_info("serving on http://%s with %d threads", conf.listen, conf.http_threads);
	return 0;
}

void
http_stop(void)
{
	pthread_mutex_lock(&queue_lock);
	queue_closed = 1;
	pthread_cond_broadcast(&queue_cond);
	pthread_mutex_unlock(&queue_lock);
	for (int i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	nworkers = 0;
	/* Deferred requests end when their calls do (each has a timeout); MHD
	 * must not stop with a connection suspended. */
	pthread_mutex_lock(&defer_lock);
	while (nparked > 0)
		pthread_cond_wait(&defer_cond, &defer_lock);
	pthread_mutex_unlock(&defer_lock);
	if (daemon_handle)
		MHD_stop_daemon(daemon_handle);
	daemon_handle = NULL;
}
