/* Teams and installations (the foundation schema). */
#ifndef CONCH_TEAMS_H
#define CONCH_TEAMS_H

struct tx;

/* 1 when an active installation serves the team (its own, or its org's),
 * 0 when not, -1 on error. */
int team_installed(struct tx *tx, const char *team_id);
/* The decrypted bot token (free with vault_free_secret) or NULL. */
char *team_bot_token(struct tx *tx, const char *team_id);
/* Marks the installation that serves the team inactive and deletes its
 * token (Slack refused it: the org's, for a workspace of an org-wide
 * install). tx must be scoped to team_id. */
int team_deactivate(struct tx *tx, const char *team_id, const char *reason);

/* The install link shown to teams that have not installed. */
char *team_install_url(void);

#endif
