/*
 * Integration test of api.c: the admin API served in-process on a free
 * port with a real store (REDIS_URL) and driven with libevent's HTTP
 * client on the same loop. Every endpoint (/attempts fed through the
 * store), authentication, validation errors naming their field, unknown
 * fields, malformed JSON, the 64 KiB body limit, 404s and 405s, company
 * isolation, re-enabling, and a Redis that cannot be reached (503).
 */
#include "promo_webhooks/api.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/registry.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_hooks.h"
#include "promo_webhooks/store_outcomes.h"
#include "promo_webhooks/store_promos.h"
#include "testutil.h"
#include "itest.h"

#include <signal.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <yajl/yajl_tree.h>

#define TEST_DB 12
#define TOKEN "test-admin-token"
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static struct event_base *base;
static struct config cfg;
static redisContext *raw;
static int ready_flag = 1;

/* ---- the pipeline's hooks, faked ---- */

static int fake_ready(void *arg)
{
	(void)arg;
	return ready_flag;
}

static void fake_metrics(void *arg, struct buf *out)
{
	(void)arg;
	buf_adds(out, "# TYPE promo_webhooks_kafka_consumer_lag gauge\n"
		      "promo_webhooks_kafka_consumer_lag{topic=\"promo.events\",partition=\"0\"} 0\n");
}

/* ---- a tiny HTTP client on the test loop ---- */

struct resp {
	int done;
	int code;              /* 0 when the request failed */
	char *body;
	size_t len;
	char location[256];
	char ctype[128];
	char allow[64];
	yajl_val json;         /* the body parsed, when it is JSON */
};

static void resp_free(struct resp *r)
{
	free(r->body);
	yajl_tree_free(r->json);
	memset(r, 0, sizeof(*r));
}

static void copy_header(struct evhttp_request *req, const char *name, char *out,
			size_t outlen)
{
	const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);

	snprintf(out, outlen, "%s", v ? v : "");
}

static void on_response(struct evhttp_request *req, void *arg)
{
	struct resp *r = arg;
	struct evbuffer *in;

	r->done = 1;
	if (!req)
		return;
	r->code = evhttp_request_get_response_code(req);
	in = evhttp_request_get_input_buffer(req);
	r->len = evbuffer_get_length(in);
	r->body = malloc(r->len + 1);
	if (!r->body)
		exit(1);
	evbuffer_copyout(in, r->body, r->len);
	r->body[r->len] = '\0';
	copy_header(req, "Location", r->location, sizeof(r->location));
	copy_header(req, "Content-Type", r->ctype, sizeof(r->ctype));
	copy_header(req, "Allow", r->allow, sizeof(r->allow));
	if (r->len && strncmp(r->ctype, "application/json", 16) == 0)
		r->json = yajl_tree_parse(r->body, NULL, 0);
}

static int resp_done(void *arg)
{
	return ((struct resp *)arg)->done;
}

static int port;

/*
 * Sends one request and waits for the answer. token NULL sends no
 * Authorization header; body NULL sends none.
 */
static struct evhttp_connection *http_start(struct resp *r, enum evhttp_cmd_type method,
					    const char *path, const char *token,
					    const char *body, size_t body_len)
{
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	char auth[256];

	memset(r, 0, sizeof(*r));
	conn = evhttp_connection_base_new(base, NULL, "127.0.0.1", (ev_uint16_t)port);
	req = evhttp_request_new(on_response, r);
	if (!conn || !req)
		exit(1);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
	if (token) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "Authorization", auth);
	}
	if (body) {
		char clen[32];

		/* libevent's client adds Content-Length for POST and PUT only */
		snprintf(clen, sizeof(clen), "%zu", body_len);
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "Content-Length", clen);
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), body, body_len);
	}
	if (evhttp_make_request(conn, req, method, path) < 0) {
		fprintf(stderr, "cannot send %s\n", path);
		exit(1);
	}
	return conn;
}

static void http(struct resp *r, enum evhttp_cmd_type method, const char *path,
		 const char *token, const char *body, size_t body_len)
{
	struct evhttp_connection *conn = http_start(r, method, path, token, body, body_len);

	if (itest_run_until(base, resp_done, r, 10000) < 0) {
		fprintf(stderr, "no answer to %s\n", path);
		exit(1);
	}
	evhttp_connection_free(conn);
}

#define GET(r, path) http(r, EVHTTP_REQ_GET, path, TOKEN, NULL, 0)
#define SEND(r, m, path, body) http(r, m, path, TOKEN, body, strlen(body))

/* A string member at a path ("error", "field"), or NULL. */
static const char *jstr(const struct resp *r, const char *a, const char *b)
{
	const char *path[3] = { a, b, NULL };
	yajl_val v = r->json ? yajl_tree_get(r->json, path, yajl_t_any) : NULL;

	return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

static yajl_val jget(const struct resp *r, const char *a, const char *b)
{
	const char *path[3] = { a, b, NULL };

	return r->json ? yajl_tree_get(r->json, path, yajl_t_any) : NULL;
}

/* Checks an error answer: status, code and field (NULL: no field). */
#define CHECK_ERROR(r, status, ecode, efield)                                  \
	do {                                                                   \
		CHECK_INT((r)->code, status);                                  \
		CHECK_STR(jstr(r, "error", "code"), ecode);                    \
		CHECK(jstr(r, "error", "message") != NULL);                    \
		if (efield)                                                    \
			CHECK_STR(jstr(r, "error", "field"), (const char *)efield); \
		else                                                           \
			CHECK(jget(r, "error", "field") == NULL);              \
		if ((r)->code != (status))                                     \
			fprintf(stderr, "  body: %s\n", (r)->body);            \
	} while (0)

/* ---- tests ---- */

static void test_ops_endpoints(void)
{
	struct resp r;

	http(&r, EVHTTP_REQ_GET, "/healthz", NULL, NULL, 0);
	CHECK_INT(r.code, 200);
	resp_free(&r);
	http(&r, EVHTTP_REQ_GET, "/readyz", NULL, NULL, 0);
	CHECK_INT(r.code, 200);
	resp_free(&r);
	ready_flag = 0;
	http(&r, EVHTTP_REQ_GET, "/readyz", NULL, NULL, 0);
	CHECK_INT(r.code, 503);
	resp_free(&r);
	ready_flag = 1;
	http(&r, EVHTTP_REQ_GET, "/metrics", NULL, NULL, 0);
	CHECK_INT(r.code, 200);
	CHECK(strncmp(r.ctype, "text/plain", 10) == 0);
	CHECK(r.body && strstr(r.body, "promo_webhooks_kafka_consumer_lag{") != NULL);
	CHECK(r.body && strstr(r.body, "promo_webhooks_admin_http_responses_total{class=\"2xx\"}") != NULL);
	resp_free(&r);
	http(&r, EVHTTP_REQ_POST, "/healthz", NULL, "{}", 2);
	CHECK_ERROR(&r, 405, "method_not_allowed", NULL);
	CHECK_STR(r.allow, "GET");
	resp_free(&r);
	http(&r, EVHTTP_REQ_GET, "/nope", NULL, NULL, 0);
	CHECK_ERROR(&r, 404, "not_found", NULL);
	resp_free(&r);
}

static void test_auth(void)
{
	struct resp r;

	http(&r, EVHTTP_REQ_GET, "/v1/event-types", NULL, NULL, 0);
	CHECK_ERROR(&r, 401, "unauthorized", NULL);
	resp_free(&r);
	http(&r, EVHTTP_REQ_GET, "/v1/event-types", "test-admin-tokeN", NULL, 0);
	CHECK_ERROR(&r, 401, "unauthorized", NULL);
	resp_free(&r);
	http(&r, EVHTTP_REQ_GET, "/v1/event-types", "test-admin-token-longer", NULL, 0);
	CHECK_ERROR(&r, 401, "unauthorized", NULL);
	resp_free(&r);
	http(&r, EVHTTP_REQ_GET, "/v1/event-types", "", NULL, 0);
	CHECK_ERROR(&r, 401, "unauthorized", NULL);
	resp_free(&r);
	/* unknown /v1 paths do not show without the token either */
	http(&r, EVHTTP_REQ_GET, "/v1/whatever", NULL, NULL, 0);
	CHECK_INT(r.code, 401);
	resp_free(&r);
	http(&r, EVHTTP_REQ_DELETE, "/v1/companies/acme/webhooks/0123456789abcdef0123456789abcdef",
	     NULL, NULL, 0);
	CHECK_INT(r.code, 401);
	resp_free(&r);
}

static void test_event_types(void)
{
	struct resp r;
	yajl_val items;
	size_t i, derived = 0;

	GET(&r, "/v1/event-types");
	CHECK_INT(r.code, 200);
	items = jget(&r, "items", NULL);
	CHECK(YAJL_IS_ARRAY(items));
	if (YAJL_IS_ARRAY(items)) {
		CHECK_INT(items->u.array.len, 10);
		for (i = 0; i < items->u.array.len; i++) {
			const char *pn[] = { "name", NULL }, *pd[] = { "description", NULL };
			const char *pr[] = { "requiresNotificationPeriod", NULL };
			yajl_val it = items->u.array.values[i];
			yajl_val name = yajl_tree_get(it, pn, yajl_t_string);
			yajl_val desc = yajl_tree_get(it, pd, yajl_t_string);
			yajl_val req = yajl_tree_get(it, pr, yajl_t_any);

			const char *ns = YAJL_IS_STRING(name) ? name->u.string : "";
			const char *ds = YAJL_IS_STRING(desc) ? desc->u.string : "";

			CHECK(*ns && strlen(ds) > 10);
			CHECK(YAJL_IS_TRUE(req) || YAJL_IS_FALSE(req));
			if (YAJL_IS_TRUE(req)) {
				derived++;
				CHECK(strstr(ns, "InPeriod") != NULL);
			}
		}
	}
	CHECK_INT(derived, 2);
	resp_free(&r);

	GET(&r, "/v1/event-types/Promotion.Created/sample-payload");
	CHECK_INT(r.code, 200);
	CHECK(strncmp(r.ctype, "application/json", 16) == 0);
	CHECK_STR(jstr(&r, "event", NULL), "Promotion.Created");
	CHECK(jstr(&r, "id", NULL) && strncmp(jstr(&r, "id", NULL), "msg_", 4) == 0);
	CHECK_STR(jstr(&r, "data", "promotionId"), "PROMO-2025-SUMMER-20");
	resp_free(&r);
	GET(&r, "/v1/event-types/Promotion.StartingInPeriod/sample-payload?format=json");
	CHECK_INT(r.code, 200);
	CHECK_STR(jstr(&r, "data", "notificationPeriod"), "Hours");
	resp_free(&r);
	GET(&r, "/v1/event-types/CouponCodes.ReservedActivated/sample-payload");
	CHECK_INT(r.code, 200);
	CHECK(jstr(&r, "data", "couponCode") != NULL);
	resp_free(&r);
	/* The XML sample comes from the same renderer as real deliveries. */
	GET(&r, "/v1/event-types/Promotion.Created/sample-payload?format=xml");
	CHECK_INT(r.code, 200);
	CHECK(strncmp(r.ctype, "application/xml", 15) == 0);
	CHECK(r.body && strstr(r.body, "<WebhookEvent>") != NULL);
	CHECK(r.body && strstr(r.body, "<Event>Promotion.Created</Event>") != NULL);
	resp_free(&r);
	GET(&r, "/v1/event-types/Promotion.Created/sample-payload?format=yaml");
	CHECK_ERROR(&r, 400, "validation_failed", "format");
	resp_free(&r);
	GET(&r, "/v1/event-types/Promotion.Exploded/sample-payload");
	CHECK_ERROR(&r, 404, "not_found", NULL);
	resp_free(&r);
	GET(&r, "/v1/event-types/Promotion.Created");
	CHECK_INT(r.code, 404);
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_POST, "/v1/event-types", "{}");
	CHECK_ERROR(&r, 405, "method_not_allowed", NULL);
	resp_free(&r);
}

/* Creates a webhook; returns its id (static buffer) or "" on failure. */
static const char *create(const char *company, const char *body)
{
	static char id[64];
	char path[256];
	struct resp r;

	snprintf(path, sizeof(path), "/v1/companies/%s/webhooks", company);
	SEND(&r, EVHTTP_REQ_POST, path, body);
	CHECK_INT(r.code, 201);
	snprintf(id, sizeof(id), "%s", jstr(&r, "id", NULL) ? jstr(&r, "id", NULL) : "");
	resp_free(&r);
	return id;
}

static void test_validation(void)
{
	static const struct {
		const char *body;
		const char *code;
		const char *field;
	} cases[] = {
		{ "{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"colour\":\"red\"}",
		  "validation_failed", "colour" },
		{ "{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"id\":\"0123\"}",
		  "validation_failed", "id" },
		{ "{\"event\":\"Promotion.Created\",\"target\":", "malformed_json", NULL },
		{ "not json", "malformed_json", NULL },
		{ "{\"target\":\"https://a.example/\"}", "validation_failed", "event" },
		{ "{\"event\":\"Nope\",\"target\":\"https://a.example/\"}", "validation_failed", "event" },
		{ "{\"event\":\"Promotion.Created\",\"target\":\"ftp://a.example/\"}",
		  "validation_failed", "target" },
		{ "{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"enabled\":1}",
		  "validation_failed", "enabled" },
		{ "{\"event\":\"Promotion.StartingInPeriod\",\"target\":\"https://a.example/\"}",
		  "validation_failed", "notificationPeriod" },
		{ "{\"event\":\"Promotion.StartingInPeriod\",\"target\":\"https://a.example/\","
		  "\"notificationPeriod\":\"Days\",\"notificationPeriodValue\":400}",
		  "validation_failed", "notificationPeriodValue" },
		{ "{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\","
		  "\"notificationPeriod\":\"Days\",\"notificationPeriodValue\":1}",
		  "validation_failed", "notificationPeriod" },
		{ "{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"secret\":\"s3cr3t\"}",
		  "validation_failed", "secret" },
		{ "{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"payloadDataType\":\"Csv\"}",
		  "validation_failed", "payloadDataType" },
	};
	struct resp r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		SEND(&r, EVHTTP_REQ_POST, "/v1/companies/acme/webhooks", cases[i].body);
		CHECK_ERROR(&r, 400, cases[i].code, cases[i].field);
		resp_free(&r);
	}
	/* a refused secret is never echoed */
	SEND(&r, EVHTTP_REQ_POST, "/v1/companies/acme/webhooks",
	     "{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\",\"secret\":\"whsec_topsecretvalue\"}");
	CHECK(r.body && strstr(r.body, "topsecretvalue") == NULL);
	resp_free(&r);
	/* bad company ids in the path */
	SEND(&r, EVHTTP_REQ_POST, "/v1/companies/acme%20co/webhooks",
	     "{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\"}");
	CHECK_ERROR(&r, 400, "validation_failed", "companyId");
	resp_free(&r);
	GET(&r, "/v1/companies/ac%2Fme/webhooks");
	CHECK_ERROR(&r, 400, "validation_failed", "companyId");
	resp_free(&r);
}

static void test_body_limit(void)
{
	size_t n = 64 * 1024 + 1;
	char *big = malloc(n + 1);
	struct resp r;
	static const char head[] = "{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\"";

	if (!big)
		exit(1);
	/* exactly 64 KiB: a valid body padded with spaces is accepted */
	memset(big, ' ', n);
	memcpy(big, head, sizeof(head) - 1);
	big[64 * 1024 - 1] = '}';
	http(&r, EVHTTP_REQ_POST, "/v1/companies/big/webhooks", TOKEN, big, 64 * 1024);
	CHECK_INT(r.code, 201);
	resp_free(&r);
	/* one byte more: 413 in the contract's shape */
	big[64 * 1024 - 1] = ' ';
	big[64 * 1024] = '}';
	http(&r, EVHTTP_REQ_POST, "/v1/companies/big/webhooks", TOKEN, big, n);
	CHECK_ERROR(&r, 413, "payload_too_large", NULL);
	resp_free(&r);
	http(&r, EVHTTP_REQ_PUT, "/v1/companies/big/settings", TOKEN, big, n);
	CHECK_INT(r.code, 413);
	resp_free(&r);
	free(big);
}

static void on_legacy_written(void *arg, enum store_status status, int64_t version)
{
	(void)version;
	CHECK_INT(status, STORE_OK);
	*(int *)arg = 1;
}

static int int_set(void *arg)
{
	return *(int *)arg;
}

/* User info in a target: refused on every write with a message pointing to
 * the signing secret; one already stored (written before the rule, here
 * straight through the store) is shown redacted by GET and the list, and
 * PATCHing it back as shown is refused. The password never appears. */
static void test_target_credentials(struct store *st)
{
	static const char *const writes[] = {
		"{\"event\":\"Promotion.Created\",\"target\":\"https://u:hunter2@a.example/\"}",
		"{\"event\":\"Promotion.Created\",\"target\":\"https://hunter2@a.example/\"}",
	};
	struct webhook wh;
	struct resp r;
	char path[256];
	size_t i;
	int written = 0;

	for (i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		SEND(&r, EVHTTP_REQ_POST, "/v1/companies/creds/webhooks", writes[i]);
		CHECK_ERROR(&r, 400, "validation_failed", "target");
		CHECK(jstr(&r, "error", "message") &&
		      strstr(jstr(&r, "error", "message"), "signing secret") != NULL);
		CHECK(strstr(r.body, "hunter2") == NULL);
		resp_free(&r);
	}

	webhook_init(&wh);
	wh.id = strdup("c0ffee00c0ffee00c0ffee00c0ffee00");
	wh.company_id = strdup("creds");
	wh.target = strdup("https://legacy:hunter2@a.example/hook");
	if (!wh.id || !wh.company_id || !wh.target)
		exit(1);
	wh.event = EVENT_PROMOTION_CREATED;
	wh.enabled = 1;
	wh.created_at_ms = wh.updated_at_ms = itest_now_ms();
	CHECK_INT(store_webhook_create(st, &wh, on_legacy_written, &written), 0);
	CHECK(itest_run_until(base, int_set, &written, 5000) >= 0);

	snprintf(path, sizeof(path), "/v1/companies/creds/webhooks/%s", wh.id);
	GET(&r, path);
	CHECK_INT(r.code, 200);
	CHECK_STR(jstr(&r, "target", NULL), "https://***@a.example/hook");
	CHECK(strstr(r.body, "hunter2") == NULL && strstr(r.body, "legacy") == NULL);
	resp_free(&r);
	GET(&r, "/v1/companies/creds/webhooks");
	CHECK_INT(r.code, 200);
	CHECK(r.body && strstr(r.body, "https://***@a.example/hook") != NULL);
	CHECK(r.body && strstr(r.body, "hunter2") == NULL);
	resp_free(&r);
	/* A PATCH of another field answers with the redacted view too. */
	SEND(&r, EVHTTP_REQ_PATCH, path, "{\"enabled\":false}");
	CHECK_INT(r.code, 200);
	CHECK(r.body && strstr(r.body, "hunter2") == NULL);
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PATCH, path, "{\"target\":\"https://***@a.example/hook\"}");
	CHECK_ERROR(&r, 400, "validation_failed", "target");
	resp_free(&r);
	webhook_release(&wh);
}

struct cache_wait {
	struct registry *reg;
	const char *id;
};

static int cache_has(void *arg)
{
	struct cache_wait *cw = arg;

	return registry_webhook(cw->reg, cw->id) != NULL;
}

static void test_webhooks(struct registry *reg)
{
	char path[256], id[64], id2[64], sub[256];
	struct resp r;
	redisReply *rr;
	yajl_val items;

	/* create */
	SEND(&r, EVHTTP_REQ_POST, "/v1/companies/acme/webhooks",
	     "{\"event\":\"Promotion.StartingInPeriod\",\"target\":\"https://hooks.acme.example/promo\","
	     "\"notificationPeriod\":\"Hours\",\"notificationPeriodValue\":2,\"secret\":\"" SECRET "\"}");
	CHECK_INT(r.code, 201);
	snprintf(id, sizeof(id), "%s", jstr(&r, "id", NULL) ? jstr(&r, "id", NULL) : "");
	CHECK(webhook_id_valid(id));
	snprintf(path, sizeof(path), "/v1/companies/acme/webhooks/%s", id);
	CHECK_STR(r.location, path);
	CHECK_STR(jstr(&r, "companyId", NULL), "acme");
	CHECK(YAJL_IS_TRUE(jget(&r, "enabled", NULL)));
	CHECK(YAJL_IS_TRUE(jget(&r, "hasSecret", NULL)));
	CHECK(YAJL_IS_NULL(jget(&r, "payloadDataType", NULL)));
	CHECK(YAJL_IS_NULL(jget(&r, "disabledAt", NULL)));
	CHECK(jstr(&r, "createdAt", NULL) != NULL);
	CHECK(jget(&r, "secret", NULL) == NULL);
	CHECK(strstr(r.body, "whsec_") == NULL);
	resp_free(&r);
	snprintf(id2, sizeof(id2), "%s",
		 create("acme", "{\"event\":\"Promotion.Created\",\"target\":\"http://hooks.acme.example:8080/c\"}"));
	create("globex", "{\"event\":\"Promotion.Created\",\"target\":\"https://globex.example/\"}");
	/* this process's cache has it promptly */
	{
		struct cache_wait cw = { reg, id };
		int64_t took = itest_run_until(base, cache_has, &cw, 2000);

		CHECK(took >= 0 && took < 1000);
	}

	/* read */
	GET(&r, path);
	CHECK_INT(r.code, 200);
	CHECK_STR(jstr(&r, "id", NULL), id);
	CHECK_STR(jstr(&r, "notificationPeriod", NULL), "Hours");
	CHECK(jget(&r, "secret", NULL) == NULL);
	resp_free(&r);
	GET(&r, "/v1/companies/acme/webhooks");
	CHECK_INT(r.code, 200);
	items = jget(&r, "items", NULL);
	CHECK(YAJL_IS_ARRAY(items) && items->u.array.len == 2);
	CHECK(strstr(r.body, "globex") == NULL);
	resp_free(&r);
	GET(&r, "/v1/companies/nobody/webhooks");
	CHECK_INT(r.code, 200);
	CHECK_STR(r.body, "{\"items\":[]}");
	resp_free(&r);

	/* another company's webhook is not there */
	snprintf(sub, sizeof(sub), "/v1/companies/globex/webhooks/%s", id);
	GET(&r, sub);
	CHECK_ERROR(&r, 404, "not_found", NULL);
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PATCH, sub, "{\"enabled\":false}");
	CHECK_INT(r.code, 404);
	resp_free(&r);
	http(&r, EVHTTP_REQ_DELETE, sub, TOKEN, NULL, 0);
	CHECK_INT(r.code, 404);
	resp_free(&r);
	GET(&r, "/v1/companies/acme/webhooks/ffffffffffffffffffffffffffffffff");
	CHECK_ERROR(&r, 404, "not_found", NULL);
	resp_free(&r);
	GET(&r, "/v1/companies/acme/webhooks/not-an-id");
	CHECK_INT(r.code, 404);
	resp_free(&r);

	/* PUT: all writable fields */
	SEND(&r, EVHTTP_REQ_PUT, path,
	     "{\"event\":\"Promotion.EndingInPeriod\",\"target\":\"https://hooks.acme.example/v2\","
	     "\"notificationPeriod\":\"Days\",\"notificationPeriodValue\":3,\"payloadDataType\":\"Json\"}");
	CHECK_INT(r.code, 200);
	CHECK_STR(jstr(&r, "event", NULL), "Promotion.EndingInPeriod");
	CHECK_STR(jstr(&r, "payloadDataType", NULL), "Json");
	CHECK(YAJL_IS_TRUE(jget(&r, "hasSecret", NULL))); /* write-only: kept */
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PUT, path, "{\"target\":\"https://hooks.acme.example/v2\"}");
	CHECK_ERROR(&r, 400, "validation_failed", "event");
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PUT, path, "{\"event\":\"Promotion.Created\",\"target\":\"https://x.example/\",\"createdAt\":\"x\"}");
	CHECK_ERROR(&r, 400, "validation_failed", "createdAt");
	resp_free(&r);

	/* PATCH: the fields given; disable, then enable again */
	SEND(&r, EVHTTP_REQ_PATCH, path, "{\"enabled\":false}");
	CHECK_INT(r.code, 200);
	CHECK(YAJL_IS_FALSE(jget(&r, "enabled", NULL)));
	CHECK(jstr(&r, "disabledAt", NULL) != NULL);
	CHECK_STR(jstr(&r, "target", NULL), "https://hooks.acme.example/v2");
	resp_free(&r);
	itest_cmd_ok(raw, "ZADD {pw}:failures:%s 1 a 2 b 3 c", id);
	SEND(&r, EVHTTP_REQ_PATCH, path, "{\"enabled\":true}");
	CHECK_INT(r.code, 200);
	CHECK(YAJL_IS_TRUE(jget(&r, "enabled", NULL)));
	CHECK(YAJL_IS_NULL(jget(&r, "disabledAt", NULL)));
	CHECK(YAJL_IS_NULL(jget(&r, "disabledReason", NULL)));
	resp_free(&r);
	rr = itest_cmd(raw, "EXISTS {pw}:failures:%s", id);
	CHECK_INT(rr->integer, 0);
	freeReplyObject(rr);
	SEND(&r, EVHTTP_REQ_PATCH, path, "{\"notificationPeriodValue\":0}");
	CHECK_ERROR(&r, 400, "validation_failed", "notificationPeriodValue");
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PATCH, path, "{\"nope\":0}");
	CHECK_ERROR(&r, 400, "validation_failed", "nope");
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PATCH, path, "{");
	CHECK_ERROR(&r, 400, "malformed_json", NULL);
	resp_free(&r);
	/* PUT re-enables too, and clears the history */
	SEND(&r, EVHTTP_REQ_PATCH, path, "{\"enabled\":false}");
	resp_free(&r);
	itest_cmd_ok(raw, "ZADD {pw}:failures:%s 1 a", id);
	SEND(&r, EVHTTP_REQ_PUT, path,
	     "{\"event\":\"Promotion.Updated\",\"target\":\"https://hooks.acme.example/v3\",\"enabled\":true}");
	CHECK_INT(r.code, 200);
	CHECK(YAJL_IS_TRUE(jget(&r, "enabled", NULL)));
	resp_free(&r);
	rr = itest_cmd(raw, "EXISTS {pw}:failures:%s", id);
	CHECK_INT(rr->integer, 0);
	freeReplyObject(rr);

	/* sample payload of a webhook: its company's type when its own is null */
	snprintf(sub, sizeof(sub), "/v1/companies/acme/webhooks/%s/sample-payload", id);
	GET(&r, sub);
	CHECK_INT(r.code, 200);
	CHECK(strncmp(r.ctype, "application/json", 16) == 0);
	CHECK_STR(jstr(&r, "webhookId", NULL), id);
	CHECK_STR(jstr(&r, "companyId", NULL), "acme");
	CHECK_STR(jstr(&r, "event", NULL), "Promotion.Updated");
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PUT, "/v1/companies/acme/settings",
	     "{\"webhookDisabledNotificationEmail\":null,\"webhookPayloadDataType\":\"Xml\"}");
	CHECK_INT(r.code, 200);
	resp_free(&r);
	GET(&r, sub);
	/* The company setting now makes it XML. */
	CHECK_INT(r.code, 200);
	CHECK(strncmp(r.ctype, "application/xml", 15) == 0);
	CHECK(r.body && strstr(r.body, "<Event>Promotion.Updated</Event>") != NULL);
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PATCH, path, "{\"payloadDataType\":\"Json\"}");
	resp_free(&r);
	GET(&r, sub);
	CHECK_INT(r.code, 200);
	resp_free(&r);
	snprintf(sub, sizeof(sub), "/v1/companies/acme/webhooks/%s/sample-payload", id2);
	http(&r, EVHTTP_REQ_POST, sub, TOKEN, "{}", 2);
	CHECK_ERROR(&r, 405, "method_not_allowed", NULL);
	resp_free(&r);

	snprintf(sub, sizeof(sub), "/v1/companies/acme/webhooks/%s/other", id);
	GET(&r, sub);
	CHECK_ERROR(&r, 404, "not_found", NULL);
	resp_free(&r);

	/* 405s and odd paths */
	http(&r, EVHTTP_REQ_DELETE, "/v1/companies/acme/webhooks", TOKEN, NULL, 0);
	CHECK_ERROR(&r, 405, "method_not_allowed", NULL);
	CHECK_STR(r.allow, "GET, POST");
	resp_free(&r);
	http(&r, EVHTTP_REQ_POST, path, TOKEN, "{}", 2);
	CHECK_ERROR(&r, 405, "method_not_allowed", NULL);
	resp_free(&r);
	GET(&r, "/v1/companies/acme/webhooks/");
	CHECK_INT(r.code, 404);
	resp_free(&r);
	GET(&r, "/v1/companies/acme");
	CHECK_INT(r.code, 404);
	resp_free(&r);

	/* delete */
	http(&r, EVHTTP_REQ_DELETE, path, TOKEN, NULL, 0);
	CHECK_INT(r.code, 204);
	CHECK_INT(r.len, 0);
	resp_free(&r);
	http(&r, EVHTTP_REQ_DELETE, path, TOKEN, NULL, 0);
	CHECK_ERROR(&r, 404, "not_found", NULL);
	resp_free(&r);
	GET(&r, path);
	CHECK_INT(r.code, 404);
	resp_free(&r);
	GET(&r, "/v1/companies/acme/webhooks");
	items = jget(&r, "items", NULL);
	CHECK(YAJL_IS_ARRAY(items) && items->u.array.len == 1);
	resp_free(&r);
}

static int op_done;

static void on_failure_done(void *arg, enum store_status status,
			    enum store_failure_result result)
{
	op_done = 1;
	CHECK_INT(status, STORE_OK);
	CHECK_INT(result, STORE_FAILURE_COUNTED);
}

static int is_op_done(void *arg)
{
	return op_done;
}

/* GET .../attempts: the webhook's attempt log, newest first, at most 100,
 * only under its own company. */
static void test_attempts(struct store *st)
{
	struct store_attempt a[150];
	struct store_failure f;
	char path[256], id[64], other[64];
	yajl_val items, e;
	struct resp r;
	int i, ok = 1;

	snprintf(id, sizeof(id), "%s", create("acme",
		 "{\"event\":\"Promotion.Created\",\"target\":\"https://hooks.acme.example/at\"}"));
	snprintf(other, sizeof(other), "%s", create("globex",
		 "{\"event\":\"Promotion.Created\",\"target\":\"https://globex.example/at\"}"));
	snprintf(path, sizeof(path), "/v1/companies/acme/webhooks/%s/attempts", id);
	GET(&r, path);
	CHECK_INT(r.code, 200);
	CHECK_STR(r.ctype, "application/json");
	items = jget(&r, "items", NULL);
	CHECK(YAJL_IS_ARRAY(items) && items->u.array.len == 0);
	resp_free(&r);

	/* a success, then a failure */
	memset(a, 0, sizeof(a));
	a[0].webhook_id = id;
	a[0].event_id = "evt-a";
	a[0].attempt = 1;
	a[0].at_ms = 1748856612345LL;
	a[0].status = 200;
	a[0].duration_ms = 12;
	store_log_attempts(st, a, 1);
	memset(&f, 0, sizeof(f));
	f.attempt = a[0];
	f.attempt.event_id = "evt-b";
	f.attempt.at_ms += 1000;
	f.attempt.status = 0;
	f.attempt.error = "connection refused";
	f.attempt.duration_ms = 3;
	f.window_ms = 3600000;
	f.threshold = 3;
	op_done = 0;
	CHECK_INT(store_record_failure(st, &f, on_failure_done, NULL), 0);
	CHECK(itest_run_until(base, is_op_done, NULL, 5000) >= 0);
	GET(&r, path);
	CHECK_INT(r.code, 200);
	items = jget(&r, "items", NULL);
	CHECK(YAJL_IS_ARRAY(items) && items->u.array.len == 2);
	if (YAJL_IS_ARRAY(items) && items->u.array.len == 2) {
		const char *p_at[] = { "at", NULL }, *p_ev[] = { "eventId", NULL };
		const char *p_n[] = { "attempt", NULL }, *p_st[] = { "status", NULL };
		const char *p_err[] = { "error", NULL }, *p_d[] = { "durationMs", NULL };

		e = items->u.array.values[0]; /* newest first */
		CHECK_STR(YAJL_GET_STRING(yajl_tree_get(e, p_at, yajl_t_string)),
			  "2025-06-02T09:30:13.345Z");
		CHECK_STR(YAJL_GET_STRING(yajl_tree_get(e, p_ev, yajl_t_string)), "evt-b");
		CHECK(YAJL_IS_INTEGER(yajl_tree_get(e, p_n, yajl_t_any)) &&
		      YAJL_GET_INTEGER(yajl_tree_get(e, p_n, yajl_t_any)) == 1);
		CHECK(YAJL_IS_NULL(yajl_tree_get(e, p_st, yajl_t_any)));
		CHECK_STR(YAJL_GET_STRING(yajl_tree_get(e, p_err, yajl_t_string)),
			  "connection refused");
		CHECK(YAJL_IS_INTEGER(yajl_tree_get(e, p_d, yajl_t_any)) &&
		      YAJL_GET_INTEGER(yajl_tree_get(e, p_d, yajl_t_any)) == 3);
		e = items->u.array.values[1];
		CHECK_STR(YAJL_GET_STRING(yajl_tree_get(e, p_at, yajl_t_string)),
			  "2025-06-02T09:30:12.345Z");
		CHECK(YAJL_IS_INTEGER(yajl_tree_get(e, p_st, yajl_t_any)) &&
		      YAJL_GET_INTEGER(yajl_tree_get(e, p_st, yajl_t_any)) == 200);
		CHECK(YAJL_IS_NULL(yajl_tree_get(e, p_err, yajl_t_any)));
	}
	resp_free(&r);

	/* at most 100, newest first */
	for (i = 0; i < 150; i++) {
		a[i] = a[0];
		a[i].attempt = i + 1;
	}
	store_log_attempts(st, a, 150);
	GET(&r, path);
	CHECK_INT(r.code, 200);
	items = jget(&r, "items", NULL);
	CHECK(YAJL_IS_ARRAY(items) && items->u.array.len == 100);
	for (i = 0; YAJL_IS_ARRAY(items) && i < (int)items->u.array.len; i++) {
		const char *p_n[] = { "attempt", NULL };
		yajl_val n = yajl_tree_get(items->u.array.values[i], p_n, yajl_t_any);

		if (!YAJL_IS_INTEGER(n) || YAJL_GET_INTEGER(n) != 150 - i)
			ok = 0;
	}
	CHECK(ok);
	resp_free(&r);

	/* only under its own company; unknown and malformed ids */
	snprintf(path, sizeof(path), "/v1/companies/globex/webhooks/%s/attempts", id);
	GET(&r, path);
	CHECK_ERROR(&r, 404, "not_found", NULL);
	resp_free(&r);
	snprintf(path, sizeof(path), "/v1/companies/globex/webhooks/%s/attempts", other);
	GET(&r, path);
	CHECK_INT(r.code, 200);
	resp_free(&r);
	GET(&r, "/v1/companies/acme/webhooks/0123456789abcdef0123456789abcdef/attempts");
	CHECK_ERROR(&r, 404, "not_found", NULL);
	resp_free(&r);
	GET(&r, "/v1/companies/acme/webhooks/nope/attempts");
	CHECK_ERROR(&r, 404, "not_found", NULL);
	resp_free(&r);
	snprintf(path, sizeof(path), "/v1/companies/acme/webhooks/%s/attempts", id);
	http(&r, EVHTTP_REQ_POST, path, TOKEN, "{}", 2);
	CHECK_ERROR(&r, 405, "method_not_allowed", NULL);
	CHECK_STR(r.allow, "GET");
	resp_free(&r);
	http(&r, EVHTTP_REQ_GET, path, NULL, NULL, 0);
	CHECK_INT(r.code, 401);
	resp_free(&r);
}

static void test_settings(void)
{
	struct resp r;

	GET(&r, "/v1/companies/initech/settings");
	CHECK_INT(r.code, 200);
	CHECK_STR(r.body, "{\"webhookDisabledNotificationEmail\":null,\"webhookPayloadDataType\":\"Json\"}");
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PUT, "/v1/companies/initech/settings",
	     "{\"webhookDisabledNotificationEmail\":\"ops@initech.example\",\"webhookPayloadDataType\":\"Xml\"}");
	CHECK_INT(r.code, 200);
	CHECK_STR(jstr(&r, "webhookDisabledNotificationEmail", NULL), "ops@initech.example");
	resp_free(&r);
	GET(&r, "/v1/companies/initech/settings");
	CHECK_STR(r.body, "{\"webhookDisabledNotificationEmail\":\"ops@initech.example\",\"webhookPayloadDataType\":\"Xml\"}");
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PUT, "/v1/companies/initech/settings",
	     "{\"webhookDisabledNotificationEmail\":\"nope\"}");
	CHECK_ERROR(&r, 400, "validation_failed", "webhookDisabledNotificationEmail");
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PUT, "/v1/companies/initech/settings", "{\"x\":1}");
	CHECK_ERROR(&r, 400, "validation_failed", "x");
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_PUT, "/v1/companies/initech/settings", "[]");
	CHECK_ERROR(&r, 400, "validation_failed", NULL);
	resp_free(&r);
	http(&r, EVHTTP_REQ_DELETE, "/v1/companies/initech/settings", TOKEN, NULL, 0);
	CHECK_ERROR(&r, 405, "method_not_allowed", NULL);
	resp_free(&r);
	/* the refused PUTs changed nothing */
	GET(&r, "/v1/companies/initech/settings");
	CHECK_STR(jstr(&r, "webhookDisabledNotificationEmail", NULL), "ops@initech.example");
	resp_free(&r);
}

#define N_CONCURRENT 4

static int all_done(void *arg)
{
	struct resp *r = arg;
	int i;

	for (i = 0; i < N_CONCURRENT; i++) {
		if (!r[i].done)
			return 0;
	}
	return 1;
}

/* Concurrent PATCHes of one webhook: the compare-and-set makes each apply
 * to the state the previous one left, so none is lost. */
static void test_concurrent_patches(void)
{
	struct evhttp_connection *conns[N_CONCURRENT];
	struct resp r[N_CONCURRENT], got;
	char path[256], body[N_CONCURRENT][128];
	const char *id;
	yajl_val rev;
	int i;

	id = create("wayne", "{\"event\":\"Promotion.Deleted\",\"target\":\"https://wayne.example/0\"}");
	snprintf(path, sizeof(path), "/v1/companies/wayne/webhooks/%s", id);
	for (i = 0; i < N_CONCURRENT; i++) {
		snprintf(body[i], sizeof(body[i]),
			 "{\"target\":\"https://wayne.example/%d\"}", i + 1);
		conns[i] = http_start(&r[i], EVHTTP_REQ_PATCH, path, TOKEN, body[i],
				      strlen(body[i]));
	}
	CHECK(itest_run_until(base, all_done, r, 10000) >= 0);
	for (i = 0; i < N_CONCURRENT; i++) {
		CHECK_INT(r[i].code, 200);
		resp_free(&r[i]);
		evhttp_connection_free(conns[i]);
	}
	{
		redisReply *rr = itest_cmd(raw, "HGET {pw}:webhooks %s", id);

		memset(&got, 0, sizeof(got));
		got.json = rr->type == REDIS_REPLY_STRING ? yajl_tree_parse(rr->str, NULL, 0) : NULL;
		rev = jget(&got, "revision", NULL);
		CHECK(YAJL_IS_INTEGER(rev) && YAJL_GET_INTEGER(rev) == 1 + N_CONCURRENT);
		resp_free(&got);
		freeReplyObject(rr);
	}
}

/* An API whose Redis cannot be reached answers 503, and /readyz says so. */
static void test_redis_down(void)
{
	struct config bad = cfg;
	struct store *st;
	struct registry *reg;
	struct api *api;
	struct resp r;
	char err[256];
	int saved = port;

	bad.redis_port = 1;
	st = store_new(base, &bad, err, sizeof(err));
	reg = st ? registry_new(base, &bad, st, err, sizeof(err)) : NULL;
	api = reg ? api_new(base, &bad, st, reg, NULL, err, sizeof(err)) : NULL;
	CHECK(api != NULL);
	if (!api)
		return;
	port = api_port(api);
	GET(&r, "/v1/companies/acme/webhooks");
	CHECK_ERROR(&r, 503, "unavailable", NULL);
	resp_free(&r);
	SEND(&r, EVHTTP_REQ_POST, "/v1/companies/acme/webhooks",
	     "{\"event\":\"Promotion.Created\",\"target\":\"https://a.example/\"}");
	CHECK_INT(r.code, 503);
	resp_free(&r);
	http(&r, EVHTTP_REQ_GET, "/readyz", NULL, NULL, 0);
	CHECK_INT(r.code, 503);
	resp_free(&r);
	http(&r, EVHTTP_REQ_GET, "/healthz", NULL, NULL, 0);
	CHECK_INT(r.code, 200);
	resp_free(&r);
	api_free(api);
	registry_free(reg);
	store_free(st);
	port = saved;
}

static int all_ready(void *arg)
{
	struct registry *reg = arg;

	return registry_is_loaded(reg);
}

int main(void)
{
	struct api_hooks hooks = { .ready = fake_ready, .metrics = fake_metrics, .arg = NULL };
	struct store *st;
	struct registry *reg;
	struct api *api;
	char err[256];

	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	/* hiredis writes with write(2): a dropped connection must not kill
	 * the test (the service ignores SIGPIPE the same way) */
	signal(SIGPIPE, SIG_IGN);
	itest_config(&cfg, TEST_DB);
	base = event_base_new();
	if (!base)
		return 1;
	raw = itest_redis(&cfg);
	itest_cmd_ok(raw, "FLUSHDB");

	st = store_new(base, &cfg, err, sizeof(err));
	reg = st ? registry_new(base, &cfg, st, err, sizeof(err)) : NULL;
	api = reg ? api_new(base, &cfg, st, reg, &hooks, err, sizeof(err)) : NULL;
	if (!api) {
		fprintf(stderr, "setup: %s\n", err);
		return 1;
	}
	port = api_port(api);
	CHECK(port > 0);
	if (itest_run_until(base, all_ready, reg, 5000) < 0) {
		fprintf(stderr, "registry did not load\n");
		return 1;
	}

	test_ops_endpoints();
	test_auth();
	test_event_types();
	test_validation();
	test_body_limit();
	test_webhooks(reg);
	test_target_credentials(st);
	test_settings();
	test_attempts(st);
	test_concurrent_patches();
	test_redis_down();

	api_free(api);
	registry_free(reg);
	store_free(st);
	redisFree(raw);
	event_base_free(base);
	config_release(&cfg);
	return TEST_DONE();
}
