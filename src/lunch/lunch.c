/* Lunch Buddies' start-up and the helpers its jobs share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "home.h"
#include "lunch/lunch.h"
#include "util.h"

/* Each kind's attempts are its row in job_kinds (migrations). */
static const struct {
	const char *kind;
	job_handler fn;
} kinds[] = {
    {"lunch.members", lunch_members_job},
    {"lunch.dm", lunch_dm_job},
    {"lunch.dm_update", lunch_dm_update_job},
    {"lunch.group", lunch_group_job},
    {"lunch.notify_group", lunch_notify_group_job},
    {"lunch.notify_channel", lunch_notify_channel_job},
    {"lunch.close", lunch_close_job},
    {"lunch.schedule", lunch_schedule_job},
    {"lunch.remind", lunch_remind_job},
};

#define HOME_ORDER 50 /* after Dibs (10), before billing (90) */

void
lunch_init(void)
{
	slack_register_command("/lunch", "Lunch polls that end in small groups",
	                       "start [HH:MM ...] [size=N] [close HH:MM] [remind=30m]",
	                       lunch_slash);
	slack_register_action("lunch.", lunch_action);
	home_register(HOME_ORDER, lunch_home_section);
	for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
		jobs_register(kinds[i].kind, kinds[i].fn);
}

int
lunch_payload_id(const struct job *job, const char *key, long long *out)
{
	json_t *v = json_object_get(job->payload, key);

	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = (long long)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v))
		return strnum(json_string_value(v), 1, INT64_MAX, out);
	return -1;
}

enum job_result
lunch_job_db_error(struct job *job, const char *what)
{
	snprintf(job->error, sizeof(job->error), "database error %s", what);
	return JOB_RETRY;
}

void
lunch_format_time(int minutes, char out[6])
{
	if (minutes < 0 || minutes > 1439)
		minutes = 0;
	snprintf(out, 6, "%02d:%02d", minutes / 60, minutes % 60);
}

char *
lunch_format_times(const int *times, int n)
{
	struct buf b;
	char t[6];

	buf_init(&b);
	for (int i = 0; i < n; i++) {
		lunch_format_time(times[i], t);
		if (i > 0)
			buf_puts(&b, i == n - 1 ? " or " : ", ");
		buf_puts(&b, t);
	}
	return buf_steal(&b);
}

int
lunch_parse_times(const char *s, int *times, int max)
{
	char *copy = xstrdup(s), *save = NULL, *tok;
	long long v;
	int n = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == max || strnum(tok, 0, 1439, &v) < 0) {
			n = -1;
			break;
		}
		times[n++] = (int)v;
	}
	free(copy);
	return n;
}

int
lunch_split_ids(char *s, const char **out, int max)
{
	char *save = NULL, *tok;
	int n = 0;

	for (tok = strtok_r(s, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
		out[n++] = tok;
	return n;
}
