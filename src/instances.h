/* Live instances, for limits that must hold across all of them: each
 * instance renews a heartbeat row in PostgreSQL (outbound_instances)
 * every INSTANCES_BEAT seconds, and a row older than INSTANCES_STALE is
 * dropped as an instance that is gone. The Slack client paces each team
 * and method at limit / instances_live() (an even split). */
#ifndef CONCH_INSTANCES_H
#define CONCH_INSTANCES_H

#define INSTANCES_BEAT       5  /* seconds between heartbeats */
#define INSTANCES_STALE      15 /* seconds without one: the instance is gone */
#define INSTANCES_STALE_TEXT "15 seconds"

/* Beats once (so the count is right before any call), then in a thread
 * of its own. 0 or -1. */
int instances_start(void);
/* Stops beating and removes this instance's row. */
void instances_stop(void);

/* Instances live at the last heartbeat, this one included: at least 1
 * (also before the first heartbeat, and while the database is away, the
 * last count stands). */
int instances_live(void);

#endif
