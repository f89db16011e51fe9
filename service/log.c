/*
 * log: structured one-line records on stderr. See include/promo_webhooks/log.h.
 * The logfmt context fragment is turned into JSON members in JSON mode.
 */
#include "promo_webhooks/log.h"
#include "promo_webhooks/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum log_level log_min_level = LOG_LEVEL_INFO;
static enum log_format log_fmt = LOG_FORMAT_JSON;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_setup(enum log_level min, enum log_format format)
{
	log_min_level = min;
	log_fmt = format;
}

int log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* 1 when v (vlen bytes) is a JSON number as logged: -?(0|[1-9][0-9]*)(.[0-9]+)? */
static int is_json_number(const char *v, size_t vlen)
{
	size_t i = 0;

	if (i < vlen && v[i] == '-')
		i++;
	if (i >= vlen || v[i] < '0' || v[i] > '9')
		return 0;
	if (v[i] == '0' && i + 1 < vlen && v[i + 1] != '.')
		return 0;
	while (i < vlen && v[i] >= '0' && v[i] <= '9')
		i++;
	if (i < vlen && v[i] == '.') {
		i++;
		if (i >= vlen)
			return 0;
		while (i < vlen && v[i] >= '0' && v[i] <= '9')
			i++;
	}
	return i == vlen && vlen <= 18;
}

/* Appends the logfmt fragment ctx as JSON members ("k":"v"); unquoted
 * numeric values become JSON numbers. */
static void add_ctx_json(struct buf *b, const char *ctx)
{
	const char *p = ctx;

	while (*p) {
		const char *k, *v;
		size_t klen, vlen;
		int quoted;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		k = p;
		while (*p && *p != '=' && *p != ' ')
			p++;
		klen = (size_t)(p - k);
		if (*p != '=') {
			buf_addc(b, ',');
			buf_add_json_string(b, k, klen);
			buf_adds(b, ":true");
			continue;
		}
		p++;
		quoted = *p == '"';
		if (quoted) {
			v = ++p;
			while (*p && *p != '"')
				p++;
			vlen = (size_t)(p - v);
			if (*p)
				p++;
		} else {
			v = p;
			while (*p && *p != ' ')
				p++;
			vlen = (size_t)(p - v);
		}
		buf_addc(b, ',');
		buf_add_json_string(b, k, klen);
		buf_addc(b, ':');
		if (!quoted && is_json_number(v, vlen))
			buf_add(b, v, vlen);
		else
			buf_add_json_string(b, v, vlen);
	}
}

void log_emit(enum log_level level, const char *msg, const char *ctxfmt, ...)
{
	char ctx[2048], ts[64];
	struct timespec now;
	struct tm tm;
	struct buf b;
	va_list ap;

	va_start(ap, ctxfmt);
	vsnprintf(ctx, sizeof(ctx), ctxfmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)(now.tv_nsec / 1000000) % 1000);

	buf_init(&b, 8192);
	if (log_fmt == LOG_FORMAT_JSON) {
		buf_addf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts,
			 level_names[level]);
		buf_add_json_string(&b, msg, strlen(msg));
		add_ctx_json(&b, ctx);
		buf_adds(&b, "}\n");
	} else {
		buf_addf(&b, "ts=%s level=%s msg=", ts, level_names[level]);
		buf_add_json_string(&b, msg, strlen(msg));
		if (ctx[0])
			buf_addf(&b, " %s", ctx);
		buf_addc(&b, '\n');
	}
	if (!b.failed)
		fwrite(b.data, 1, b.len, stderr);
	buf_release(&b);
}
