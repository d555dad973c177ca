/* GET /livez, GET /healthz and GET /metrics. An orchestrator restarts on
 * /livez, so it never touches the database: a database outage must not
 * restart every instance. Load balancers route on /healthz. */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "health.h"
#include "metrics.h"
#include "util.h"

void
health_http_livez(struct request *req, struct response *res)
{
	(void)req;
	http_reply_text(res, 200, "ok");
}

void
health_http_healthz(struct request *req, struct response *res)
{
	(void)req;
	if (http_draining())
		http_reply_text(res, 503, "draining: this instance is stopping");
	else if (db_ping() == 0)
		http_reply_text(res, 200, "ok");
	else
		http_reply_text(res, 503, "database unavailable");
}

/* Gauges read from the jobs table: O(kinds x states) rows through the
 * (state, kind) index, plus the age of the oldest due job. */
static void
job_gauges(struct buf *out)
{
	struct tx tx;
	PGresult *r;

	if (tx_begin_system(&tx) < 0)
		return;
	r = tx_query(&tx,
	             "SELECT kind, state, count(*) FROM jobs "
	             "WHERE state IN ('queued', 'running', 'dead') GROUP BY 1, 2 ORDER BY 1, 2",
	             0, NULL);
	if (r) {
		buf_puts(out, "# HELP conch_jobs Jobs by kind and state (queued, running, dead).\n"
		              "# TYPE conch_jobs gauge\n");
		for (int i = 0; i < PQntuples(r); i++)
			buf_printf(out, "conch_jobs{kind=\"%s\",state=\"%s\"} %s\n",
			           db_str(r, i, 0), db_str(r, i, 1), db_str(r, i, 2));
		PQclear(r);
	}
	r = tx_query(&tx,
	             "SELECT coalesce(extract(epoch FROM now() - min(due_at)), 0) FROM jobs "
	             "WHERE state = 'queued' AND due_at <= now()",
	             0, NULL);
	if (r) {
		buf_printf(out,
		           "# HELP conch_jobs_oldest_due_seconds How late the oldest due job is.\n"
		           "# TYPE conch_jobs_oldest_due_seconds gauge\n"
		           "conch_jobs_oldest_due_seconds %s\n",
		           db_str(r, 0, 0));
		PQclear(r);
	}
	tx_commit(&tx);
}

void
health_http_metrics(struct request *req, struct response *res)
{
	struct buf out;

	(void)req;
	buf_init(&out);
	metrics_render(&out);
	job_gauges(&out);
	http_reply(res, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
}
