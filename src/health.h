/* Health and metrics endpoints: /livez (liveness: the process serves),
 * /healthz (readiness: the database answers and the instance is not
 * draining), /metrics. */
#ifndef CONCH_HEALTH_H
#define CONCH_HEALTH_H

#include "http.h"

void health_http_livez(struct request *req, struct response *res);
void health_http_healthz(struct request *req, struct response *res);
void health_http_metrics(struct request *req, struct response *res);

#endif
