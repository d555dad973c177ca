/* How Dibs looks in Slack: Block Kit for replies, DMs and the App Home.
 * Pure functions of the data they are given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dibs/dibs.h"
#include "slack.h"
#include "util.h"

/* Slack caps a message at 50 blocks; keep room for a header and a footer. */
#define LIST_MAX_THINGS 40
#define QUEUE_SHOWN     10

/* <!date^EPOCH^{date_short_pretty} at {time}|fallback>: each reader sees
 * their own time zone. */
static void
slack_date(struct buf *b, double epoch)
{
	char fallback[32];
	time_t t = (time_t)epoch;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(fallback, sizeof(fallback), "%Y-%m-%d %H:%M UTC", &tm);
	buf_printf(b, "<!date^%lld^{date_short_pretty} at {time}|%s>", (long long)t, fallback);
}

static void
append_escaped(struct buf *b, const char *s)
{
	char *e = slack_escape(s);

	buf_puts(b, e);
	free(e);
}

static void
append_queue(struct buf *b, const struct dibs_thing *t)
{
	int shown = t->nqueue < QUEUE_SHOWN ? t->nqueue : QUEUE_SHOWN;

	if (t->nqueue == 0)
		return;
	buf_puts(b, "\nQueue: ");
	for (int i = 0; i < shown; i++)
		buf_printf(b, "%s%d. <@%s>", i ? ", " : "", i + 1, t->queue[i]);
	if (t->nqueue > shown)
		buf_printf(b, " and %d more", t->nqueue - shown);
}

/* One thing as mrkdwn: name, holder, since, release time, reason, queue. */
char *
dibs_view_thing_text(const struct dibs_thing *t)
{
	struct buf b;

	buf_init(&b);
	buf_puts(&b, "*");
	append_escaped(&b, t->display);
	buf_puts(&b, "*  ");
	if (t->holder == NULL) {
		buf_puts(&b, "free");
	} else {
		buf_printf(&b, "held by <@%s> since ", t->holder);
		slack_date(&b, t->since);
		if (t->release_at > 0) {
			buf_puts(&b, ", until ");
			slack_date(&b, t->release_at);
		}
		if (t->reason && *t->reason) {
			buf_puts(&b, "\n_");
			append_escaped(&b, t->reason);
			buf_puts(&b, "_");
		}
	}
	append_queue(&b, t);
	return buf_steal(&b);
}

json_t *
dibs_view_list(const struct dibs_thing *things, int n, int total)
{
	json_t *blocks = json_array();
	char *text;
	char header[128];

	if (n == 0) {
		json_array_append_new(
		    blocks, slack_section("No things yet. Call dibs on one: `/dibs on staging`"));
		return slack_msg(0, "No things yet.", blocks);
	}
	snprintf(header, sizeof(header), "*%d thing%s*", total, total == 1 ? "" : "s");
	json_array_append_new(blocks, slack_section(header));
	for (int i = 0; i < n && i < LIST_MAX_THINGS; i++) {
		text = dibs_view_thing_text(&things[i]);
		json_array_append_new(blocks, slack_section(text));
		free(text);
	}
	if (total > LIST_MAX_THINGS || total > n) {
		snprintf(header, sizeof(header), "and %d more: `/dibs q THING` shows one",
		         total - (n < LIST_MAX_THINGS ? n : LIST_MAX_THINGS));
		json_array_append_new(blocks, slack_context(header));
	}
	return slack_msg(0, "Things and their holders", blocks);
}

json_t *
dibs_view_one(const struct dibs_thing *t)
{
	json_t *blocks = json_array();
	char *text = dibs_view_thing_text(t);
	json_t *msg;

	json_array_append_new(blocks, slack_section(text));
	msg = slack_msg(0, text, blocks);
	free(text);
	return msg;
}

/* A DM about one hold: the text, then its buttons (Extend 1h when asked,
 * and Release). Their value is "thing hold_id", so a press acts on the
 * hold it was made for and a stale button does nothing. Takes b's text. */
static json_t *
hold_message(struct buf *b, const char *thing, long long hold_id, int extend)
{
	json_t *blocks = json_array(), *buttons = json_array(), *msg;
	char *value = xasprintf("%s %lld", thing, hold_id);

	json_array_append_new(blocks, slack_section(b->data));
	if (extend)
		json_array_append_new(buttons,
		                      slack_button("Extend 1h", "dibs.extend", value, "primary"));
	json_array_append_new(buttons, slack_button("Release", "dibs.release", value, "danger"));
	json_array_append_new(blocks, slack_actions(buttons));
	msg = slack_msg(0, b->data, blocks);
	buf_free(b);
	free(value);
	return msg;
}

json_t *
dibs_view_your_turn(const char *display, const char *thing, long long hold_id, double release_at)
{
	struct buf b;

	buf_init(&b);
	buf_puts(&b, "*");
	append_escaped(&b, display);
	buf_puts(&b, "* is yours.");
	if (release_at > 0) {
		buf_puts(&b, " It will be released ");
		slack_date(&b, release_at);
		buf_puts(&b, ".");
	}
	return hold_message(&b, thing, hold_id, 0);
}

json_t *
dibs_view_reminder(const char *display, const char *thing, long long hold_id, double release_at)
{
	struct buf b;

	buf_init(&b);
	buf_puts(&b, "Your hold on *");
	append_escaped(&b, display);
	buf_puts(&b, "* ends ");
	slack_date(&b, release_at);
	buf_puts(&b, ".");
	return hold_message(&b, thing, hold_id, 1);
}

json_t *
dibs_view_kicked(const char *display, const char *by_user)
{
	struct buf b;
	json_t *msg;

	buf_init(&b);
	buf_printf(&b, "<@%s> kicked you off *", by_user);
	append_escaped(&b, display);
	buf_puts(&b, "*.");
	msg = slack_msg(0, b.data, NULL);
	buf_free(&b);
	return msg;
}

json_t *
dibs_view_kick_announce(const char *display, const char *kicked, const char *by_user,
                        const char *next_user)
{
	struct buf b;
	json_t *msg;

	buf_init(&b);
	buf_printf(&b, "<@%s> kicked <@%s> off *", by_user, kicked);
	append_escaped(&b, display);
	buf_puts(&b, "*.");
	if (next_user)
		buf_printf(&b, " It is now <@%s>'s.", next_user);
	msg = slack_msg(1, b.data, NULL);
	buf_free(&b);
	return msg;
}

/* The App Home: the user's holds and places in line, the team's things,
 * then the billing line (for those who may pay). O(n * queue) over the
 * things shown. */
json_t *
dibs_view_home(const struct dibs_thing *things, int n, int total, const char *user_id,
               const char *billing_prompt)
{
	json_t *blocks = json_array();
	struct buf mine;
	char *text;

	buf_init(&mine);
	for (int i = 0; i < n; i++) {
		const struct dibs_thing *t = &things[i];
		if (t->holder && strcmp(t->holder, user_id) == 0) {
			buf_puts(&mine, "• You hold *");
			append_escaped(&mine, t->display);
			buf_puts(&mine, "*");
			if (t->release_at > 0) {
				buf_puts(&mine, " until ");
				slack_date(&mine, t->release_at);
			}
			buf_puts(&mine, "\n");
		}
		for (int j = 0; j < t->nqueue; j++)
			if (strcmp(t->queue[j], user_id) == 0) {
				buf_printf(&mine, "• #%d in line for *", j + 1);
				append_escaped(&mine, t->display);
				buf_puts(&mine, "*\n");
			}
	}
	json_array_append_new(blocks, slack_section("*Your dibs*"));
	json_array_append_new(blocks, slack_section(mine.len ? mine.data
	                                                     : "Nothing right now. Try `/dibs on "
	                                                       "staging` in any channel."));
	buf_free(&mine);
	json_array_append_new(blocks, json_pack("{s:s}", "type", "divider"));
	text = xasprintf("*Your team's things* (%d)", total);
	json_array_append_new(blocks, slack_section(text));
	free(text);
	for (int i = 0; i < n && i < LIST_MAX_THINGS; i++) {
		text = dibs_view_thing_text(&things[i]);
		json_array_append_new(blocks, slack_section(text));
		free(text);
	}
	if (billing_prompt)
		json_array_append_new(blocks, slack_context(billing_prompt));
	return json_pack("{s:s, s:o}", "type", "home", "blocks", blocks);
}
