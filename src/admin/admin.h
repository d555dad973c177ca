/* The operator pages under /admin and `conch admin-user`: accounts with
 * scrypt password hashes, server-side sessions, CSRF tokens on every form,
 * a login throttle, and read-mostly pages over teams, jobs and webhooks.
 * Nothing here ever shows a token, key or secret. */
#ifndef CONCH_ADMIN_H
#define CONCH_ADMIN_H

#include "admin/session.h"
#include "http.h"

/* `conch admin-user NAME`: reads one password line from standard input and
 * creates or resets the account (a reset ends its sessions). Prints
 * "admin user NAME created|updated". Returns 0 or -1 (message printed). */
int admin_user_command(const char *name);

/* Route handlers (rows for src/routes.c):
 *   GET  /admin          admin_http_home
 *   GET  /admin/login    admin_http_login_form  (admin/session.h)
 *   POST /admin/login    admin_http_login       (admin/session.h)
 *   POST /admin/logout   admin_http_logout      (admin/session.h)
 *   GET  /admin/ prefix  admin_http_get   (teams, teams/ID, jobs, webhooks)
 *   POST /admin/ prefix  admin_http_post  (jobs/ID/retry, jobs/ID/cancel)
 * The prefix handlers also serve login and logout, so the exact rows are
 * optional. This header is the folder's face to the rest of conch; the
 * files inside include the header of the file they call. */
void admin_http_home(struct request *req, struct response *res);
void admin_http_get(struct request *req, struct response *res);
void admin_http_post(struct request *req, struct response *res);

#endif
