/* Health and metrics endpoints. */
#ifndef CONCH_HEALTH_H
#define CONCH_HEALTH_H

#include "http.h"

void health_http_healthz(struct request *req, struct response *res);
void health_http_metrics(struct request *req, struct response *res);

#endif
