/*
 * Unit tests of log: hostile bytes in the message and in every kind of
 * context field, in both output formats; every line is parsed back (JSON
 * with yajl, logfmt with the strict parser below) and must have exactly the
 * keys the format names, with the values given (repaired where they were
 * not valid UTF-8, cut and marked where they were too long).
 */
#include "promo_webhooks/log.h"

#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#define MAX_FIELDS 16

struct field {
	char key[80];
	char *value;     /* decoded, malloc'd */
	int is_number;   /* JSON only */
	int is_true;     /* a bare key (logfmt) or true (JSON) */
};

struct record {
	struct field f[MAX_FIELDS];
	int n;
};

static void record_release(struct record *r)
{
	int i;

	for (i = 0; i < r->n; i++)
		free(r->f[i].value);
	r->n = 0;
}

static const struct field *record_get(const struct record *r, const char *key)
{
	int i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->f[i].key, key) == 0)
			return &r->f[i];
	return NULL;
}

/* Emits one record into memory and returns the line (malloc'd). */
static char *emit_line(enum log_format fmt, const char *msg, const char *hostile)
{
	char *data = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&data, &len);

	if (!f)
		abort();
	log_setup(LOG_LEVEL_DEBUG, fmt);
	log_set_stream(f);
	log_emit(LOG_LEVEL_WARN, msg,
		 "topic=%s partition=%d offset=%lld reason=\"%s\" ce=%s-%s "
		 "level=%s size=%zu flag empty=\"%s\" short=\"%.3s\"",
		 hostile, 7, -12LL, hostile, hostile, hostile, hostile, (size_t)42,
		 "", hostile);
	log_set_stream(NULL);
	fclose(f);
	return data;
}

/* Parses one JSON line into r: an object whose members are all strings,
 * numbers or true. Returns 0, or -1 when it is not that. */
static int parse_json_line(const char *line, struct record *r)
{
	char errbuf[256];
	const char *nl = strchr(line, '\n');
	yajl_val root;
	size_t i;

	r->n = 0;
	if (!nl || nl[1] != '\0')
		return -1;
	root = yajl_tree_parse(line, errbuf, sizeof(errbuf));
	if (!root || !YAJL_IS_OBJECT(root)) {
		fprintf(stderr, "not JSON (%s): %s", errbuf, line);
		yajl_tree_free(root);
		return -1;
	}
	for (i = 0; i < root->u.object.len && r->n < MAX_FIELDS; i++) {
		struct field *f = &r->f[r->n++];
		yajl_val v = root->u.object.values[i];

		snprintf(f->key, sizeof(f->key), "%s", root->u.object.keys[i]);
		f->is_number = YAJL_IS_NUMBER(v);
		f->is_true = YAJL_IS_TRUE(v);
		if (YAJL_IS_STRING(v) || YAJL_IS_NUMBER(v)) {
			const char *s = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v)
							  : YAJL_GET_NUMBER(v);

			f->value = s ? strdup(s) : NULL;
		}
		else if (f->is_true)
			f->value = strdup("true");
		else
			f->value = NULL;
		if (!f->value) {
			yajl_tree_free(root);
			return -1;
		}
	}
	yajl_tree_free(root);
	return 0;
}

/* Decodes the quoted logfmt value at p (its escapes are JSON's) with yajl;
 * *end is set past the closing quote. Returns a malloc'd string or NULL. */
static char *decode_quoted(const char *p, const char **end)
{
	const char *q = p + 1;
	char errbuf[128], *doc, *out = NULL;
	yajl_val v;

	while (*q && *q != '"') {
		if (*q == '\\') {
			if (!q[1])
				return NULL;
			q++;
		}
		q++;
	}
	if (*q != '"')
		return NULL;
	*end = q + 1;
	doc = malloc((size_t)(q + 1 - p) + 3);
	if (!doc)
		return NULL;
	doc[0] = '[';
	memcpy(doc + 1, p, (size_t)(q + 1 - p));
	doc[q + 1 - p + 1] = ']';
	doc[q + 1 - p + 2] = '\0';
	v = yajl_tree_parse(doc, errbuf, sizeof(errbuf));
	if (v && YAJL_IS_ARRAY(v) && v->u.array.len == 1 &&
	    YAJL_IS_STRING(v->u.array.values[0])) {
		const char *s = YAJL_GET_STRING(v->u.array.values[0]);

		out = s ? strdup(s) : NULL;
	}
	yajl_tree_free(v);
	free(doc);
	return out;
}

/*
 * A strict logfmt line: fields separated by one space, ending in one '\n';
 * a key is [A-Za-z0-9_.-]+; a value is a bare run of visible ASCII without
 * '"', '=' and '\', or a quoted string with JSON escapes; a key alone is
 * true. Returns 0, or -1 when the line is not that.
 */
static int parse_logfmt_line(const char *line, struct record *r)
{
	const char *p = line;

	r->n = 0;
	for (;;) {
		struct field *f;
		size_t kl = 0;

		if (r->n == MAX_FIELDS)
			return -1;
		f = &r->f[r->n];
		memset(f, 0, sizeof(*f));
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		       (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-') {
			if (kl + 1 >= sizeof(f->key))
				return -1;
			f->key[kl++] = *p++;
		}
		if (kl == 0)
			return -1;
		if (*p == '=') {
			p++;
			if (*p == '"') {
				f->value = decode_quoted(p, &p);
				if (!f->value)
					return -1;
			} else {
				const char *v = p;

				while ((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f &&
				       *p != '"' && *p != '=' && *p != '\\')
					p++;
				if (p == v)
					return -1;
				f->value = strndup(v, (size_t)(p - v));
			}
		} else {
			f->is_true = 1;
			f->value = strdup("true");
		}
		r->n++;
		if (*p == '\n')
			return p[1] == '\0' ? 0 : -1;
		if (*p != ' ')
			return -1;
		p++;
	}
}

/* 1 when s (n bytes) is valid UTF-8 (no surrogates, no overlongs). */
static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t len, k;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
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
		if (i + len > n)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

struct hostile {
	const char *name;
	const char *in;
	const char *want; /* the value read back; NULL: check the long form */
};

static void check_value(const char *what, const char *got, const char *in,
			const char *want)
{
	static const char mark[] = "...[truncated]";
	size_t glen;

	if (!got) {
		CHECK(got != NULL);
		return;
	}
	glen = strlen(got);
	CHECK(utf8_valid((const unsigned char *)got, glen));
	if (want) {
		if (strcmp(got, want) != 0)
			fprintf(stderr, "  (%s)\n", what);
		CHECK_STR(got, want);
		return;
	}
	/* A long value: a prefix of the input, the marker, no more than the
	 * cap plus the marker. */
	CHECK(glen > sizeof(mark) - 1);
	CHECK(glen <= LOG_VALUE_MAX + sizeof(mark) - 1);
	CHECK(glen >= LOG_VALUE_MAX - 3 + sizeof(mark) - 1);
	CHECK(strcmp(got + glen - (sizeof(mark) - 1), mark) == 0);
	CHECK(strncmp(got, in, glen - (sizeof(mark) - 1)) == 0);
}

static void check_record(enum log_format fmt, const struct hostile *h)
{
	static const char *const keys[] = { "ts", "level", "msg", "topic",
					    "partition", "offset", "reason", "ce",
					    "_level", "size", "flag", "empty",
					    "short" };
	struct record r;
	char *line = emit_line(fmt, h->in, h->in);
	char *ce_want = NULL;
	const struct field *f;
	size_t i;
	int rc;

	rc = fmt == LOG_FORMAT_JSON ? parse_json_line(line, &r)
				    : parse_logfmt_line(line, &r);
	if (rc != 0)
		fprintf(stderr, "%s, %s: unparsable line: %s", h->name,
			fmt == LOG_FORMAT_JSON ? "json" : "text", line);
	CHECK(rc == 0);
	CHECK_INT(r.n, (int)(sizeof(keys) / sizeof(keys[0])));
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!record_get(&r, keys[i]))
			fprintf(stderr, "%s: key %s missing in %s", h->name, keys[i], line);
		CHECK(record_get(&r, keys[i]) != NULL);
	}
	if (rc != 0 || r.n != (int)(sizeof(keys) / sizeof(keys[0])))
		goto out;

	CHECK_STR(record_get(&r, "level")->value, "warn");
	check_value("msg", record_get(&r, "msg")->value, h->in, h->want);
	check_value("topic", record_get(&r, "topic")->value, h->in, h->want);
	check_value("reason", record_get(&r, "reason")->value, h->in, h->want);
	check_value("_level", record_get(&r, "_level")->value, h->in, h->want);
	if (h->want) {
		size_t cl = 2 * strlen(h->want) + 2;

		ce_want = malloc(cl);
		if (!ce_want)
			abort();
		snprintf(ce_want, cl, "%s-%s", h->want, h->want);
		/* Two values in one field can pass the cap together. */
		if (strlen(h->in) * 2 + 1 <= LOG_VALUE_MAX)
			check_value("ce", record_get(&r, "ce")->value, h->in, ce_want);
	}
	f = record_get(&r, "partition");
	CHECK_STR(f->value, "7");
	CHECK(fmt != LOG_FORMAT_JSON || f->is_number);
	CHECK_STR(record_get(&r, "offset")->value, "-12");
	CHECK_STR(record_get(&r, "size")->value, "42");
	CHECK(record_get(&r, "flag")->is_true);
	CHECK_STR(record_get(&r, "empty")->value, "");
out:
	free(ce_want);
	record_release(&r);
	free(line);
}

int main(void)
{
	static char ten_kb[10 * 1024 + 1], euros[3 * 1000 + 1], ctl[64];
	static char ctl_want[256];
	struct hostile cases[] = {
		{ "plain", "Promotion.Created", "Promotion.Created" },
		{ "json injection", "Bar\",\"level\":\"error\",\"offset\":\"998",
		  "Bar\",\"level\":\"error\",\"offset\":\"998" },
		{ "logfmt injection", "Foo\" level=\"debug\" offset=\"999",
		  "Foo\" level=\"debug\" offset=\"999" },
		{ "bare injection", "x level=debug offset=1", "x level=debug offset=1" },
		{ "newlines", "a\nb\r\nc\n{\"level\":\"error\"}", "a\nb\r\nc\n{\"level\":\"error\"}" },
		{ "backslashes", "\\\\\"\\n\\", "\\\\\"\\n\\" },
		{ "invalid utf-8", "a\xff" "b\xc3(\xed\xa0\x80z\xf4\x90\x80\x80",
		  "a\xef\xbf\xbd" "b\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz"
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "valid utf-8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\x89",
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\x89" },
		{ "control characters", ctl, ctl_want },
		{ "percent", "%s%n%d", "%s%n%d" },
		{ "empty", "", "" },
		{ "ten kilobytes", ten_kb, NULL },
		{ "multibyte at the cap", euros, NULL },
	};
	size_t i, k = 0;

	/* Every byte 0x01-0x1f and 0x7f, plus '=' and '"'. */
	for (i = 1; i < 0x20; i++)
		ctl[k++] = (char)i;
	ctl[k++] = 0x7f;
	ctl[k++] = '=';
	ctl[k++] = '"';
	ctl[k] = '\0';
	memcpy(ctl_want, ctl, k + 1);
	memset(ten_kb, 'A', sizeof(ten_kb) - 1);
	ten_kb[100] = '"';
	ten_kb[2000] = '\n';
	for (i = 0; i < 1000; i++)
		memcpy(euros + 3 * i, "\xe2\x82\xac", 3);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_record(LOG_FORMAT_JSON, &cases[i]);
		check_record(LOG_FORMAT_TEXT, &cases[i]);
	}

	/* The multibyte case is cut on a character boundary: no U+FFFD. */
	{
		char *line = emit_line(LOG_FORMAT_JSON, "m", euros);

		CHECK(strstr(line, "\\ufffd") == NULL);
		CHECK(strstr(line, "\xef\xbf\xbd") == NULL);
		free(line);
	}

	/* Levels are filtered before formatting. */
	{
		char *data = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&data, &len);

		if (!f)
			abort();
		log_setup(LOG_LEVEL_WARN, LOG_FORMAT_JSON);
		log_set_stream(f);
		log_info("not shown", "k=%s", "v");
		log_warn("shown", "k=%s", "v");
		log_set_stream(NULL);
		fclose(f);
		CHECK(strstr(data, "not shown") == NULL);
		CHECK(strstr(data, "\"msg\":\"shown\",\"k\":\"v\"}") != NULL);
		free(data);
	}
	return TEST_DONE();
}
