/*
 * buf: growable byte buffer with a cap. See include/promo_webhooks/buf.h.
 */
#include "promo_webhooks/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : BUF_DEFAULT_MAX;
	b->failed = 0;
}

void buf_release(struct buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int buf_grow(struct buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (b->failed)
		return -1;
	if (extra > b->max - b->len) {
		b->failed = 1;
		return -1;
	}
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	p = realloc(b->data, ncap);
	if (!p) {
		b->failed = 1;
		return -1;
	}
	b->data = p;
	b->cap = ncap;
	return 0;
}

int buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_grow(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_addc(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int buf_add_int(struct buf *b, long long v)
{
	char digits[24];
	size_t i = sizeof(digits);
	/* The magnitude as unsigned: -LLONG_MIN does not fit a long long. */
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		digits[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		digits[--i] = '-';
	return buf_add(b, digits + i, sizeof(digits) - i);
}

int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	if (b->failed)
		return -1;
	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || buf_grow(b, (size_t)n) < 0) {
		b->failed = 1;
		return -1;
	}
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, i;
	unsigned int cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int buf_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, sl;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		sl = utf8_seq_len(p + i, n - i);
		if (!sl)
			return 0;
		i += sl;
	}
	return 1;
}

int buf_add_json_string(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;

	buf_addc(b, '"');
	while (i < n) {
		unsigned char c = p[i];
		size_t sl;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			run++;
			i++;
			continue;
		}
		buf_add(b, p + i - run, run);
		run = 0;
		if (c >= 0x80) {
			sl = utf8_seq_len(p + i, n - i);
			if (sl) {
				buf_add(b, p + i, sl);
				i += sl;
			} else {
				buf_adds(b, "\\ufffd");
				i++;
			}
			continue;
		}
		switch (c) {
		case '"': buf_adds(b, "\\\""); break;
		case '\\': buf_adds(b, "\\\\"); break;
		case '\n': buf_adds(b, "\\n"); break;
		case '\r': buf_adds(b, "\\r"); break;
		case '\t': buf_adds(b, "\\t"); break;
		case '\b': buf_adds(b, "\\b"); break;
		case '\f': buf_adds(b, "\\f"); break;
		default: {
			char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			buf_add(b, esc, sizeof(esc));
		}
		}
		i++;
	}
	buf_add(b, p + i - run, run);
	return buf_addc(b, '"');
}

size_t buf_json_string_end(const char *p, size_t n, size_t open)
{
	size_t i = open;

	/* memchr, not a byte loop: JSON text is mostly strings. The opening
	 * quote stops the backward count of backslashes. */
	for (;;) {
		const char *q = i + 1 < n ? memchr(p + i + 1, '"', n - i - 1) : NULL;
		size_t bs = 0;

		if (!q)
			return n;
		i = (size_t)(q - p);
		while (p[i - 1 - bs] == '\\')
			bs++;
		if (bs % 2 == 0)
			return i;
	}
}

/* buf_add_json_compact for text that is not valid UTF-8: byte by byte,
 * every invalid sequence (only strings can hold one) replaced by U+FFFD. */
static int add_json_compact_repair(struct buf *b, const unsigned char *p, size_t n)
{
	size_t i = 0, sl;
	int in_string = 0;

	while (i < n) {
		unsigned char c = p[i];

		if (c >= 0x80) {
			sl = utf8_seq_len(p + i, n - i);
			if (sl)
				buf_add(b, p + i, sl);
			else
				buf_add(b, "\xef\xbf\xbd", 3);
			i += sl ? sl : 1;
			continue;
		}
		if (in_string) {
			if (c == '\\' && i + 1 < n) {
				buf_add(b, p + i, 2);
				i += 2;
				continue;
			}
			if (c == '"')
				in_string = 0;
		} else if (c == '"') {
			in_string = 1;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			i++;
			continue;
		}
		buf_addc(b, (char)c);
		i++;
	}
	return b->failed ? -1 : 0;
}

int buf_add_json_compact(struct buf *b, const char *p, size_t n)
{
	size_t i = 0, from = 0;

	if (!buf_utf8_valid(p, n))
		return add_json_compact_repair(b, (const unsigned char *)p, n);
	while (i < n) {
		char c = p[i];

		if (c == '"') {
			i = buf_json_string_end(p, n, i) + 1;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (i > from && buf_add(b, p + from, i - from) < 0)
				return -1;
			from = ++i;
		} else {
			i++;
		}
	}
	return buf_add(b, p + from, n - from);
}

const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *p = b->data;

	if (!p) {
		p = calloc(1, 1);
	}
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = 0;
	return p;
}
