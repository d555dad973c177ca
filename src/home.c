/* The App Home composer (see home.h): sections in order, cut to Slack's
 * 100 blocks, published with views.publish from a job. */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "home.h"
#include "jobs.h"
#include "log.h"
#include "members.h"
#include "slack.h"
#include "util.h"

#define SECTIONS_MAX 8

static struct {
	int order;
	home_section_fn fn;
} sections[SECTIONS_MAX];
static int nsections;

void
home_register(int order, home_section_fn fn)
{
	int i;

	if (nsections == SECTIONS_MAX)
		fatal("home: more than %d App Home sections", SECTIONS_MAX);
	for (i = nsections; i > 0 && sections[i - 1].order > order; i--)
		sections[i] = sections[i - 1];
	sections[i].order = order;
	sections[i].fn = fn;
	nsections++;
}

int
home_refresh(struct tx *tx, const char *team_id, const char *user_id)
{
	return job_enqueue(tx, "home.publish", team_id, json_pack("{s:s}", "user", user_id), 0,
	                   NULL) < 0
	           ? -1
	           : 0;
}

static enum job_result compose_again(struct job *job, void *arg);

/* Keeps the view within Slack's limit: the last kept block says so. */
static void
cap_blocks(json_t *blocks)
{
	while (json_array_size(blocks) > HOME_MAX_BLOCKS - 1)
		json_array_remove(blocks, json_array_size(blocks) - 1);
	json_array_append_new(blocks,
	                      slack_context("(more than fits here: `/dibs list` in Slack)"));
}

/* Composes and publishes the view; looked_up says a users.info lookup
 * for the user already ran in this job. */
static enum job_result
compose(struct job *job, int looked_up)
{
	const char *user = json_string_value(json_object_get(job->payload, "user"));
	json_t *blocks = json_array(), *args;
	enum job_result res;
	int lookup = 0, rc;

	for (int i = 0; i < nsections; i++) {
		if ((rc = sections[i].fn(job->team_id, user, blocks)) < 0) {
			json_decref(blocks);
			snprintf(job->error, sizeof(job->error), "a section failed");
			return JOB_RETRY;
		}
		if (rc == HOME_LOOKUP)
			lookup = 1;
	}
	if (lookup && !looked_up) {
		json_decref(blocks);
		return members_job_lookup(job, user, compose_again, NULL);
	}
	if (json_array_size(blocks) > HOME_MAX_BLOCKS)
		cap_blocks(blocks);
	args = json_pack("{s:s, s:{s:s, s:o}}", "user_id", user, "view", "type", "home", "blocks",
	                 blocks);
	res = slack_job_call(job, "views.publish", args); /* JOB_PENDING: no wait here */
	json_decref(args);
	return res;
}

/* On a runner, after the lookup. */
static enum job_result
compose_again(struct job *job, void *arg)
{
	(void)arg;
	return compose(job, 1);
}

enum job_result
home_publish_job(struct job *job)
{
	if (json_string_value(json_object_get(job->payload, "user")) == NULL)
		return JOB_DONE;
	return compose(job, 0);
}

static int
home_opened(struct tx *tx, const char *team_id, json_t *event, json_t *envelope)
{
	const char *user = json_string_value(json_object_get(event, "user"));
	const char *tab = json_string_value(json_object_get(event, "tab"));

	(void)envelope;
	if (user == NULL || (tab && strcmp(tab, "home") != 0))
		return 0;
	return home_refresh(tx, team_id, user);
}

void
home_init(void)
{
	jobs_register("home.publish", home_publish_job);
	jobs_register("dibs.home", home_publish_job);
	slack_register_event("app_home_opened", home_opened);
}
