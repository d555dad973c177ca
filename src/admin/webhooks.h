/* Stripe webhook deliveries, and a team's billing (src/admin/webhooks.c). */
#ifndef CONCH_ADMIN_WEBHOOKS_H
#define CONCH_ADMIN_WEBHOOKS_H

#include <jansson.h>

#include "admin/lib.h"
#include "http.h"

struct tx;

/* The session is already checked. */
void admin_page_webhooks(struct request *req, struct response *res, const struct admin_session *s);
/* Adds the team's billing (subscription, webhook events) to a team page's
 * data when the billing tables exist. */
int admin_team_billing(struct tx *tx, const char *team_id, json_t *data);

#endif
