/*
 * fuzz_log: the log writer (service/log.c) on arbitrary values and format
 * literals.
 *
 * Input: one control byte, then up to four NUL-separated pieces: the
 * message, two values, and a format literal. The control byte's low bit
 * picks JSON or logfmt. The literal (with '%' made '_', since a format's
 * conversions must match its arguments) is followed by fixed fields that
 * take the values through each kind of conversion: bare, quoted, joined,
 * with a precision, and an integer.
 *
 * Checks: whatever the bytes, the record is exactly one line; in JSON it
 * is one strictly valid JSON object (valid UTF-8); in logfmt it holds no
 * control byte, and every quoted value is a valid JSON string.
 */
#include "promo_webhooks/log.h"

#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* The next NUL-separated piece of p[0..n) from *off, malloc'd. */
static char *piece(const uint8_t *p, size_t n, size_t *off)
{
	size_t start = *off, end = start;

	while (end < n && p[end] != 0)
		end++;
	*off = end < n ? end + 1 : end;
	return fuzz_dup(p + start, end - start);
}

static void check_logfmt(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		unsigned char c = (unsigned char)line[i];

		FUZZ_ASSERT(c >= 0x20 && c != 0x7f);
		if (c == '"' && i > 0 && line[i - 1] == '=') {
			size_t j = i + 1;

			while (j + 1 < len && line[j] != '"') {
				if (line[j] == '\\')
					j++;
				j++;
			}
			FUZZ_ASSERT(j + 1 < len && line[j] == '"');
			FUZZ_ASSERT(fuzz_json_valid(line + i, j + 1 - i, 1, NULL));
			i = j;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum log_format fmt;
	char *msg, *a, *b, *lit, *format, *out = NULL;
	size_t off = 1, outlen = 0, i, flen;
	FILE *f;

	if (size < 1)
		return 0;
	fmt = (data[0] & 1) ? LOG_FORMAT_TEXT : LOG_FORMAT_JSON;
	msg = piece(data, size, &off);
	a = piece(data, size, &off);
	b = piece(data, size, &off);
	lit = piece(data, size, &off);
	for (i = 0; lit[i]; i++)
		if (lit[i] == '%')
			lit[i] = '_';
	flen = strlen(lit) + 128;
	format = malloc(flen);
	FUZZ_ASSERT(format != NULL);
	FUZZ_ASSERT(snprintf(format, flen, "%s a=%%s b=\"%%s\" ab=%%s-%%s p=\"%%.5s\" n=%%d",
			     lit) < (int)flen);

	f = open_memstream(&out, &outlen);
	FUZZ_ASSERT(f != NULL);
	log_setup(LOG_LEVEL_DEBUG, fmt);
	log_set_stream(f);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	log_emit(LOG_LEVEL_INFO, msg, format, a, b, a, b, b, (int)size);
#pragma GCC diagnostic pop
	log_set_stream(NULL);
	FUZZ_ASSERT(fclose(f) == 0);

	FUZZ_ASSERT(outlen > 0 && out[outlen - 1] == '\n');
	FUZZ_ASSERT(memchr(out, '\n', outlen - 1) == NULL);
	if (fmt == LOG_FORMAT_JSON) {
		struct fuzz_json info;

		FUZZ_ASSERT(fuzz_json_valid(out, outlen, 1, &info));
		FUZZ_ASSERT(info.root_map);
	} else {
		check_logfmt(out, outlen);
	}
	free(out);
	free(format);
	free(msg);
	free(a);
	free(b);
	free(lit);
	return 0;
}
