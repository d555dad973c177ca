/* 'lunch.schedule': recurring polls. The job has two forms:
 *
 *   {"schedule_id"}          set-up, enqueued by /lunch schedule: takes
 *                            the scheduling user's time zone from the member
 *                            directory (users.info when it does not know
 *                            them), records it, and enqueues the first day
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
#include "members.h"
#include "util.h"

/* Records the zone (NULL: UTC) and enqueues the first day. */
static enum job_result
arm(struct job *job, const char *id, const char *tz)
{
	const char *p[3] = {job->team_id, id, tz};
	struct tx tx;
	PGresult *r = NULL;

	if (tx_begin(&tx, job->team_id) == 0)
		r = tx_query(
		    &tx,
		    "SELECT to_char(lunch_schedule_arm($1, $2::bigint, $3) AT TIME ZONE 'UTC', "
		    "'YYYY-MM-DD HH24:MI') || ' UTC'",
		    3, p);
	if (r == NULL || tx_commit(&tx) < 0) {
		PQclear(r);
		tx_rollback(&tx);
		return lunch_job_db_error(job, "arming a schedule");
	}
	if (!db_null(r, 0, 0))
		log_info("lunch: schedule %s (%s) first opens %s", id, tz ? tz : "UTC",
		         db_str(r, 0, 0));
	PQclear(r);
	return JOB_DONE;
}

/* With users.info's answer about whoever scheduled (the directory did not
 * know them): stores them in the directory and arms the schedule. */
static enum job_result
scheduler_answered(struct job *job, struct slack_result *r, void *arg)
{
	char *id = arg;
	json_t *user = json_object_get(r->body, "user");
	const char *tz = json_string_value(json_object_get(user, "tz"));
	enum job_result res;
	struct tx tx;

	if (r->outcome == SLACK_OK && json_is_object(user)) {
		json_t *seen = json_pack("[O]", user);

		if (tx_begin(&tx, job->team_id) < 0 ||
		    members_store(&tx, job->team_id, seen, now_seconds()) < 0 || tx_commit(&tx) < 0)
			tx_rollback(&tx); /* the directory only misses a row */
		json_decref(seen);
	}
	if (r->outcome == SLACK_OK || r->outcome == SLACK_FAILED) {
		if (r->outcome == SLACK_FAILED)
			log_warn("lunch: users.info failed (%s); the schedule uses UTC", r->error);
		res = arm(job, id, tz && *tz ? tz : NULL);
	} else
		res = slack_job_result(r, job); /* 429 or transport: try again */
	free(id);
	return res;
}

/* The set-up: the scheduling user's zone from the member directory, or
 * users.info (in the outbound engine) when the directory does not know
 * them. */
static enum job_result
set_up(struct job *job, const char *id)
{
	const char *p[2] = {job->team_id, id};
	enum job_result res = JOB_DONE;
	struct tx tx;
	PGresult *r = NULL;
	json_t *args;

	if (tx_begin(&tx, job->team_id) == 0)
		r = tx_query(&tx,
		             "SELECT s.created_by, s.tz IS NOT NULL, m.user_id IS NOT NULL, m.tz "
		             "FROM lunch_schedules s LEFT JOIN members m "
		             "ON m.team_id = s.team_id AND m.user_id = s.created_by "
		             "WHERE s.team_id = $1 AND s.schedule_id = $2::bigint",
		             2, p);
	if (r == NULL || tx_commit(&tx) < 0) {
		tx_rollback(&tx);
		res = lunch_job_db_error(job, "loading a schedule");
	} else if (PQntuples(r) == 0)
		res = JOB_DONE; /* unscheduled meanwhile */
	else if (db_str(r, 0, 1)[0] == 't' || db_str(r, 0, 2)[0] == 't')
		res = arm(job, id, db_null(r, 0, 3) ? NULL : db_str(r, 0, 3));
	else {
		args = json_pack("{s:s}", "user", db_str(r, 0, 0));
		res = slack_job_call_then(job, "users.info", args, scheduler_answered, xstrdup(id));
		json_decref(args);
	}
	PQclear(r);
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
	log_info("lunch: schedule %s on %s: %s%s%s", id, date, db_str(r, 0, 0),
	         db_null(r, 0, 1) ? "" : " poll ", db_str(r, 0, 1));
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
