/* The overview, the teams list and one team's page (src/admin/pages.c);
 * the session is already checked. */
#ifndef CONCH_ADMIN_PAGES_H
#define CONCH_ADMIN_PAGES_H

#include "admin/lib.h"
#include "http.h"

void admin_page_home(struct request *req, struct response *res, const struct admin_session *s);
void admin_page_teams(struct request *req, struct response *res, const struct admin_session *s);
void admin_page_team(struct request *req, struct response *res, const struct admin_session *s,
                     const char *team_id);

#endif
