/*
 * log: structured one-line records on stderr. See include/promo_webhooks/log.h.
 *
 * The context format is code and its arguments are data. log_emit walks the
 * format itself: keys, '=' and the quotes around a value come only from the
 * literal format; what a conversion produces is never parsed for structure,
 * it becomes (part of) a value and is escaped for the output format. So a
 * Kafka header, a receiver's error text or a company id can hold quotes,
 * '=', newlines, control bytes or invalid UTF-8 and still make exactly one
 * line with exactly the keys the format names.
 */
#include "promo_webhooks/log.h"
#include "promo_webhooks/buf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

enum log_level log_min_level = LOG_LEVEL_INFO;
static enum log_format log_fmt = LOG_FORMAT_JSON;
static FILE *log_stream;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

#define LOG_TRUNCATED_MARK "...[truncated]"
#define LOG_KEY_MAX 64
#define LOG_FIELDS_MAX 32

void log_setup(enum log_level min, enum log_format format)
{
	log_min_level = min;
	log_fmt = format;
}

void log_set_stream(FILE *f)
{
	log_stream = f;
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

/* ---- one value ---------------------------------------------------------- */

/* A value being assembled from literal text and conversions. */
struct log_value {
	char data[LOG_VALUE_MAX + sizeof(LOG_TRUNCATED_MARK)]; /* raw bytes,
							       * not escaped */
	size_t len;
	int truncated;                /* bytes were dropped at the cap */
	int convs;                    /* conversions in the value */
	int numeric;                  /* every conversion was a number */
	int literal;                  /* literal bytes in the value */
};

static void value_reset(struct log_value *v)
{
	v->len = 0;
	v->truncated = 0;
	v->convs = 0;
	v->numeric = 1;
	v->literal = 0;
}

static void value_add(struct log_value *v, const char *s, size_t n)
{
	size_t room = LOG_VALUE_MAX - v->len;

	if (n > room) {
		n = room;
		v->truncated = 1;
	}
	memcpy(v->data + v->len, s, n);
	v->len += n;
}

/* Ends the value: when the cap cut it, a UTF-8 sequence split in two is
 * dropped whole (rather than shown as U+FFFD) and the marker appended. */
static void value_finish(struct log_value *v)
{
	size_t n = v->len, back = 0;

	if (!v->truncated)
		return;
	while (back < 3 && back < n &&
	       ((unsigned char)v->data[n - 1 - back] & 0xc0) == 0x80)
		back++;
	if (back < n) {
		unsigned char lead = (unsigned char)v->data[n - 1 - back];
		size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;

		if (lead >= 0xc0 && need > back + 1)
			n -= back + 1;
	}
	memcpy(v->data + n, LOG_TRUNCATED_MARK, sizeof(LOG_TRUNCATED_MARK) - 1);
	v->len = n + sizeof(LOG_TRUNCATED_MARK) - 1;
	v->numeric = 0;
}

/* ---- conversions ---------------------------------------------------------- */

/*
 * Formats the conversion at *pp (just after '%') into v and consumes its
 * arguments, the way printf would: flags, width and precision (digits or
 * '*'), a length modifier and the conversion character. Width and flags are
 * read but not applied (log values are not padded). Returns 0, or -1 for a
 * conversion printf does not have (the rest of the format is then dropped:
 * the argument list can no longer be trusted).
 */
static int convert(const char **pp, va_list *ap, struct log_value *v)
{
	const char *p = *pp;
	int prec = -1, lmod = 0; /* 1 h, 2 hh, 3 l, 4 ll, 5 z, 6 j, 7 t, 8 L */
	char tmp[64];
	int n = 0;

	while (*p && strchr("-+ #0'", *p))
		p++;
	if (*p == '*') {
		(void)va_arg(*ap, int);
		p++;
	} else {
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == '.') {
		p++;
		if (*p == '*') {
			prec = va_arg(*ap, int);
			p++;
		} else {
			prec = 0;
			while (*p >= '0' && *p <= '9') {
				if (prec < 100000)
					prec = prec * 10 + (*p - '0');
				p++;
			}
		}
	}
	switch (*p) {
	case 'h': lmod = p[1] == 'h' ? 2 : 1; p += lmod; break;
	case 'l': lmod = p[1] == 'l' ? 4 : 3; p += lmod - 2; break;
	case 'z': lmod = 5; p++; break;
	case 'j': lmod = 6; p++; break;
	case 't': lmod = 7; p++; break;
	case 'L': lmod = 8; p++; break;
	}

	switch (*p) {
	case 'd':
	case 'i': {
		long long x;

		switch (lmod) {
		case 3: x = va_arg(*ap, long); break;
		case 4: x = va_arg(*ap, long long); break;
		case 5: x = va_arg(*ap, ssize_t); break;
		case 6: x = va_arg(*ap, intmax_t); break;
		case 7: x = va_arg(*ap, ptrdiff_t); break;
		default: x = va_arg(*ap, int); break;
		}
		if (lmod == 1)
			x = (short)x;
		else if (lmod == 2)
			x = (signed char)x;
		n = snprintf(tmp, sizeof(tmp), "%lld", x);
		break;
	}
	case 'u':
	case 'x':
	case 'X':
	case 'o': {
		unsigned long long x;

		switch (lmod) {
		case 3: x = va_arg(*ap, unsigned long); break;
		case 4: x = va_arg(*ap, unsigned long long); break;
		case 5: x = va_arg(*ap, size_t); break;
		case 6: x = va_arg(*ap, uintmax_t); break;
		case 7: x = (unsigned long long)va_arg(*ap, ptrdiff_t); break;
		default: x = va_arg(*ap, unsigned int); break;
		}
		if (lmod == 1)
			x = (unsigned short)x;
		else if (lmod == 2)
			x = (unsigned char)x;
		if (*p == 'u')
			n = snprintf(tmp, sizeof(tmp), "%llu", x);
		else if (*p == 'x')
			n = snprintf(tmp, sizeof(tmp), "%llx", x);
		else if (*p == 'X')
			n = snprintf(tmp, sizeof(tmp), "%llX", x);
		else
			n = snprintf(tmp, sizeof(tmp), "%llo", x);
		if (*p != 'u')
			v->numeric = 0;
		break;
	}
	case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case 'a': case 'A': {
		long double x = lmod == 8 ? va_arg(*ap, long double) : va_arg(*ap, double);
		int pr = prec < 0 ? 6 : prec > 30 ? 30 : prec;

		if (*p == 'f' || *p == 'F')
			n = snprintf(tmp, sizeof(tmp), "%.*Lf", pr, x);
		else if (*p == 'e' || *p == 'E')
			n = snprintf(tmp, sizeof(tmp), "%.*Le", pr, x);
		else if (*p == 'a' || *p == 'A')
			n = snprintf(tmp, sizeof(tmp), "%La", x);
		else
			n = snprintf(tmp, sizeof(tmp), "%.*Lg", pr, x);
		if (*p != 'f' && *p != 'F')
			v->numeric = 0;
		break;
	}
	case 'c':
		tmp[0] = (char)va_arg(*ap, int);
		n = 1;
		v->numeric = 0;
		break;
	case 's': {
		const char *s = va_arg(*ap, const char *);
		size_t len;

		if (!s)
			s = "(null)";
		len = prec >= 0 ? strnlen(s, (size_t)prec) : strnlen(s, LOG_VALUE_MAX + 1);
		value_add(v, s, len);
		if (prec < 0 && len > LOG_VALUE_MAX)
			v->truncated = 1;
		v->numeric = 0;
		v->convs++;
		*pp = p + 1;
		return 0;
	}
	case 'p':
		n = snprintf(tmp, sizeof(tmp), "%p", va_arg(*ap, void *));
		v->numeric = 0;
		break;
	case '%':
		value_add(v, "%", 1);
		v->literal = 1;
		*pp = p + 1;
		return 0;
	default:
		return -1;
	}
	if (n < 0)
		n = 0;
	value_add(v, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
	v->convs++;
	*pp = p + 1;
	return 0;
}

/* ---- output --------------------------------------------------------------- */

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

/* Appends s as a logfmt value: bare when it is a non-empty run of visible
 * ASCII without '"', '=' or '\', else quoted with JSON's escapes (so
 * invalid UTF-8 becomes U+FFFD and a control byte cannot end the line). */
static void add_logfmt_value(struct buf *b, const char *s, size_t n)
{
	size_t i;
	int bare = n > 0;

	for (i = 0; i < n && bare; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '=' || c == '\\')
			bare = 0;
	}
	if (bare)
		buf_add(b, s, n);
	else
		buf_add_json_string(b, s, n);
}

/* Keys come from the literal format; anything but [A-Za-z0-9_.-] is made
 * '_' all the same, so a careless format cannot break a line either. */
static size_t clean_key(const char *k, size_t klen, char *out)
{
	size_t i;

	if (klen > LOG_KEY_MAX)
		klen = LOG_KEY_MAX;
	for (i = 0; i < klen; i++) {
		char c = k[i];

		out[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')
				 ? c
				 : '_';
	}
	return klen;
}

/* One field: key (klen bytes) and value v, written in the output format.
 * The record's own keys (ts, level, msg) get a leading '_' in the context,
 * so the context cannot override them. */
static void add_field(struct buf *b, const char *key, size_t klen,
		      struct log_value *v, int quoted, int bare_key)
{
	char k[LOG_KEY_MAX + 2];
	size_t kl;

	k[0] = '_';
	kl = clean_key(key, klen, k + 1);
	if (kl == 0)
		return;
	k[kl + 1] = '\0';
	if (strcmp(k + 1, "ts") == 0 || strcmp(k + 1, "level") == 0 ||
	    strcmp(k + 1, "msg") == 0)
		kl++;
	else
		memmove(k, k + 1, kl + 1);

	value_finish(v);
	if (log_fmt == LOG_FORMAT_JSON) {
		buf_addc(b, ',');
		buf_add_json_string(b, k, kl);
		buf_addc(b, ':');
		if (bare_key)
			buf_adds(b, "true");
		else if (!quoted && v->convs == 1 && !v->literal && v->numeric &&
			 is_json_number(v->data, v->len))
			buf_add(b, v->data, v->len);
		else
			buf_add_json_string(b, v->data, v->len);
	} else {
		buf_addc(b, ' ');
		buf_add(b, k, kl);
		if (!bare_key) {
			buf_addc(b, '=');
			add_logfmt_value(b, v->data, v->len);
		}
	}
}

/*
 * Walks the context format: fields are separated by spaces; a field is
 * key=value, key="value" (the quotes delimit, they are not part of the
 * value, and the value may hold spaces) or a bare key (true). Conversions
 * append to the current key or value; their output is never split.
 */
static void add_context(struct buf *b, const char *fmt, va_list *ap)
{
	struct log_value v;
	const char *p = fmt;
	int fields = 0;

	while (*p) {
		char key[LOG_KEY_MAX + 1];
		size_t klen = 0;
		int quoted = 0, has_eq = 0;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		value_reset(&v);
		/* The key: literal text (a conversion here is consumed and
		 * goes into the key, cleaned). */
		while (*p && *p != '=' && *p != ' ') {
			if (*p == '%') {
				struct log_value kv;
				size_t i;

				value_reset(&kv);
				p++;
				if (convert(&p, ap, &kv) < 0)
					return;
				for (i = 0; i < kv.len && klen < LOG_KEY_MAX; i++)
					key[klen++] = kv.data[i];
				continue;
			}
			if (klen < LOG_KEY_MAX)
				key[klen++] = *p;
			p++;
		}
		if (*p == '=') {
			has_eq = 1;
			p++;
			quoted = *p == '"';
			if (quoted)
				p++;
			while (*p && (quoted ? *p != '"' : *p != ' ')) {
				if (*p == '%') {
					p++;
					if (convert(&p, ap, &v) < 0)
						return;
					continue;
				}
				value_add(&v, p, 1);
				v.literal = 1;
				p++;
			}
			if (quoted && *p == '"')
				p++;
		}
		if (fields++ == LOG_FIELDS_MAX)
			return;
		if (!has_eq && klen == 0)
			continue;
		add_field(b, key, klen, &v, quoted, !has_eq);
	}
}

void log_emit(enum log_level level, const char *msg, const char *ctxfmt, ...)
{
	char ts[64];
	struct timespec now;
	struct tm tm;
	struct buf b;
	va_list ap;
	struct log_value mv;
	size_t mlen = strnlen(msg ? msg : "", LOG_VALUE_MAX + 1);

	if ((unsigned)level > LOG_LEVEL_ERROR)
		level = LOG_LEVEL_ERROR;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)(now.tv_nsec / 1000000) % 1000);

	buf_init(&b, 0);
	if (log_fmt == LOG_FORMAT_JSON)
		buf_addf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts,
			 level_names[level]);
	else
		buf_addf(&b, "ts=%s level=%s msg=", ts, level_names[level]);
	value_reset(&mv);
	value_add(&mv, msg ? msg : "", mlen);
	value_finish(&mv);
	buf_add_json_string(&b, mv.data, mv.len);

	va_start(ap, ctxfmt);
	add_context(&b, ctxfmt ? ctxfmt : "", &ap);
	va_end(ap);

	buf_adds(&b, log_fmt == LOG_FORMAT_JSON ? "}\n" : "\n");
	if (!b.failed)
		fwrite(b.data, 1, b.len, log_stream ? log_stream : stderr);
	buf_release(&b);
}
