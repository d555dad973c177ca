/* `conch rotate-keys`: every sealed secret, re-encrypted with the newest
 * key. Each row is re-sealed in its own team's associated data, so a
 * ciphertext cannot move between teams or purposes on the way. */
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "keys.h"
#include "log.h"
#include "util.h"
#include "vault.h"

/* Every column holding a vault-sealed value. A feature that stores a new
 * kind of secret adds its row here. Table and column names are constants
 * of this file, never input. */
static const struct sealed_column {
	const char *select_sql; /* team_id, sealed value of rows not sealed with key $1 */
	const char *update_sql; /* $1 team, $2 old sealed value, $3 new sealed value */
	const char *purpose;
} sealed_columns[] = {
    {"SELECT team_id, bot_token FROM installations WHERE bot_token IS NOT NULL "
     "AND bot_token NOT LIKE 'v1.' || $1 || '.%'",
     "UPDATE installations SET bot_token = $3 WHERE team_id = $1 AND bot_token = $2", "bot_token"},
    {"SELECT team_id, refresh_token FROM installations WHERE refresh_token IS NOT NULL "
     "AND refresh_token NOT LIKE 'v1.' || $1 || '.%'",
     "UPDATE installations SET refresh_token = $3 WHERE team_id = $1 AND refresh_token = $2",
     "refresh_token"},
    {"SELECT team_id, secret FROM api_subscriptions WHERE secret NOT LIKE 'v1.' || $1 || '.%'",
     "UPDATE api_subscriptions SET secret = $3 WHERE team_id = $1 AND secret = $2", "webhook"},
};

/* Re-seals one value; returns 1 when rewritten, 0 when it could not be
 * opened (reported), -1 on a database error. */
static int
reseal(struct tx *tx, const struct sealed_column *col, const char *team, const char *old)
{
	char *plain = vault_open(old, team, col->purpose);
	char *fresh;
	const char *p[3];
	int rc;

	if (plain == NULL) {
		log_error("rotate-keys: a %s of team %s does not open with any key of token_keys "
		          "(key %d)",
		          col->purpose, team, vault_key_of(old));
		return 0;
	}
	fresh = vault_seal(plain, team, col->purpose);
	vault_free_secret(plain);
	if (fresh == NULL)
		return -1;
	p[0] = team;
	p[1] = old;
	p[2] = fresh;
	rc = tx_exec(tx, col->update_sql, 3, p) == 0 ? 1 : -1;
	free(fresh);
	return rc;
}

/* Re-seals the rows of one column not sealed with key keyid, counting in
 * *unopened those no key opens. Returns the number re-sealed, or -1. */
static long
rotate_column(struct tx *tx, const struct sealed_column *col, const char *keyid, long *unopened)
{
	const char *p[1] = {keyid};
	PGresult *r = tx_query(tx, col->select_sql, 1, p);
	long done = 0;
	int rc = 0;

	if (r == NULL)
		return -1;
	for (int i = 0; i < PQntuples(r) && rc >= 0; i++) {
		rc = reseal(tx, col, db_str(r, i, 0), db_str(r, i, 1));
		if (rc == 0)
			(*unopened)++;
		else if (rc > 0)
			done++;
	}
	PQclear(r);
	return rc < 0 ? -1 : done;
}

/* Every column of one team, in that team's scope (RLS shows no other). */
static long
rotate_team(struct tx *tx, const char *team, const char *keyid, long *unopened)
{
	long total = 0, n = 0;

	if (tx_scope(tx, team) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_LEN(sealed_columns) && n >= 0; i++) {
		n = rotate_column(tx, &sealed_columns[i], keyid, unopened);
		total += n > 0 ? n : 0;
	}
	return n < 0 ? -1 : total;
}

/* Each team in turn: O(teams) round trips, for a command run by hand. */
static long
rotate_all(struct tx *tx, const char *keyid, long *unopened)
{
	PGresult *teams = tx_query(tx, "SELECT conch_team_ids()", 0, NULL);
	long total = 0, n = 0;

	if (teams == NULL)
		return -1;
	for (int i = 0; i < PQntuples(teams) && n >= 0; i++) {
		n = rotate_team(tx, db_str(teams, i, 0), keyid, unopened);
		total += n > 0 ? n : 0;
	}
	PQclear(teams);
	return n < 0 ? -1 : total;
}

long
keys_rotate(void)
{
	char keyid[16];
	long total = 0, n = 0, unopened = 0;
	struct tx tx;

	if (!vault_ready()) {
		fprintf(stderr, "conch: rotate-keys: token_keys is not set\n");
		return -1;
	}
	snprintf(keyid, sizeof(keyid), "%d", vault_current_key());
	/* One transaction: every secret moves to the new key, or none does, so
	 * a value no key opens leaves the database as it was. */
	if (tx_begin_system(&tx) < 0) {
		fprintf(stderr, "conch: rotate-keys: the database did not answer\n");
		return -1;
	}
	n = total = rotate_all(&tx, keyid, &unopened);
	if (n < 0 || unopened > 0) {
		tx_rollback(&tx);
		if (n < 0)
			fprintf(stderr, "conch: rotate-keys failed; nothing was changed\n");
		else
			fprintf(stderr,
			        "conch: rotate-keys: %ld secret(s) do not open with any key of "
			        "token_keys (see above); nothing was changed\n",
			        unopened);
		return -1;
	}
	if (tx_commit(&tx) != 0) {
		fprintf(stderr, "conch: rotate-keys: the commit failed; nothing was changed\n");
		return -1;
	}
	printf("rotate-keys: %ld secrets re-encrypted with key %s\n", total, keyid);
	return total;
}
