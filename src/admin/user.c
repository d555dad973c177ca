/* `conch admin-user NAME`: creates or resets an operator account from a
 * password read on standard input. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/password.h"
#include "db.h"
#include "util.h"

/* Reads one line (without its line ending) into buf; -1 when there is
 * none or it is longer than the buffer allows. */
static int
read_password(char *buf, size_t cap)
{
	size_t len;

	if (fgets(buf, (int)cap, stdin) == NULL)
		return -1;
	len = strcspn(buf, "\r\n");
	if (buf[len] == '\0' && len == cap - 1)
		return -1; /* no line end within the limit: too long */
	buf[len] = '\0';
	return 0;
}

/* Upserts the account; a reset also ends its sessions. Sets *created. */
static int
store_user(const char *name, const char *hash, int *created)
{
	const char *p[2] = {name, hash};
	struct tx tx;
	PGresult *r;

	if (tx_begin_system(&tx) < 0)
		return -1;
	/* xmax is 0 on a row this statement inserted, set on one it updated. */
	r = tx_query(&tx,
	             "INSERT INTO admin_users (name, password_hash) VALUES ($1, $2) "
	             "ON CONFLICT (name) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
	             "updated_at = now() RETURNING (xmax = 0)",
	             2, p);
	if (r != NULL) {
		*created = PQntuples(r) == 1 && strcmp(db_str(r, 0, 0), "t") == 0;
		PQclear(r);
	}
	tx_exec(&tx, "DELETE FROM admin_sessions WHERE user_name = $1", 1, p);
	return tx_commit(&tx);
}

int
admin_user_command(const char *name)
{
	char password[ADMIN_PASSWORD_MAX + 2];
	char *hash = NULL;
	int created = 0, rc = -1;

	if (!admin_name_valid(name)) {
		fprintf(stderr, "conch: admin user names are 1 to %d characters of a-z 0-9 . _ -\n",
		        ADMIN_NAME_MAX);
		return -1;
	}
	if (read_password(password, sizeof(password)) < 0) {
		fprintf(stderr,
		        "conch: give the password as one line on standard input "
		        "(at most %d bytes)\n",
		        ADMIN_PASSWORD_MAX);
		goto done;
	}
	if (strlen(password) < ADMIN_PASSWORD_MIN) {
		fprintf(stderr, "conch: the password must be at least %d characters\n",
		        ADMIN_PASSWORD_MIN);
		goto done;
	}
	hash = admin_password_hash(password);
	if (hash == NULL || store_user(name, hash, &created) < 0) {
		fprintf(stderr, "conch: could not store admin user %s (see the log above)\n", name);
		goto done;
	}
	printf("admin user %s %s\n", name, created ? "created" : "updated");
	rc = 0;
done:
	OPENSSL_cleanse(password, sizeof(password));
	free(hash);
	return rc;
}
