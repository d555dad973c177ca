/* The glue between shared machinery and the features: the route table and
 * the features' start-up (job kinds, Slack commands, actions, events). */
#ifndef CONCH_ROUTES_H
#define CONCH_ROUTES_H

#include "http.h"

extern const struct route conch_routes[];

/* Registers every feature's job kinds and Slack handlers. */
void features_init(void);
/* What the features queue once the job runners run (at every start). */
void features_start(void);

#endif
