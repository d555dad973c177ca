/* The member directory: per team, who is an admin, owner, guest, bot or
 * deactivated, and their time zone, so that requests can ask "may this
 * user manage billing?" without calling Slack. Filled by the
 * "members.sync" job (users.list, paged), kept fresh by the user_change
 * and team_join events, and completed by "members.lookup" (users.info)
 * for users it has not seen, which in a very large workspace is the only
 * way in. */
#ifndef CONCH_MEMBERS_H
#define CONCH_MEMBERS_H

#include <jansson.h>

#include "slack.h"

struct tx;
struct buf;

#define MEMBERS_PAGE      200   /* users.list page size (Slack recommends 200) */
#define MEMBERS_LIST_MAX  20000 /* more members than this: stop listing, look up instead */
#define MEMBERS_NAMED_MAX 4     /* people named by "ask one of ..." */

enum member_verdict {
	MEMBER_NO = 0,
	MEMBER_YES = 1,
	MEMBER_UNKNOWN = 2, /* not in the directory yet: a lookup is queued */
};

/* Whether user may manage the team's billing and settings: an active
 * workspace owner or admin, or the installer. MEMBER_UNKNOWN (never a yes)
 * when the directory has not seen the user; then a users.info lookup, and
 * the team's first sync if it never had one, are queued in tx (commit it).
 * -1 on a database error. */
int members_may_manage(struct tx *tx, const char *team_id, const char *user_id);

/* 1 when the directory says the user is an active admin or owner, 0 when
 * not (or unknown), -1 on error. Ignores who installed. */
int members_is_admin(struct tx *tx, const char *team_id, const char *user_id);

/* Appends "<@U1>, <@U2> or <@U3>" naming who may manage billing (the
 * installer first, then owners and admins), at most MEMBERS_NAMED_MAX.
 * Returns how many were named, -1 on error. */
int members_name_managers(struct tx *tx, const char *team_id, struct buf *out);

/* Stores user objects (a JSON array) as seen at `seen` (unix seconds); an
 * older observation never overwrites a newer one. Returns rows changed or -1. */
int members_store(struct tx *tx, const char *team_id, json_t *users, double seen);

/* A job's step: asks Slack (users.info) about one user in the outbound
 * engine (the runner is free meanwhile), stores the answer, then returns
 * next(job, arg) on a runner, whether the lookup succeeded or not. With
 * next NULL the result is the lookup's own (the members.lookup job). */
enum job_result members_job_lookup(struct job *job, const char *user_id, job_continue next,
                                   void *arg);

/* Queues a sync of the team's directory (users.list from the first page),
 * deduplicated on key. Returns 0 or -1. */
int members_sync_soon(struct tx *tx, const char *team_id, const char *key);

/* Registers the job kinds and the user_change and team_join events. */
void members_init(void);

#endif
