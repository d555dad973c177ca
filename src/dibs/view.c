/* How Dibs looks in Slack: Block Kit for replies, DMs and the App Home.
 * Pure functions of the data they are given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dibs/command.h"
#include "dibs/dibs.h"
#include "slack.h"
#include "util.h"

/* Slack caps a message at 50 blocks and a text at 3,000 characters; keep
 * room for a header and a footer. */
#define LIST_MAX_THINGS 40
#define QUEUE_SHOWN     10 /* per thing in lists */
#define MSG_MAX_BLOCKS  50
#define TEXT_MAX        3000 /* characters; our queue lines are ASCII */
#define QUEUE_LINE_MAX  64   /* bytes of one "N. <@USER>\n" line, at most */

/* The reader's own date and time (slack_date_token). */
static void
slack_date(struct buf *b, double epoch)
{
	char tok[SLACK_DATE_TOKEN_MAX];

	buf_puts(b, slack_date_token(tok, sizeof(tok), epoch, "{date_short_pretty} at {time}"));
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

/* The thing's head (the first block), then its whole queue as numbered
 * lines packed into sections of at most TEXT_MAX characters; past the
 * message's block limit a last line says how many are not shown. */
json_t *
dibs_view_one(const struct dibs_thing *t)
{
	struct dibs_thing head = *t;
	json_t *blocks = json_array(), *msg;
	char *text, more[64];
	struct buf b;
	int i = 0;

	head.nqueue = 0;
	text = dibs_view_thing_text(&head);
	json_array_append_new(blocks, slack_section(text));
	buf_init(&b);
	if (t->nqueue > 0)
		buf_printf(&b, "*Queue* (%d)\n", t->nqueue);
	while (i < t->nqueue && json_array_size(blocks) < MSG_MAX_BLOCKS - 1) {
		buf_printf(&b, "%d. <@%.40s>\n", i + 1, t->queue[i]);
		i++;
		if (b.len + QUEUE_LINE_MAX > TEXT_MAX || i == t->nqueue) {
			json_array_append_new(blocks, slack_section(b.data));
			b.len = 0;
			b.data[0] = '\0';
		}
	}
	buf_free(&b);
	if (i < t->nqueue) {
		snprintf(more, sizeof(more), "and %d more in line", t->nqueue - i);
		json_array_append_new(blocks, slack_context(more));
	}
	msg = slack_msg(0, text, blocks);
	free(text);
	return msg;
}

/* The value of a Did you mean? button: "USER SECONDS NAME[ REASON]", the
 * reason left out when it would take the value over BUTTON_VALUE_MAX. */
#define BUTTON_VALUE_MAX 250
static char *
suggest_value(const char *user, long long seconds, const char *name, const char *reason)
{
	char *v = xasprintf("%s %lld %s", user, seconds, name), *with;

	if (reason == NULL || strlen(v) + 1 + strlen(reason) > BUTTON_VALUE_MAX)
		return v;
	with = xasprintf("%s %s", v, reason);
	free(v);
	return with;
}

json_t *
dibs_view_did_you_mean(const char *user, const char *display, long long seconds, const char *reason,
                       char close[][65], int n, bool can_create)
{
	json_t *blocks = json_array(), *buttons = json_array(), *msg;
	char *label, *value, action[32];
	struct buf b;

	buf_init(&b);
	buf_puts(&b, "There is no *");
	append_escaped(&b, display);
	buf_puts(&b, can_create ? "* yet. Did you mean "
	                        : "* (the team's names are strict: only `/dibs add` makes things). "
	                          "Did you mean ");
	for (int i = 0; i < n; i++) {
		buf_puts(&b, i == 0 ? "*" : i == n - 1 ? " or *" : ", *");
		append_escaped(&b, close[i]);
		buf_puts(&b, "*");
	}
	buf_puts(&b, "?");
	json_array_append_new(blocks, slack_section(b.data));
	for (int i = 0; i < n; i++) {
		label = xasprintf("Take %s", close[i]);
		value = suggest_value(user, seconds, close[i], reason);
		snprintf(action, sizeof(action), "dibs.suggest.take.%d", i);
		json_array_append_new(
		    buttons, slack_button(label, action, value, i == 0 ? "primary" : NULL));
		free(label);
		free(value);
	}
	if (can_create) {
		label = xasprintf("Create %s", display);
		value = suggest_value(user, seconds, display, reason);
		json_array_append_new(buttons,
		                      slack_button(label, "dibs.suggest.create", value, NULL));
		free(label);
		free(value);
	}
	json_array_append_new(blocks, slack_actions(buttons));
	msg = slack_msg(0, b.data, blocks);
	buf_free(&b);
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
dibs_view_queue_joined(const char *display, const char *thing, long long hold_id, char **queue,
                       int nqueue)
{
	int shown = nqueue < QUEUE_SHOWN ? nqueue : QUEUE_SHOWN;
	struct buf b;

	buf_init(&b);
	for (int i = 0; i < shown; i++)
		buf_printf(&b, "%s<@%.40s>",
		           i == 0                              ? ""
		           : i == shown - 1 && shown == nqueue ? " and "
		                                               : ", ",
		           queue[i]);
	if (nqueue > shown)
		buf_printf(&b, " and %d more", nqueue - shown);
	buf_printf(&b, " %s waiting for your *", nqueue == 1 ? "is" : "are");
	append_escaped(&b, display);
	buf_puts(&b, "*. Release it when you are done.");
	return hold_message(&b, thing, hold_id, 0);
}

/* What the channel reads for each event: before and after the name. */
static const struct {
	const char *event, *before, *after;
} announce_words[] = {
    {"took", "> took *", "*."},
    {"released", "> released *", "*."},
    {"expired", ">'s hold on *", "* ended: its time was up."},
    {"auto_released", ">'s hold on *", "* was released: the check-in went unanswered."},
};

json_t *
dibs_view_announce(const char *event, const char *display, const char *user, const char *next_user)
{
	size_t i = 0;
	struct buf b;
	json_t *msg;

	while (i + 1 < ARRAY_LEN(announce_words) && strcmp(announce_words[i].event, event) != 0)
		i++;
	if (strcmp(announce_words[i].event, event) != 0)
		i = 1; /* an unknown event reads as a release */
	buf_init(&b);
	buf_printf(&b, "<@%s%s", user, announce_words[i].before);
	append_escaped(&b, display);
	buf_puts(&b, announce_words[i].after);
	if (next_user && *next_user)
		buf_printf(&b, " It is now <@%s>'s.", next_user);
	msg = slack_msg(1, b.data, NULL);
	buf_free(&b);
	return msg;
}

json_t *
dibs_view_checkin(const char *display, const char *thing, long long hold_id, int gen)
{
	json_t *blocks = json_array(), *buttons = json_array(), *msg;
	char *keep = xasprintf("%s %lld %d", thing, hold_id, gen);
	char *release = xasprintf("%s %lld", thing, hold_id);
	struct buf b;

	buf_init(&b);
	buf_puts(&b, "Still using *");
	append_escaped(&b, display);
	buf_puts(&b, "*?");
	json_array_append_new(blocks, slack_section(b.data));
	json_array_append_new(buttons, slack_button("Keep", "dibs.keep", keep, "primary"));
	json_array_append_new(buttons, slack_button("Release", "dibs.release", release, "danger"));
	json_array_append_new(blocks, slack_actions(buttons));
	msg = slack_msg(0, b.data, blocks);
	buf_free(&b);
	free(keep);
	free(release);
	return msg;
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

/* The buttons of one thing for user: on their hold Release (and Extend 1h
 * when timed), on their place Leave the queue, else Take or Join the
 * queue. Values: "thing hold_id" for the hold's buttons (they act on that
 * hold only), "thing" for the others (they act for the presser). */
static json_t *
home_buttons(const struct dibs_thing *t, const char *user_id)
{
	json_t *buttons = json_array();
	char *value = xasprintf("%s %lld", t->name, t->hold_id);
	bool queued = false;

	for (int j = 0; j < t->nqueue; j++)
		queued = queued || strcmp(t->queue[j], user_id) == 0;
	if (t->holder && strcmp(t->holder, user_id) == 0) {
		json_array_append_new(buttons,
		                      slack_button("Release", "dibs.release", value, "danger"));
		if (t->release_at > 0)
			json_array_append_new(
			    buttons, slack_button("Extend 1h", "dibs.extend", value, NULL));
	} else if (queued) {
		json_array_append_new(buttons,
		                      slack_button("Leave the queue", "dibs.leave", t->name, NULL));
	} else {
		json_array_append_new(buttons, slack_button(t->holder ? "Join the queue" : "Take",
		                                            "dibs.join", t->name, "primary"));
	}
	free(value);
	return slack_actions(buttons);
}

/* O(n * queue) over the things shown; 4 + 2 blocks a thing, so 30 things
 * stay well inside a view's 100 blocks with room for other sections. */
void
dibs_view_home_section(const struct dibs_thing *things, int n, int total, const char *user_id,
                       json_t *blocks)
{
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
	json_array_append_new(
	    blocks,
	    slack_actions(json_pack(
	        "[o]", slack_button("Dibs on\xe2\x80\xa6", "dibs.modal.open", "open", "primary"))));
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
		json_array_append_new(blocks, home_buttons(&things[i], user_id));
	}
}

static json_t *
text_input(const char *block, const char *label, const char *hint, int max, bool optional)
{
	return json_pack("{s:s, s:s, s:b, s:{s:s, s:s}, s:{s:s, s:s, s:i, s:{s:s, s:s}}}", "type",
	                 "input", "block_id", block, "optional", optional, "label", "type",
	                 "plain_text", "text", label, "element", "type", "plain_text_input",
	                 "action_id", "value", "max_length", max, "placeholder", "type",
	                 "plain_text", "text", hint);
}

json_t *
dibs_view_modal(void)
{
	return json_pack(
	    "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, s:[o, o, o]}", "type", "modal",
	    "callback_id", "dibs.modal", "title", "type", "plain_text", "text",
	    "Dibs on\xe2\x80\xa6", "submit", "type", "plain_text", "text", "Take", "close", "type",
	    "plain_text", "text", "Cancel", "blocks",
	    text_input("thing", "Thing", "staging", DIBS_THING_MAX, false),
	    text_input("duration", "For how long (empty: until released)", "2h", 40, true),
	    text_input("reason", "Because", "testing the release", DIBS_REASON_MAX, true));
}
