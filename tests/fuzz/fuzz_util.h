/*
 * fuzz_util: what the libFuzzer drivers in tests/fuzz share: an assertion
 * that crashes (so libFuzzer records the input), and the two oracles, a
 * strict JSON check and an XML well-formedness check as a receiver would
 * parse. Header-only: each driver is one executable.
 */
#ifndef PROMO_WEBHOOKS_FUZZ_UTIL_H
#define PROMO_WEBHOOKS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <yajl/yajl_parse.h>

/* The libFuzzer entry points the drivers define. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: assertion failed: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

/* A malloc'd copy of n bytes plus a NUL, so the code under test sees an
 * exact-size allocation and ASan catches any read past n. */
static inline char *fuzz_dup(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	FUZZ_ASSERT(s != NULL);
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* ---- JSON --------------------------------------------------------------- */

struct fuzz_json {
	int depth;      /* containers open */
	int max_depth;  /* the deepest nesting seen */
	int root_map;   /* the document is an object */
	yajl_handle h;  /* the parser, for where the document ends */
	size_t end;     /* bytes up to the end of the top-level value */
	size_t len;     /* the whole text, for a value yajl emits only at
			 * yajl_complete_parse (a number at the very end) */
	int finishing;  /* in yajl_complete_parse */
};

static inline void fuzz_json_mark_end(struct fuzz_json *j)
{
	j->end = j->finishing ? j->len : yajl_get_bytes_consumed(j->h);
}

static inline int fuzz_json_value(struct fuzz_json *j, int map)
{
	if (j->depth == 0) {
		j->root_map = map;
		fuzz_json_mark_end(j);
	}
	return 1;
}

static inline int fuzz_json_null(void *ctx)
{
	return fuzz_json_value(ctx, 0);
}

static inline int fuzz_json_bool(void *ctx, int v)
{
	(void)v;
	return fuzz_json_value(ctx, 0);
}

static inline int fuzz_json_number(void *ctx, const char *s, size_t n)
{
	(void)s;
	(void)n;
	return fuzz_json_value(ctx, 0);
}

static inline int fuzz_json_string(void *ctx, const unsigned char *s, size_t n)
{
	(void)s;
	(void)n;
	return fuzz_json_value(ctx, 0);
}

static inline int fuzz_json_open(void *ctx, int map)
{
	struct fuzz_json *j = ctx;

	if (!fuzz_json_value(j, map))
		return 0;
	if (++j->depth > j->max_depth)
		j->max_depth = j->depth;
	return 1;
}

static inline int fuzz_json_start_map(void *ctx)
{
	return fuzz_json_open(ctx, 1);
}

static inline int fuzz_json_start_array(void *ctx)
{
	return fuzz_json_open(ctx, 0);
}

static inline int fuzz_json_close(void *ctx)
{
	struct fuzz_json *j = ctx;

	if (--j->depth == 0)
		fuzz_json_mark_end(j);
	return 1;
}

static inline int fuzz_json_key(void *ctx, const unsigned char *s, size_t n)
{
	(void)ctx;
	(void)s;
	(void)n;
	return 1;
}

static inline int fuzz_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * 1 when p (n bytes) is one complete JSON text; strict_utf8 also requires
 * every string to be valid UTF-8. Fills *info (may be NULL). yajl 2.1.0
 * alone ignores an unfinished token after a complete value ({}"abc), so
 * what follows the value must be whitespace; and it takes \v and \f for
 * whitespace, which JSON does not, so they may not surround the value.
 */
static inline int fuzz_json_valid(const char *p, size_t n, int strict_utf8,
				  struct fuzz_json *info)
{
	static const yajl_callbacks cb = {
		fuzz_json_null, fuzz_json_bool, NULL, NULL, fuzz_json_number,
		fuzz_json_string, fuzz_json_start_map, fuzz_json_key,
		fuzz_json_close, fuzz_json_start_array, fuzz_json_close,
	};
	struct fuzz_json j;
	yajl_handle h;
	yajl_status st;

	size_t i;

	memset(&j, 0, sizeof(j));
	h = yajl_alloc(&cb, NULL, &j);
	FUZZ_ASSERT(h != NULL);
	j.h = h;
	j.len = n;
	if (!strict_utf8)
		FUZZ_ASSERT(yajl_config(h, yajl_dont_validate_strings, 1));
	st = yajl_parse(h, (const unsigned char *)p, n);
	j.finishing = 1;
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	yajl_free(h);
	j.h = NULL;
	if (info)
		*info = j;
	if (st != yajl_status_ok)
		return 0;
	for (i = 0; i < n && fuzz_json_space(p[i]); i++)
		;
	if (i < n && (p[i] == '\v' || p[i] == '\f'))
		return 0;
	for (i = j.end; i < n; i++) {
		if (!fuzz_json_space(p[i]))
			return 0;
	}
	return 1;
}

/* ---- XML ---------------------------------------------------------------- */

static int fuzz_xml_errors;

static inline void fuzz_xml_on_error(void *ctx, xmlErrorPtr e)
{
	(void)ctx;
	fuzz_xml_errors++;
	fprintf(stderr, "xml: %s", e && e->message ? e->message : "?\n");
}

/* 1 when p (n bytes) is well-formed and namespace-well-formed XML with no
 * error or warning, read without network access or recovery (libxml2's
 * size and depth limits lifted: those are the receiver's to choose). */
static inline int fuzz_xml_valid(const char *p, size_t n)
{
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
	xmlDocPtr doc;
	int ok;

	FUZZ_ASSERT(ctxt != NULL);
	fuzz_xml_errors = 0;
	xmlSetStructuredErrorFunc(NULL, fuzz_xml_on_error);
	doc = xmlCtxtReadMemory(ctxt, p, (int)n, "body.xml", NULL,
				XML_PARSE_NONET | XML_PARSE_HUGE);
	ok = doc && ctxt->wellFormed && ctxt->nsWellFormed &&
	     fuzz_xml_errors == 0;
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctxt);
	xmlSetStructuredErrorFunc(NULL, NULL);
	return ok;
}

#endif
