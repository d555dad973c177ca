/* Teams and installations: whether a team may use conch, and its bot token. */
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
	             "SELECT i.active FROM installations i JOIN teams t ON t.team_id = i.team_id "
	             "WHERE i.team_id = $1 AND t.team_id = $1 AND t.uninstalled_at IS NULL",
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

	r = tx_query(tx,
	             "SELECT bot_token FROM installations "
	             "WHERE team_id = $1 AND active AND bot_token IS NOT NULL",
	             1, params);
	if (r != NULL && PQntuples(r) == 1) {
		token = vault_open(PQgetvalue(r, 0, 0), team_id, "bot_token");
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

	return tx_exec(tx,
	               "UPDATE installations SET active = false, bot_token = NULL, "
	               "refresh_token = NULL, inactive_reason = $2, updated_at = now() "
	               "WHERE team_id = $1",
	               2, params);
}

char *
team_install_url(void)
{
	return xasprintf("%s/slack/install", conf.public_url ? conf.public_url : "");
}
