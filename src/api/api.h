/* The REST API for CI/CD pipelines: /api/v1/things[/NAME[/dibs]]. */
#ifndef CONCH_API_H
#define CONCH_API_H

#include <libpq-fe.h>

#include "http.h"

struct tx;

/* One handler for GET, POST and DELETE under the /api/v1/ prefix. */
void api_http(struct request *req, struct response *res);
/* Registers the API's jobs: housekeeping (old rate-limit buckets) and
 * webhook deliveries. */
void api_init(void);

/* ?wait= (wait.c). Answers the caller's place through reply: rc -1 when
 * the database failed, else holding (release_at: unix, 0 untimed) or
 * position (1 = next; 0: neither holding nor in line). */
typedef void (*api_wait_reply)(struct response *res, int rc, int holding, int position,
                               double release_at);
/* Takes the request over (0): it waits until the caller holds thing, the
 * seconds are up or the instance drains, then replies; or -1 (waiting
 * not possible now: draining, or api_wait_max requests wait already) and
 * the caller replies at once. */
int api_wait_begin(struct request *req, struct response *res, const char *team, const char *user,
                   const char *thing, int seconds, api_wait_reply reply);

/* Webhook subscriptions (webhooks.c): "subscriptions" and
 * "subscriptions/ID" for the caller; 0 when the path is not theirs. */
int api_subscriptions_route(struct tx *tx, const char *team, const char *user, struct request *req,
                            struct response *res);
/* Replies 200 {key: [row(r, i) for each row]} and clears r. */
void api_reply_rows(struct response *res, PGresult *r, const char *key,
                    json_t *(*row)(PGresult *, int));
/* Registers the 'api.webhook' job kind (called by api_init). */
void api_webhooks_init(void);

#endif
