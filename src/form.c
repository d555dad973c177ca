/* application/x-www-form-urlencoded, strictly: a malformed escape or a NUL
 * anywhere rejects the whole body rather than guessing. */
#include <stdlib.h>
#include <string.h>

#include "form.h"
#include "util.h"

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes s[0..len) into a new string, or NULL on a bad escape or %00;
 * in a form '+' is a space, in a path it is itself. */
static char *
decode_as(const char *s, size_t len, int plus_is_space)
{
	char *out = xmalloc(len + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+' && plus_is_space) {
			*o++ = ' ';
		} else if (s[i] != '%') {
			*o++ = s[i];
		} else {
			int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
			int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;

			if (lo < 0 || (hi | lo) == 0)
				goto fail;
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		}
	}
	*o = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

static char *
decode(const char *s, size_t len)
{
	return decode_as(s, len, 1);
}

char *
url_decode_path(const char *s, size_t len)
{
	return decode_as(s, len, 0);
}

/* Adds the field in seg[0..len); a field without '=' has the value "". */
static int
add_field(struct form *form, const char *seg, size_t len)
{
	const char *eq = memchr(seg, '=', len);
	size_t klen = eq ? (size_t)(eq - seg) : len;
	struct form_field *f;

	if (form->n == FORM_MAX_FIELDS)
		return -1;
	f = &form->fields[form->n];
	f->key = decode(seg, klen);
	f->value = eq ? decode(eq + 1, len - klen - 1) : xstrdup("");
	if (f->key == NULL || f->value == NULL) {
		free(f->key);
		free(f->value);
		return -1;
	}
	form->n++;
	return 0;
}

int
form_parse(const char *body, size_t len, struct form *form)
{
	size_t start = 0;

	form->fields = xcalloc(FORM_MAX_FIELDS, sizeof(form->fields[0]));
	form->n = 0;
	if (len > 0 && memchr(body, '\0', len) != NULL)
		goto fail;
	while (start < len) {
		const char *amp = memchr(body + start, '&', len - start);
		size_t end = amp ? (size_t)(amp - body) : len;

		if (end > start && add_field(form, body + start, end - start) != 0)
			goto fail;
		start = end + 1;
	}
	return 0;
fail:
	form_free(form);
	return -1;
}

const char *
form_get(const struct form *form, const char *key)
{
	for (size_t i = 0; i < form->n; i++)
		if (strcmp(form->fields[i].key, key) == 0)
			return form->fields[i].value;
	return NULL;
}

void
form_free(struct form *form)
{
	for (size_t i = 0; i < form->n; i++) {
		free(form->fields[i].key);
		free(form->fields[i].value);
	}
	free(form->fields);
	form->fields = NULL;
	form->n = 0;
}

char *
url_encode(const char *s)
{
	static const char digits[] = "0123456789ABCDEF";
	struct buf b;

	buf_init(&b);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL) {
			buf_putc(&b, (char)*p);
		} else {
			char esc[3] = {'%', digits[*p >> 4], digits[*p & 15]};

			buf_append(&b, esc, 3);
		}
	}
	return buf_steal(&b);
}
