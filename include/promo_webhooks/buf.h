/*
 * buf: a growable byte buffer with a hard cap, used by every stage that
 * builds text (renderers, the admin API, the store's commands).
 *
 * Invariants: data is NULL or NUL-terminated at data[len]; len < cap; len
 * never exceeds max. Once an append fails (cap reached or out of memory) the
 * buffer is marked failed and every later append fails too, so a caller may
 * append a whole document and check once at the end.
 */
#ifndef PROMO_WEBHOOKS_BUF_H
#define PROMO_WEBHOOKS_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;  /* NUL-terminated contents, or NULL when empty */
	size_t len;  /* bytes used, not counting the terminating NUL */
	size_t cap;  /* bytes allocated */
	size_t max;  /* the most len may ever be */
	int failed;  /* set once an append did not fit */
};

#define BUF_DEFAULT_MAX ((size_t)16 << 20)

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
/* Empties the buffer but keeps its memory and clears `failed`. */
void buf_reset(struct buf *b);

int buf_add(struct buf *b, const void *p, size_t n);
int buf_adds(struct buf *b, const char *s);
int buf_addc(struct buf *b, char c);
/* Appends v in decimal, without printf (per-delivery paths). */
int buf_add_int(struct buf *b, long long v);
int buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Appends s as a quoted JSON string. Invalid UTF-8 becomes U+FFFD, control
 * characters are escaped, so the result is always valid JSON. */
int buf_add_json_string(struct buf *b, const char *s, size_t n);

/* Where the JSON string whose opening quote is p[open] closes: the index
 * of the next quote after an even number of backslashes, or n when none
 * does within n bytes. */
size_t buf_json_string_end(const char *p, size_t n, size_t open);
/* Appends the JSON text p (n bytes, already checked to be JSON) without
 * the whitespace between its tokens: the same value, byte for byte inside
 * its strings and numbers, except that a sequence that is not UTF-8 (no
 * overlong forms, no surrogates) becomes U+FFFD, so the result is always
 * valid JSON. */
int buf_add_json_compact(struct buf *b, const char *p, size_t n);

/* 1 when s (n bytes) is valid UTF-8: no overlong forms, no surrogates,
 * nothing past U+10FFFF. */
int buf_utf8_valid(const char *s, size_t n);

/* A pointer to the contents ("" when empty); valid until the next append. */
const char *buf_str(const struct buf *b);
/* Hands the contents to the caller (free() them) and empties the buffer. */
char *buf_detach(struct buf *b, size_t *len);

#endif
