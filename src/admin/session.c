/* Operator sign-in: the login form and its backoff, server-side sessions
 * (the cookie holds a random token; only its SHA-256 is stored), logout,
 * and the CSRF checks every POST under /admin goes through. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/lib.h"
#include "admin/password.h"
#include "admin/session.h"
#include "conf.h"
#include "crypto.h"
#include "db.h"
#include "form.h"
#include "log.h"
#include "util.h"

#define SESSION_COOKIE "conch_admin"
#define LOGIN_CSRF     "conch_csrf"
#define TOKEN_BYTES    32
#define TOKEN_LEN      43 /* base64url of 32 bytes */
#define LOGIN_CSRF_AGE (12 * 3600)

/* --- tokens and CSRF ---------------------------------------------------- */

static int
token_shaped(const char *t)
{
	if (t == NULL || strlen(t) != TOKEN_LEN)
		return 0;
	return strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
	       TOKEN_LEN;
}

/* Length of "scheme://host[:port]" at the start of url. */
static size_t
origin_len(const char *url)
{
	const char *host = strstr(url, "://");
	const char *slash;

	if (host == NULL)
		return strlen(url);
	slash = strchr(host + 3, '/');
	return slash ? (size_t)(slash - url) : strlen(url);
}

/* A browser's Origin, when it sends one, must be ours. Over plain http
 * (development) the address the browser used is accepted too, so that
 * localhost and 127.0.0.1 both work; in production only public_url. */
static int
origin_ok(struct request *req)
{
	const char *origin = http_header(req, "Origin");
	const char *host = http_header(req, "Host");
	size_t n = origin_len(conf.public_url);

	if (origin == NULL)
		return 1;
	if (strlen(origin) == n && strncasecmp(origin, conf.public_url, n) == 0)
		return 1;
	return !conf.public_https && host != NULL && strncmp(origin, "http://", 7) == 0 &&
	       strcasecmp(origin + 7, host) == 0;
}

int
admin_csrf_ok(struct request *req, const char *form_csrf, const char *expected)
{
	if (!origin_ok(req) || form_csrf == NULL || expected == NULL || expected[0] == '\0')
		return 0;
	return ct_equal(form_csrf, strlen(form_csrf), expected, strlen(expected));
}

/* --- sessions ----------------------------------------------------------- */

int
admin_session_load(struct request *req, struct admin_session *s)
{
	const char *token = http_cookie(req, SESSION_COOKIE);
	const char *p[1] = {s->id_hash};
	struct tx tx;
	PGresult *r;
	int found = 0;

	memset(s, 0, sizeof(*s));
	if (!token_shaped(token))
		return 0;
	sha256_hex(token, s->id_hash);
	if (tx_begin_system(&tx) < 0)
		return -1;
	/* Sliding expiry: every page view keeps the session 12 more hours. */
	r = tx_query(&tx,
	             "UPDATE admin_sessions SET last_seen_at = now(), "
	             "expires_at = now() + interval '12 hours' "
	             "WHERE id_hash = $1 AND expires_at > now() RETURNING user_name, csrf_token",
	             1, p);
	if (r != NULL && PQntuples(r) == 1) {
		snprintf(s->user, sizeof(s->user), "%s", db_str(r, 0, 0));
		snprintf(s->csrf, sizeof(s->csrf), "%s", db_str(r, 0, 1));
		found = 1;
	}
	PQclear(r);
	if (tx_commit(&tx) < 0)
		return -1;
	return found;
}

/* Creates a session for user; returns the cookie token (malloc'd). */
static char *
session_create(const char *user)
{
	char *token = random_token(TOKEN_BYTES);
	char *csrf = random_token(TOKEN_BYTES);
	char id_hash[65];
	const char *p[3] = {id_hash, user, csrf};
	struct tx tx;

	sha256_hex(token, id_hash);
	if (tx_begin_system(&tx) == 0) {
		tx_exec(&tx, "DELETE FROM admin_sessions WHERE expires_at < now()", 0, NULL);
		tx_exec(&tx,
		        "INSERT INTO admin_sessions (id_hash, user_name, csrf_token, expires_at) "
		        "VALUES ($1, $2, $3, now() + interval '12 hours')",
		        3, p);
	}
	if (tx_commit(&tx) < 0) {
		free(token);
		token = NULL;
	}
	free(csrf);
	return token;
}

/* --- the backoff --------------------------------------------------------

 * Failed sign-ins slow the next attempt for the same name from the same
 * client address: after login_backoff_after_failures of them, base seconds,
 * doubling with each further one up to max, counted from the last failure. Keyed by the pair,
 * a stranger's failures never slow the operator's own address, and the
 * right password from an address without failures always gets checked. */
struct attempt {
	char *key;         /* "pair:NAME@ADDRESS" */
	char *stored_hash; /* NULL: no such user */
	int wait_seconds;
};

/* Checks the backoff, looks the user up and, when allowed, records the
 * attempt as a failure before the password is checked, so that parallel
 * guesses count too (a success removes it again). Failures older than a
 * day are forgotten. */
static int
attempt_begin(struct attempt *a, const char *name)
{
	char after[16], base[16], max[16];
	const char *p[5] = {a->key, name, after, base, max};
	struct tx tx;
	PGresult *r;
	long long wait;

	snprintf(after, sizeof(after), "%d", conf.login_backoff_after_failures);
	snprintf(base, sizeof(base), "%d", conf.login_backoff_base_seconds);
	snprintf(max, sizeof(max), "%d", conf.login_backoff_max_seconds);
	if (tx_begin_system(&tx) < 0)
		return -1;
	/* The exponent stops at 30 so that the power stays in range. */
	r = tx_query(
	    &tx,
	    "SELECT coalesce((SELECT greatest(0, ceil(extract(epoch FROM max(f.at) - now()) + "
	    "least($5::float8, $4::float8 * 2 ^ least(count(*) - $3::int, 30))))::int "
	    "FROM admin_login_failures f WHERE f.key = $1 AND f.at > now() - interval "
	    "'1 day' HAVING count(*) >= $3::int), 0), "
	    "(SELECT password_hash FROM admin_users WHERE name = $2)",
	    5, p);
	if (r != NULL && PQntuples(r) == 1) {
		if (strnum(db_str(r, 0, 0), 0, 86400, &wait) == 0)
			a->wait_seconds = (int)wait;
		if (!db_null(r, 0, 1))
			a->stored_hash = xstrdup(db_str(r, 0, 1));
	}
	PQclear(r);
	if (a->wait_seconds == 0)
		tx_exec(&tx, "INSERT INTO admin_login_failures (key) VALUES ($1)", 1, p);
	/* Rows older than any window; admin_login_failures_at keeps this cheap. */
	tx_exec(&tx, "DELETE FROM admin_login_failures WHERE at < now() - interval '1 day'", 0,
	        NULL);
	return tx_commit(&tx);
}

/* After a success the pair's failures are forgotten. */
static int
attempt_succeeded(struct attempt *a)
{
	const char *p[1] = {a->key};
	struct tx tx;

	if (tx_begin_system(&tx) < 0)
		return -1;
	tx_exec(&tx, "DELETE FROM admin_login_failures WHERE key = $1", 1, p);
	return tx_commit(&tx);
}

static void
attempt_free(struct attempt *a)
{
	free(a->key);
	free(a->stored_hash);
}

/* "wait 9 seconds", "wait 5 minutes" */
static void
wait_message(int seconds, char *out, size_t len)
{
	int minutes = (seconds + 59) / 60;

	if (seconds < 120)
		snprintf(out, len, "Too many failed attempts: wait %d second%s and try again.",
		         seconds, seconds == 1 ? "" : "s");
	else
		snprintf(out, len, "Too many failed attempts: wait %d minutes and try again.",
		         minutes);
}

/* --- pages -------------------------------------------------------------- */

static void
login_page(struct response *res, int status, const char *csrf, const char *name, const char *error)
{
	json_t *data = json_pack("{s:s, s:s}", "login_csrf", token_shaped(csrf) ? csrf : "", "name",
	                         name && admin_name_valid(name) ? name : "");

	if (error)
		json_object_set_new(data, "error", json_string(error));
	admin_page(res, status, NULL, "admin_login.html", "Sign in", data);
}

void
admin_http_login_form(struct request *req, struct response *res)
{
	const char *cookie = http_cookie(req, LOGIN_CSRF);
	struct admin_session s;
	char *csrf;

	if (admin_session_load(req, &s) == 1) {
		http_redirect(res, 303, "/admin");
		return;
	}
	/* Keep a valid cookie so that two open login tabs both work. */
	csrf = token_shaped(cookie) ? xstrdup(cookie) : random_token(TOKEN_BYTES);
	http_set_cookie(res, LOGIN_CSRF, csrf, LOGIN_CSRF_AGE);
	login_page(res, 200, csrf, NULL, NULL);
	free(csrf);
}

static void
login_check(struct request *req, struct response *res, const char *name, const char *password)
{
	const char *csrf = http_cookie(req, LOGIN_CSRF);
	struct attempt a = {0};
	char *token = NULL, msg[96], retry[16];
	int ok;

	/* Names that cannot exist share one key (and never reach SQL as text
	 * that might not even be UTF-8). */
	if (!admin_name_valid(name))
		name = "";
	a.key = xasprintf("pair:%s@%s", name[0] ? name : "(invalid)", http_client_ip(req));
	if (attempt_begin(&a, name) < 0) {
		admin_error(res, 503, NULL, "The database is unavailable; try again shortly.");
		goto done;
	}
	if (a.wait_seconds > 0) {
		wait_message(a.wait_seconds, msg, sizeof(msg));
		snprintf(retry, sizeof(retry), "%d", a.wait_seconds);
		http_set_header(res, "Retry-After", retry);
		login_page(res, 429, csrf, name, msg);
		goto done;
	}
	/* The KDF runs for unknown names too, so timing does not tell them apart. */
	ok = admin_password_verify(password, a.stored_hash ? a.stored_hash : admin_dummy_hash);
	if (ok != 1 || a.stored_hash == NULL) {
		log_info("admin: failed sign-in from %s", http_client_ip(req));
		login_page(res, 401, csrf, name, "Wrong name or password.");
		goto done;
	}
	if (attempt_succeeded(&a) < 0 || (token = session_create(name)) == NULL) {
		admin_error(res, 503, NULL, "The database is unavailable; try again shortly.");
		goto done;
	}
	log_info("admin: %s signed in from %s", name, http_client_ip(req));
	http_set_cookie(res, SESSION_COOKIE, token, -1);
	http_set_cookie(res, LOGIN_CSRF, "", 0);
	http_redirect(res, 303, "/admin");
done:
	if (token)
		OPENSSL_cleanse(token, strlen(token));
	free(token);
	attempt_free(&a);
}

void
admin_http_login(struct request *req, struct response *res)
{
	struct form form = {0};
	const char *name, *password;

	if (form_parse(req->body, req->body_len, &form) < 0) {
		admin_error(res, 400, NULL, "malformed form");
		goto done;
	}
	if (!admin_csrf_ok(req, form_get(&form, "csrf"), http_cookie(req, LOGIN_CSRF))) {
		admin_error(res, 403, NULL,
		            "missing or wrong CSRF token: reload the sign-in page and try again");
		goto done;
	}
	name = form_get(&form, "name");
	password = form_get(&form, "password");
	if (name == NULL || password == NULL || strlen(password) > ADMIN_PASSWORD_MAX) {
		admin_error(res, 400, NULL, "the form needs a name and a password");
		goto done;
	}
	login_check(req, res, name, password);
done:
	form_free(&form);
}

void
admin_http_logout(struct request *req, struct response *res)
{
	struct admin_session s;
	struct form form = {0};
	const char *p[1] = {s.id_hash};
	struct tx tx;
	int rc = admin_session_load(req, &s);

	if (rc < 0) {
		admin_error(res, 503, NULL, "The database is unavailable; try again shortly.");
		return;
	}
	if (rc == 0) {
		http_redirect(res, 303, "/admin/login");
		return;
	}
	if (form_parse(req->body, req->body_len, &form) < 0 ||
	    !admin_csrf_ok(req, form_get(&form, "csrf"), s.csrf)) {
		admin_error(res, 403, &s, "missing or wrong CSRF token");
		goto done;
	}
	if (tx_begin_system(&tx) == 0)
		tx_exec(&tx, "DELETE FROM admin_sessions WHERE id_hash = $1", 1, p);
	if (tx_commit(&tx) < 0) {
		admin_error(res, 503, &s, "The database is unavailable; try again shortly.");
		goto done;
	}
	http_set_cookie(res, SESSION_COOKIE, "", 0);
	http_redirect(res, 303, "/admin/login");
done:
	form_free(&form);
}
