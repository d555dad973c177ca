/* PostgreSQL: one connection per thread, statements prepared once per
 * connection (unnamed behind a pooler), transactions scoped to one team by
 * Row-Level Security, checked reads of results, and the migration runner. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db.h"
#include "log.h"
#include "util.h"

#define PREPARED_MAX    256
#define RECONNECT_PAUSE 0.5     /* seconds between attempts of one thread */
#define MIGRATION_LOCK  7364021 /* pg_advisory_lock key: "conch" migrations */

struct prepared {
	char *sql;
	unsigned hash;
};

/* Per-thread connection state. The cache maps statement text to its name
 * ("s<index>"); O(1) by hash, compared by text so a reused address never
 * runs the wrong statement. */
struct conn {
	PGconn *pg;
	struct prepared stmts[PREPARED_MAX];
	int nstmts;
	int in_tx; /* counted in conns_in_tx */
};

static char *db_conninfo;
static char *db_direct_conninfo; /* NULL: the same as db_conninfo */
/* database_url names a transaction pooler (a direct URL was given beside
 * it): consecutive transactions may run on different server sessions, so
 * nothing may outlive one: no named prepared statements. */
static int db_pooled;
static atomic_long db_errors;
static atomic_long conns_open, conns_in_tx, conns_connecting;
/* Process-wide, so that once any thread reaches the database again every
 * thread tries at once, and while none can, requests fail fast instead of
 * each waiting out connect_timeout. */
static _Atomic double last_failure, last_success;
static _Thread_local struct conn tconn;
static _Thread_local PGconn *tdirect; /* LISTEN, when database_direct_url differs */
static pthread_key_t conn_key;
static pthread_once_t conn_key_once = PTHREAD_ONCE_INIT;

/* Threads we do not own (the HTTP pool) end without telling us: a key
 * destructor closes their connection when they exit. */
static void
conn_key_destroy(void *arg)
{
	(void)arg;
	db_thread_close();
}

static void
conn_key_create(void)
{
	pthread_key_create(&conn_key, conn_key_destroy);
}

void
db_init(const char *conninfo)
{
	free(db_conninfo);
	db_conninfo = xstrdup(conninfo ? conninfo : "");
}

void
db_init_direct(const char *conninfo)
{
	free(db_direct_conninfo);
	db_direct_conninfo = NULL;
	if (conninfo && *conninfo && strcmp(conninfo, db_conninfo ? db_conninfo : "") != 0)
		db_direct_conninfo = xstrdup(conninfo);
	db_pooled = db_direct_conninfo != NULL;
}

long
db_error_count(void)
{
	return atomic_load(&db_errors);
}

void
db_conn_stats(struct db_conn_stats *out)
{
	out->open = atomic_load(&conns_open);
	out->in_transaction = atomic_load(&conns_in_tx);
	out->connecting = atomic_load(&conns_connecting);
}

/* Marks the thread's connection as inside a transaction or not. */
static void
conn_in_tx(int in_tx)
{
	if (tconn.in_tx != in_tx)
		atomic_fetch_add(&conns_in_tx, in_tx ? 1 : -1);
	tconn.in_tx = in_tx;
}

static void
conn_forget_statements(void)
{
	for (int i = 0; i < tconn.nstmts; i++)
		free(tconn.stmts[i].sql);
	tconn.nstmts = 0;
}

/* Closes an open connection, keeping conns_open right. */
static void
conn_finish(PGconn *pg)
{
	if (pg == NULL)
		return;
	PQfinish(pg);
	atomic_fetch_sub(&conns_open, 1);
}

void
db_thread_close(void)
{
	conn_in_tx(0);
	conn_finish(tconn.pg);
	tconn.pg = NULL;
	conn_forget_statements();
	conn_finish(tdirect);
	tdirect = NULL;
}

static void
notice_ignore(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* A new connection to conninfo, or NULL (logged, counted). */
static PGconn *
connect_to(const char *conninfo)
{
	const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
	const char *vals[] = {conninfo, "3", "conch", NULL};
	PGconn *pg;

	if (last_failure > last_success && now_seconds() - last_failure < RECONNECT_PAUSE)
		return NULL;
	atomic_fetch_add(&conns_connecting, 1);
	pg = PQconnectdbParams(keys, vals, 1);
	atomic_fetch_sub(&conns_connecting, 1);
	if (PQstatus(pg) != CONNECTION_OK) {
		log_warn("database connection failed: %s", PQerrorMessage(pg));
		atomic_fetch_add(&db_errors, 1);
		PQfinish(pg);
		last_failure = now_seconds();
		return NULL;
	}
	last_success = now_seconds();
	atomic_fetch_add(&conns_open, 1);
	PQsetNoticeProcessor(pg, notice_ignore, NULL);
	pthread_once(&conn_key_once, conn_key_create);
	pthread_setspecific(conn_key, &tconn);
	return pg;
}

PGconn *
db_thread_conn(void)
{
	if (tconn.pg && PQstatus(tconn.pg) == CONNECTION_OK)
		return tconn.pg;
	if (tconn.pg) {
		conn_in_tx(0);
		conn_finish(tconn.pg);
		tconn.pg = NULL;
		conn_forget_statements();
	}
	tconn.pg = connect_to(db_conninfo);
	return tconn.pg;
}

PGconn *
db_thread_direct_conn(void)
{
	if (db_direct_conninfo == NULL)
		return db_thread_conn();
	if (tdirect && PQstatus(tdirect) == CONNECTION_OK)
		return tdirect;
	conn_finish(tdirect);
	tdirect = connect_to(db_direct_conninfo);
	return tdirect;
}

static unsigned
sql_hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* Name of the prepared statement for sql on this connection, preparing
 * it on first use; NULL when preparing fails (*failure holds why); "" for
 * the unnamed statement (parsed with each execution), which is all that a
 * pooled connection may use. */
static const char *
statement_name(struct tx *tx, const char *sql, char name[16], PGresult **failure)
{
	unsigned h = sql_hash(sql);
	PGresult *r;

	if (db_pooled)
		return "";
	for (int i = 0; i < tconn.nstmts; i++) {
		if (tconn.stmts[i].hash == h && strcmp(tconn.stmts[i].sql, sql) == 0) {
			snprintf(name, 16, "s%d", i);
			return name;
		}
	}
	if (tconn.nstmts == PREPARED_MAX)
		return ""; /* unnamed statement: still parameterised */
	snprintf(name, 16, "s%d", tconn.nstmts);
	r = PQprepare(tx->conn, name, sql, 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		*failure = r;
		return NULL;
	}
	PQclear(r);
	tconn.stmts[tconn.nstmts].sql = xstrdup(sql);
	tconn.stmts[tconn.nstmts].hash = h;
	tconn.nstmts++;
	return name;
}

/* SQLSTATE classes (the first two characters) and codes, first match wins.
 * 57 is operator intervention: 57P01 admin shutdown (a PostgreSQL stopping
 * or restarting under a statement), 57P02 crash shutdown, 57P03 cannot
 * connect now. */
static const struct {
	const char *prefix;
	enum db_error error;
} error_classes[] = {
    {"08", DB_UNAVAILABLE}, {"53", DB_UNAVAILABLE},  {"57", DB_UNAVAILABLE},
    {"23", DB_CONFLICT},    {"40001", DB_RETRYABLE}, {"40P01", DB_RETRYABLE},
};

enum db_error
db_classify(const char *sqlstate)
{
	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return DB_UNAVAILABLE; /* libpq's own error: the connection is gone */
	for (size_t i = 0; i < ARRAY_LEN(error_classes); i++)
		if (strncmp(sqlstate, error_classes[i].prefix, strlen(error_classes[i].prefix)) ==
		    0)
			return error_classes[i].error;
	return DB_BUG;
}

/* Records a failure. A broken connection is unavailable whatever the
 * SQLSTATE said; otherwise the first failure's class stands (a later one
 * is often only "current transaction is aborted"). */
static void
tx_fail(struct tx *tx, PGresult *r, const char *sql)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = tx->conn ? PQerrorMessage(tx->conn) : "no connection";
	int msglen = (int)strcspn(msg, "\n");
	enum db_error error = db_classify(state);

	if (tx->conn == NULL || PQstatus(tx->conn) != CONNECTION_OK)
		error = DB_UNAVAILABLE;
	if (tx->error == DB_OK || error == DB_UNAVAILABLE) {
		tx->error = error;
		snprintf(tx->sqlstate, sizeof(tx->sqlstate), "%s", state ? state : "");
	}
	tx->failed = 1;
	atomic_fetch_add(&db_errors, 1);
	/* Unique violations are expected by some callers; keep them quiet. */
	log_msg(state && strcmp(state, "23505") == 0 ? LOGL_DEBUG : LOGL_ERROR,
	        "database: %.*s [%s] in: %.120s", msglen, msg, state ? state : "", sql);
}

PGresult *
tx_query(struct tx *tx, const char *sql, int nparams, const char *const *params)
{
	char namebuf[16];
	const char *name;
	PGresult *r;
	ExecStatusType st;

	if (tx->failed)
		return NULL;
	if (tx->done) {
		log_error("database: a statement after its transaction closed: %.120s", sql);
		return NULL;
	}
	if (tx->commit_next) {
		tx->commit_next = 0;
		return tx_query_commit(tx, sql, nparams, params);
	}
	r = NULL;
	name = statement_name(tx, sql, namebuf, &r);
	if (name == NULL) {
		tx_fail(tx, r, sql);
		PQclear(r);
		return NULL;
	}
	if (*name == '\0')
		r = PQexecParams(tx->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	else
		r = PQexecPrepared(tx->conn, name, nparams, params, NULL, NULL, 0);
	st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		tx_fail(tx, r, sql);
		PQclear(r);
		return NULL;
	}
	return r;
}

int
tx_exec(struct tx *tx, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = tx_query(tx, sql, nparams, params);

	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

/* Runs a parameterless command outside the statement cache. */
static int
simple(struct tx *tx, const char *sql)
{
	PGresult *r = PQexec(tx->conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		tx_fail(tx, r, sql);
	PQclear(r);
	return ok ? 0 : -1;
}

/* The thread's connection, ready for a new statement. One left
 * mid-statement or in pipeline mode (results never read: it failed while
 * they were) is replaced; one left inside a transaction (a caller's bug) is
 * rolled back. NULL when the database cannot be reached. */
static PGconn *
conn_ready(void)
{
	PGconn *c = db_thread_conn();

	if (c &&
	    (PQpipelineStatus(c) != PQ_PIPELINE_OFF || PQtransactionStatus(c) == PQTRANS_ACTIVE)) {
		log_warn("database: connection left mid-statement; replacing it");
		db_thread_close();
		c = db_thread_conn();
	}
	if (c && PQtransactionStatus(c) != PQTRANS_IDLE) {
		log_error("database: transaction left open on this thread; rolling back");
		PQclear(PQexec(c, "ROLLBACK"));
	}
	return c;
}

/* One statement of a pipeline; its result is kept in *keep (NULL:
 * cleared). */
struct step {
	const char *sql;
	int nparams;
	const char *const *params;
	PGresult **keep;
};

static int pipeline(struct tx *tx, const struct step *steps, int n);

/* Scopes a team transaction. Team tables have 16 partitions; a custom plan
 * is made for every execution because the generic plan's estimate ignores
 * run-time pruning, so team transactions ask for generic plans (pruned at
 * run time), which cost a third less. */
#define TEAM_SCOPE_SQL                                                                             \
	"SELECT set_config('conch.team_id', $1, true), "                                           \
	"set_config('plan_cache_mode', 'force_generic_plan', true)"

/* Starts a transaction on the thread's connection (begin), scoped to
 * team_id (or to none), with first (when not NULL) run in it: BEGIN, the
 * scope and first go out in one round trip. Without begin, first alone
 * runs on the connection, outside a transaction. An idle connection the
 * server dropped (a restart) is replaced once: nothing was lost yet. */
static int
tx_open(struct tx *tx, const char *team_id, const struct step *first, int begin)
{
	const char *scope[1] = {team_id};
	struct step steps[3];
	int n, rc;

	for (int attempt = 0; attempt < 2; attempt++) {
		memset(tx, 0, sizeof(*tx));
		tx->conn = conn_ready();
		if (tx->conn == NULL) {
			tx->failed = 1;
			tx->done = 1;
			tx->error = DB_UNAVAILABLE;
			return -1;
		}
		n = 0;
		if (begin)
			steps[n++] = (struct step){"BEGIN", 0, NULL, NULL};
		if (team_id)
			steps[n++] = (struct step){TEAM_SCOPE_SQL, 1, scope, NULL};
		if (first)
			steps[n++] = *first;
		rc = n == 1 && steps[0].nparams == 0 && steps[0].keep == NULL
		         ? simple(tx, steps[0].sql)
		         : pipeline(tx, steps, n);
		if (rc == 0) {
			conn_in_tx(begin);
			return 0;
		}
		if (first && first->keep) {
			PQclear(*first->keep);
			*first->keep = NULL;
		}
		if (tx->error != DB_UNAVAILABLE) {
			/* BEGIN may have gone through before the scope failed. */
			tx_rollback(tx);
			return -1;
		}
		db_thread_close();
	}
	tx->done = 1;
	return -1;
}

/* One statement in its own implicit transaction, sent at most attempts
 * times over a connection found lost (again on a fresh one), plus once more
 * after a serialization failure or a deadlock, which rolled it back. */
static PGresult *
query_alone(const char *sql, int nparams, const char *const *params, enum db_error *error,
            int attempts)
{
	struct tx tx;
	PGresult *r = NULL;
	int retried = 0;

	for (int attempt = 0; attempt < attempts; attempt++) {
		memset(&tx, 0, sizeof(tx));
		tx.conn = conn_ready();
		if (tx.conn == NULL) {
			tx.error = DB_UNAVAILABLE;
			break;
		}
		r = tx_query(&tx, sql, nparams, params);
		if (r == NULL && tx.error == DB_RETRYABLE && !retried) {
			retried = 1;
			attempt--; /* not a lost connection: it does not count */
			continue;
		}
		if (r != NULL || tx.error != DB_UNAVAILABLE)
			break;
		db_thread_close(); /* the server restarted under us: reconnect once */
	}
	if (error)
		*error = r == NULL ? tx.error : DB_OK;
	return r;
}

PGresult *
db_query_once(const char *sql, int nparams, const char *const *params, enum db_error *error)
{
	return query_alone(sql, nparams, params, error, 2);
}

PGresult *
db_change_once(const char *sql, int nparams, const char *const *params, enum db_error *error)
{
	return query_alone(sql, nparams, params, error, 1);
}

/* Reads one pipelined statement's results up to its terminating NULL;
 * 0 when it succeeded (its result then kept in *keep when keep is not
 * NULL), else -1 with the failure recorded. */
static int
pipeline_result(struct tx *tx, const char *sql, PGresult **keep)
{
	PGresult *r;
	int ok = 0, seen = 0;

	while ((r = PQgetResult(tx->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (!seen++ && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
			ok = 1;
			if (keep) {
				*keep = r;
				continue;
			}
		} else if (!tx->failed) {
			tx_fail(tx, r, sql);
		}
		PQclear(r);
	}
	if (!ok && !tx->failed)
		tx_fail(tx, NULL, sql);
	return ok ? 0 : -1;
}

/* The steps in one round trip (libpq pipeline mode): each sent, one sync,
 * then each one's results read in order. A statement with parameters is
 * prepared first, as tx_query() would (outside the pipeline: once per
 * connection). 0 when every step succeeded; after a failure the rest were
 * not run (the server skips to the sync). */
static int
pipeline(struct tx *tx, const struct step *steps, int n)
{
	char names[4][16];
	const char *name[4];
	PGconn *c = tx->conn;
	PGresult *r;
	int rc = 0, sent = 1;

	if (n > (int)ARRAY_LEN(name))
		abort(); /* a caller's bug, found by any test that runs it */
	for (int i = 0; i < n; i++) {
		r = NULL;
		name[i] = steps[i].nparams ? statement_name(tx, steps[i].sql, names[i], &r) : "";
		if (name[i] == NULL) {
			tx_fail(tx, r, steps[i].sql);
			PQclear(r);
			return -1;
		}
	}
	if (!PQenterPipelineMode(c)) {
		tx_fail(tx, NULL, "(pipeline)");
		return -1;
	}
	for (int i = 0; i < n && sent; i++)
		sent = *name[i] ? PQsendQueryPrepared(c, name[i], steps[i].nparams, steps[i].params,
		                                      NULL, NULL, 0)
		                : PQsendQueryParams(c, steps[i].sql, steps[i].nparams, NULL,
		                                    steps[i].params, NULL, NULL, 0);
	if (!sent || !PQpipelineSync(c)) {
		tx_fail(tx, NULL, steps[0].sql);
		tx->error = DB_UNAVAILABLE;
		db_thread_close(); /* what was queued can be neither sent nor read */
		tx->conn = NULL;
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (pipeline_result(tx, steps[i].sql, steps[i].keep) < 0)
			rc = -1;
	/* The sync point closes the pipeline; a dead connection ends it early. */
	while ((r = PQgetResult(c)) != NULL) {
		int sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
		PQclear(r);
		if (sync)
			break;
	}
	if (!PQexitPipelineMode(c)) {
		/* Results left unread: the connection failed mid-pipeline and
		 * cannot be used again; closing it ends its transaction. */
		if (!tx->failed)
			tx_fail(tx, NULL, steps[n - 1].sql);
		tx->error = DB_UNAVAILABLE;
		log_warn("database: connection left mid-pipeline; closing it");
		db_thread_close();
		tx->conn = NULL;
		return -1;
	}
	return rc;
}

int
tx_begin(struct tx *tx, const char *team_id)
{
	return tx_open(tx, team_id, NULL, 1);
}

int
tx_begin_system(struct tx *tx)
{
	return tx_open(tx, NULL, NULL, 1);
}

PGresult *
tx_begin_with(struct tx *tx, const char *team_id, const char *sql, int nparams,
              const char *const *params)
{
	PGresult *r = NULL;
	struct step first = {sql, nparams, params, &r};

	return tx_open(tx, team_id, &first, 1) == 0 ? r : NULL;
}

int
tx_scope(struct tx *tx, const char *team_id)
{
	const char *p[1] = {team_id ? team_id : ""};

	return tx_exec(tx, "SELECT set_config('conch.team_id', $1, true)", 1, p);
}

/* --- checked reads ---------------------------------------------------- */

const char *
db_text(const PGresult *r, int row, int col)
{
	if (r == NULL || row < 0 || col < 0 || row >= PQntuples(r) || col >= PQnfields(r) ||
	    PQgetisnull(r, row, col))
		return NULL;
	return PQgetvalue(r, row, col);
}

const char *
db_str(const PGresult *r, int row, int col)
{
	const char *v = db_text(r, row, col);

	return v ? v : "";
}

int
db_null(const PGresult *r, int row, int col)
{
	return db_text(r, row, col) == NULL;
}

char *
db_strdup(const PGresult *r, int row, int col)
{
	const char *v = db_text(r, row, col);

	return v ? xstrdup(v) : NULL;
}

void
db_copy(char *dst, size_t size, const PGresult *r, int row, int col)
{
	const char *v = db_text(r, row, col);

	snprintf(dst, size, "%s", v ? v : "");
}

long long
db_int(const PGresult *r, int row, int col, long long dflt)
{
	const char *v = db_text(r, row, col);
	char *end;
	long long n;

	if (v == NULL)
		return dflt;
	errno = 0;
	n = strtoll(v, &end, 10);
	return errno || end == v || *end ? dflt : n;
}

double
db_double(const PGresult *r, int row, int col, double dflt)
{
	const char *v = db_text(r, row, col);
	char *end;
	double d;

	if (v == NULL)
		return dflt;
	d = strtod(v, &end);
	return end == v || *end ? dflt : d;
}

int
db_bool(const PGresult *r, int row, int col)
{
	const char *v = db_text(r, row, col);

	return v != NULL && v[0] == 't' && v[1] == '\0';
}

PGresult *
tx_query_commit(struct tx *tx, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = NULL;
	struct step steps[2] = {{sql, nparams, params, &r}, {"COMMIT", 0, NULL, NULL}};

	if (tx->done || tx->failed || tx->conn == NULL) {
		tx_rollback(tx);
		return NULL;
	}
	if (pipeline(tx, steps, 2) < 0) {
		PQclear(r);
		tx_rollback(tx); /* the statement failed: COMMIT was skipped */
		return NULL;
	}
	tx->done = 1;
	conn_in_tx(0);
	return r;
}

enum tx_end
tx_end(struct tx *tx, int attempt)
{
	int seen = tx->failed; /* the work saw the failure and answered for it */

	if (tx_commit(tx) == 0)
		return TX_ENDED;
	if (tx->error == DB_RETRYABLE && attempt == 0)
		return TX_AGAIN;
	return seen ? TX_ENDED : TX_LOST;
}

void
tx_commit_next(struct tx *tx)
{
	tx->commit_next = 1;
}

int
tx_commit(struct tx *tx)
{
	if (tx->done)
		return tx->failed ? -1 : 0;
	if (tx->conn == NULL) {
		tx->done = 1;
		tx->failed = 1;
		return -1;
	}
	if (tx->failed) {
		tx_rollback(tx);
		return -1;
	}
	conn_in_tx(0);
	tx->done = 1;
	return simple(tx, "COMMIT");
}

void
tx_rollback(struct tx *tx)
{
	if (tx->done)
		return;
	if (tx->conn && PQstatus(tx->conn) == CONNECTION_OK &&
	    PQtransactionStatus(tx->conn) != PQTRANS_IDLE)
		PQclear(PQexec(tx->conn, "ROLLBACK"));
	tx->failed = 1;
	tx->done = 1;
	conn_in_tx(0);
}

int
db_ping(void)
{
	struct tx tx;
	struct step ping = {"SELECT 1", 0, NULL, NULL};

	if (tx_open(&tx, NULL, &ping, 0) < 0)
		return -1;
	return 0;
}

/* --- migrations ------------------------------------------------------ */

static char *
read_whole_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[8192];
	size_t n;

	if (f == NULL)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	return buf_steal(&b);
}

/* NNN_name.sql */
static int
migration_name(const struct dirent *d)
{
	const char *n = d->d_name;
	size_t len = strlen(n);

	if (len < 9 || strcmp(n + len - 4, ".sql") != 0)
		return 0;
	for (int i = 0; i < 3; i++)
		if (n[i] < '0' || n[i] > '9')
			return 0;
	return n[3] == '_';
}

static int
list_migrations(const char *dir, struct dirent ***out)
{
	int n = scandir(dir, out, migration_name, alphasort);

	if (n < 0)
		log_error("migrations: cannot read %s: %s", dir, strerror(errno));
	return n;
}

static void
free_list(struct dirent **list, int n)
{
	for (int i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static int
migration_applied(struct tx *tx, const char *version)
{
	const char *p[1] = {version};
	PGresult *r = tx_query(tx, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, p);
	int found;

	if (r == NULL)
		return -1;
	found = PQntuples(r) > 0;
	PQclear(r);
	return found;
}

static int
apply_migration(const char *dir, const char *file)
{
	char *path = xasprintf("%s/%s", dir, file);
	char *sql = read_whole_file(path);
	const char *p[1] = {file};
	struct tx tx;
	int rc = -1, applied;

	if (sql == NULL) {
		log_error("migrations: cannot read %s", path);
		goto out;
	}
	if (tx_begin(&tx, NULL) < 0)
		goto out;
	applied = migration_applied(&tx, file);
	if (applied != 0) {
		tx_rollback(&tx);
		rc = applied == 1 ? 0 : -1;
		goto out;
	}
	/* Migration files are ours, not input: the simple protocol runs them whole. */
	if (simple(&tx, sql) == 0 &&
	    tx_exec(&tx, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, p) == 0 &&
	    tx_commit(&tx) == 0) {
		log_info("migrations: applied %s", file);
		rc = 1;
	} else {
		tx_rollback(&tx);
		log_error("migrations: %s failed; nothing of it was applied", file);
	}
out:
	free(sql);
	free(path);
	return rc;
}

int
db_migrate(const char *dir)
{
	struct dirent **list = NULL;
	struct tx tx;
	int n, applied = 0, rc;
	char lock[64];

	n = list_migrations(dir, &list);
	if (n < 0)
		return -1;
	snprintf(lock, sizeof(lock), "SELECT pg_advisory_lock(%d)", MIGRATION_LOCK);
	/* The session lock serialises concurrent migrators across instances. */
	if (tx_open(&tx, NULL, &(struct step){lock, 0, NULL, NULL}, 0) < 0)
		goto fail;
	if (simple(&tx,
	           "CREATE TABLE IF NOT EXISTS schema_migrations ("
	           "version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())") < 0)
		goto unlock;
	for (int i = 0; i < n; i++) {
		rc = apply_migration(dir, list[i]->d_name);
		if (rc < 0)
			goto unlock;
		applied += rc;
	}
	free_list(list, n);
	PQclear(PQexec(tx.conn, "SELECT pg_advisory_unlock_all()"));
	return applied;
unlock:
	if (tx.conn)
		PQclear(PQexec(tx.conn, "SELECT pg_advisory_unlock_all()"));
fail:
	free_list(list, n);
	return -1;
}

/* Row-Level Security does not bind a superuser, a BYPASSRLS role or the
 * tables' owner: serving as one would show every team every row. */
static int
runtime_role_check(struct tx *tx, char *err, size_t errlen)
{
	PGresult *r = tx_query(
	    tx,
	    "SELECT current_user, r.rolsuper OR r.rolbypassrls OR EXISTS (SELECT 1 FROM pg_class c "
	    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND "
	    "c.relkind IN ('r', 'p') AND pg_has_role(current_user, c.relowner, 'USAGE')) "
	    "FROM pg_roles r WHERE r.rolname = current_user",
	    0, NULL);
	int rc = -1;

	if (r == NULL || PQntuples(r) != 1)
		snprintf(err, errlen, "cannot read the database role: see the log above");
	else if (PQgetvalue(r, 0, 1)[0] == 't')
		snprintf(err, errlen,
		         "database_url connects as %s, which owns the schema or bypasses row-level "
		         "security: serve must connect as the runtime role (a member of "
		         "conch_runtime); the owner is for database_migrate_url only",
		         PQgetvalue(r, 0, 0));
	else
		rc = 0;
	PQclear(r);
	return rc;
}

int
db_check_migrated(const char *dir, char *err, size_t errlen)
{
	struct dirent **list = NULL;
	struct tx tx;
	int n, rc = -1, applied;

	n = list_migrations(dir, &list);
	if (n < 0) {
		snprintf(err, errlen, "cannot read migrations from %s", dir);
		return -1;
	}
	if (tx_begin(&tx, NULL) < 0) {
		snprintf(err, errlen, "cannot connect to the database: %s",
		         tx.conn ? PQerrorMessage(tx.conn) : "see the log above");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		applied = migration_applied(&tx, list[i]->d_name);
		if (applied != 1) {
			snprintf(err, errlen,
			         "database is not migrated (%s is not applied): run `conch "
			         "migrate` first",
			         list[i]->d_name);
			goto out;
		}
	}
	rc = runtime_role_check(&tx, err, errlen);
out:
	tx_rollback(&tx);
	free_list(list, n);
	return rc;
}
