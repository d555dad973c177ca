/* 'lunch.schedule': recurring polls. The job has two forms:
 *
 *   {"schedule_id"}          set-up, enqueued by /lunch schedule: asks
 *                            users.info for the scheduling user's time zone,
 *                            records it, and enqueues the first day
 *   {"schedule_id", "date"}  a scheduled day (local date) has come: opens
 *                            the poll with its close job and enqueues the
 *                            next day
 *
 * The day jobs are rows in the jobs table due at that day's opening, so a
 * schedule survives restarts; each day's instants are computed by
 * PostgreSQL from the local date and the IANA zone, so a change to or from
 * daylight saving moves nothing (lunch_schedule_fire in 007_lunch.sql). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "lunch/lunch.h"
#include "util.h"

/* The zone users.info gives for user; NULL (UTC) when Slack knows none. */
static int
user_tz(struct job *job, const char *user, char **tz, enum job_result *res)
{
	json_t *args = json_pack("{s:s}", "user", user);
	struct slack_result r;
	const char *z;
	int rc = 0;

	*tz = NULL;
	if (lunch_call(job, "users.info", args, &r, res) == 0) {
		z = json_string_value(json_object_get(json_object_get(r.body, "user"), "tz"));
		*tz = z && *z ? xstrdup(z) : NULL;
	} else if (r.outcome != SLACK_FAILED) {
		rc = -1; /* 429 or transport: try again */
	} else {
		log_warn("lunch: users.info for %s failed (%s); the schedule uses UTC", user,
		         r.error);
	}
	slack_result_free(&r);
	json_decref(args);
	return rc;
}

static enum job_result
set_up(struct job *job, const char *id)
{
	const char *p[3] = {job->team_id, id, NULL};
	enum job_result res = JOB_DONE;
	char *creator = NULL, *tz = NULL;
	int has_tz = 0;
	struct tx tx;
	PGresult *r = NULL;

	if (tx_begin(&tx, job->team_id) == 0)
		r = tx_query(&tx,
		             "SELECT created_by, tz IS NOT NULL FROM lunch_schedules "
		             "WHERE team_id = $1 AND schedule_id = $2::bigint",
		             2, p);
	if (r && PQntuples(r) == 1) {
		creator = xstrdup(PQgetvalue(r, 0, 0));
		has_tz = PQgetvalue(r, 0, 1)[0] == 't';
	}
	if (r == NULL || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		res = lunch_job_db_error(job, "loading a schedule");
		goto out;
	}
	if (creator == NULL)
		goto out; /* unscheduled meanwhile */
	if (!has_tz && user_tz(job, creator, &tz, &res) < 0)
		goto out;
	p[2] = tz;
	PQclear(r);
	r = NULL;
	if (tx_begin(&tx, job->team_id) == 0)
		r = tx_query(
		    &tx,
		    "SELECT to_char(lunch_schedule_arm($1, $2::bigint, $3) AT TIME ZONE 'UTC', "
		    "'YYYY-MM-DD HH24:MI') || ' UTC'",
		    3, p);
	if (r == NULL || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		res = lunch_job_db_error(job, "arming a schedule");
		goto out;
	}
	if (!PQgetisnull(r, 0, 0))
		log_info("lunch: schedule %s (%s) first opens %s", id, tz ? tz : "UTC",
		         PQgetvalue(r, 0, 0));
out:
	PQclear(r);
	free(creator);
	free(tz);
	return res;
}

/* YYYY-MM-DD, as lunch_schedule_next writes it. */
static int
valid_date(const char *s)
{
	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static enum job_result
fire(struct job *job, const char *id, const char *date)
{
	const char *p[3] = {job->team_id, id, date};
	struct tx tx;
	PGresult *r = NULL;

	if (tx_begin(&tx, job->team_id) == 0)
		r = tx_query(
		    &tx,
		    "SELECT status, poll_id FROM lunch_schedule_fire($1, $2::bigint, $3::date)", 3,
		    p);
	if (r == NULL || tx_commit(&tx) < 0) {
		PQclear(r);
		tx_rollback(&tx);
		return lunch_job_db_error(job, "running a scheduled poll");
	}
	log_info("lunch: schedule %s on %s: %s%s%s", id, date, PQgetvalue(r, 0, 0),
	         PQgetisnull(r, 0, 1) ? "" : " poll ", PQgetvalue(r, 0, 1));
	PQclear(r);
	return JOB_DONE;
}

enum job_result
lunch_schedule_job(struct job *job)
{
	long long schedule;
	const char *date = json_string_value(json_object_get(job->payload, "date"));
	json_t *has_date = json_object_get(job->payload, "date");
	char id[24];

	if (lunch_payload_id(job, "schedule_id", &schedule) < 0 ||
	    (has_date && !valid_date(date))) {
		snprintf(job->error, sizeof(job->error),
		         "payload needs schedule_id and a valid date");
		return JOB_DEAD;
	}
	snprintf(id, sizeof(id), "%lld", schedule);
	return date ? fire(job, id, date) : set_up(job, id);
}
