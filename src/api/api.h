/* The REST API for CI/CD pipelines: /api/v1/things[/NAME[/dibs]]. */
#ifndef CONCH_API_H
#define CONCH_API_H

#include "http.h"

/* One handler for GET, POST and DELETE under the /api/v1/ prefix. */
void api_http(struct request *req, struct response *res);
/* Registers the API's housekeeping job (old rate-limit buckets). */
void api_init(void);

#endif
