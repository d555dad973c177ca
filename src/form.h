/* application/x-www-form-urlencoded decoding (slash commands, buttons). */
#ifndef CONCH_FORM_H
#define CONCH_FORM_H

#include <stddef.h>

struct form_field {
	char *key;
	char *value;
};

struct form {
	struct form_field *fields;
	size_t n;
};

#define FORM_MAX_FIELDS 64

/* Decodes body. Returns 0, or -1 on a malformed escape, an embedded NUL,
 * or too many fields (the form is left empty). */
int form_parse(const char *body, size_t len, struct form *form);
/* The first value of key, or NULL. */
const char *form_get(const struct form *form, const char *key);
void form_free(struct form *form);

/* Decodes one percent-encoded URL path segment s[0..len) ('+' stays '+')
 * into a malloc'd string; NULL on a malformed escape or %00. Routes match
 * the path as sent; only their parameters go through this. */
char *url_decode_path(const char *s, size_t len);

/* Percent-encodes s for a URL query or form value into a malloc'd string. */
char *url_encode(const char *s);

#endif
