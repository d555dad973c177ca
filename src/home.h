/* The App Home: one view per user, composed of sections that features
 * register (Dibs, billing, ...). This file is the only owner of the
 * app_home_opened event and of views.publish, so a feature adds its
 * section without replacing anyone else's. */
#ifndef CONCH_HOME_H
#define CONCH_HOME_H

#include <jansson.h>

#include "jobs.h"

struct tx;

#define HOME_MAX_BLOCKS 100 /* Slack's limit for a view */

/* Appends the section's blocks for user to blocks (it may append none).
 * Runs in a job, with no transaction open; it must not wait on Slack.
 * 0, -1 to have the whole publish retried, or HOME_LOOKUP when the member
 * directory does not know the user: the publish then looks them up
 * (users.info, in the outbound engine) and composes the view again once. */
#define HOME_LOOKUP 1
typedef int (*home_section_fn)(const char *team_id, const char *user_id, json_t *blocks);

/* Registers a section at init time; sections are shown by ascending
 * order. */
void home_register(int order, home_section_fn fn);

/* Queues a publish of user's App Home in tx ("home.publish" job). 0 or -1. */
int home_refresh(struct tx *tx, const char *team_id, const char *user_id);

/* The publish job (also run for jobs queued under the older kind
 * "dibs.home"). */
enum job_result home_publish_job(struct job *job);

/* Registers app_home_opened and the job kind. */
void home_init(void);

#endif
