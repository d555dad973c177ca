/* The Slack app manifest: the app's settings as Slack's one-step JSON,
 * built from the route table, the registered commands and events, and the
 * scopes conch asks for, so none of them can drift from the code. */
#ifndef CONCH_MANIFEST_H
#define CONCH_MANIFEST_H

#include <jansson.h>

#include "http.h"

/* The manifest for conf.public_url; needs features_init() to have run. */
json_t *manifest_build(const struct route *routes);
/* The bot scopes of a comma-separated list, in order, without blanks. */
json_t *manifest_scopes(const char *list);

#endif
