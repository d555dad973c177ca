/* PostgreSQL over libpq: one connection per thread (reconnected on
 * failure), statements prepared once per connection (unnamed behind a
 * pooler), and transactions
 * scoped to one team through Row-Level Security. */
#ifndef CONCH_DB_H
#define CONCH_DB_H

#include <libpq-fe.h>
#include <stddef.h>

/* Sets the connection string used by every thread (conf.database_url). */
void db_init(const char *conninfo);
/* A direct (not pooled) connection string for LISTEN (conf.database_direct_url);
 * NULL or the same string: the threads' own connection serves. A direct
 * URL apart from database_url means database_url names a transaction
 * pooler (PgBouncer): statements there are unnamed, parsed with each
 * execution, and nothing outlives a transaction on that connection. */
void db_init_direct(const char *conninfo);

/* What a failed statement means for the caller: chosen once, here, from
 * the SQLSTATE, so that every caller picks the same answer (the
 * database-down reply or 503 for DB_UNAVAILABLE, the generic error for
 * the rest). */
enum db_error {
	DB_OK = 0,
	DB_UNAVAILABLE, /* cannot be reached or is going away: classes 08, 53, 57, or no SQLSTATE */
	DB_CONFLICT,    /* a constraint refused the change: class 23 */
	DB_RETRYABLE,   /* 40001 serialization failure, 40P01 deadlock: run it again */
	DB_BUG,         /* anything else: the statement or the schema is wrong */
};

/* The class of a failure with this SQLSTATE (NULL or "" when libpq
 * reported it without one: a lost connection). */
enum db_error db_classify(const char *sqlstate);

/* A transaction. team_id != NULL sets conch.team_id for it, so RLS lets
 * through only that team's rows. tx_begin_system() opens one scoped to no
 * team: it sees the global tables (jobs, the dedupe logs, operator
 * accounts) and no team's rows; the few reads across team tables are
 * SECURITY DEFINER functions (migrations/013_roles.sql). The runtime role
 * cannot lift the scope: no setting does. */
struct tx {
	PGconn *conn;
	int failed;          /* a statement failed; commit will roll back */
	enum db_error error; /* of the first failure (db_classify) */
	char sqlstate[6];    /* of the first failure */
	int done;            /* committed or rolled back: nothing open */
	int commit_next;     /* tx_commit_next(): the next statement goes with COMMIT */
};

/* Both return 0, or -1 with nothing left open on the thread's connection
 * (tx->error says why). */
int tx_begin(struct tx *tx, const char *team_id);
int tx_begin_system(struct tx *tx);
/* tx_begin() and a first statement in the same round trip (BEGIN, the
 * scope and sql pipelined behind one sync): the request dispatchers open
 * their transaction with the admission this way. team_id NULL: a system
 * transaction. Returns the statement's result (the caller PQclear()s it),
 * or NULL with nothing left open (tx->error says why). */
PGresult *tx_begin_with(struct tx *tx, const char *team_id, const char *sql, int nparams,
                        const char *const *params);
/* Scopes the rest of tx to team_id (NULL: to no team again); 0 or -1. */
int tx_scope(struct tx *tx, const char *team_id);
/* Runs a statement (prepared on first use on this connection). Returns
 * NULL on failure, logs it and marks the transaction failed. The caller
 * PQclear()s the result. nparams values may be NULL (SQL NULL). */
PGresult *tx_query(struct tx *tx, const char *sql, int nparams, const char *const *params);
/* Runs a statement and discards the result; returns 0 or -1. */
int tx_exec(struct tx *tx, const char *sql, int nparams, const char *const *params);
/* One statement in its own implicit transaction, for a lone read or a
 * self-contained change: one round trip instead of BEGIN, the statement
 * and COMMIT. A connection the server dropped is replaced and the
 * statement tried once more; a serialization failure or deadlock (which
 * rolled it back) is run again once. Returns NULL on failure, with *error (when
 * not NULL) set to its class. */
PGresult *db_query_once(const char *sql, int nparams, const char *const *params,
                        enum db_error *error);
/* The same for a change that must not run twice: never tried again after
 * a connection lost in flight, which may or may not have committed it (the
 * reply is then the database-down one); still run again once after a
 * serialization failure or deadlock. A broken connection is still replaced
 * before the statement is sent. */
PGresult *db_change_once(const char *sql, int nparams, const char *const *params,
                         enum db_error *error);

/* Checked reads of a result: a row or column that is not there, or SQL
 * NULL, reads as the default, so no call site indexes a result it did not
 * check. db_text() is NULL then (the value otherwise, owned by r);
 * db_strdup() a copy or NULL; db_copy() "" (truncated to size); db_bool()
 * true only for 't'. */
const char *db_text(const PGresult *r, int row, int col);
/* The value, or "" when it is SQL NULL or not there: what PQgetvalue()
 * says of NULL, without its NULL (and the caller's crash) past the last
 * row or column. db_null() is 1 for SQL NULL and for a missing field. */
const char *db_str(const PGresult *r, int row, int col);
int db_null(const PGresult *r, int row, int col);
char *db_strdup(const PGresult *r, int row, int col);
void db_copy(char *dst, size_t size, const PGresult *r, int row, int col);
long long db_int(const PGresult *r, int row, int col, long long dflt);
double db_double(const PGresult *r, int row, int col, double dflt);
int db_bool(const PGresult *r, int row, int col);

/* The last statement of tx and its COMMIT in one round trip. Returns the
 * statement's result once both succeeded; NULL (nothing committed, tx
 * closed, tx->error says why) otherwise. */
PGresult *tx_query_commit(struct tx *tx, const char *sql, int nparams, const char *const *params);

/* The next statement tx_query() runs is tx's last: it goes out with
 * COMMIT in one round trip, as tx_query_commit() sends it. For a handler
 * whose last step is a call into code that runs one statement (the hot
 * commands' dibs_cmd_* functions), so that the request's work and its
 * commit are one round trip. */
void tx_commit_next(struct tx *tx);

/* How a request's transaction ended (tx_end). */
enum tx_end {
	TX_ENDED, /* committed, or failed in a statement the work saw fail */
	TX_AGAIN, /* a serialization failure or deadlock rolled it back: run it all again */
	TX_LOST,  /* the commit failed after the work thought it done: nothing it did holds */
};
/* Closes a dispatcher's transaction after the request's work (committing
 * it unless it failed or was rolled back) and says what the dispatcher
 * does next; TX_AGAIN only on the first attempt (attempt 0), so a request
 * runs at most twice. The one place that rule is written, for Slack
 * requests, events and the REST API. */
enum tx_end tx_end(struct tx *tx, int attempt);

/* Commits (or rolls back when failed); returns 0 when committed. Either
 * closes tx (done); once closed, tx_commit() only tells whether it
 * committed and tx_rollback() does nothing, so that a handler may close
 * the transaction it was handed (before an outbound call, or to commit
 * its last statement with tx_query_commit()) and the dispatcher that
 * opened it still closes it after the handler returns. */
int tx_commit(struct tx *tx);
void tx_rollback(struct tx *tx);

/* A ping for /healthz: 0 when the database answers. */
int db_ping(void);

/* The thread's connection (NULL when unreachable); for tools. */
PGconn *db_thread_conn(void);
/* The thread's direct connection (database_direct_url), for LISTEN. */
PGconn *db_thread_direct_conn(void);
/* Closes the thread's connection (thread exit, tests). */
void db_thread_close(void);

/* Applies pending migrations from dir in order, each in a transaction,
 * under an advisory lock. Returns the number applied or -1. */
int db_migrate(const char *dir);
/* 0 when every migration in dir is applied; else -1 with a message. */
int db_check_migrated(const char *dir, char *err, size_t errlen);

/* Database errors since start (for /metrics). */
long db_error_count(void);

/* This process's connections (for /metrics): open ones, those inside a
 * transaction (tx_begin to commit or rollback), and threads waiting for
 * one to open. */
struct db_conn_stats {
	long open;
	long in_transaction;
	long connecting;
};
void db_conn_stats(struct db_conn_stats *out);

#endif
