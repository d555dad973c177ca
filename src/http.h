/* The HTTP server: GNU libmicrohttpd's epoll thread moves bytes, and a pool
 * of http_threads workers (each with its own database connection) runs the
 * handlers, taking whichever request is next while its connection is
 * suspended. Also: limits, the raw body kept for signature checks, a
 * request id, a route table, and helpers to build replies. */
#ifndef CONCH_HTTP_H
#define CONCH_HTTP_H

#include <stddef.h>
#include <jansson.h>

#define HTTP_BODY_MAX       (64 * 1024)
#define HTTP_HEADER_MAX     (16 * 1024) /* connection memory for the request head */
#define HTTP_IDLE_TIMEOUT   90          /* seconds without a byte (above the load balancer's 75) */
#define HTTP_TOTAL_TIMEOUT  30          /* seconds for a whole request body */
#define HTTP_REQUEST_ID_MAX 128         /* an X-Request-Id kept from the client */

struct MHD_Connection;

struct request {
	struct MHD_Connection *conn;
	const char *method;
	const char *path; /* as sent (not percent-decoded), without the query */
	char *body;       /* raw bytes, NUL-terminated, never NULL */
	size_t body_len;
	char id[HTTP_REQUEST_ID_MAX + 1]; /* the client's X-Request-Id if valid, else 32 hex */
	const char *subpath;              /* for prefix routes: what follows the prefix */
	const char *route;                /* metric and access log label: the route's path, or a
	                                     finer pattern a prefix route's handler names (a constant
	                                     such as "/api/v1/things/{name}"), never the raw path */
	void *ctx;                        /* handlers' own use */
};

struct header {
	char *name;
	char *value;
};

struct response {
	int status;
	char *body; /* owned */
	size_t body_len;
	const char *content_type;
	struct header headers[8];
	int nheaders;
};

typedef void (*http_handler)(struct request *req, struct response *res);

/* Route flags. */
#define HTTP_PREFIX       1 /* path is a prefix ending in '/' */
#define HTTP_ADMIN_ONLY   2 /* only addresses in admin_allow (others: 404) */
#define HTTP_METRICS_ONLY 4 /* only addresses in metrics_allow (others: 404) */

struct route {
	const char *method; /* "GET", "POST", ... (a GET route answers HEAD too) */
	const char *path;   /* exact path as sent (never decoded), or a prefix */
	int flags;          /* HTTP_PREFIX | HTTP_ADMIN_ONLY ... */
	http_handler handler;
};

/* Deferred replies, for a handler whose answer needs an outbound call:
 * it calls http_defer(req), hands the call to the engine and returns; the
 * worker moves on and the connection stays suspended. Whoever gets the
 * answer (any thread) calls http_continue(req, fn, arg): a worker then
 * runs fn, which fills res (or defers again). res is the one the handler
 * got. Every deferred request must be continued exactly once. */
typedef void (*http_continuation)(struct request *req, struct response *res, void *arg);
void http_defer(struct request *req);
void http_continue(struct request *req, http_continuation fn, void *arg);

/* Starts serving `routes` (terminated by a zeroed row) on conf.listen.
 * Returns -1 when the socket cannot be opened. */
int http_start(const struct route *routes);
/* Closes the listener (new connections are refused), lets the workers finish
 * what they have, and stops. */
void http_stop(void);

/* Draining: /healthz answers 503 and replies close their connection, while
 * requests are still served. */
void http_drain_begin(void);
int http_draining(void);

/* Suspending a request: a handler calls http_suspend and returns without
 * a reply; the connection stays open, no worker is held, and once
 * http_resume(req) is called (from any thread, once per suspend) a worker
 * runs resume_fn(req, res), which replies or suspends again. Whoever
 * suspends must resume once http_draining() is set: http_stop waits for
 * every suspended request to be answered. */
void http_suspend(struct request *req, http_handler resume_fn);
void http_resume(struct request *req);
int http_suspended_count(void);

/* An X-Request-Id worth keeping: 1 to HTTP_REQUEST_ID_MAX characters of
 * [A-Za-z0-9._:-], so it is safe in a header, a log line and a URL. */
int http_request_id_valid(const char *id);

/* Request accessors. */
const char *http_header(struct request *req, const char *name);
const char *http_query(struct request *req, const char *name);
const char *http_cookie(struct request *req, const char *name);
/* The client's address: the socket peer, or the X-Forwarded-For client
 * when the peer is in trusted_proxies (client.h). */
const char *http_client_ip(struct request *req);

/* Replies: each takes ownership of what it is given. */
void http_reply(struct response *res, int status, const char *ctype, char *body, size_t len);
void http_reply_text(struct response *res, int status, const char *text);
void http_reply_json(struct response *res, int status, json_t *obj); /* steals obj */
/* Forgets what res says (status, body, headers): for a handler run again,
 * and when the reply has been sent. Freeing twice is safe. */
void http_reply_reset(struct response *res);
/* {"error": code, "message": message} */
void http_reply_error_json(struct response *res, int status, const char *code, const char *message);
/* Renders assets/<name> with data (steals data). */
void http_reply_page(struct response *res, int status, const char *name, json_t *data);
void http_redirect(struct response *res, int status, const char *location);
void http_set_header(struct response *res, const char *name, const char *value);
/* Sets a cookie with HttpOnly, SameSite=Lax, Path=/, and Secure when
 * public_url is https. max_age < 0 means a session cookie; 0 deletes. */
void http_set_cookie(struct response *res, const char *name, const char *value, int max_age);

#endif
