/* The job queue page and its actions (src/admin/queue.c). */
#ifndef CONCH_ADMIN_QUEUE_H
#define CONCH_ADMIN_QUEUE_H

#include "admin/lib.h"
#include "http.h"

/* The session is already checked. */
void admin_page_jobs(struct request *req, struct response *res, const struct admin_session *s);
/* POST jobs/ID/retry and jobs/ID/cancel (CSRF already checked). */
void admin_job_action(struct request *req, struct response *res, const struct admin_session *s,
                      const char *id, const char *action, const char *back);

#endif
