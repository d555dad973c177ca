/* JSON lines on stderr. Each line is built in memory and handed to one
 * write(2) so that lines from different threads never interleave. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Longer messages are cut here; a log line is not a data channel. */
#define LOG_MSG_MAX 8192
#define LOG_ID_MAX  129 /* a request id a client sent may be 128 characters */

static atomic_int min_level = LOGL_INFO;
static _Thread_local char request_id[LOG_ID_MAX];
static _Thread_local char team_id[LOG_ID_MAX];

static const char *const level_names[] = {
    [LOGL_DEBUG] = "debug",
    [LOGL_INFO] = "info",
    [LOGL_WARN] = "warn",
    [LOGL_ERROR] = "error",
};

int
log_level_parse(const char *name)
{
	for (size_t i = 0; name != NULL && i < ARRAY_LEN(level_names); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void
log_set_level(enum log_level level)
{
	atomic_store(&min_level, (int)level);
}

static void
set_id(char *dst, const char *src)
{
	if (src == NULL)
		dst[0] = '\0';
	else
		snprintf(dst, LOG_ID_MAX, "%s", src);
}

void
log_set_request(const char *id)
{
	set_id(request_id, id);
}

void
log_set_team(const char *id)
{
	set_id(team_id, id);
}

const char *
log_team(void)
{
	return team_id[0] ? team_id : NULL;
}

/* Appends s as a JSON string; invalid UTF-8 becomes U+FFFD so the line
 * always parses. */
static void
put_json_string(struct buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), k;

	buf_putc(b, '"');
	for (size_t i = 0; i < n; i += k) {
		k = 1;
		if (s[i] == '"' || s[i] == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)s[i]);
		} else if (s[i] == '\n') {
			buf_puts(b, "\\n");
		} else if (s[i] == '\r') {
			buf_puts(b, "\\r");
		} else if (s[i] == '\t') {
			buf_puts(b, "\\t");
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			buf_printf(b, "\\u%04x", s[i]);
		} else if ((k = utf8_seq_len(s + i, n - i)) > 0) {
			buf_append(b, s + i, k);
		} else {
			k = 1;
			buf_puts(b, "\\ufffd");
		}
	}
	buf_putc(b, '"');
}

static void
put_time(struct buf *b)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_printf(b, "{\"time\":\"%s.%03ldZ\"", stamp, ts.tv_nsec / 1000000);
}

static void
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void
put_field(struct buf *b, const struct log_field *f)
{
	buf_putc(b, ',');
	put_json_string(b, f->name);
	buf_putc(b, ':');
	if (f->text != NULL)
		put_json_string(b, f->text);
	else if (isfinite(f->number))
		buf_printf(b, "%.15g", f->number);
	else
		buf_puts(b, "null");
}

static void
log_line(enum log_level level, const struct log_field *fields, int nfields, const char *fmt,
         va_list ap)
{
	char msg[LOG_MSG_MAX];
	struct buf b;

	if ((int)level < atomic_load(&min_level) || (unsigned)level >= ARRAY_LEN(level_names))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);

	buf_init(&b);
	put_time(&b);
	buf_printf(&b, ",\"level\":\"%s\"", level_names[level]);
	if (request_id[0]) {
		buf_puts(&b, ",\"request_id\":");
		put_json_string(&b, request_id);
	}
	if (team_id[0]) {
		buf_puts(&b, ",\"team_id\":");
		put_json_string(&b, team_id);
	}
	buf_puts(&b, ",\"msg\":");
	put_json_string(&b, msg);
	for (int i = 0; i < nfields; i++)
		put_field(&b, &fields[i]);
	buf_puts(&b, "}\n");
	write_all(STDERR_FILENO, b.data, b.len);
	buf_free(&b);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(level, NULL, 0, fmt, ap);
	va_end(ap);
}

void
log_fields(enum log_level level, const struct log_field *fields, int nfields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(level, fields, nfields, fmt, ap);
	va_end(ap);
}
