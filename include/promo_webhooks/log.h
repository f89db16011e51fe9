/*
 * log: one line per record on stderr, either JSON (the default, for log
 * collectors) or logfmt text. Levels are checked before any argument is
 * formatted. Never pass a secret or a payload body.
 *
 *   log_info("delivery failed", "webhook=%s status=%ld", id, status);
 *
 * The context format is a logfmt fragment of fields separated by spaces:
 * key=value, key="value" (the value may then hold spaces) or a bare key
 * (true). It must be a literal: keys and quotes come only from it. What the
 * arguments produce is data: any bytes (quotes, '=', newlines, control
 * characters, invalid UTF-8) become part of one value, escaped for the
 * output format (invalid UTF-8 as U+FFFD), and a value longer than
 * LOG_VALUE_MAX bytes is cut there and marked "...[truncated]". In JSON an
 * unquoted value made of one integer conversion is a number. Context keys
 * "ts", "level" and "msg" are written "_ts", "_level", "_msg".
 */
#ifndef PROMO_WEBHOOKS_LOG_H
#define PROMO_WEBHOOKS_LOG_H

#include <stdio.h>

/* The most bytes of one value (or the message) that reach a line. */
#define LOG_VALUE_MAX 1024

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO = 1,
	LOG_LEVEL_WARN = 2,
	LOG_LEVEL_ERROR = 3,
};

enum log_format {
	LOG_FORMAT_JSON = 0,
	LOG_FORMAT_TEXT = 1,
};

extern enum log_level log_min_level;

void log_setup(enum log_level min, enum log_format format);
/* Where records go: NULL (the default) is stderr. For tests and fuzzers. */
void log_set_stream(FILE *f);
int log_level_parse(const char *s, enum log_level *out);
void log_emit(enum log_level level, const char *msg, const char *ctxfmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_at(level, msg, ...)                                                \
	do {                                                                   \
		if ((level) >= log_min_level)                                  \
			log_emit((level), (msg), __VA_ARGS__);                 \
	} while (0)
#define log_debug(msg, ...) log_at(LOG_LEVEL_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_at(LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_at(LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_at(LOG_LEVEL_ERROR, msg, __VA_ARGS__)

#endif
