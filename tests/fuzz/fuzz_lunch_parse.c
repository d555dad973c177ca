/* libFuzzer target for the /lunch grammar: any text either parses into a
 * command whose fields are in range, or fails with an error that is a
 * short, valid UTF-8 line (it goes back to Slack inside JSON). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lunch/command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_times(const struct lunch_cmd *c)
{
	if (c->ntimes < 1 || c->ntimes > LUNCH_MAX_TIMES)
		abort();
	for (int i = 0; i < c->ntimes; i++)
		if (c->times[i] < 0 || c->times[i] > 23 * 60 + 59 ||
		    (i > 0 && c->times[i] <= c->times[i - 1]))
			abort();
}

static void
check_command(const struct lunch_cmd *c)
{
	switch (c->verb) {
	case LUNCH_START:
		check_times(c);
		if (c->size < 2 || c->size > 8 || c->remind < 0 || c->remind > LUNCH_MAX_REMIND ||
		    (c->remind > 0 && !c->has_close) ||
		    (c->has_close && (c->close_at < 0 || c->close_at > 23 * 60 + 59)))
			abort();
		break;
	case LUNCH_STATS:
		if (c->summary_days < 1 || c->summary_days > LUNCH_MAX_STATS_DAYS)
			abort();
		break;
	case LUNCH_SETTINGS:
		if (c->groups_in_channel != 0 && c->groups_in_channel != 1)
			abort();
		break;
	case LUNCH_SCHEDULE:
		check_times(c);
		if (c->size < 2 || c->size > 8 || c->days == 0 || c->days > LUNCH_DAILY ||
		    c->open_at < 0 || c->close_at <= c->open_at || c->close_at > 23 * 60 + 59)
			abort();
		break;
	case LUNCH_SUMMARY:
		if (c->summary_days < 1 || c->summary_days > LUNCH_MAX_SUMMARY_DAYS)
			abort();
		break;
	case LUNCH_HELP:
	case LUNCH_CLOSE:
	case LUNCH_UNSCHEDULE:
	case LUNCH_UPGRADE:
	case LUNCH_CANCEL:
	case LUNCH_OPTOUT:
	case LUNCH_OPTIN:
		break;
	default:
		abort();
	}
}

static void
check_error(const char *err, size_t errlen)
{
	json_t *j;

	if (strnlen(err, errlen) >= errlen || strchr(err, '\n') != NULL)
		abort();
	j = json_string(err);
	if (j == NULL)
		abort();
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct lunch_cmd a, b;
	char err[256], small[5];
	int rc;

	memcpy(text, data, size);
	text[size] = '\0';
	rc = lunch_parse(text, &a, err, sizeof(err));
	if (rc == 0) {
		check_command(&a);
		if (err[0] != '\0')
			abort();
	} else if (rc != -1 || err[0] == '\0' || a.verb != LUNCH_HELP) {
		abort();
	} else {
		check_error(err, sizeof(err));
	}
	/* Same answer every time, whatever room the error has; a short
	 * buffer holds a prefix of the error that is still valid UTF-8. */
	if (lunch_parse(text, &b, small, sizeof(small)) != rc || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	if (rc != 0) {
		check_error(small, sizeof(small));
		if (strncmp(small, err, strlen(small)) != 0)
			abort();
	}
	if (lunch_parse(text, &b, NULL, 0) != rc)
		abort();
	free(text);
	return 0;
}
