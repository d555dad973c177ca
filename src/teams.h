/* Teams and installations (the foundation schema). */
#ifndef CONCH_TEAMS_H
#define CONCH_TEAMS_H

struct tx;

/* 1 when the team has an active installation, 0 when not, -1 on error. */
int team_installed(struct tx *tx, const char *team_id);
/* The decrypted bot token (free with vault_free_secret) or NULL. */
char *team_bot_token(struct tx *tx, const char *team_id);
/* Marks the installation inactive and deletes its token (bad auth, uninstall). */
int team_deactivate(struct tx *tx, const char *team_id, const char *reason);

/* The install link shown to teams that have not installed. */
char *team_install_url(void);

#endif
