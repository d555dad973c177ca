/* Plan limits: free and pro are rows of the plans table; plan_allows()
 * answers "may this team do X". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "plans.h"

int
plan_load(struct tx *tx, const char *team_id, struct plan *out)
{
	const char *p[1] = {team_id};
	PGresult *r;

	r = tx_query(tx,
	             "SELECT p.name, p.display_name, p.max_things, p.timed_release, p.api_access, "
	             "p.max_poll_size FROM plans p "
	             "WHERE p.name = coalesce((SELECT plan FROM teams WHERE team_id = $1), 'free')",
	             1, p);
	if (r == NULL)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return -1;
	}
	db_copy(out->name, sizeof(out->name), r, 0, 0);
	db_copy(out->display_name, sizeof(out->display_name), r, 0, 1);
	out->max_things = (int)db_int(r, 0, 2, -1); /* NULL: no limit */
	out->timed_release = db_bool(r, 0, 3);
	out->api_access = db_bool(r, 0, 4);
	out->max_poll_size = (int)db_int(r, 0, 5, -1);
	PQclear(r);
	return 0;
}

int
plan_allows(const struct plan *plan, enum plan_feature feature, long usage)
{
	switch (feature) {
	case PLAN_NEW_THING:
		return plan->max_things < 0 || usage < plan->max_things;
	case PLAN_TIMED_RELEASE:
		return plan->timed_release;
	case PLAN_API:
		return plan->api_access;
	case PLAN_POLL_SIZE:
		return plan->max_poll_size < 0 || usage <= plan->max_poll_size;
	}
	return 0;
}

const char *
plan_refusal(const struct plan *plan, enum plan_feature feature)
{
	switch (feature) {
	case PLAN_NEW_THING:
		return "Your team has reached its plan's limit of things. Existing things keep "
		       "working; type `/dibs upgrade` for unlimited things.";
	case PLAN_TIMED_RELEASE:
		return "Timed releases (`for DURATION`) are part of the Pro plan. Type `/dibs "
		       "upgrade` "
		       "to turn them on, or call dibs without `for`.";
	case PLAN_API:
		return "The REST API is part of the Pro plan. Type `/dibs upgrade` in Slack to "
		       "turn it "
		       "on.";
	case PLAN_POLL_SIZE:
		return "This channel has more people than your plan's lunch poll size allows. Type "
		       "`/dibs upgrade` for polls of any size.";
	}
	(void)plan;
	return "Your plan does not allow that. Type `/dibs upgrade`.";
}
