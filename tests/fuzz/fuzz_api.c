/*
 * fuzz_api: the admin API's request handling (service/api.c behind
 * service/httpguard.c and evhttp) on arbitrary request bytes: method,
 * path, query, headers and body as a client would send them.
 *
 * The API runs in process on 127.0.0.1 (a free port) with a store whose
 * Redis cannot be reached, so every route answers without I/O beyond the
 * loopback connection. Each input is written as it is on a fresh
 * connection; the loop runs until the answers stop coming.
 *
 * Input: the raw bytes of one or more requests. The seeds carry the admin
 * token ("Bearer fuzz-token") so that the routes under /v1 are reached.
 *
 * Checks: every answer has a status line and a known length; it is never
 * libevent's HTML page; a JSON answer is strictly valid JSON, and an error
 * answer (4xx, 5xx) is {"error":{...}} (or /readyz's 503 with its checks). And no crash, leak or undefined
 * behaviour under ASan and UBSan.
 */
#define _GNU_SOURCE /* memmem */
#include "promo_webhooks/api.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/registry.h"
#include "promo_webhooks/store.h"

#include "fuzz_util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

static struct event_base *base;
static struct config cfg;
static struct api *api;
static int port;

static const char *lookup(void *arg, const char *name)
{
	(void)arg;
	if (strcmp(name, "PROMO_WEBHOOKS_REDIS_URL") == 0)
		return "redis://127.0.0.1:1/0"; /* nothing listens there */
	if (strcmp(name, "PROMO_WEBHOOKS_ADMIN_TOKEN") == 0)
		return "fuzz-token";
	if (strcmp(name, "PROMO_WEBHOOKS_HTTP_LISTEN") == 0)
		return "127.0.0.1:0";
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static FILE *devnull;
	struct store *st;
	struct registry *reg;
	char err[256];

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	devnull = fopen("/dev/null", "w");
	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_JSON);
	log_set_stream(devnull);
	base = event_base_new();
	FUZZ_ASSERT(base != NULL);
	FUZZ_ASSERT(config_load(&cfg, lookup, NULL, NULL, err, sizeof(err)) == 0);
	st = store_new(base, &cfg, err, sizeof(err));
	FUZZ_ASSERT(st != NULL);
	reg = registry_new(base, &cfg, st, err, sizeof(err));
	FUZZ_ASSERT(reg != NULL);
	api = api_new(base, &cfg, st, reg, NULL, err, sizeof(err));
	FUZZ_ASSERT(api != NULL);
	port = api_port(api);
	return 0;
}

/* Checks the answers in r (n bytes; closed: the server closed the
 * connection after them); returns how many bytes the complete ones took. */
static size_t check_answers(const char *r, size_t n, int closed)
{
	size_t used = 0;

	while (used < n) {
		const char *p = r + used, *end = r + n, *hend = NULL, *q;
		size_t clen = 0, hlen;
		int status, have_len = 0, json = 0;

		for (q = p; q + 4 <= end; q++) {
			if (memcmp(q, "\r\n\r\n", 4) == 0) {
				hend = q;
				break;
			}
		}
		if (!hend)
			break;
		hlen = (size_t)(hend - p);
		FUZZ_ASSERT(hlen > 12 && memcmp(p, "HTTP/1.", 7) == 0);
		status = (int)strtol(p + 9, NULL, 10);
		FUZZ_ASSERT(status >= 100 && status <= 599);
		for (q = p; q < hend; q++) {
			if (q[0] != '\n')
				continue;
			if (strncasecmp(q + 1, "Content-Length:", 15) == 0) {
				clen = (size_t)strtoul(q + 16, NULL, 10);
				have_len = 1;
			} else if (strncasecmp(q + 1, "Content-Type:", 13) == 0) {
				const char *v = q + 14;

				while (*v == ' ')
					v++;
				/* libevent's own pages are errors in HTML; the
				 * console's page is the one HTML answer, a 2xx. */
				FUZZ_ASSERT(status < 400 || strncasecmp(v, "text/html", 9) != 0);
				json = strncasecmp(v, "application/json", 16) == 0;
			}
		}
		if (status < 200) { /* 100 Continue: no body, more to come */
			used = (size_t)(hend + 4 - r);
			continue;
		}
		/* No Content-Length: no body (204), or one that ends with
		 * the connection (HTTP/1.0 without keep-alive). */
		if (!have_len && status != 204 && status != 304) {
			if (!closed)
				break;
			clen = (size_t)(end - hend - 4);
		}
		if ((size_t)(end - hend - 4) < clen)
			break;
		if (json) {
			struct fuzz_json info;

			FUZZ_ASSERT(fuzz_json_valid(hend + 4, clen, 1, &info));
			FUZZ_ASSERT(info.root_map);
			/* /readyz answers 503 with its checks, not an error */
			if (status >= 400)
				FUZZ_ASSERT((clen > 10 && memcmp(hend + 4, "{\"error\":{", 10) == 0) ||
					    (status == 503 && clen > 10 &&
					     memcmp(hend + 4, "{\"status\":", 10) == 0));
		} else if (status >= 400) {
			FUZZ_ASSERT(clen == 0);
		}
		used = (size_t)(hend + 4 - r) + clen;
	}
	return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in sa;
	char resp[1 << 16];
	size_t got = 0, sent = 0;
	int fd, idle = 0, closed = 0, i;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	FUZZ_ASSERT(fd >= 0);
	FUZZ_ASSERT(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	FUZZ_ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
		    errno == EINPROGRESS);

	/* Until nothing has moved for a while: the answers to what was a
	 * whole request are in by then; a partial one waits for more. */
	for (i = 0; i < 2000 && idle < 30; i++) {
		ssize_t n;
		int moved = 0;

		event_base_loop(base, EVLOOP_NONBLOCK);
		if (sent < size) {
			n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
			if (n > 0) {
				sent += (size_t)n;
				moved = 1;
			}
		}
		n = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
		if (n > 0) {
			got += (size_t)n;
			moved = 1;
		} else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
				      errno != ENOTCONN)) {
			closed = 1; /* by the server */
			break;
		}
		if (got == sizeof(resp) - 1)
			break;
		idle = moved ? 0 : idle + 1;
	}
	resp[got] = '\0';
	/* An answer to HEAD has a Content-Length but no body: only what
	 * comes before it can be taken apart. */
	if (!memmem(data, size, "HEAD", 4))
		check_answers(resp, got, closed);
	close(fd);
	/* Let the server see the close and free the connection. */
	for (i = 0; i < 5; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	return 0;
}
