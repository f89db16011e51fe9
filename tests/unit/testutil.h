/*
 * testutil: the few assertions the unit tests share. A failed check prints
 * where and why and the test exits non-zero at the end (TEST_DONE), so one
 * run reports every failure.
 */
#ifndef PROMO_WEBHOOKS_TESTUTIL_H
#define PROMO_WEBHOOKS_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                            \
	do {                                                                   \
		test_checks++;                                                 \
		if (!(cond)) {                                                 \
			test_failures++;                                       \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
		}                                                              \
	} while (0)

#define CHECK_STR(got, want)                                                   \
	do {                                                                   \
		const char *got_ = (got), *want_ = (want);                     \
		test_checks++;                                                 \
		if (!got_ || !want_ || strcmp(got_, want_) != 0) {             \
			test_failures++;                                       \
			fprintf(stderr,                                        \
				"%s:%d: %s\n  got:  %s\n  want: %s\n",         \
				__FILE__, __LINE__, #got,                      \
				got_ ? got_ : "(null)",                        \
				want_ ? want_ : "(null)");                     \
		}                                                              \
	} while (0)

#define CHECK_INT(got, want)                                                   \
	do {                                                                   \
		long long got_ = (long long)(got), want_ = (long long)(want);  \
		test_checks++;                                                 \
		if (got_ != want_) {                                           \
			test_failures++;                                       \
			fprintf(stderr, "%s:%d: %s = %lld, want %lld\n",       \
				__FILE__, __LINE__, #got, got_, want_);        \
		}                                                              \
	} while (0)

/* Ends main(): prints a summary line and returns the exit status. */
#define TEST_DONE()                                                            \
	(fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures), \
	 (test_failures || test_checks == 0) ? 1 : 0)

/* Reads a whole file (for golden files) into a malloc'd NUL-terminated
 * string; NULL when it cannot be read. */
static inline char *test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		p = malloc((size_t)n + 1);
		if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
			free(p);
			p = NULL;
		}
		if (p) {
			p[n] = '\0';
			if (len)
				*len = (size_t)n;
		}
	}
	fclose(f);
	return p;
}

/* The path of a golden file: $PW_GOLDEN_DIR/name. */
static inline const char *test_golden_path(const char *name, char *out,
					   size_t outlen)
{
	const char *dir = getenv("PW_GOLDEN_DIR");

	snprintf(out, outlen, "%s/%s", dir ? dir : "tests/golden", name);
	return out;
}

#endif
