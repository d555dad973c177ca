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
		          "(key %d); left as it is",
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

static long
rotate_column(const struct sealed_column *col, const char *keyid, long *unopened)
{
	const char *p[1] = {keyid};
	struct tx tx;
	PGresult *r;
	long done = 0;
	int rc;

	if (tx_begin_system(&tx) < 0)
		return -1;
	r = tx_query(&tx, col->select_sql, 1, p);
	for (int i = 0; r && i < PQntuples(r); i++) {
		rc = reseal(&tx, col, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		if (rc < 0)
			break;
		if (rc == 0)
			(*unopened)++;
		done += rc;
	}
	if (r)
		PQclear(r);
	return tx_commit(&tx) == 0 ? done : -1;
}

long
keys_rotate(void)
{
	char keyid[16];
	long total = 0, n, unopened = 0;

	if (!vault_ready()) {
		fprintf(stderr, "conch: rotate-keys: token_keys is not set\n");
		return -1;
	}
	snprintf(keyid, sizeof(keyid), "%d", vault_current_key());
	for (size_t i = 0; i < ARRAY_LEN(sealed_columns); i++) {
		n = rotate_column(&sealed_columns[i], keyid, &unopened);
		if (n < 0) {
			fprintf(stderr,
			        "conch: rotate-keys failed; nothing of that table changed\n");
			return -1;
		}
		total += n;
	}
	printf("rotate-keys: %ld secrets re-encrypted with key %s", total, keyid);
	if (unopened)
		printf("; %ld could not be opened (see the log)", unopened);
	printf("\n");
	return unopened ? -1 : total;
}
