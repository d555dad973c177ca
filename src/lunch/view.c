/* Lunch Buddies' messages: the poll DM in each of its states, a group's
 * message, and the note to someone nobody joined. Each returns the
 * arguments chat.postMessage and chat.update share: text (the
 * notification) and blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lunch/lunch.h"
#include "util.h"

void
lunch_view_key(const struct lunch_dm_view *v, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s:%d%s",
	         v->cancelled ? "cancelled"
	         : v->open    ? "open"
	                      : "closed",
	         v->answered ? v->answer : -2, v->optedout ? ":out" : "");
}

void
lunch_date_token(struct buf *b, long long at, const char *format, int minutes, const char *tz)
{
	char t[6];

	lunch_format_time(minutes, t);
	buf_printf(b, "<!date^%lld^%s|%s %s>", at, format, t, tz ? tz : "UTC");
}

/* "Times are in Europe/Paris: 12:00 is <!date..> where you are, ... The
 * poll closes <!date..>." */
static char *
zone_line(const struct lunch_dm_view *v)
{
	struct buf b;
	char t[6];

	buf_init(&b);
	buf_printf(&b, "Times are in the poll's time zone, *%s*: ", v->tz);
	for (int i = 0; i < v->ntimes; i++) {
		lunch_format_time(v->times[i], t);
		buf_printf(&b, "%s%s is ", i == 0 ? "" : i == v->ntimes - 1 ? " and " : ", ", t);
		lunch_date_token(&b, v->at[i], "{time}", v->times[i], v->tz);
	}
	buf_puts(&b, " where you are.");
	if (v->close_at > 0) {
		buf_puts(&b, " The poll closes ");
		lunch_date_token(&b, v->close_at, "{date_short_pretty} at {time}", v->close_minute,
		                 v->tz);
		buf_puts(&b, ".");
	}
	return buf_steal(&b);
}

static json_t *
message(const char *text, json_t *blocks)
{
	json_t *m = json_object();

	json_object_set_new(m, "text", json_string(text));
	json_object_set_new(m, "blocks", blocks);
	return m;
}

static json_t *
answer_buttons(const struct lunch_dm_view *v)
{
	json_t *buttons = json_array();
	char label[6], action[32], value[48];

	for (int i = 0; i < v->ntimes; i++) {
		lunch_format_time(v->times[i], label);
		snprintf(action, sizeof(action), "lunch.answer.%d", v->times[i]);
		snprintf(value, sizeof(value), "%lld:%d", v->poll_id, v->times[i]);
		json_array_append_new(
		    buttons,
		    slack_button(label, action, value,
		                 v->answered && v->answer == v->times[i] ? "primary" : NULL));
	}
	snprintf(value, sizeof(value), "%lld:no", v->poll_id);
	json_array_append_new(buttons,
	                      slack_button("No, thanks", "lunch.answer.no", value,
	                                   v->answered && v->answer == -1 ? "primary" : NULL));
	return slack_actions(buttons);
}

static json_t *
optout_button(const struct lunch_dm_view *v)
{
	json_t *buttons = json_array();
	char value[48];

	snprintf(value, sizeof(value), "%lld:optout", v->poll_id);
	json_array_append_new(buttons,
	                      slack_button("Stop asking me here", "lunch.optout", value, NULL));
	return slack_actions(buttons);
}

/* What the member answered, as a sentence for the open or closed poll. */
static char *
answer_line(const struct lunch_dm_view *v)
{
	char t[6];

	lunch_format_time(v->answer, t);
	if (v->cancelled)
		return xstrdup("*This poll was cancelled.* There are no groups this time.");
	if (v->open && v->optedout)
		return xasprintf("You won't be asked in <#%s> again. Type `/lunch optin` there to "
		                 "be asked again.",
		                 v->channel_id);
	if (v->open && !v->answered)
		return xstrdup("You haven't answered yet.");
	if (v->open && v->answer < 0)
		return xstrdup("Your answer: *No*. You can change it until the poll closes.");
	if (v->open)
		return xasprintf("Your answer: *%s*. You can change it until the poll closes.", t);
	if (!v->answered)
		return xstrdup("*This poll has closed.* You didn't answer this time.");
	if (v->answer < 0)
		return xstrdup("*This poll has closed.* You said no this time.");
	return xasprintf("*This poll has closed.* You said %s: watch for a message about your "
	                 "group.",
	                 t);
}

json_t *
lunch_view_poll_dm(const struct lunch_dm_view *v)
{
	json_t *blocks = json_array();
	char *intro, *line, *text;
	json_t *m;

	intro =
	    xasprintf(":knife_fork_plate: <@%s> asks who in <#%s> would like to have lunch "
	              "together. Pick a time to join a group of about %d, or say no to sit this "
	              "one out.",
	              v->created_by, v->channel_id, v->size);
	line = answer_line(v);
	json_array_append_new(blocks, slack_section(intro));
	if (v->open && v->tz && v->ntimes > 0 && v->at[0] > 0) {
		char *zone = zone_line(v);

		json_array_append_new(blocks, slack_context(zone));
		free(zone);
	}
	if (v->open && !v->optedout) {
		json_array_append_new(blocks, answer_buttons(v));
		json_array_append_new(blocks, slack_context(line));
		json_array_append_new(blocks, optout_button(v));
		text = xasprintf("Lunch poll in <#%s>: pick a time or say no.", v->channel_id);
	} else if (v->open) {
		json_array_append_new(blocks, slack_section(line));
		text = xasprintf("Lunch poll in <#%s>: pick a time or say no.", v->channel_id);
	} else {
		json_array_append_new(blocks, slack_section(line));
		text = xasprintf("This poll has closed. (Lunch poll in <#%s>.)", v->channel_id);
	}
	m = message(text, blocks);
	free(text);
	free(line);
	free(intro);
	return m;
}

/* "<@A>, <@B> and <@C>" appended to b. */
static void
mentions(struct buf *b, const char *const *members, int n)
{
	for (int i = 0; i < n; i++) {
		if (i > 0)
			buf_puts(b, i == n - 1 ? " and " : ", ");
		buf_printf(b, "<@%s>", members[i]);
	}
}

json_t *
lunch_view_group(const struct lunch_group_msg *g, const char *channel_id)
{
	json_t *blocks = json_array();
	struct buf b;
	char t[6], *body, *text, *note;
	json_t *m;

	lunch_format_time(g->time, t);
	buf_init(&b);
	buf_printf(&b, "*Lunch at %s* :knife_fork_plate:\nYou're having lunch together: ", t);
	mentions(&b, g->members, g->nmembers);
	buf_printf(&b, ".\n<@%s> picks the place.", g->picker);
	body = buf_steal(&b);
	buf_printf(&b, "Lunch at %s: ", t);
	mentions(&b, g->members, g->nmembers);
	buf_printf(&b, ". <@%s> picks the place.", g->picker);
	text = buf_steal(&b);
	note = xasprintf("From the lunch poll in <#%s>.", channel_id);
	json_array_append_new(blocks, slack_section(body));
	json_array_append_new(blocks, slack_context(note));
	m = message(text, blocks);
	free(note);
	free(text);
	free(body);
	return m;
}

/* Text only: a big poll's groups overflow a section block's 3000
 * characters, a message's text holds 40000. */
json_t *
lunch_view_channel(const struct lunch_group_msg *groups, int n)
{
	struct buf b;
	char t[6], *text;
	json_t *m = json_object();

	buf_init(&b);
	buf_puts(&b, ":knife_fork_plate: *Today's lunch groups*");
	for (int i = 0; i < n; i++) {
		lunch_format_time(groups[i].time, t);
		buf_printf(&b, "\n\u2022 *%s*: ", t);
		mentions(&b, groups[i].members, groups[i].nmembers);
		buf_printf(&b, ". <@%s> picks the place.", groups[i].picker);
	}
	text = buf_steal(&b);
	json_object_set_new(m, "text", json_string(text));
	free(text);
	return m;
}

json_t *
lunch_view_alone(int minutes, const char *channel_id)
{
	json_t *blocks = json_array();
	char t[6], *text;
	json_t *m;

	lunch_format_time(minutes, t);
	text = xasprintf("Only you picked %s in the lunch poll in <#%s>, so there is no group to "
	                 "join this time. Sorry! Maybe next round: thanks for saying yes.",
	                 t, channel_id);
	json_array_append_new(blocks, slack_section(text));
	m = message(text, blocks);
	free(text);
	return m;
}

char *
lunch_view_opened(const int *times, int n, int size, const char *tz, long long close_at,
                  int close_minute, long asked)
{
	char *list = lunch_format_times(times, n);
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "Lunch poll opened for %s, in groups of about %d", list, size);
	if (tz == NULL)
		/* The zone is fixed later (users.info, UTC when Slack gives none):
		 * the members job names it through the response_url. */
		buf_puts(&b,
		         ". Slack hasn't told me your time zone yet: I'll say here within "
		         "seconds which zone the times are in, and DM everyone in this channel");
	else if (asked >= 0)
		buf_printf(&b, " (times in %s). I'm sending %ld %s in this channel a DM to answer",
		           tz, asked, asked == 1 ? "person" : "people");
	else
		buf_printf(
		    &b, " (times in %s). I'm sending everyone in this channel a DM to answer", tz);
	if (close_minute >= 0) {
		buf_puts(&b, "; it closes by itself ");
		if (close_at > 0)
			lunch_date_token(&b, close_at, "{date_short_pretty} at {time}",
			                 close_minute, tz);
		else {
			char t[6];

			lunch_format_time(close_minute, t);
			buf_printf(&b, "at %s %s", t, tz ? tz : "in that zone");
		}
		buf_puts(&b, " (or type `/lunch close` sooner).");
	} else
		buf_puts(&b, "; type `/lunch close` when it's time to form the groups.");
	free(list);
	return buf_steal(&b);
}

char *
lunch_view_reminder(const char *channel_id, long long close_at, int close_minute, const char *tz)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, ":alarm_clock: A reminder: the lunch poll in <#%s> closes ", channel_id);
	lunch_date_token(&b, close_at, "{time}", close_minute, tz);
	buf_puts(&b, " and you haven't answered yet. Pick a time in the poll above, or say no.");
	return buf_steal(&b);
}
