/* Operator sign-in, sessions and CSRF checks (src/admin/session.c). */
#ifndef CONCH_ADMIN_SESSION_H
#define CONCH_ADMIN_SESSION_H

#include "admin/lib.h"
#include "http.h"

/* Loads the session from the conch_admin cookie and slides its expiry.
 * Returns 1 (signed in), 0 (no or expired session) or -1 (database
 * unavailable or failed). */
int admin_session_load(struct request *req, struct admin_session *s);
/* For a POST: the Origin header (when present) is ours and the form's
 * csrf field equals expected, in constant time. */
int admin_csrf_ok(struct request *req, const char *form_csrf, const char *expected);

/* GET /admin/login, POST /admin/login, POST /admin/logout. */
void admin_http_login_form(struct request *req, struct response *res);
void admin_http_login(struct request *req, struct response *res);
void admin_http_logout(struct request *req, struct response *res);

#endif
