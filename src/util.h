/* Small helpers every file uses: allocation that cannot fail, a growable
 * buffer, bounded number parsing, and fatal() for broken invariants. */
#ifndef CONCH_UTIL_H
#define CONCH_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses a decimal integer in [min, max]; the whole string must be the
 * number. Returns 0 and sets *out, or -1. */
int strnum(const char *s, long long min, long long max, long long *out);
/* As strnum for the len bytes at s, which must all be digits (no sign, no
 * space; at most 18 of them). */
int strnum_digits(const char *s, size_t len, long long min, long long max, long long *out);

/* Levenshtein distance between a and b (insertions, deletions and
 * substitutions of bytes, each costing 1). O(len(a) * len(b)) time. */
size_t edit_distance(const char *a, const char *b);

/* A growable byte buffer, always NUL-terminated. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Hands the bytes to the caller (free() them) and resets the buffer. */
char *buf_steal(struct buf *b);
void buf_free(struct buf *b);

/* Length of the well-formed UTF-8 sequence at s (at most avail bytes):
 * no overlong forms, UTF-16 surrogates or code points past U+10FFFF, the
 * rules jansson checks. 0 when the bytes there are not one. */
size_t utf8_seq_len(const unsigned char *s, size_t avail);

/* Slack's escaping of text a person typed, before it goes into any
 * message (mrkdwn or plain): & < > become &amp; &lt; &gt;, so quoted text
 * can never form a mention (<!channel>), a link or a date. Every reply
 * that quotes a person goes through it. A malloc'd string; NULL gives "". */
char *slack_escape(const char *s);

/* Slack's ids: one upper-case type letter (T team, E enterprise org,
 * U or W user, C, G or D channel, A app, B bot, F file, ...), then 2 to 20
 * upper-case letters and digits. 1 when s is one whose type letter is in
 * first (e.g. "TE" for a team or an org, "UW" for a user), else 0; NULL
 * is no id. The one rule every id from outside is checked with. */
#define SLACK_ID_TAIL_MIN 2
#define SLACK_ID_TAIL_MAX 20
int slack_id_valid(const char *s, const char *first);

/* Wall-clock seconds and a monotonic clock in microseconds. */
/* Whole wall-clock seconds from the precise clock (time() reads a coarse
 * one that can lag by a tick: wrong at a signature's 300-second edge). */
/* Copies at most max bytes of v[0..n) into out for an error message, control
 * characters as '?', "..." when cut, so that the message stays one line. */
void text_echo(const char *v, size_t n, size_t max, char *out, size_t len);

long now_unix(void);
double now_seconds(void);
int64_t mono_usec(void);

#endif
