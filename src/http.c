/* The HTTP server on GNU libmicrohttpd: request limits and deadlines, the
 * raw request target and body, request ids, the route table, draining, and
 * replies. MHD's one epoll thread does the I/O; handlers, which block on
 * the database, run on a pool of workers (each with its own connection,
 * db.c). */
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "conf.h"
#include "crypto.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "tmpl.h"
#include "util.h"

#define CONNECTIONS_MAX 4096
#define LISTEN_BACKLOG  1024
#define WATCH_PERIOD_MS 250 /* how often head deadlines are checked */

/* Per-request state; the request is the first member so handlers' struct
 * request pointers lead back to it. */
struct exchange {
	struct request req;
	struct buf body;
	char *raw_path;     /* the path as sent, before MHD decodes it */
	const char *method; /* as sent (HEAD is handled as GET) */
	int begun;          /* the head has arrived and on_request has run */
	int too_large;
	int64_t started_us;
	char client_ip[CLIENT_ADDR_MAX];
	int status;
	const char *route;
	size_t bytes;        /* of the response body */
	char team_id[32];    /* the team served, when the handler said (log.c) */
	struct response res; /* filled by a worker */
	int handled;
	struct exchange *next; /* in the work queue */
	/* http_suspend: the handler that continues it, and where it stands. */
	http_handler resume_fn;
	int suspending; /* the running handler called http_suspend (worker-local) */
	int park;       /* PARK_*, under queue_lock */
	/* http_defer: what http_continue asked to run, under queue_lock. */
	http_continuation cont;
	void *cont_arg;
};

enum {
	PARK_NONE,
	PARK_PARKING,     /* http_suspend called; its handler still runs */
	PARK_PARKED,      /* waiting for http_resume */
	PARK_WOKEN_EARLY, /* http_resume came before the handler returned */
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

static struct MHD_Daemon *daemon_handle;
static int listen_fd = -1;
static const struct route *route_table;
static atomic_int draining;

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

/* X-Forwarded-For may come as several headers; they read as one list. */
static enum MHD_Result
collect_xff(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct buf *b = cls;

	(void)kind;
	if (strcasecmp(key, "X-Forwarded-For") == 0 && value != NULL)
		buf_printf(b, "%s%s", b->len ? "," : "", value);
	return MHD_YES;
}

const char *
http_client_ip(struct request *req)
{
	struct exchange *ex = (struct exchange *)req;
	const union MHD_ConnectionInfo *ci;
	char peer[CLIENT_ADDR_MAX];
	struct buf xff;

	if (ex->client_ip[0])
		return ex->client_ip;
	ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	client_peer_text(ci ? ci->client_addr : NULL, peer, sizeof(peer));
	buf_init(&xff);
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_xff, &xff);
	client_address(peer, xff.len ? xff.data : NULL, ex->client_ip, sizeof(ex->client_ip));
	buf_free(&xff);
	return ex->client_ip;
}

int
http_draining(void)
{
	return atomic_load(&draining);
}

void
http_drain_begin(void)
{
	atomic_store(&draining, 1);
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
void
http_reply_reset(struct response *res)
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

	if (!(r->flags & HTTP_PREFIX))
		return strcmp(r->path, path) == 0;
	n = strlen(r->path);
	return strncmp(r->path, path, n) == 0 && path[n] != '\0';
}

/* Routes are matched on the path as sent, so "/%6detrics" is not
 * "/metrics": a rule on the raw path in front of conch (a load balancer)
 * and conch agree on what a request is. */
static int
route_allows(const struct route *r, struct request *req)
{
	enum client_guard g = (r->flags & HTTP_ADMIN_ONLY)     ? CLIENT_ADMIN
	                      : (r->flags & HTTP_METRICS_ONLY) ? CLIENT_METRICS
	                                                       : CLIENT_OPEN;

	return g == CLIENT_OPEN || client_allowed(g, http_client_ip(req));
}

static int
method_matches(const struct route *r, const char *method)
{
	return strcmp(r->method, method) == 0 ||
	       (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0);
}

static void
reply_not_allowed(struct request *req, struct response *res)
{
	const struct route *r;
	struct buf allow;

	req->route = "method_not_allowed";
	buf_init(&allow);
	for (r = route_table; r->path; r++) {
		if (!path_matches(r, req->path))
			continue;
		buf_printf(&allow, "%s%s", allow.len ? ", " : "", r->method);
		if (strcmp(r->method, "GET") == 0)
			buf_puts(&allow, ", HEAD");
	}
	http_set_header(res, "Allow", allow.data);
	buf_free(&allow);
	http_reply_text(res, 405, "method not allowed");
}

static void
dispatch(struct exchange *ex, struct response *res)
{
	struct request *req = &ex->req;
	const struct route *r;
	int path_known = 0;

	for (r = route_table; r->path; r++) {
		if (!path_matches(r, req->path))
			continue;
		if (!route_allows(r, req))
			goto not_found; /* as if the path did not exist */
		path_known = 1;
		if (!method_matches(r, ex->method))
			continue;
		req->method = r->method; /* a HEAD runs the GET handler */
		req->route = r->path;
		req->subpath = (r->flags & HTTP_PREFIX) ? req->path + strlen(r->path) : "";
		if (ex->too_large) {
			http_reply_text(res, 413, "request body too large (limit 64 KiB)");
			return;
		}
		r->handler(req, res);
		if (res->status == 0 && !ex->suspending)
			http_reply_text(res, 500, "internal error");
		return;
	}
	if (path_known) {
		reply_not_allowed(req, res);
		return;
	}
not_found:
	req->route = "other"; /* one label for every unknown path */
	http_reply_text(res, 404, "not found");
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
	if (http_draining()) /* clients reconnect, to an instance that stays */
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
	ex->status = res->status;
	ex->bytes = strcmp(ex->method, "HEAD") == 0 ? 0 : res->body_len;
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
	http_handler resume = ex->resume_fn;

	log_set_request(ex->req.id);
	ex->suspending = 0;
	ex->resume_fn = NULL;
	if (resume) {
		resume(&ex->req, &ex->res);
		if (ex->res.status == 0 && !ex->suspending)
			http_reply_text(&ex->res, 500, "internal error");
	} else {
		dispatch(ex, &ex->res);
	}
	ex->route = ex->req.route;
	snprintf(ex->team_id, sizeof(ex->team_id), "%s", log_team() ? log_team() : "");
	log_set_team(NULL);
	log_set_request(NULL);
	ex->handled = !ex->suspending;
}

/* Under queue_lock. */
static void
push_locked(struct exchange *ex)
{
	ex->next = NULL;
	if (queue_tail)
		queue_tail->next = ex;
	else
		queue_head = ex;
	queue_tail = ex;
	pthread_cond_signal(&queue_cond);
	metrics_http_queued_add(1);
}

/* 0 when queued; -1 when the pool has stopped (the caller handles it). */
static int
enqueue(struct exchange *ex)
{
	int rc = -1;

	pthread_mutex_lock(&queue_lock);
	if (!queue_closed) {
		push_locked(ex);
		rc = 0;
	}
	pthread_mutex_unlock(&queue_lock);
	return rc;
}

/* --- suspended requests ------------------------------------------------

 * A handler that waits for something (dibs ?wait=) calls http_suspend and
 * returns without a reply: its connection stays suspended in MHD and no
 * worker is held. http_resume, from any thread, queues it again, and a
 * worker runs the resume handler. nparked counts the requests between the
 * two, so that http_stop lets them be answered before the workers go. */
static int nparked;
static pthread_cond_t parked_cond = PTHREAD_COND_INITIALIZER;

void
http_suspend(struct request *req, http_handler resume_fn)
{
	struct exchange *ex = (struct exchange *)req;

	ex->suspending = 1;
	pthread_mutex_lock(&queue_lock);
	ex->resume_fn = resume_fn;
	ex->park = PARK_PARKING;
	nparked++;
	pthread_mutex_unlock(&queue_lock);
}

/* Under queue_lock: the parked request goes back to the workers. */
static void
unpark_locked(struct exchange *ex)
{
	ex->park = PARK_NONE;
	nparked--;
	pthread_cond_broadcast(&parked_cond);
	push_locked(ex);
}

void
http_resume(struct request *req)
{
	struct exchange *ex = (struct exchange *)req;

	pthread_mutex_lock(&queue_lock);
	if (ex->park == PARK_PARKING)
		ex->park = PARK_WOKEN_EARLY;
	else if (ex->park == PARK_PARKED)
		unpark_locked(ex);
	pthread_mutex_unlock(&queue_lock);
}

int
http_suspended_count(void)
{
	int n;

	pthread_mutex_lock(&queue_lock);
	n = nparked;
	pthread_mutex_unlock(&queue_lock);
	return n;
}

/* After a handler returned: 1 when its request stays suspended (or was
 * already resumed and is queued again), 0 when it has its reply. */
static int
after_handler(struct exchange *ex)
{
	int parked = 1;

	pthread_mutex_lock(&queue_lock);
	if (ex->park == PARK_PARKING)
		ex->park = PARK_PARKED;
	else if (ex->park == PARK_WOKEN_EARLY)
		unpark_locked(ex);
	else
		parked = 0;
	pthread_mutex_unlock(&queue_lock);
	return parked;
}

/* Waits until no request is suspended: ?wait= answers its own once
 * http_draining() says so; a request deferred on an outbound call ends
 * with the call (the engine still runs, and cuts its calls after
 * outbound_stop_seconds). Bounded either way. */
static void
wait_unparked(void)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10 + conf.outbound_stop_seconds;
	pthread_mutex_lock(&queue_lock);
	while (nparked > 0)
		if (pthread_cond_timedwait(&parked_cond, &queue_lock, &until) != 0)
			break;
	if (nparked > 0)
		log_warn("http: %d suspended requests were not answered before stopping", nparked);
	pthread_mutex_unlock(&queue_lock);
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
		metrics_http_queued_add(-1);
	}
	pthread_mutex_unlock(&queue_lock);
	return ex;
}

/* --- deferred replies ------------------------------------------------

 * The engine's form of a suspended request: the continuation, and its
 * argument, are known only when the outbound answer arrives. */
static void
run_continuation(struct request *req, struct response *res)
{
	struct exchange *ex = (struct exchange *)req;
	http_continuation fn;
	void *arg;

	pthread_mutex_lock(&queue_lock);
	fn = ex->cont;
	arg = ex->cont_arg;
	ex->cont = NULL;
	pthread_mutex_unlock(&queue_lock);
	fn(req, res, arg);
}

void
http_defer(struct request *req)
{
	http_suspend(req, run_continuation);
}

void
http_continue(struct request *req, http_continuation fn, void *arg)
{
	struct exchange *ex = (struct exchange *)req;

	pthread_mutex_lock(&queue_lock);
	ex->cont = fn;
	ex->cont_arg = arg;
	pthread_mutex_unlock(&queue_lock);
	http_resume(req);
}

static void *
worker_main(void *arg)
{
	struct exchange *ex;

	(void)arg;
	pthread_setname_np(pthread_self(), "http-worker"); /* as top -H and the bench show it */
	while ((ex = dequeue()) != NULL) {
		handle(ex);
		if (!after_handler(ex))
			MHD_resume_connection(ex->req.conn);
	}
	db_thread_close();
	return NULL;
}

/* --- the deadline for a request head ------------------------------------

 * MHD has an idle timeout but no deadline for the request line and headers,
 * so a client sending a byte every few seconds would hold a connection
 * forever. Every connection is watched from accept until its head is in;
 * one thread shuts down those past the deadline (O(connections) every
 * WATCH_PERIOD_MS), and MHD then closes them as it would any dead peer. */
struct watch {
	int fd;
	int64_t head_deadline_us; /* 0 while a request is being served */
	struct watch *prev, *next;
};

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cond = PTHREAD_COND_INITIALIZER;
static struct watch *watch_head;
static int watch_stopping;
static pthread_t watch_thread;
static int watch_started;

static int64_t
head_deadline(int64_t grace_us)
{
	return mono_usec() + grace_us + (int64_t)conf.header_timeout_seconds * 1000000;
}

static struct watch *
watch_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* grace_us > 0: a kept-alive connection may first idle, as long as the
 * idle timeout allows, before its next head has to arrive. */
static void
watch_head_due(struct MHD_Connection *c, int waiting, int64_t grace_us)
{
	struct watch *w = watch_of(c);

	if (w == NULL)
		return;
	pthread_mutex_lock(&watch_lock);
	w->head_deadline_us = waiting ? head_deadline(grace_us) : 0;
	pthread_mutex_unlock(&watch_lock);
}

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
              enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo *ci;
	struct watch *w;

	(void)cls;
	pthread_mutex_lock(&watch_lock);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		w = xcalloc(1, sizeof(*w));
		w->fd = ci ? ci->connect_fd : -1;
		w->head_deadline_us = head_deadline(0);
		w->next = watch_head;
		if (watch_head)
			watch_head->prev = w;
		watch_head = w;
		*socket_context = w;
	} else if ((w = *socket_context) != NULL) {
		/* Before MHD closes the socket, so the fd is never another's. */
		if (w->prev)
			w->prev->next = w->next;
		else
			watch_head = w->next;
		if (w->next)
			w->next->prev = w->prev;
		free(w);
		*socket_context = NULL;
	}
	pthread_mutex_unlock(&watch_lock);
}

static void *
watch_main(void *arg)
{
	struct timespec until;
	int64_t now;

	(void)arg;
	pthread_setname_np(pthread_self(), "http-deadline");
	pthread_mutex_lock(&watch_lock);
	while (!watch_stopping) {
		now = mono_usec();
		for (struct watch *w = watch_head; w; w = w->next) {
			if (w->head_deadline_us == 0 || now < w->head_deadline_us || w->fd < 0)
				continue;
			shutdown(w->fd, SHUT_RDWR);
			w->head_deadline_us = 0;
			log_info("http: closed a connection whose request head took over %d s",
			         conf.header_timeout_seconds);
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += WATCH_PERIOD_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&watch_cond, &watch_lock, &until);
	}
	pthread_mutex_unlock(&watch_lock);
	return NULL;
}

/* --- MHD callbacks ----------------------------------------------------- */

/* Called once the request line is in, with the target exactly as sent:
 * the exchange starts here so that routing sees the undecoded path. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct exchange *ex = xcalloc(1, sizeof(*ex));

	(void)cls;
	ex->started_us = mono_usec();
	ex->raw_path = xstrndup(uri, strcspn(uri, "?"));
	ex->req.conn = c;
	ex->req.path = ex->raw_path;
	ex->req.route = "unknown";
	buf_init(&ex->body);
	return ex;
}

int
http_request_id_valid(const char *id)
{
	size_t n = id ? strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                           "0123456789._:-")
	              : 0;

	return n > 0 && n <= HTTP_REQUEST_ID_MAX && id[n] == '\0';
}

/* The first call for a request: its head is complete. */
static enum MHD_Result
request_begin(struct exchange *ex, struct MHD_Connection *c, const char *method)
{
	const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
	struct response res = {0};
	enum MHD_Result ret;

	ex->begun = 1;
	metrics_http_inflight_add(1);
	ex->method = ex->req.method = method;
	if (http_request_id_valid(id))
		memcpy(ex->req.id, id, strlen(id) + 1);
	else
		random_hex16(ex->req.id);
	watch_head_due(c, 0, 0);
	if (!declared_too_large(c))
		return MHD_YES;
	/* Answer before reading the body; MHD closes the connection after. */
	ex->too_large = 1;
	ex->route = ex->req.route = "too_large";
	http_reply_text(&res, 413, "request body too large (limit 64 KiB)");
	ret = send_response(ex, &res);
	http_reply_reset(&res);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct exchange *ex = *state;
	enum MHD_Result ret;

	(void)cls;
	(void)version;
	if (ex == NULL) /* on_uri always runs first; this keeps a NULL harmless */
		*state = ex = on_uri(NULL, url, c);
	if (!ex->begun)
		return request_begin(ex, c, method);
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
	http_reply_reset(&ex->res);
	return ret;
}

/* One line a request, its figures as fields; the path as sent is in msg
 * only, the route (a bounded pattern) is the field to group by. */
static void
access_log(struct exchange *ex, double secs)
{
	const struct log_field f[] = {
	    {"method", ex->method, 0},          {"route", ex->route, 0},
	    {"status", NULL, ex->status},       {"duration_ms", NULL, round(secs * 1e6) / 1e3},
	    {"bytes", NULL, (double)ex->bytes},
	};

	log_set_request(ex->req.id);
	log_set_team(ex->team_id[0] ? ex->team_id : NULL);
	log_fields(ex->status >= 500 ? LOGL_WARN : LOGL_INFO, f, (int)ARRAY_LEN(f), "%s %s %d",
	           ex->method, ex->req.path, ex->status);
	log_set_team(NULL);
	log_set_request(NULL);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why)
{
	struct exchange *ex = *state;
	double secs;

	(void)cls;
	if (ex == NULL)
		return;
	if (ex->begun)
		metrics_http_inflight_add(-1);
	watch_head_due(c, 1, (int64_t)HTTP_IDLE_TIMEOUT * 1000000);
	secs = (double)(mono_usec() - ex->started_us) / 1e6;
	if (!ex->begun) {
		log_debug("connection closed before a request head was complete");
	} else if (ex->status) {
		metrics_http(ex->route, ex->status, secs);
		access_log(ex, secs);
	} else if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		log_info("%s %s dropped (code %d) after %.1fms", ex->method, ex->req.path, (int)why,
		         secs * 1000.0);
	}
	http_reply_reset(&ex->res); /* a client gone while a worker had its request */
	buf_free(&ex->body);
	free(ex->raw_path);
	free(ex);
	*state = NULL;
}

/* MHD decodes query arguments (routing uses the raw path from on_uri), and
 * "%00" would cut a C string short: "?t=abc%00x" would read as "abc". Such
 * a string is left undecoded, so it matches no expected value. */
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

/* The listening socket, made here rather than by MHD so that a port that
 * is taken stops start-up: no SO_REUSEPORT, which would let two processes
 * share the port and split the requests between them. */
static int
listen_open(void)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
	struct addrinfo *ai = NULL;
	char port[8];
	int fd = -1, one = 1, err;

	snprintf(port, sizeof(port), "%d", conf.listen_port);
	if (getaddrinfo(conf.listen_host, port, &hints, &ai) != 0) {
		log_error("listen: %s is not a numeric address", conf.listen_host);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* SO_REUSEADDR only skips TIME_WAIT; Linux still refuses a port that
	 * another socket listens on. */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		err = errno;
		if (err == EADDRINUSE)
			log_error(
			    "listen: %s is already in use by another process; set CONCH_LISTEN "
			    "(the listen key) to a free address:port",
			    conf.listen);
		else
			log_error("listen: cannot serve on %s: %s; set CONCH_LISTEN (the listen "
			          "key) to another address:port",
			          conf.listen, strerror(err));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

int
http_start(const struct route *routes)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
	                 MHD_ALLOW_SUSPEND_RESUME;

	route_table = routes;
	client_init();
	if ((listen_fd = listen_open()) < 0)
		return -1;
	if (strchr(conf.listen_host, ':') != NULL)
		flags |= MHD_USE_IPv6;
	/* The logger goes first so that errors in the other options reach it. */
	daemon_handle = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL,
	    MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)CONNECTIONS_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)conf.connections_per_address, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)HTTP_IDLE_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)HTTP_HEADER_MAX, MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
	if (daemon_handle == NULL) {
		log_error("listen: cannot serve on %s", conf.listen);
		close(listen_fd);
		listen_fd = -1;
		return -1;
	}
	watch_stopping = 0;
	if (pthread_create(&watch_thread, NULL, watch_main, NULL) != 0)
		fatal("http: cannot start the deadline thread");
	watch_started = 1;
	queue_closed = 0;
	for (nworkers = 0; nworkers < conf.http_threads && nworkers < WORKERS_MAX; nworkers++)
		if (pthread_create(&workers[nworkers], NULL, worker_main, NULL) != 0)
			fatal("http: cannot start a worker thread");
	log_info("serving on http://%s with %d threads", conf.listen, conf.http_threads);
	return 0;
}

/* New connections are refused from here on; those open are served until
 * http_stop. */
static void
listen_close(void)
{
	if (daemon_handle && listen_fd >= 0) {
		MHD_quiesce_daemon(daemon_handle);
		close(listen_fd);
	}
	listen_fd = -1;
}

void
http_stop(void)
{
	listen_close();
	http_drain_begin(); /* suspended requests are answered now */
	wait_unparked();
	pthread_mutex_lock(&queue_lock);
	queue_closed = 1;
	pthread_cond_broadcast(&queue_cond);
	pthread_mutex_unlock(&queue_lock);
	for (int i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	nworkers = 0;
	if (watch_started) {
		pthread_mutex_lock(&watch_lock);
		watch_stopping = 1;
		pthread_cond_signal(&watch_cond);
		pthread_mutex_unlock(&watch_lock);
		pthread_join(watch_thread, NULL);
		watch_started = 0;
	}
	if (daemon_handle)
		MHD_stop_daemon(daemon_handle);
	daemon_handle = NULL;
}
