/* libFuzzer target for form decoding: any bytes parse or fail cleanly, a
 * parsed form keeps form.h's promises, and url_encode round-trips every
 * decoded value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "k=" + url_encode(value) must decode back to value. */
static void
check_round_trip(const char *value)
{
	char *enc = url_encode(value);
	char *body = xasprintf("k=%s", enc);
	struct form again;

	if (form_parse(body, strlen(body), &again) != 0 || again.n != 1 ||
	    strcmp(form_get(&again, "k"), value) != 0)
		abort();
	form_free(&again);
	free(body);
	free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct form form;

	if (form_parse((const char *)data, size, &form) != 0) {
		if (form.n != 0 || form.fields != NULL)
			abort();
		return 0;
	}
	if (form.n > FORM_MAX_FIELDS)
		abort();
	for (size_t i = 0; i < form.n; i++) {
		const char *key = form.fields[i].key, *value = form.fields[i].value;
		const char *first = form_get(&form, key);

		if (key == NULL || value == NULL || first == NULL)
			abort();
		/* form_get answers with the first field of that key. */
		for (size_t j = 0; j <= i; j++) {
			if (strcmp(form.fields[j].key, key) == 0) {
				if (first != form.fields[j].value)
					abort();
				break;
			}
		}
		check_round_trip(value);
	}
	form_free(&form);
	return 0;
}
