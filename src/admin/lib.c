/* What every operator page is built with: the layout every page is
 * rendered in, the error page, and query results as JSON rows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/lib.h"
#include "db.h"
#include "util.h"

/* --- the layout ------------------------------------------------------- */

/* Which nav entry a template belongs to. */
static const struct {
	const char *page;
	const char *nav;
} nav_of[] = {
    {"admin_home.html", "home"}, {"admin_teams.html", "teams"},       {"admin_team.html", "teams"},
    {"admin_jobs.html", "jobs"}, {"admin_webhooks.html", "webhooks"},
};

void
admin_page(struct response *res, int status, const struct admin_session *s, const char *page,
           const char *title, json_t *data)
{
	json_t *nav = json_object();

	for (size_t i = 0; i < ARRAY_LEN(nav_of); i++)
		if (strcmp(nav_of[i].page, page) == 0)
			json_object_set_new(nav, nav_of[i].nav, json_true());
	json_object_set_new(data, "nav", nav);
	json_object_set_new(data, "title", json_string(title));
	if (s != NULL) {
		json_object_set_new(data, "user", json_string(s->user));
		json_object_set_new(data, "csrf", json_string(s->csrf));
	}
	http_reply_page(res, status, page, data);
}

void
admin_error(struct response *res, int status, const struct admin_session *s, const char *message)
{
	admin_page(res, status, s, "admin_error.html", "Error",
	           json_pack("{s:s, s:i}", "message", message, "status", status));
}

/* --- query helpers ---------------------------------------------------- */

/* Type OIDs from PostgreSQL's catalog (pg_type.dat). */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23

static json_t *
cell(PGresult *r, int row, int col)
{
	const char *v = db_str(r, row, col);
	long long n;
	json_t *s;

	if (db_null(r, row, col))
		return json_null();
	switch (PQftype(r, col)) {
	case OID_BOOL:
		return json_boolean(v[0] == 't');
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
		if (strnum(v, INT64_MIN, INT64_MAX, &n) == 0)
			return json_integer(n);
		break;
	}
	s = json_string(v);
	return s ? s : json_string("?");
}

json_t *
admin_rows(struct tx *tx, const char *sql, int nparams, const char *const *params)
{
	PGresult *r = tx_query(tx, sql, nparams, params);
	json_t *rows, *row;

	if (r == NULL)
		return NULL;
	rows = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		row = json_object();
		for (int c = 0; c < PQnfields(r); c++)
			json_object_set_new(row, PQfname(r, c), cell(r, i, c));
		json_array_append_new(rows, row);
	}
	PQclear(r);
	return rows;
}

int
admin_table_exists(struct tx *tx, const char *table)
{
	const char *p[1] = {table};
	PGresult *r = tx_query(tx, "SELECT to_regclass($1) IS NOT NULL", 1, p);
	int exists;

	if (r == NULL)
		return -1;
	exists = PQntuples(r) == 1 && db_str(r, 0, 0)[0] == 't';
	PQclear(r);
	return exists;
}
