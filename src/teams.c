/* Teams and installations: whether a team may use conch, and its bot token.
 * Which installation serves a team (its own, or its org's for a workspace
 * of an org-wide install) is conch_installation_of() in
 * migrations/021_enterprise.sql, the one lookup all three go through. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "log.h"
#include "teams.h"
#include "util.h"
#include "vault.h"

int
team_installed(struct tx *tx, const char *team_id)
{
	const char *params[] = {team_id};
	PGresult *r;
	int installed;

	r = tx_query(tx,
	             "SELECT conch_installation_of($1) IS NOT NULL FROM teams t "
	             "WHERE t.team_id = $1 AND t.uninstalled_at IS NULL",
	             1, params);
	if (r == NULL)
		return -1;
	installed = PQntuples(r) == 1 && db_bool(r, 0, 0);
	PQclear(r);
	return installed;
}

char *
team_bot_token(struct tx *tx, const char *team_id)
{
	const char *params[] = {team_id};
	PGresult *r;
	char *token = NULL;

	/* Sealed under the installation's id: the org's for an org's workspace. */
	r = tx_query(tx, "SELECT installation, bot_token FROM conch_installation_token($1)", 1,
	             params);
	if (r != NULL && PQntuples(r) == 1 && !db_null(r, 0, 1)) {
		token = vault_open(db_str(r, 0, 1), db_str(r, 0, 0), "bot_token");
		if (token == NULL)
			log_error("teams: the stored bot token does not open (unknown key?)");
	}
	PQclear(r);
	return token;
}

int
team_deactivate(struct tx *tx, const char *team_id, const char *reason)
{
	const char *params[] = {team_id, reason};

	return tx_exec(tx, "SELECT conch_installation_deactivate($1, $2)", 2, params);
}

char *
team_install_url(void)
{
	return xasprintf("%s/slack/install", conf.public_url ? conf.public_url : "");
}
