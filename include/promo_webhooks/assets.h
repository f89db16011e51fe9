/*
 * assets: files served by the admin HTTP server as they are in the
 * repository (the OpenAPI description, the web console), embedded in the
 * binary at build time by cmake/embed_assets.cmake. Nothing is read from
 * disk at run time.
 */
#ifndef PROMO_WEBHOOKS_ASSETS_H
#define PROMO_WEBHOOKS_ASSETS_H

#include <stddef.h>

/* One embedded file; data is followed by a NUL not counted in len. */
struct asset {
	const char *path;          /* the URL path it is served at */
	const unsigned char *data;
	size_t len;
};

/* The generated table (build/generated/assets_data.c). */
extern const struct asset assets_table[];
extern const size_t assets_count;

/* The asset served at path ("/openapi.yaml", "/console/app.js"), or NULL. */
const struct asset *assets_find(const char *path);

/* Its Content-Type, from the file name's extension. */
const char *assets_content_type(const struct asset *a);

#endif
