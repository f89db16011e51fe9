/*
 * api: the admin HTTP API (contract section 7) on libevent's evhttp. See
 * include/promo_webhooks/api.h.
 *
 * One general callback routes every request by its decoded path segments.
 * Requests that need Redis become a struct api_req that lives until the
 * store answers; everything else is answered at once. Errors always have
 * the contract's shape {"error":{"code","message","field"}}.
 *
 * Writes of an existing webhook are read-modify-write with the store's
 * compare-and-set on the webhook's revision: if the webhook changed in
 * between (another replica, or the failure rule disabling it), the request
 * body is applied again to the fresh state, a few times at most, then 409.
 *
 * Size: every route of the admin API (contract section 7), its request
 * parsing and its answers share one request context; split by route they
 * would only pass that context around.
 */
#include "promo_webhooks/api.h"
#include "promo_webhooks/rfc3339.h"
#include "promo_webhooks/assets.h"
#include "promo_webhooks/clock.h"
#include "promo_webhooks/deliver.h"
#include "promo_webhooks/prom.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/httpguard.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/samples.h"
#include "promo_webhooks/sign.h"
#include "promo_webhooks/webhook.h"
#include "promo_webhooks/store_hooks.h"
#include "promo_webhooks/store_outcomes.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define API_BODY_MAX ((size_t)64 * 1024)   /* contract: 64 KiB in */
/* The connection guard (httpguard.c) refuses a larger Content-Length, or a
 * head over API_HEAD_MAX, in the contract's shape before reading the body;
 * evhttp's own limits stay behind it as a backstop. */
#define API_HEAD_MAX ((size_t)16 * 1024)
#define API_HEADERS_MAX ((ev_ssize_t)32 * 1024)
/* Admin connections at once, and how long one may take to deliver a whole
 * request once it is ready for one (a slow client is then closed, and a
 * new connection at the limit closes the one waiting longest). */
#define API_MAX_CONNS 128
#define API_REQUEST_MS 10000
/* evhttp's idle timeout, for what the guard does not watch: an answer
 * the client does not read. */
#define API_IDLE_TIMEOUT_S 30
#define API_CAS_TRIES 5
#define API_MAX_SEGS 8
/* The type of a request whose method evhttp does not know. */
#define API_EVHTTP_REQ_UNKNOWN HTTPGUARD_REQ_UNKNOWN

enum api_action {
	ACT_WEBHOOK_LIST,
	ACT_WEBHOOK_CREATE,
	ACT_WEBHOOK_GET,
	ACT_WEBHOOK_REPLACE,
	ACT_WEBHOOK_PATCH,
	ACT_WEBHOOK_DELETE,
	ACT_WEBHOOK_SAMPLE,
	ACT_WEBHOOK_ATTEMPTS,
	ACT_SETTINGS_GET,
	ACT_SETTINGS_PUT,
	ACT_WEBHOOK_TEST,
};

struct api_test;

/* A request waiting for the store. */
struct api_req {
	struct api_req *prev, *next;  /* in api->reqs */
	struct api *api;
	struct evhttp_request *req;
	enum api_action action;
	char *company_id;             /* decoded path segment */
	char *id;                     /* webhook id, when the path has one */
	char *body;                   /* request body copy (writes) */
	size_t body_len;
	struct webhook wh;            /* the webhook being written / shown */
	struct company_settings settings;
	int tries;                    /* create / compare-and-set attempts */
	struct api_test *test;        /* ACT_WEBHOOK_TEST: its outcome */
};

struct api {
	struct event_base *base;
	const struct config *cfg;
	struct store *store;
	struct registry *reg;
	struct api_hooks hooks;
	struct evhttp *http;
	struct httpguard *guard;
	int port;
	struct api_req *reqs;         /* in flight */
	struct deliver *deliver;      /* test sends; created on the first */
	unsigned long long responses[6]; /* by status class 1xx..5xx, [0] other */
};

/* ---- small helpers ---- */

static const char *reason_phrase(int code)
{
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Unknown";
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "OTHER";
}

/* Sends a reply with a body (len bytes; NULL for none). */
static void reply_raw(struct api *api, struct evhttp_request *req, int code,
		      const char *ctype, const char *body, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *eb = NULL;
	int cls = code / 100;

	api->responses[cls >= 1 && cls <= 5 ? cls : 0]++;
	httpguard_answered(api->guard, req);
	log_debug("admin request", "method=%s path=\"%.200s\" status=%d",
		  method_name(evhttp_request_get_command(req)),
		  evhttp_request_get_uri(req), code);
	if (body) {
		eb = evbuffer_new();
		if (!eb || evbuffer_add(eb, body, len) < 0 ||
		    evhttp_add_header(h, "Content-Type", ctype) < 0) {
			if (eb)
				evbuffer_free(eb);
			evhttp_send_error(req, 500, NULL);
			return;
		}
	}
	/* evhttp frames the answer to a CONNECT without a Content-Length;
	 * every answer here has one. */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_CONNECT &&
	    !evhttp_find_header(h, "Content-Length")) {
		char cl[24];

		snprintf(cl, sizeof(cl), "%zu", body ? len : (size_t)0);
		if (evhttp_add_header(h, "Content-Length", cl) < 0)
			log_debug("cannot add header", "name=%s", "Content-Length");
	}
	/* Answers carry tenant data and must not be cached on the way. */
	if (evhttp_add_header(h, "Cache-Control", "no-store") < 0)
		log_debug("cannot add header", "name=%s", "Cache-Control");
	evhttp_send_reply(req, code, reason_phrase(code), eb);
	if (eb)
		evbuffer_free(eb);
}

static void reply_buf(struct api *api, struct evhttp_request *req, int code,
		      const char *ctype, const struct buf *b)
{
	static const char oom[] =
		"{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

	if (b->failed) {
		reply_raw(api, req, 500, "application/json", oom, sizeof(oom) - 1);
		return;
	}
	reply_raw(api, req, code, ctype, buf_str(b), b->len);
}

static void reply_error(struct api *api, struct evhttp_request *req, int code,
			const char *ecode, const char *field,
			const char *message)
{
	struct buf b;

	buf_init(&b, 4096);
	buf_adds(&b, "{\"error\":{\"code\":");
	buf_add_json_string(&b, ecode, strlen(ecode));
	buf_adds(&b, ",\"message\":");
	buf_add_json_string(&b, message, strlen(message));
	if (field && *field) {
		buf_adds(&b, ",\"field\":");
		buf_add_json_string(&b, field, strlen(field));
	}
	buf_adds(&b, "}}");
	reply_buf(api, req, code, "application/json", &b);
	buf_release(&b);
}

static void reply_webhook_error(struct api *api, struct evhttp_request *req,
				const struct webhook_error *err)
{
	int code = strcmp(err->code, "internal") == 0 ? 500 : 400;

	reply_error(api, req, code, err->code, err->field, err->message);
}

/* The answer for a failed store operation. */
static void reply_store(struct api *api, struct evhttp_request *req,
			enum store_status status)
{
	switch (status) {
	case STORE_NOT_FOUND:
		reply_error(api, req, 404, "not_found", NULL, "no such webhook");
		return;
	case STORE_CONFLICT:
		reply_error(api, req, 409, "conflict", NULL,
			    "the webhook kept changing while it was written; retry");
		return;
	case STORE_UNAVAILABLE:
		reply_error(api, req, 503, "unavailable", NULL,
			    "the webhook store is unavailable; retry later");
		return;
	case STORE_OK:
	case STORE_ERROR:
		break;
	}
	reply_error(api, req, 500, "internal", NULL, "unexpected store answer");
}

static void reply_method(struct api *api, struct evhttp_request *req,
			 const char *allow)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (evhttp_add_header(h, "Allow", allow) < 0)
		log_debug("cannot add header", "name=%s", "Allow");
	reply_error(api, req, 405, "method_not_allowed", NULL,
		    "method not allowed for this path");
}

static void reply_not_found(struct api *api, struct evhttp_request *req)
{
	reply_error(api, req, 404, "not_found", NULL, "no such resource");
}

/* Compares the whole of want against given in time that depends only on
 * want's length, so the token cannot be guessed byte by byte. */
static int token_equal(const char *given, size_t glen, const char *want,
		       size_t wlen)
{
	volatile unsigned char diff = (unsigned char)(glen != wlen);
	size_t i;

	for (i = 0; i < wlen; i++) {
		unsigned char g = i < glen ? (unsigned char)given[i] : 0;

		diff |= (unsigned char)(g ^ (unsigned char)want[i]);
	}
	return diff == 0;
}

static int authorized(const struct api *api, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
					   "Authorization");
	const char *tok = api->cfg->admin_token;

	if (!h || !tok || !*tok || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	while (*h == ' ')
		h++;
	return token_equal(h, strlen(h), tok, strlen(tok));
}

/* 32 lowercase hex characters from the kernel's CSPRNG. */
static int new_webhook_id(char out[WEBHOOK_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[WEBHOOK_ID_LEN / 2];
	size_t got = 0, i;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	for (i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[WEBHOOK_ID_LEN] = '\0';
	return 0;
}

/* ---- requests waiting for the store ---- */

static struct api_req *areq_new(struct api *api, struct evhttp_request *req,
				enum api_action action, const char *company_id,
				const char *id)
{
	struct api_req *ar = calloc(1, sizeof(*ar));

	if (!ar)
		return NULL;
	ar->api = api;
	ar->req = req;
	ar->action = action;
	webhook_init(&ar->wh);
	company_settings_init(&ar->settings);
	ar->company_id = strdup(company_id);
	ar->id = id ? strdup(id) : NULL;
	if (!ar->company_id || (id && !ar->id)) {
		free(ar->company_id);
		free(ar->id);
		free(ar);
		return NULL;
	}
	ar->next = api->reqs;
	if (api->reqs)
		api->reqs->prev = ar;
	api->reqs = ar;
	return ar;
}

static void areq_free(struct api_req *ar)
{
	struct api *api = ar->api;

	if (ar->prev)
		ar->prev->next = ar->next;
	else
		api->reqs = ar->next;
	if (ar->next)
		ar->next->prev = ar->prev;
	webhook_release(&ar->wh);
	company_settings_release(&ar->settings);
	free(ar->company_id);
	free(ar->id);
	free(ar->body);
	free(ar->test);
	free(ar);
}

/* Ends a waiting request with an error answer. */
static void areq_fail(struct api_req *ar, enum store_status status)
{
	reply_store(ar->api, ar->req, status);
	areq_free(ar);
}

static void areq_reply_webhook(struct api_req *ar, int code)
{
	struct buf b;

	buf_init(&b, BUF_DEFAULT_MAX);
	webhook_to_json(&ar->wh, &b);
	reply_buf(ar->api, ar->req, code, "application/json", &b);
	buf_release(&b);
	areq_free(ar);
}

/* Copies the request body, refusing more than API_BODY_MAX. Returns 0, or
 * -1 after answering. */
static int read_body(struct api *api, struct evhttp_request *req,
		     char **body, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *p;

	if (n > API_BODY_MAX) {
		reply_error(api, req, 413, "payload_too_large", NULL,
			    "the request body exceeds 64 KiB");
		return -1;
	}
	p = malloc(n + 1);
	if (!p || evbuffer_copyout(in, p, n) != (ev_ssize_t)n) {
		free(p);
		reply_error(api, req, 500, "internal", NULL, "out of memory");
		return -1;
	}
	p[n] = '\0';
	*body = p;
	*len = n;
	return 0;
}

/* Starts a store operation's bookkeeping failure: the op was not started. */
static void areq_not_started(struct api_req *ar)
{
	reply_error(ar->api, ar->req, 500, "internal", NULL, "out of memory");
	areq_free(ar);
}

/* ---- webhooks ---- */

static void on_list(void *arg, enum store_status status,
		    const struct webhook *hooks, size_t n)
{
	struct api_req *ar = arg;
	struct buf b;
	size_t i;

	if (status != STORE_OK) {
		areq_fail(ar, status);
		return;
	}
	buf_init(&b, BUF_DEFAULT_MAX);
	buf_adds(&b, "{\"items\":[");
	for (i = 0; i < n; i++) {
		if (i)
			buf_addc(&b, ',');
		webhook_to_json(&hooks[i], &b);
	}
	buf_adds(&b, "]}");
	reply_buf(ar->api, ar->req, 200, "application/json", &b);
	buf_release(&b);
	areq_free(ar);
}

static void start_create(struct api_req *ar);

static void on_created(void *arg, enum store_status status, int64_t version)
{
	struct api_req *ar = arg;
	struct evkeyvalq *h;
	struct buf loc;
	char *cid;

	if (status == STORE_CONFLICT && ++ar->tries < API_CAS_TRIES) {
		/* An id collision (2^-128): draw another. */
		start_create(ar);
		return;
	}
	if (status != STORE_OK) {
		areq_fail(ar, status == STORE_CONFLICT ? STORE_ERROR : status);
		return;
	}
	registry_note_version(ar->api->reg, version);
	ar->wh.revision = 1;
	log_info("webhook created", "company=%s webhook=%s event=%s",
		 ar->wh.company_id, ar->wh.id, event_type_name(ar->wh.event));
	cid = evhttp_uriencode(ar->wh.company_id, -1, 0);
	buf_init(&loc, 4096);
	buf_addf(&loc, "/v1/companies/%s/webhooks/%s", cid ? cid : "", ar->wh.id);
	free(cid);
	h = evhttp_request_get_output_headers(ar->req);
	if (loc.failed || evhttp_add_header(h, "Location", buf_str(&loc)) < 0)
		log_warn("cannot set Location header", "webhook=%s", ar->wh.id);
	buf_release(&loc);
	areq_reply_webhook(ar, 201);
}

static void start_create(struct api_req *ar)
{
	char id[WEBHOOK_ID_LEN + 1];
	char *copy;

	if (new_webhook_id(id) < 0) {
		log_error("cannot draw a webhook id", "errno=%d", errno);
		areq_fail(ar, STORE_ERROR);
		return;
	}
	copy = strdup(id);
	if (!copy) {
		areq_not_started(ar);
		return;
	}
	free(ar->wh.id);
	ar->wh.id = copy;
	if (store_webhook_create(ar->api->store, &ar->wh, on_created, ar) < 0)
		areq_not_started(ar);
}

static void handle_create(struct api *api, struct evhttp_request *req,
			  const char *company_id)
{
	struct webhook_error err;
	struct api_req *ar;

	ar = areq_new(api, req, ACT_WEBHOOK_CREATE, company_id, NULL);
	if (!ar) {
		reply_error(api, req, 500, "internal", NULL, "out of memory");
		return;
	}
	if (read_body(api, req, &ar->body, &ar->body_len) < 0) {
		areq_free(ar);
		return;
	}
	ar->wh.company_id = strdup(company_id);
	if (!ar->wh.company_id) {
		areq_not_started(ar);
		return;
	}
	if (webhook_apply_json(&ar->wh, WEBHOOK_CREATE, ar->body, ar->body_len,
			       clock_wall_ms(), NULL, &err) < 0) {
		reply_webhook_error(api, req, &err);
		areq_free(ar);
		return;
	}
	start_create(ar);
}

static void on_got(void *arg, enum store_status status, const struct webhook *wh);

static void start_get(struct api_req *ar)
{
	if (store_webhook_get(ar->api->store, ar->company_id, ar->id, on_got, ar) < 0)
		areq_not_started(ar);
}

static void on_replaced(void *arg, enum store_status status, int64_t version)
{
	struct api_req *ar = arg;

	if (status == STORE_CONFLICT && ++ar->tries < API_CAS_TRIES) {
		/* Changed since read: apply the body to the fresh state. */
		start_get(ar);
		return;
	}
	if (status != STORE_OK) {
		areq_fail(ar, status);
		return;
	}
	registry_note_version(ar->api->reg, version);
	ar->wh.revision++;
	log_info("webhook updated", "company=%s webhook=%s enabled=%d",
		 ar->wh.company_id, ar->wh.id, ar->wh.enabled);
	areq_reply_webhook(ar, 200);
}

static void on_settings_for_sample(void *arg, enum store_status status,
				   const struct company_settings *s);

static void reply_sample(struct api *api, struct evhttp_request *req,
			 enum event_type t, const char *company_id,
			 const char *webhook_id, enum period_unit period,
			 int64_t period_value, enum payload_type fmt)
{
	enum samples_result rc;
	struct buf b;

	buf_init(&b, BUF_DEFAULT_MAX);
	rc = samples_render(t, company_id, webhook_id, period, period_value, fmt, &b);
	if (rc == SAMPLES_OK)
		reply_buf(api, req, 200, samples_content_type(fmt), &b);
	else
		reply_error(api, req, 500, "internal", NULL,
			    "the sample payload could not be rendered");
	buf_release(&b);
}

/* The attempt log, as stored: each item is one JSON object. */
static void on_attempts(void *arg, enum store_status status,
			const char *const *items, const size_t *lens, size_t n)
{
	struct api_req *ar = arg;
	struct buf b;
	size_t i;

	if (status != STORE_OK) {
		areq_fail(ar, status);
		return;
	}
	buf_init(&b, BUF_DEFAULT_MAX);
	buf_adds(&b, "{\"items\":[");
	for (i = 0; i < n; i++) {
		if (i)
			buf_addc(&b, ',');
		buf_add(&b, items[i], lens[i]);
	}
	buf_adds(&b, "]}");
	reply_buf(ar->api, ar->req, 200, "application/json", &b);
	buf_release(&b);
	areq_free(ar);
}

static void test_start(struct api_req *ar);

static void on_got(void *arg, enum store_status status, const struct webhook *wh)
{
	struct api_req *ar = arg;
	struct webhook_error err;
	int reenabled = 0;

	if (status != STORE_OK) {
		areq_fail(ar, status);
		return;
	}
	webhook_release(&ar->wh);
	if (webhook_copy(&ar->wh, wh) < 0) {
		areq_not_started(ar);
		return;
	}
	switch (ar->action) {
	case ACT_WEBHOOK_GET:
		areq_reply_webhook(ar, 200);
		return;
	case ACT_WEBHOOK_SAMPLE:
		if (ar->wh.payload_type == PAYLOAD_DEFAULT) {
			if (store_settings_get(ar->api->store, ar->company_id,
					       on_settings_for_sample, ar) < 0)
				areq_not_started(ar);
			return;
		}
		reply_sample(ar->api, ar->req, ar->wh.event, ar->wh.company_id,
			     ar->wh.id, ar->wh.period, ar->wh.period_value,
			     ar->wh.payload_type);
		areq_free(ar);
		return;
	case ACT_WEBHOOK_TEST:
		test_start(ar);
		return;
	case ACT_WEBHOOK_ATTEMPTS:
		/* The webhook exists under this company: now its log. */
		if (store_attempts_list(ar->api->store, ar->wh.id, on_attempts,
					ar) < 0)
			areq_not_started(ar);
		return;
	case ACT_WEBHOOK_REPLACE:
	case ACT_WEBHOOK_PATCH:
		if (webhook_apply_json(&ar->wh, ar->action == ACT_WEBHOOK_PATCH ?
				       WEBHOOK_PATCH : WEBHOOK_REPLACE,
				       ar->body, ar->body_len, clock_wall_ms(),
				       &reenabled, &err) < 0) {
			reply_webhook_error(ar->api, ar->req, &err);
			areq_free(ar);
			return;
		}
		/* Enabling again clears the failure history, atomically with
		 * the write (contract section 5). */
		if (store_webhook_replace(ar->api->store, &ar->wh, reenabled,
					  on_replaced, ar) < 0)
			areq_not_started(ar);
		return;
	default:
		break;
	}
	areq_fail(ar, STORE_ERROR);
}

static void on_settings_for_sample(void *arg, enum store_status status,
				   const struct company_settings *s)
{
	struct api_req *ar = arg;

	if (status != STORE_OK) {
		areq_fail(ar, status);
		return;
	}
	reply_sample(ar->api, ar->req, ar->wh.event, ar->wh.company_id,
		     ar->wh.id, ar->wh.period, ar->wh.period_value,
		     s->payload_type);
	areq_free(ar);
}

static void on_deleted(void *arg, enum store_status status, int64_t version)
{
	struct api_req *ar = arg;

	if (status != STORE_OK) {
		areq_fail(ar, status);
		return;
	}
	registry_note_version(ar->api->reg, version);
	log_info("webhook deleted", "company=%s webhook=%s", ar->company_id, ar->id);
	reply_raw(ar->api, ar->req, 204, NULL, NULL, 0);
	areq_free(ar);
}

static void route_test(struct api *api, struct evhttp_request *req,
		       enum evhttp_cmd_type m, const char *company_id,
		       const char *id);

/* /v1/companies/{c}/webhooks[/{id}[/{sub}]] */
static void route_webhooks(struct api *api, struct evhttp_request *req,
			   enum evhttp_cmd_type m, const char *company_id,
			   const char *id, const char *sub)
{
	enum api_action action;
	struct api_req *ar;

	if (!id) {
		if (m == EVHTTP_REQ_POST) {
			handle_create(api, req, company_id);
			return;
		}
		if (m != EVHTTP_REQ_GET) {
			reply_method(api, req, "GET, POST");
			return;
		}
		ar = areq_new(api, req, ACT_WEBHOOK_LIST, company_id, NULL);
		if (!ar)
			reply_error(api, req, 500, "internal", NULL, "out of memory");
		else if (store_webhook_list(api->store, company_id, on_list, ar) < 0)
			areq_not_started(ar);
		return;
	}
	if (sub && strcmp(sub, "test") == 0) {
		route_test(api, req, m, company_id, id);
		return;
	}
	if (sub && strcmp(sub, "sample-payload") != 0 &&
	    strcmp(sub, "attempts") != 0) {
		reply_not_found(api, req);
		return;
	}
	if (sub) {
		if (m != EVHTTP_REQ_GET) {
			reply_method(api, req, "GET");
			return;
		}
		action = strcmp(sub, "attempts") == 0 ? ACT_WEBHOOK_ATTEMPTS :
			ACT_WEBHOOK_SAMPLE;
	} else if (m == EVHTTP_REQ_GET) {
		action = ACT_WEBHOOK_GET;
	} else if (m == EVHTTP_REQ_PUT) {
		action = ACT_WEBHOOK_REPLACE;
	} else if (m == EVHTTP_REQ_PATCH) {
		action = ACT_WEBHOOK_PATCH;
	} else if (m == EVHTTP_REQ_DELETE) {
		action = ACT_WEBHOOK_DELETE;
	} else {
		reply_method(api, req, "GET, PUT, PATCH, DELETE");
		return;
	}
	if (!webhook_id_valid(id)) {
		reply_store(api, req, STORE_NOT_FOUND);
		return;
	}
	ar = areq_new(api, req, action, company_id, id);
	if (!ar) {
		reply_error(api, req, 500, "internal", NULL, "out of memory");
		return;
	}
	if (action == ACT_WEBHOOK_REPLACE || action == ACT_WEBHOOK_PATCH) {
		if (read_body(api, req, &ar->body, &ar->body_len) < 0) {
			areq_free(ar);
			return;
		}
	}
	if (action == ACT_WEBHOOK_DELETE) {
		if (store_webhook_delete(api->store, company_id, id, on_deleted, ar) < 0)
			areq_not_started(ar);
		return;
	}
	start_get(ar);
}

/* ---- test send: POST /v1/companies/{c}/webhooks/{id}/test ----
 *
 * Sends the webhook's sample payload (its event type, its payload data
 * type or else the company's, a fresh message id, occurredAt now) to its
 * target through deliver.c, the path of every delivery: the address
 * policy, the signature, the timeout, the response cap. The attempt goes
 * to the attempt log marked "test" (store_record_test: never counted by
 * the failure rule, never retried); the answer is its outcome, written
 * after the log so that a client reading the log next sees it.
 */

#define API_TEST_RESPONSE_MAX 1024  /* the start of the answer kept */

struct api_test {
	char message_id[SIGN_MESSAGE_ID_LEN];
	char at[32];                  /* RFC 3339 start of the attempt */
	int64_t at_ms;
	long status;                  /* 0 when none was received */
	char error[256];              /* "" on success */
	int64_t duration_ms;
	size_t response_len;
	char response[API_TEST_RESPONSE_MAX];
};

static void test_reply(struct api_req *ar)
{
	const struct api_test *t = ar->test;
	struct buf b;

	buf_init(&b, BUF_DEFAULT_MAX);
	buf_adds(&b, "{\"at\":");
	buf_add_json_string(&b, t->at, strlen(t->at));
	buf_adds(&b, ",\"messageId\":");
	buf_add_json_string(&b, t->message_id, strlen(t->message_id));
	buf_adds(&b, ",\"status\":");
	if (t->status > 0)
		buf_addf(&b, "%ld", t->status);
	else
		buf_adds(&b, "null");
	buf_adds(&b, ",\"error\":");
	if (t->error[0])
		buf_add_json_string(&b, t->error, strlen(t->error));
	else
		buf_adds(&b, "null");
	buf_addf(&b, ",\"durationMs\":%lld,\"responseBody\":",
		 (long long)t->duration_ms);
	if (t->response_len)
		buf_add_json_string(&b, t->response, t->response_len);
	else
		buf_adds(&b, "null");
	buf_addc(&b, '}');
	reply_buf(ar->api, ar->req, 200, "application/json", &b);
	buf_release(&b);
	areq_free(ar);
}

static void on_test_logged(void *arg, enum store_status status, int64_t version)
{
	struct api_req *ar = arg;

	(void)version;
	if (status != STORE_OK)
		log_warn("test send not logged", "webhook=%s status=%s", ar->id,
			 store_status_name(status));
	test_reply(ar);
}

static void on_test_done(void *arg, const struct deliver_result *res)
{
	struct api_req *ar = arg;
	struct api_test *t = ar->test;
	struct store_attempt a;

	if (res->outcome == DELIVER_CANCELLED) {
		/* The service is shutting down (api_free). */
		reply_error(ar->api, ar->req, 503, "unavailable", NULL,
			    "the service is shutting down");
		areq_free(ar);
		return;
	}
	t->at_ms = res->started_ms ? res->started_ms : t->at_ms;
	rfc3339_format(t->at_ms, t->at, sizeof(t->at));
	t->status = res->status;
	snprintf(t->error, sizeof(t->error), "%s",
		 res->outcome == DELIVER_OK ? "" : res->error);
	t->duration_ms = res->duration_ms;
	t->response_len = 0;
	if (res->response && res->response_len) {
		t->response_len = res->response_len < sizeof(t->response) ?
			res->response_len : sizeof(t->response);
		memcpy(t->response, res->response, t->response_len);
	}
	log_info("test send", "company=%s webhook=%s status=%ld duration_ms=%lld",
		 ar->company_id, ar->id, t->status, (long long)t->duration_ms);

	memset(&a, 0, sizeof(a));
	a.webhook_id = ar->wh.id;
	a.event_id = "test";
	a.attempt = 1;
	a.at_ms = t->at_ms;
	a.status = t->status;
	a.error = t->error[0] ? t->error : NULL;
	a.duration_ms = t->duration_ms;
	a.response = t->response_len ? t->response : NULL;
	a.response_len = t->response_len;
	if (store_record_test(ar->api->store, &a, on_test_logged, ar) < 0)
		test_reply(ar);
}

static void test_send(struct api_req *ar, enum payload_type fmt)
{
	struct api *api = ar->api;
	struct api_test *t = ar->test;
	struct deliver_request dr;
	char nonce[WEBHOOK_ID_LEN + 1], err[256];
	struct buf b;
	size_t len;
	int rc;

	if (!api->deliver) {
		api->deliver = deliver_new(api->base, api->cfg, err, sizeof(err));
		if (!api->deliver) {
			log_error("cannot start test sends", "error=\"%s\"", err);
			reply_error(api, ar->req, 500, "internal", NULL,
				    "test sends are unavailable");
			areq_free(ar);
			return;
		}
	}
	if (fmt == PAYLOAD_DEFAULT)
		fmt = PAYLOAD_JSON;
	/* A fresh message id per test, derived like a real one. */
	if (new_webhook_id(nonce) < 0) {
		areq_fail(ar, STORE_ERROR);
		return;
	}
	sign_message_id("urn:promo-webhooks:test", nonce, ar->wh.id, "",
			t->message_id);
	t->at_ms = clock_wall_ms();
	rfc3339_format(t->at_ms, t->at, sizeof(t->at));
	buf_init(&b, BUF_DEFAULT_MAX);
	if (samples_render_message(ar->wh.event, ar->wh.company_id, ar->wh.id,
				   ar->wh.period, ar->wh.period_value, fmt,
				   t->message_id, t->at, &b) != SAMPLES_OK ||
	    b.failed) {
		buf_release(&b);
		reply_error(api, ar->req, 500, "internal", NULL,
			    "the sample payload could not be rendered");
		areq_free(ar);
		return;
	}
	memset(&dr, 0, sizeof(dr));
	dr.target = ar->wh.target;
	dr.body = buf_detach(&b, &len);
	dr.body_len = len;
	dr.content_type = samples_content_type(fmt);
	dr.message_id = t->message_id;
	dr.secret = ar->wh.secret;
	rc = deliver_submit(api->deliver, &dr, on_test_done, ar);
	buf_release(&b);
	if (rc != 0)
		areq_not_started(ar);
}

static void on_settings_for_test(void *arg, enum store_status status,
				 const struct company_settings *s)
{
	struct api_req *ar = arg;

	if (status != STORE_OK) {
		areq_fail(ar, status);
		return;
	}
	test_send(ar, s->payload_type);
}

/* The webhook was read (on_got): find its payload type, then send. */
static void test_start(struct api_req *ar)
{
	ar->test = calloc(1, sizeof(*ar->test));
	if (!ar->test) {
		areq_not_started(ar);
		return;
	}
	if (ar->wh.payload_type != PAYLOAD_DEFAULT) {
		test_send(ar, ar->wh.payload_type);
		return;
	}
	if (store_settings_get(ar->api->store, ar->company_id,
			       on_settings_for_test, ar) < 0)
		areq_not_started(ar);
}

static void route_test(struct api *api, struct evhttp_request *req,
		       enum evhttp_cmd_type m, const char *company_id,
		       const char *id)
{
	struct api_req *ar;

	if (m != EVHTTP_REQ_POST) {
		reply_method(api, req, "POST");
		return;
	}
	if (!webhook_id_valid(id)) {
		reply_store(api, req, STORE_NOT_FOUND);
		return;
	}
	ar = areq_new(api, req, ACT_WEBHOOK_TEST, company_id, id);
	if (!ar) {
		reply_error(api, req, 500, "internal", NULL, "out of memory");
		return;
	}
	start_get(ar);
}

/* ---- settings ---- */

static void reply_settings(struct api_req *ar, const struct company_settings *s)
{
	struct buf b;

	buf_init(&b, 4096);
	company_settings_to_json(s, &b);
	reply_buf(ar->api, ar->req, 200, "application/json", &b);
	buf_release(&b);
	areq_free(ar);
}

static void on_settings(void *arg, enum store_status status,
			const struct company_settings *s)
{
	struct api_req *ar = arg;

	if (status != STORE_OK) {
		areq_fail(ar, status);
		return;
	}
	reply_settings(ar, s);
}

static void on_settings_put(void *arg, enum store_status status, int64_t version)
{
	struct api_req *ar = arg;

	if (status != STORE_OK) {
		areq_fail(ar, status);
		return;
	}
	registry_note_version(ar->api->reg, version);
	log_info("company settings updated", "company=%s", ar->company_id);
	reply_settings(ar, &ar->settings);
}

static void route_settings(struct api *api, struct evhttp_request *req,
			   enum evhttp_cmd_type m, const char *company_id)
{
	struct webhook_error err;
	struct api_req *ar;

	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_PUT) {
		reply_method(api, req, "GET, PUT");
		return;
	}
	ar = areq_new(api, req, m == EVHTTP_REQ_GET ? ACT_SETTINGS_GET :
		      ACT_SETTINGS_PUT, company_id, NULL);
	if (!ar) {
		reply_error(api, req, 500, "internal", NULL, "out of memory");
		return;
	}
	if (m == EVHTTP_REQ_GET) {
		if (store_settings_get(api->store, company_id, on_settings, ar) < 0)
			areq_not_started(ar);
		return;
	}
	if (read_body(api, req, &ar->body, &ar->body_len) < 0) {
		areq_free(ar);
		return;
	}
	if (company_settings_apply_json(&ar->settings, ar->body, ar->body_len,
					&err) < 0) {
		reply_webhook_error(api, req, &err);
		areq_free(ar);
		return;
	}
	if (store_settings_put(api->store, company_id, &ar->settings,
			       on_settings_put, ar) < 0)
		areq_not_started(ar);
}

/* ---- event types ---- */

static void handle_event_types(struct api *api, struct evhttp_request *req)
{
	struct buf b;
	int t;

	buf_init(&b, BUF_DEFAULT_MAX);
	buf_adds(&b, "{\"items\":[");
	for (t = 0; t < EVENT_TYPE_COUNT; t++) {
		const char *name = event_type_name((enum event_type)t);
		const char *desc = event_type_description((enum event_type)t);

		if (t)
			buf_addc(&b, ',');
		buf_adds(&b, "{\"name\":");
		buf_add_json_string(&b, name, strlen(name));
		buf_adds(&b, ",\"description\":");
		buf_add_json_string(&b, desc ? desc : "", desc ? strlen(desc) : 0);
		buf_addf(&b, ",\"requiresNotificationPeriod\":%s}",
			 event_type_is_derived((enum event_type)t) ? "true" : "false");
	}
	buf_adds(&b, "]}");
	reply_buf(api, req, 200, "application/json", &b);
	buf_release(&b);
}

static void handle_type_sample(struct api *api, struct evhttp_request *req,
			       const char *name)
{
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	enum payload_type fmt = PAYLOAD_JSON;
	struct evkeyvalq params;
	enum event_type t;

	if (event_type_parse(name, strlen(name), &t) < 0) {
		reply_error(api, req, 404, "not_found", NULL, "no such event type");
		return;
	}
	if (query) {
		const char *f;

		/* evhttp_parse_query_str initialises params even on failure. */
		if (evhttp_parse_query_str(query, &params) < 0) {
			evhttp_clear_headers(&params);
			reply_error(api, req, 400, "validation_failed", "format",
				    "the query string is malformed");
			return;
		}
		f = evhttp_find_header(&params, "format");
		if (f && strcasecmp(f, "xml") == 0) {
			fmt = PAYLOAD_XML;
		} else if (f && strcasecmp(f, "json") != 0) {
			evhttp_clear_headers(&params);
			reply_error(api, req, 400, "validation_failed", "format",
				    "format must be json or xml");
			return;
		}
		evhttp_clear_headers(&params);
	}
	reply_sample(api, req, t, SAMPLES_COMPANY_ID, SAMPLES_WEBHOOK_ID,
		     PERIOD_NONE, 0, fmt);
}

/* ---- health, readiness, metrics ---- */

static void handle_readyz(struct api *api, struct evhttp_request *req)
{
	int redis = store_is_ready(api->store);
	int cache = registry_is_loaded(api->reg);
	int svc = api->hooks.ready ? api->hooks.ready(api->hooks.arg) : 1;
	struct buf topics;
	size_t blocked = 0;
	int ok;
	struct buf b;

	buf_init(&topics, 4096);
	if (api->hooks.unwritable)
		blocked = api->hooks.unwritable(api->hooks.arg, &topics);
	ok = redis && cache && svc && blocked == 0;
	buf_init(&b, 8192);
	buf_addf(&b, "{\"status\":\"%s\",\"redis\":%s,\"cache\":%s,\"consumer\":%s,\"unwritable_topics\":[%s]}",
		 ok ? "ready" : "not_ready",
		 redis ? "true" : "false", cache ? "true" : "false",
		 svc ? "true" : "false", topics.failed ? "" : buf_str(&topics));
	reply_buf(api, req, ok ? 200 : 503, "application/json", &b);
	buf_release(&b);
	buf_release(&topics);
}

static void handle_metrics(struct api *api, struct evhttp_request *req)
{
	static const char *const cls[6] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
	unsigned long long timed_out, evicted, refused;
	struct buf b;
	int i;

	buf_init(&b, BUF_DEFAULT_MAX);
	if (api->hooks.metrics)
		api->hooks.metrics(api->hooks.arg, &b);
	prom_family(&b, "promo_webhooks_admin_http_responses_total", "counter",
		    "Admin API responses by status class.");
	for (i = 0; i < 6; i++)
		buf_addf(&b, "promo_webhooks_admin_http_responses_total{class=\"%s\"} %llu\n",
			 cls[i], api->responses[i]);
	httpguard_counts(api->guard, &timed_out, &evicted, &refused);
	prom_gauge(&b, "promo_webhooks_admin_connections", "Admin API connections open.",
		   (int64_t)httpguard_connections(api->guard));
	prom_family(&b, "promo_webhooks_admin_connections_closed_total", "counter",
		    "Admin API connections closed by the service: a request not complete in "
		    "time, or the oldest waiting one at the connection limit.");
	prom_sample(&b, "promo_webhooks_admin_connections_closed_total", "reason=\"timeout\"",
		    timed_out);
	prom_sample(&b, "promo_webhooks_admin_connections_closed_total", "reason=\"evicted\"",
		    evicted);
	prom_counter(&b, "promo_webhooks_admin_requests_refused_total",
		     "Admin API requests refused before their body was read (size, framing).",
		     refused);
	reply_buf(api, req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
	buf_release(&b);
}

/* ---- embedded files: /openapi.yaml and the console ---- */

/* The console is a page of this origin that only talks to this API: no
 * inline script or style, nothing from elsewhere, never framed. */
#define API_CONSOLE_CSP \
	"default-src 'self'; script-src 'self'; style-src 'self'; " \
	"img-src 'self'; connect-src 'self'; object-src 'none'; " \
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* Serves an embedded file when path names one (no token needed: the files
 * hold no data; every action of the console needs the token). Returns 1
 * when it answered. */
static int route_asset(struct api *api, struct evhttp_request *req,
		       enum evhttp_cmd_type m, const char *path)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	const struct asset *a;

	if (!path)
		return 0;
	if (strcmp(path, "/console") == 0) {
		if (evhttp_add_header(h, "Location", "/console/") < 0)
			log_debug("cannot add header", "name=%s", "Location");
		reply_raw(api, req, 301, NULL, NULL, 0);
		return 1;
	}
	a = assets_find(path);
	if (!a)
		return 0;
	if (m != EVHTTP_REQ_GET) {
		reply_method(api, req, "GET");
		return 1;
	}
	if (evhttp_add_header(h, "X-Content-Type-Options", "nosniff") < 0 ||
	    evhttp_add_header(h, "Referrer-Policy", "no-referrer") < 0 ||
	    evhttp_add_header(h, "X-Frame-Options", "DENY") < 0 ||
	    evhttp_add_header(h, "Content-Security-Policy", API_CONSOLE_CSP) < 0) {
		reply_error(api, req, 500, "internal", NULL, "out of memory");
		return 1;
	}
	reply_raw(api, req, 200, assets_content_type(a),
		  (const char *)a->data, a->len);
	return 1;
}

/* ---- routing ---- */

/* Splits the path into percent-decoded segments. Returns the count, or -1
 * when the path is malformed (too deep, a NUL inside a segment). */
static int split_path(const char *path, char *segs[API_MAX_SEGS])
{
	const char *p = path, *slash;
	int n = 0;

	if (!p || *p != '/')
		return -1;
	p++;
	for (;;) {
		char raw[1024];
		size_t len, dlen;

		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if (n == API_MAX_SEGS || len >= sizeof(raw))
			goto fail;
		memcpy(raw, p, len);
		raw[len] = '\0';
		segs[n] = evhttp_uridecode(raw, 0, &dlen);
		if (!segs[n])
			goto fail;
		n++;
		if (strlen(segs[n - 1]) != dlen)
			goto fail;
		if (!slash)
			break;
		p = slash + 1;
	}
	return n;
fail:
	while (n > 0)
		free(segs[--n]);
	return -1;
}

static void route_v1(struct api *api, struct evhttp_request *req,
		     enum evhttp_cmd_type m, char **s, int n)
{
	if (n >= 2 && strcmp(s[1], "event-types") == 0) {
		if (n == 2 || (n == 4 && strcmp(s[3], "sample-payload") == 0)) {
			if (m != EVHTTP_REQ_GET)
				reply_method(api, req, "GET");
			else if (n == 2)
				handle_event_types(api, req);
			else
				handle_type_sample(api, req, s[2]);
			return;
		}
		reply_not_found(api, req);
		return;
	}
	if (n >= 4 && strcmp(s[1], "companies") == 0) {
		if (!webhook_company_id_valid(s[2], strlen(s[2]))) {
			reply_error(api, req, 400, "validation_failed", "companyId",
				    "a company id is 1 to 128 visible ASCII characters");
			return;
		}
		if (strcmp(s[3], "settings") == 0 && n == 4) {
			route_settings(api, req, m, s[2]);
			return;
		}
		if (strcmp(s[3], "webhooks") == 0 && n <= 6 &&
		    (n < 5 || *s[4])) {
			route_webhooks(api, req, m, s[2], n >= 5 ? s[4] : NULL,
				       n == 6 ? s[5] : NULL);
			return;
		}
	}
	reply_not_found(api, req);
}

static void route(struct api *api, struct evhttp_request *req,
		  enum evhttp_cmd_type m, const char *path);

static void handle(struct evhttp_request *req, void *arg)
{
	struct api *api = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const struct httpguard_refusal *refusal;

	refusal = httpguard_refusal(api->guard, req);
	if (refusal && refusal->target) {
		/* A method that takes no body, sent with one: routed without
		 * it (the guard dropped it), e.g. a 405 with Allow. */
		route(api, req, (enum evhttp_cmd_type)refusal->method, refusal->target);
		return;
	}
	if (refusal) {
		reply_error(api, req, refusal->status, refusal->code, NULL,
			    refusal->message);
		return;
	}
	/* evhttp reads no body for TRACE, HEAD or a method it does not know:
	 * whatever body follows would be taken for the next request on the
	 * connection, so their answer closes it. */
	if (((int)m == API_EVHTTP_REQ_UNKNOWN || m == EVHTTP_REQ_TRACE ||
	     m == EVHTTP_REQ_HEAD) &&
	    evhttp_add_header(evhttp_request_get_output_headers(req),
			      "Connection", "close") < 0)
		log_debug("cannot add header", "name=%s", "Connection");
	route(api, req, m, uri ? evhttp_uri_get_path(uri) : NULL);
}

static void route(struct api *api, struct evhttp_request *req,
		  enum evhttp_cmd_type m, const char *path)
{
	char *segs[API_MAX_SEGS];
	int n, i;

	if (route_asset(api, req, m, path))
		return;
	n = split_path(path, segs);
	if (n < 0) {
		reply_not_found(api, req);
		return;
	}
	if (n == 1 && (strcmp(segs[0], "healthz") == 0 ||
		       strcmp(segs[0], "readyz") == 0 ||
		       strcmp(segs[0], "metrics") == 0)) {
		if (m != EVHTTP_REQ_GET)
			reply_method(api, req, "GET");
		else if (segs[0][0] == 'h')
			reply_raw(api, req, 200, "application/json",
				  "{\"status\":\"ok\"}", 15);
		else if (segs[0][0] == 'r')
			handle_readyz(api, req);
		else
			handle_metrics(api, req);
	} else if (strcmp(segs[0], "v1") == 0) {
		/* Authentication comes before routing, so that without the
		 * token not even the shape of the API shows. */
		if (!authorized(api, req)) {
			struct evkeyvalq *h = evhttp_request_get_output_headers(req);

			if (evhttp_add_header(h, "WWW-Authenticate", "Bearer") < 0)
				log_debug("cannot add header", "name=%s", "WWW-Authenticate");
			reply_error(api, req, 401, "unauthorized", NULL,
				    "a valid bearer token is required");
		} else {
			route_v1(api, req, m, segs, n);
		}
	} else {
		reply_not_found(api, req);
	}
	for (i = 0; i < n; i++)
		free(segs[i]);
}

/* ---- lifecycle ---- */

struct api *api_new(struct event_base *base, const struct config *cfg,
		    struct store *store, struct registry *reg,
		    const struct api_hooks *hooks, char *err, size_t errlen)
{
	struct api *api = calloc(1, sizeof(*api));
	static const struct httpguard_limits guard_limits = {
		API_MAX_CONNS, API_REQUEST_MS, API_HEAD_MAX, API_BODY_MAX,
	};
	struct evhttp_bound_socket *sock;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (!api) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	api->base = base;
	api->cfg = cfg;
	api->store = store;
	api->reg = reg;
	if (hooks)
		api->hooks = *hooks;
	api->http = evhttp_new(base);
	if (!api->http) {
		snprintf(err, errlen, "cannot create the http server");
		free(api);
		return NULL;
	}
	api->guard = httpguard_new(base, api->http, &guard_limits);
	if (!api->guard) {
		snprintf(err, errlen, "out of memory");
		evhttp_free(api->http);
		free(api);
		return NULL;
	}
	evhttp_set_max_body_size(api->http, (ev_ssize_t)API_BODY_MAX);
	evhttp_set_max_headers_size(api->http, API_HEADERS_MAX);
	evhttp_set_timeout(api->http, API_IDLE_TIMEOUT_S);
	/* Every method reaches the router, which answers 405 in the
	 * contract's error shape (evhttp's own refusal is an HTML 501).
	 * Methods evhttp does not know (QUERY, PROPFIND, ...) carry its
	 * internal EVHTTP_REQ_UNKNOWN_ bit, which is allowed here too. */
	evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
				   EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
				   EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
				   EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
				   EVHTTP_REQ_PATCH | API_EVHTTP_REQ_UNKNOWN);
	evhttp_set_gencb(api->http, handle, api);
	sock = evhttp_bind_socket_with_handle(api->http, cfg->http_host,
					      (ev_uint16_t)cfg->http_port);
	if (!sock) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->http_host,
			 cfg->http_port, strerror(errno));
		evhttp_free(api->http);
		httpguard_free(api->guard);
		free(api);
		return NULL;
	}
	httpguard_listen(api->guard, sock);
	if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss,
			&sl) == 0) {
		if (ss.ss_family == AF_INET)
			api->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			api->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	log_info("admin api listening", "host=%s port=%d", cfg->http_host, api->port);
	return api;
}

void api_free(struct api *api)
{
	if (!api)
		return;
	/* Test sends in flight end first, answered from their callbacks. */
	deliver_free(api->deliver);
	api->deliver = NULL;
	while (api->reqs) {
		struct api_req *ar = api->reqs;

		store_cancel(api->store, ar);
		reply_error(api, ar->req, 503, "unavailable", NULL,
			    "the service is shutting down");
		areq_free(ar);
	}
	evhttp_free(api->http);
	httpguard_free(api->guard);
	free(api);
}

int api_port(const struct api *api)
{
	return api->port;
}
