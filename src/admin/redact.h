/* What operator pages may show of stored data (src/admin/redact.c). */
#ifndef CONCH_ADMIN_REDACT_H
#define CONCH_ADMIN_REDACT_H

#include <jansson.h>
#include <stddef.h>

/* A copy of a job payload with the value of every key containing "token",
 * "secret", "key" or "password" (any case, at any depth) replaced by
 * "[redacted]", and secret-looking strings scrubbed. */
json_t *admin_redact(json_t *payload);
/* Replaces Slack/Stripe credentials and sealed vault values inside free
 * text (errors, payload strings) by "[redacted]"; malloc'd. */
char *admin_scrub(const char *text);
/* At most max bytes of s (cut on a UTF-8 boundary) plus "…" when cut;
 * malloc'd. */
char *admin_truncate(const char *s, size_t max);

/* Rewrites job rows for display: "payload" (JSON text) redacted and
 * "last_error" scrubbed, both cut to a readable length; adds can_retry
 * and can_cancel from "state". */
void admin_clean_job_rows(json_t *rows);

/* 1 when s is a keyset cursor time as admin_cursor() prints it in SQL:
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ". */
int admin_cursor_valid(const char *s);

#endif
