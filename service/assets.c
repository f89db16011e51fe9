/*
 * assets: lookup of the files embedded at build time (see
 * include/promo_webhooks/assets.h); the admin API serves them.
 */
#include "promo_webhooks/assets.h"

#include <string.h>

const struct asset *assets_find(const char *path)
{
	size_t i;

	if (!path)
		return NULL;
	for (i = 0; i < assets_count; i++) {
		if (strcmp(assets_table[i].path, path) == 0)
			return &assets_table[i];
	}
	return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

const char *assets_content_type(const struct asset *a)
{
	if (ends_with(a->path, ".html") || ends_with(a->path, "/"))
		return "text/html; charset=utf-8";
	if (ends_with(a->path, ".js"))
		return "text/javascript; charset=utf-8";
	if (ends_with(a->path, ".css"))
		return "text/css; charset=utf-8";
	if (ends_with(a->path, ".yaml"))
		return "application/yaml; charset=utf-8";
	return "application/octet-stream";
}
