/* Lunch Buddies: opt-in lunch polls that end in evenly sized groups. The
 * state and its atomic changes live in SQL (migrations/007_lunch.sql,
 * 020_lunch_depth.sql); this folder parses /lunch, records button presses,
 * renders the messages and runs the round as a pipeline of jobs:
 *
 *   /lunch start  -> lunch.members (list the channel, check each user in
 *                    the member directory, the poll's zone, the plan
 *                    limit) -> lunch.dm, one per member; with `close`,
 *                    lunch.close at that time and lunch.remind before it
 *   button press  -> lunch.dm_update (the DM shows the recorded answer)
 *   /lunch close  -> lunch.group -> lunch.notify_group, one per group (or
 *                    lunch.notify_channel), and lunch.dm_update per DM
 *   schedule      -> lunch.schedule (each day; starts the poll) -> lunch.close
 *
 * Only jobs call Slack, each call a suspended step in the outbound engine;
 * commands and buttons answer at once. */
#ifndef CONCH_LUNCH_H
#define CONCH_LUNCH_H

#include <jansson.h>

#include "jobs.h"
#include "lunch/command.h"
#include "slack.h"
#include "util.h"

/* Registers /lunch, the `lunch.` buttons and the job kinds; call before
 * jobs_start(). */
void lunch_init(void);

/* --- shared by the files of this folder -------------------------------- */

/* What a member's poll DM should show. */
struct lunch_dm_view {
	long long poll_id;
	const char *channel_id; /* the poll's channel */
	const char *created_by;
	int times[LUNCH_MAX_TIMES];
	int ntimes;
	int size;
	int open; /* still taking answers */
	int answered;
	int answer;                    /* minutes, or -1 for No; when answered */
	const char *tz;                /* the poll's zone; NULL until fixed */
	long long at[LUNCH_MAX_TIMES]; /* each time as a unix instant; 0 unknown */
	long long close_at;            /* when it closes by itself; 0 never */
	int close_minute;              /* close_at in the poll's zone */
	int cancelled;
	int optedout; /* asked not to be asked in the channel */
};

/* "open:720", "closed:-1", "open:-2" (no answer), "cancelled:-2",
 * "open:-1:out" (opted out): what lunch_members.dm_shown records, so an
 * update that would change nothing is skipped. */
void lunch_view_key(const struct lunch_dm_view *v, char *out, size_t outlen);

/* One group as its messages show it. */
struct lunch_group_msg {
	int time;
	const char *const *members;
	int nmembers;
	const char *picker;
};

/* Message arguments (text, blocks) for chat.postMessage / chat.update. */
json_t *lunch_view_poll_dm(const struct lunch_dm_view *v);
/* A group's own message (group DM), from the poll in channel_id. */
json_t *lunch_view_group(const struct lunch_group_msg *g, const char *channel_id);
/* Every group in one message, for the poll's channel. */
json_t *lunch_view_channel(const struct lunch_group_msg *groups, int n);
/* To someone alone at their time. */
json_t *lunch_view_alone(int minutes, const char *channel_id);
/* "Lunch poll opened for ..." (malloc'd): tz NULL when not known yet (the
 * line promises to name it later); close_minute the local closing time, -1 for none;
 * close_at its instant, 0 when not known yet; asked < 0 when the count is
 * not known yet. */
char *lunch_view_opened(const int *times, int n, int size, const char *tz, long long close_at,
                        int close_minute, long asked);
/* The reminder DM (malloc'd text). */
char *lunch_view_reminder(const char *channel_id, long long close_at, int close_minute,
                          const char *tz);
/* "<!date^UNIX^{time}|HH:MM ZONE>" appended to b: Slack shows the instant
 * in the reader's zone; the fallback names the poll's. */
void lunch_date_token(struct buf *b, long long at, const char *format, int minutes, const char *tz);

/* "12:30" into out (6 bytes). */
void lunch_format_time(int minutes, char out[6]);
/* "12:00, 12:30 or 13:00" (malloc'd). */
char *lunch_format_times(const int *times, int n);
/* Parses "720,780" (array_to_string of an int[]) into times; count or -1. */
int lunch_parse_times(const char *s, int *times, int max);
/* Splits "U1,U2" in place into out; the count (at most max). */
int lunch_split_ids(char *s, const char **out, int max);

/* Reads a positive integer (number or digit string) from the payload. */
int lunch_payload_id(const struct job *job, const char *key, long long *out);
/* Fails a job with a database error: retried with backoff. */
enum job_result lunch_job_db_error(struct job *job, const char *what);

/* Handlers and job kinds of the other files. */
void lunch_slash(struct tx *tx, struct slash *cmd, struct response *res);
void lunch_action(struct tx *tx, struct slack_action *act, struct response *res);
enum job_result lunch_members_job(struct job *job);
enum job_result lunch_dm_job(struct job *job);
enum job_result lunch_dm_update_job(struct job *job);
enum job_result lunch_group_job(struct job *job);
enum job_result lunch_notify_group_job(struct job *job);
enum job_result lunch_notify_channel_job(struct job *job);
enum job_result lunch_close_job(struct job *job);
enum job_result lunch_schedule_job(struct job *job);
enum job_result lunch_remind_job(struct job *job);
/* /lunch stats: grouped rounds, people in their groups, groups of two or
 * more, the pairs they made and how many of those were new (not in one
 * group in the team's 90 days before their round). */
struct lunch_stats {
	long rounds, people, groups, pairs, fresh;
};
struct tx;
/* The last days of channel (NULL: every channel). 0 or -1. */
int lunch_stats_load(struct tx *tx, const char *team_id, const char *channel_id, int days,
                     struct lunch_stats *out);
/* "*Lunch in this channel, last 30 days* ..." (malloc'd). */
char *lunch_view_stats(const struct lunch_stats *s, int days, const char *where);
/* The Lunch section of the App Home (home.h). */
int lunch_home_section(const char *team_id, const char *user_id, json_t *blocks);

#endif
