/* What every operator page is built with (src/admin/lib.c): the signed-in
 * operator, the layout and the error page, and query rows as JSON. The
 * router (admin.c) and the pages call into it; it calls back into none. */
#ifndef CONCH_ADMIN_LIB_H
#define CONCH_ADMIN_LIB_H

#include <jansson.h>

#include "admin/password.h"
#include "http.h"

#define ADMIN_COUNT_CAP 10000 /* job counts stop here ("10000+") to stay cheap */

/* The signed-in operator of a request. */
struct admin_session {
	char user[ADMIN_NAME_MAX + 1];
	char csrf[64];
	char id_hash[65]; /* SHA-256 (hex) of the cookie's token */
};

struct tx;
/* Runs sql and returns its rows as an array of objects keyed by column
 * name (booleans and integers typed, SQL NULL as null); NULL on failure. */
json_t *admin_rows(struct tx *tx, const char *sql, int nparams, const char *const *params);
/* 1 when the table exists (other features create theirs), 0 when not,
 * -1 on failure. */
int admin_table_exists(struct tx *tx, const char *table);

/* Renders assets/<page> with data (stolen) plus the layout's fields. */
void admin_page(struct response *res, int status, const struct admin_session *s, const char *page,
                const char *title, json_t *data);
/* A short error page inside the layout (s may be NULL). */
void admin_error(struct response *res, int status, const struct admin_session *s,
                 const char *message);

#endif
