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

/* Percent-encodes s for a URL query or form value into a malloc'd string. */
char *url_encode(const char *s);

#endif
