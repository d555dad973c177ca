/* The REST API for CI/CD (README "REST API"): bearer tokens from
 * `/dibs token`, stored as SHA-256; the same queues and plan limits as
 * the Slack commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "conf.h"
#include "crypto.h"
#include "db.h"
#include "dibs/command.h"
#include "dibs/dibs.h"
#include "form.h"
#include "jobs.h"
#include "log.h"
#include "plans.h"
#include "teams.h"
#include "util.h"

struct caller {
	char team_id[32];
	char user_id[32];
	char hash[65];
};

static void
error(struct response *res, int status, const char *code, const char *message)
{
	http_reply_error_json(res, status, code, message);
}

/* The rate limit, in PostgreSQL so that it holds across instances:
 * api_rate_check (migrations/009_replay_rate.sql) keeps a token bucket per
 * token, keyed by its whole hash, and one per client address that only
 * failed authentications draw from; an address that used its bucket up
 * gets 429 for every token until it refills. One statement a request.
 * Returns 0, or -1 after replying. */
static int
rate_allow(struct request *req, struct response *res, const char *hash)
{
	char burst[16], rate[16], fail_burst[16], fail_rate[32], retry[16];
	const char *ip = http_client_ip(req);
	const char *p[6] = {hash, ip && *ip ? ip : "unknown", burst, rate, fail_burst, fail_rate};
	PGresult *r;
	int address, token;

	snprintf(burst, sizeof(burst), "%d", conf.api_rate_burst);
	snprintf(rate, sizeof(rate), "%d", conf.api_rate_per_second);
	snprintf(fail_burst, sizeof(fail_burst), "%d", conf.api_auth_failures_burst);
	snprintf(fail_rate, sizeof(fail_rate), "%.6f", conf.api_auth_failures_per_minute / 60.0);
	r = db_query_once("SELECT api_rate_check($1, $2, $3::float8, $4::float8, $5::float8, "
	                  "$6::float8)",
	                  6, p, NULL);
	if (r == NULL) {
		error(res, 503, "unavailable", "the database is unavailable; try again");
		return -1;
	}
	address = strcmp(db_str(r, 0, 0), "address") == 0;
	token = strcmp(db_str(r, 0, 0), "token") == 0;
	PQclear(r);
	if (address) {
		snprintf(retry, sizeof(retry), "%d",
		         (60 + conf.api_auth_failures_per_minute - 1) /
		             conf.api_auth_failures_per_minute);
		http_set_header(res, "Retry-After", retry);
		error(res, 429, "rate_limited",
		      "too many failed authentications from this address; slow down");
		return -1;
	}
	if (token) {
		http_set_header(res, "Retry-After", "1");
		error(res, 429, "rate_limited", "too many requests for this token; slow down");
		return -1;
	}
	return 0;
}

/* A bucket idle for a day is full (unless burst / rate is over a day):
 * deleting it changes nothing. */
static enum job_result
rate_cleanup_job(struct job *job)
{
	return jobs_delete_batches(job, "DELETE FROM api_rate_buckets WHERE key IN (SELECT key "
	                                "FROM api_rate_buckets WHERE at < now() - interval "
	                                "'1 day' LIMIT 10000)");
}

void
api_init(void)
{
	jobs_register_daily("api.rate_cleanup", rate_cleanup_job);
	api_webhooks_init();
}

/* What api_token_auth() said: 0 with the caller filled in, or -1 after
 * replying 401 with why. */
static int
token_verdict(PGresult *r, struct response *res, struct caller *c)
{
	const char *st = db_str(r, 0, 0);

	if (strcmp(st, "expired") == 0) {
		error(res, 401, "token_expired",
		      "this token has expired; make a new one with /dibs token");
		return -1;
	}
	if (strcmp(st, "deactivated") == 0) {
		error(res, 401, "user_deactivated",
		      "the Slack user this token belongs to has been deactivated");
		return -1;
	}
	if (strcmp(st, "ok") != 0) {
		error(res, 401, "unauthorized", "unknown token");
		return -1;
	}
	snprintf(c->team_id, sizeof(c->team_id), "%s", db_str(r, 0, 1));
	snprintf(c->user_id, sizeof(c->user_id), "%s", db_str(r, 0, 2));
	return 0;
}

/* The bearer token's hash in c, within the rate limits (one statement of
 * its own: a request refused later still drew from its bucket). Returns 0,
 * or -1 after replying. */
static int
bearer(struct request *req, struct response *res, struct caller *c)
{
	const char *auth = http_header(req, "Authorization");

	if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 || strlen(auth + 7) < 16 ||
	    strlen(auth + 7) > 256) {
		error(res, 401, "unauthorized",
		      "send Authorization: Bearer TOKEN (from /dibs token)");
		return -1;
	}
	sha256_hex(auth + 7, c->hash);
	return rate_allow(req, res, c->hash);
}

/* Opens the request's transaction and finds the token's team and user:
 * the team is what the token tells us (conch_api_token_team(), across
 * teams, in the statement that scopes the transaction to it). Returns 0
 * with tx open, or -1 after replying with tx closed. */
static int
authenticate(struct tx *tx, struct response *res, struct caller *c)
{
	const char *p[1] = {c->hash};
	PGresult *r;
	int rc;

	r = tx_begin_with(
	    tx, NULL,
	    "SELECT set_config('conch.team_id', coalesce(conch_api_token_team($1), ''), "
	    "true), set_config('plan_cache_mode', 'force_generic_plan', true)",
	    1, p);
	if (r == NULL)
		goto unavailable;
	if (db_str(r, 0, 0)[0] == '\0') {
		PQclear(r);
		tx_rollback(tx);
		error(res, 401, "unauthorized", "unknown token");
		return -1;
	}
	PQclear(r);
	r = tx_query(tx, "SELECT status, team_id, user_id FROM api_token_auth($1)", 1, p);
	if (r == NULL)
		goto unavailable;
	rc = token_verdict(r, res, c);
	PQclear(r);
	if (rc < 0) {
		tx_commit(tx);
		return -1;
	}
	log_set_team(c->team_id);
	return 0;
unavailable:
	tx_rollback(tx);
	error(res, 503, "unavailable", "the database is unavailable; try again");
	return -1;
}

/* The team must be installed and, unless only the caller's tokens are
 * asked about (a downgraded team may still list and revoke them), on a plan
 * with API access. */
static int
authorize(struct tx *tx, struct caller *c, struct response *res, int needs_plan)
{
	struct plan plan;
	int installed;

	if (plan_load(tx, c->team_id, &plan) < 0 ||
	    (installed = team_installed(tx, c->team_id)) < 0) {
		error(res, 503, "unavailable", "the database is unavailable; try again");
		return -1;
	}
	if (installed != 1) {
		error(res, 403, "not_installed",
		      "conch is not installed in this workspace any more");
		return -1;
	}
	if (needs_plan && !plan_allows(&plan, PLAN_API, 0)) {
		error(res, 403, "plan_required", plan_refusal(&plan, PLAN_API));
		return -1;
	}
	return 0;
}

static json_t *
time_or_null(double epoch)
{
	char s[32];
	time_t t = (time_t)epoch;
	struct tm tm;

	if (epoch <= 0)
		return json_null();
	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(s);
}

static json_t *
thing_json(const struct dibs_thing *t)
{
	json_t *queue = json_array();

	for (int i = 0; i < t->nqueue; i++)
		json_array_append_new(queue, json_string(t->queue[i]));
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "name", t->name, "display_name",
	                 t->display, "holder", t->holder ? json_string(t->holder) : json_null(),
	                 "since", t->holder ? time_or_null(t->since) : json_null(), "release_at",
	                 time_or_null(t->release_at), "reason",
	                 t->reason ? json_string(t->reason) : json_null(), "queue", queue);
}

#define API_LIST_MAX 1000

static void
get_things(struct tx *tx, struct caller *c, const char *name, struct response *res)
{
	struct dibs_thing *things = NULL;
	int n, total = 0;
	json_t *arr;

	tx_commit_next(tx);
	n = dibs_list(tx, c->team_id, name, API_LIST_MAX, &things, &total);
	if (n < 0) {
		error(res, 503, "unavailable", "the database is unavailable; try again");
	} else if (name && n == 0) {
		error(res, 404, "not_found", "no thing by that name");
	} else if (name) {
		http_reply_json(res, 200, thing_json(&things[0]));
	} else {
		arr = json_array();
		for (int i = 0; i < n; i++)
			json_array_append_new(arr, thing_json(&things[i]));
		http_reply_json(res, 200, json_pack("{s:o, s:i}", "things", arr, "total", total));
	}
	dibs_things_free(things, n);
}

/* Body: {"for": "1h", "reason": "..."}, both optional; an empty body too. */
static int
read_dibs_body(struct request *req, struct response *res, long long *seconds, char **reason)
{
	json_t *body, *f, *why;
	json_error_t jerr;
	char err[128];
	int64_t secs;

	*seconds = 0;
	*reason = NULL;
	if (req->body_len == 0)
		return 0;
	body = json_loadb(req->body, req->body_len, 0, &jerr);
	if (!json_is_object(body)) {
		json_decref(body);
		error(res, 400, "bad_request", "the body must be a JSON object");
		return -1;
	}
	f = json_object_get(body, "for");
	why = json_object_get(body, "reason");
	if (f && !json_is_null(f)) {
		if (!json_is_string(f))
			snprintf(err, sizeof(err), "\"for\" must be a string such as \"2h\"");
		if (!json_is_string(f) ||
		    dibs_parse_duration(json_string_value(f), &secs, err, sizeof(err)) < 0) {
			json_decref(body);
			error(res, 400, "bad_request", err);
			return -1;
		}
		*seconds = secs;
	}
	if (why && !json_is_null(why)) {
		size_t len = json_string_length(why);
		if (!json_is_string(why) || len == 0 || len > DIBS_REASON_MAX ||
		    memchr(json_string_value(why), 0, len)) {
			json_decref(body);
			error(res, 400, "bad_request",
			      "\"reason\" must be a string of 1 to 300 bytes");
			return -1;
		}
		*reason = xstrdup(json_string_value(why));
	}
	json_decref(body);
	return 0;
}

/* The answer of a ?wait= that has waited (wait.c). */
static void
reply_place(struct response *res, int rc, int holding, int position, double release_at)
{
	if (rc < 0)
		error(res, 503, "unavailable", "the database is unavailable; try again");
	else if (holding)
		http_reply_json(res, 200,
		                json_pack("{s:s, s:o}", "status", "holding", "release_at",
		                          time_or_null(release_at)));
	else if (position > 0)
		http_reply_json(res, 200,
		                json_pack("{s:s, s:i}", "status", "queued", "position", position));
	else
		error(res, 409, "not_queued",
		      "you are no longer in line for this thing (left the queue while waiting)");
}

#define WAIT_MAX 60

/* ?wait=S: 0 to 60 seconds; 0 when absent. -1 after replying 400. */
static int
read_wait(struct request *req, struct response *res, int *seconds)
{
	const char *q = http_query(req, "wait");
	long long s = 0;

	*seconds = 0;
	if (q && strnum_digits(q, strlen(q), 0, WAIT_MAX, &s) < 0) {
		error(res, 400, "bad_request",
		      "wait must be a whole number of seconds from 0 to 60");
		return -1;
	}
	*seconds = (int)s;
	return 0;
}

static void
post_dibs(struct tx *tx, struct caller *c, const char *name, struct request *req,
          struct response *res)
{
	struct dibs_outcome o;
	long long seconds;
	char *reason;
	int wait;

	if (read_wait(req, res, &wait) < 0 || read_dibs_body(req, res, &seconds, &reason) < 0)
		return;
	tx_commit_next(tx); /* a wait, if any, comes after the commit */
	dibs_take(tx, c->team_id, c->user_id, NULL, NULL, name, seconds, reason, &o);
	free(reason);
	switch (o.status) {
	case DIBS_ST_HOLDING:
	case DIBS_ST_ALREADY_HOLDING:
		http_reply_json(res, 200,
		                json_pack("{s:s, s:o}", "status", "holding", "release_at",
		                          time_or_null(o.release_at)));
		break;
	case DIBS_ST_QUEUED:
	case DIBS_ST_ALREADY_QUEUED:
		/* Queued in the request's transaction, committed with the take:
		 * the wait is outside any. */
		if (wait > 0 &&
		    api_wait_begin(req, res, c->team_id, c->user_id, name, wait, reply_place) == 0)
			break;
		http_reply_json(
		    res, 200, json_pack("{s:s, s:i}", "status", "queued", "position", o.position));
		break;
	case DIBS_ST_LIMIT:
		error(res, 403, "plan_limit", "the team's plan allows no more things");
		break;
	case DIBS_ST_NEEDS_PLAN:
		error(res, 403, "plan_required", "timed releases need the Pro plan");
		break;
	case DIBS_ST_NO_SUCH_THING: /* names strict: only /dibs add makes things */
		error(res, 404, "not_found", "no thing by that name; the team's names are strict");
		break;
	default:
		error(res, 503, "unavailable", "the database is unavailable; try again");
	}
}

static void
delete_dibs(struct tx *tx, struct caller *c, const char *name, struct response *res)
{
	struct dibs_outcome o;

	tx_commit_next(tx);
	dibs_release(tx, c->team_id, c->user_id, name, &o);
	switch (o.status) {
	case DIBS_ST_RELEASED:
		http_reply_json(res, 200,
		                json_pack("{s:s, s:o}", "status", "released", "next_holder",
		                          o.next_user[0] ? json_string(o.next_user) : json_null()));
		break;
	case DIBS_ST_LEFT_QUEUE:
		http_reply_json(res, 200, json_pack("{s:s}", "status", "left_queue"));
		break;
	case DIBS_ST_NOT_HOLDING:
		error(res, 409, "not_holding", "you neither hold this thing nor wait for it");
		break;
	case DIBS_ST_NO_SUCH_THING:
		error(res, 404, "not_found", "no thing by that name");
		break;
	default:
		error(res, 503, "unavailable", "the database is unavailable; try again");
	}
}

/* What follows things/NAME. */
enum thing_sub { SUB_NONE, SUB_DIBS, SUB_HISTORY };

/* "things", "things/NAME", "things/NAME/dibs" or "things/NAME/history", as
 * sent: NAME is one
 * path segment, percent-decoded here (a '/' in a name is written %2F, so
 * "things/qa%2Feu" is the thing qa/eu), then checked with the /dibs
 * grammar's thing-name rule. */
static int
split_path(const char *sub, char name[DIBS_THING_MAX + 1], enum thing_sub *what)
{
	char err[128];
	const char *s, *slash;
	char *decoded;
	int rc = -1;

	*what = SUB_NONE;
	name[0] = '\0';
	if (strcmp(sub, "things") == 0)
		return 0;
	if (strncmp(sub, "things/", 7) != 0)
		return -1;
	s = sub + 7;
	slash = strchr(s, '/');
	if (slash && strcmp(slash, "/dibs") == 0)
		*what = SUB_DIBS;
	else if (slash && strcmp(slash, "/history") == 0)
		*what = SUB_HISTORY;
	else if (slash)
		return -1;
	decoded = url_decode_path(s, slash ? (size_t)(slash - s) : strlen(s));
	/* One name: "a%20for%201h" is refused, never read as more of a command. */
	if (decoded == NULL || dibs_thing_name(decoded, NULL, name, err, sizeof(err)) < 0)
		goto done;
	rc = 0;
done:
	free(decoded);
	return rc;
}

/* GET things/NAME/history?days=N (1 to 90, default 7). */
static void
get_history(struct tx *tx, struct caller *c, const char *name, struct request *req,
            struct response *res)
{
	const char *q = http_query(req, "days");
	long long days = DIBS_HISTORY_DAYS;
	PGresult *r;
	json_t *arr;
	int exists = 0;

	if (q && strnum_digits(q, strlen(q), 1, DIBS_HISTORY_DAYS_MAX, &days) < 0) {
		error(res, 400, "bad_request", "days must be a whole number from 1 to 90");
		return;
	}
	if ((r = dibs_history_load(tx, c->team_id, name, (int)days, &exists)) == NULL) {
		error(res, 503, "unavailable", "the database is unavailable; try again");
		return;
	}
	if (PQntuples(r) == 0 && !exists) {
		PQclear(r);
		error(res, 404, "not_found", "no thing by that name");
		return;
	}
	arr = json_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(
		    arr,
		    json_pack(
		        "{s:s, s:o, s:o, s:o, s:o, s:o}", "holder", db_str(r, i, 0), "from",
		        time_or_null(strtod(db_str(r, i, 1), NULL)), "to",
		        db_null(r, i, 2) ? json_null()
		                         : time_or_null(strtod(db_str(r, i, 2), NULL)),
		        "ending", db_null(r, i, 3) ? json_null() : json_string(db_str(r, i, 3)),
		        "ended_by", db_null(r, i, 4) ? json_null() : json_string(db_str(r, i, 4)),
		        "reason", db_null(r, i, 5) ? json_null() : json_string(db_str(r, i, 5))));
	PQclear(r);
	http_reply_json(
	    res, 200,
	    json_pack("{s:s, s:I, s:o}", "thing", name, "days", (json_int_t)days, "holds", arr));
}

/* --- the caller's tokens ---------------------------------------------------- */

void
api_reply_rows(struct response *res, PGresult *r, const char *key, json_t *(*row)(PGresult *, int))
{
	json_t *arr = json_array();

	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(arr, row(r, i));
	PQclear(r);
	http_reply_json(res, 200, json_pack("{s:o}", key, arr));
}

/* A row of dibs_tokens_load(): never the token, only what describes it. */
static json_t *
token_json(PGresult *r, int i)
{
	double used = db_null(r, i, 2) ? 0 : strtod(db_str(r, i, 2), NULL);

	return json_pack(
	    "{s:I, s:o, s:o, s:o, s:b}", "id", (json_int_t)strtoll(db_str(r, i, 0), NULL, 10),
	    "created_at", time_or_null(strtod(db_str(r, i, 1), NULL)), "last_used_at",
	    time_or_null(used), "expires_at", time_or_null(strtod(db_str(r, i, 3), NULL)),
	    "expired", db_str(r, i, 4)[0] == 't');
}

static void
get_tokens(struct tx *tx, struct caller *c, struct response *res)
{
	PGresult *r;

	if ((r = dibs_tokens_load(tx, c->team_id, c->user_id)) == NULL) {
		error(res, 503, "unavailable", "the database is unavailable; try again");
		return;
	}
	api_reply_rows(res, r, "tokens", token_json);
}

static void
delete_token(struct tx *tx, struct caller *c, long long id, struct response *res)
{
	int n;

	if ((n = dibs_token_revoke(tx, c->team_id, c->user_id, id)) < 0) {
		error(res, 503, "unavailable", "the database is unavailable; try again");
		return;
	}
	if (n == 0)
		error(res, 404, "not_found", "you have no token with that id");
	else
		http_reply_json(res, 200,
		                json_pack("{s:s, s:I}", "status", "revoked", "id", (json_int_t)id));
}

/* "tokens" (GET) and "tokens/ID" (DELETE); 0 when sub is not about tokens. */
static int
tokens_route(struct tx *tx, struct caller *c, struct request *req, struct response *res)
{
	const char *sub = req->subpath;
	long long id;

	if (strcmp(sub, "tokens") == 0) {
		if (strcmp(req->method, "GET") != 0) {
			http_set_header(res, "Allow", "GET");
			error(res, 405, "method_not_allowed", "use GET");
		} else if (authorize(tx, c, res, 0) == 0) {
			get_tokens(tx, c, res);
		}
		return 1;
	}
	if (strncmp(sub, "tokens/", 7) != 0)
		return 0;
	if (strnum_digits(sub + 7, strlen(sub + 7), 1, INT64_MAX, &id) < 0) {
		error(res, 404, "not_found", "token ids are whole numbers (GET /api/v1/tokens)");
	} else if (strcmp(req->method, "DELETE") != 0) {
		http_set_header(res, "Allow", "DELETE");
		error(res, 405, "method_not_allowed", "use DELETE");
	} else if (authorize(tx, c, res, 0) == 0) {
		delete_token(tx, c, id, res);
	}
	return 1;
}

/* GET /api/v1/openapi.json: assets/openapi.json as it is, for anyone. */
static void
openapi(struct response *res)
{
	char *path = xasprintf("%s/openapi.json", conf.assets_dir);
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[8192];
	size_t n;

	free(path);
	if (f == NULL) {
		error(res, 404, "not_found", "the API description is not installed (assets_dir)");
		return;
	}
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	http_set_header(res, "Cache-Control", "public, max-age=300");
	http_reply(res, 200, "application/json", b.data ? b.data : xstrdup(""), b.len);
}

/* The route label of a subpath, by its shape alone: thing names and token
 * ids never become labels. */
static const char *
route_pattern(const char *sub)
{
	const char *slash;

	if (strcmp(sub, "things") == 0)
		return "/api/v1/things";
	if (strcmp(sub, "tokens") == 0)
		return "/api/v1/tokens";
	if (strcmp(sub, "openapi.json") == 0)
		return "/api/v1/openapi.json";
	if (strcmp(sub, "subscriptions") == 0)
		return "/api/v1/subscriptions";
	if (strncmp(sub, "subscriptions/", 14) == 0 && sub[14] != '\0' &&
	    strchr(sub + 14, '/') == NULL)
		return "/api/v1/subscriptions/{id}";
	if (strncmp(sub, "subscriptions/", 14) == 0 && sub[14] != '/' &&
	    (slash = strchr(sub + 14, '/')) != NULL && strcmp(slash, "/resume") == 0)
		return "/api/v1/subscriptions/{id}/resume";
	if (strncmp(sub, "tokens/", 7) == 0 && sub[7] != '\0' && strchr(sub + 7, '/') == NULL)
		return "/api/v1/tokens/{id}";
	if (strncmp(sub, "things/", 7) != 0 || sub[7] == '\0')
		return "other";
	slash = strchr(sub + 7, '/');
	if (slash == NULL)
		return "/api/v1/things/{name}";
	if (strcmp(slash, "/history") == 0)
		return "/api/v1/things/{name}/history";
	return strcmp(slash, "/dibs") == 0 ? "/api/v1/things/{name}/dibs" : "other";
}

/* Everything after authentication, in the request's transaction. */
static void
route(struct tx *tx, struct caller *c, struct request *req, struct response *res)
{
	char name[DIBS_THING_MAX + 1];
	enum thing_sub what;
	int dibs, post, del;

	if (tokens_route(tx, c, req, res))
		return;
	if (strncmp(req->subpath, "subscriptions", 13) == 0) {
		if (authorize(tx, c, res, 1) == 0 &&
		    !api_subscriptions_route(tx, c->team_id, c->user_id, req, res))
			error(res, 404, "not_found", "no such endpoint");
		return;
	}
	if (split_path(req->subpath, name, &what) < 0) {
		error(res, 404, "not_found", "no such endpoint or thing name");
		return;
	}
	dibs = what == SUB_DIBS;
	post = strcmp(req->method, "POST") == 0;
	del = strcmp(req->method, "DELETE") == 0;

	if (dibs ? !(post || del) : strcmp(req->method, "GET") != 0) {
		http_set_header(res, "Allow", dibs ? "POST, DELETE" : "GET");
		error(res, 405, "method_not_allowed", dibs ? "use POST or DELETE" : "use GET");
		return;
	}
	if (authorize(tx, c, res, 1) < 0)
		return;
	if (what == SUB_HISTORY)
		get_history(tx, c, name, req, res);
	else if (!dibs)
		get_things(tx, c, name[0] ? name : NULL, res);
	else if (post)
		post_dibs(tx, c, name, req, res);
	else
		delete_dibs(tx, c, name, res);
}

/* One transaction a request: the token's lookup, the plan, the change,
 * committed after the route's answer (a route that waits commits first),
 * run once more after a serialization failure or a deadlock. */
void
api_http(struct request *req, struct response *res)
{
	struct caller c;
	enum tx_end end;
	struct tx tx;

	req->route = route_pattern(req->subpath);
	if (strcmp(req->subpath, "openapi.json") == 0 && strcmp(req->method, "GET") == 0) {
		openapi(res);
		return;
	}
	/* Who asks comes first: without a valid token nothing else is said. */
	if (bearer(req, res, &c) < 0)
		return;
	for (int attempt = 0;; attempt++) {
		if (authenticate(&tx, res, &c) < 0)
			return;
		route(&tx, &c, req, res);
		if ((end = tx_end(&tx, attempt)) != TX_AGAIN)
			break;
		http_reply_reset(res);
	}
	if (end == TX_LOST)
		error(res, 503, "unavailable", "the database is unavailable; try again");
}
