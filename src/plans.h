/* Plan limits: the one place that answers "may this team do X". Limits
 * come from the plans table; a team's plan from teams.plan, which billing
 * keeps in step with its Stripe subscription. */
#ifndef CONCH_PLANS_H
#define CONCH_PLANS_H

struct tx;

enum plan_feature {
	PLAN_NEW_THING,     /* usage: things the team has now */
	PLAN_TIMED_RELEASE, /* `for DURATION` */
	PLAN_API,           /* the REST API */
	PLAN_POLL_SIZE,     /* usage: people a lunch poll would reach */
};

struct plan {
	char name[32];
	char display_name[64];
	int max_things;     /* -1: no limit */
	int timed_release;
	int api_access;
	int max_poll_size;  /* -1: no limit */
};

/* Loads the team's plan (free when the team row is missing). 0 or -1. */
int plan_load(struct tx *tx, const char *team_id, struct plan *out);

/* 1 when allowed, 0 when the plan refuses. */
int plan_allows(const struct plan *plan, enum plan_feature feature, long usage);

/* The refusal shown to users, offering `/dibs upgrade`. */
const char *plan_refusal(const struct plan *plan, enum plan_feature feature);

#endif
