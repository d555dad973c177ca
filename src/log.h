/* Logging: one JSON object a line on stderr with time, level, request id
 * and team id (when the thread has them) and message. Secrets never go here. */
#ifndef CONCH_LOG_H
#define CONCH_LOG_H

enum log_level { LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERROR };

/* "debug", "info", "warn", "error" -> level; -1 when unknown. */
int log_level_parse(const char *name);
void log_set_level(enum log_level level);

/* Per-thread context printed with every line; NULL clears. */
void log_set_request(const char *request_id);
void log_set_team(const char *team_id);
/* The thread's team id, or NULL when none is set. */
const char *log_team(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A field of its own on a line: a string, or (text NULL) a finite number. */
struct log_field {
	const char *name;
	const char *text;
	double number;
};

/* A line with fields after msg (the access log). */
void log_fields(enum log_level level, const struct log_field *fields, int nfields, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

#define log_debug(...) log_msg(LOGL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOGL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOGL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)

#endif
