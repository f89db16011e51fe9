/*
 * Unit tests of render's XML body (contract section 4) and of render_body,
 * the one entry point for deliveries and samples.
 *
 * Golden files in tests/golden/render: NAME.xml for each case below, and
 * sample_TYPE.json / sample_TYPE.xml for the sample payload of every event
 * type in both formats (the exact bytes, trailing newline of the XML
 * included). PW_GOLDEN_UPDATE=1 rewrites them from the code; review the
 * diff before keeping it.
 *
 * Every XML body is parsed back with libxml2 as a receiver would (no
 * network, no recovery) and must be well-formed and namespace-well-formed;
 * where data has plain names and text, the parsed tree is compared with the
 * JSON body of the same input, member by member.
 */
#include "promo_webhooks/render.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/samples.h"
#include "testutil.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <yajl/yajl_tree.h>

#define DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define DATA(s) s, sizeof(s) - 1

struct render_case {
	const char *name;
	int plain;        /* names and text need no mapping: compare with JSON */
	struct render_input in;
};

static const struct render_case cases[] = {
	/* The JSON golden cases of test_render.c, as XML. */
	{ "created", 1, { "msg_0123456789abcdef0123456789abcdef",
			  EVENT_PROMOTION_CREATED, "acme",
			  "00112233445566778899aabbccddeeff",
			  "2026-11-28T08:35:38.123Z",
			  DATA("{\"promotionId\":\"P-42\",\"discount\":1.50,"
			       "\"huge\":123456789012345678901234567890}"),
			  PERIOD_NONE, 0 } },
	{ "import_spaced_data", 1, { "msg_1", EVENT_PRODUCT_IMPORT_COMPLETED,
				     "acme", "wh1", "2026-01-01T00:00:00Z",
				     DATA("  \n{\"rows\": 5}\t\n"), PERIOD_NONE,
				     0 } },
	{ "escaped_strings", 1, { "msg_\"q\"", EVENT_COUPON_CODES_IMPORT_COMPLETED,
				  "ac\\me\n", "wh/1", "2026-01-01T00:00:00Z",
				  DATA("{}"), PERIOD_NONE, 0 } },
	{ "starting_hours", 1, { "msg_2", EVENT_PROMOTION_STARTING_IN_PERIOD,
				 "acme", "wh2", "2026-12-01T07:00:00.000Z",
				 DATA("{\"promotionId\":\"P-42\","
				      "\"startDate\":\"2026-12-01T09:00:00+02:00\","
				      "\"n\":1e400}"),
				 PERIOD_HOURS, 2 } },
	{ "ending_days_replaces", 1, { "msg_3", EVENT_PROMOTION_ENDING_IN_PERIOD,
				       "acme", "wh3", "2026-12-30T23:59:59.500Z",
				       DATA("{ \"notificationPeriod\" : {\"x\":[1,{}]},"
					    " \"a\": [ true, null, \"\\u00e9\" ],"
					    " \"notificationPeriodValue\": 99,"
					    " \"inner\": {\"notificationPeriod\": \"kept\"} }"),
				       PERIOD_DAYS, 366 } },
	{ "starting_minutes_empty", 1, { "msg_4", EVENT_PROMOTION_STARTING_IN_PERIOD,
					 "acme", "wh4", "2026-01-01T00:00:00Z",
					 DATA("{}"), PERIOD_MINUTES, 15 } },
	/* Every kind of value. */
	{ "xml_values", 1, { "msg_5", EVENT_PROMOTION_UPDATED, "acme", "wh5",
			     "2026-01-01T00:00:00Z",
			     DATA("{\"n\":null,\"t\":true,\"f\":false,\"zero\":0,"
				  "\"neg\":-0.0,"
				  "\"huge\":123456789012345678901234567890123456789,"
				  "\"exp\":1e400,\"tiny\":-1.5E-400,\"empty\":\"\","
				  "\"obj\":{},\"arr\":[],"
				  "\"nested\":[[1,2],[],{\"a\":[null]},\"s\"],"
				  "\"deep\":{\"a\":{\"b\":{\"c\":\"d\"}}},"
				  "\"Item\":[\"x\"],"
				  "\"spaces\":\"  two  spaces  \"}"),
			     PERIOD_NONE, 0 } },
	/* Member names XML cannot take as they are. */
	{ "xml_hostile_names", 0, { "msg_6", EVENT_PROMOTION_UPDATED, "acme",
				    "wh6", "2026-01-01T00:00:00Z",
				    DATA("{\"2fa\":1,\"-x\":2,\".y\":3,\"\":4,"
					 "\"a b\":5,\"a:b\":6,"
					 "\"gr\xc3\xb6\xc3\x9f" "e\":7,"
					 "\"\xe6\x97\xa5\xe6\x9c\xac\":8,"
					 "\"xmlns\":9,\"xmlFoo\":10,"
					 "\"\\u0301x\":11,\"a\\u0000b\":12,"
					 "\"\xff\":13,\"Item\":14,"
					 "\"\xf0\x9f\x98\x80\":15,"
					 "\"a\xc2\xb7" "b\":16,\"\xc2\xb7\":17,"
					 "\"a\\tb\\n\":18,\"\xc3\":19,"
					 "\"<&>\\\"'=/\":20,\"xml:lang\":21,"
					 "\"a\xef\xbf\xbe" "b\":22}"),
				    PERIOD_NONE, 0 } },
	/* Text XML cannot carry as it is; markup to escape. */
	{ "xml_hostile_text", 0, { "msg_<&>\"'", EVENT_PROMOTION_UPDATED,
				   "ac\x01me\xff", "wh]]>",
				   "2026-01-01T00:00:00Z",
				   DATA("{\"ctl\":\"a\\u0001b\\u0000c\\u001fd\","
					"\"ws\":\"\\t\\n\\r \\r\\n\","
					"\"markup\":\"]]><&'\\\"<![CDATA[x]]>&amp;\","
					"\"bad\":\"\xff|\xc0\x80|\xf4\x90\x80\x80|\xe2\x82\","
					"\"nonchar\":\"\\uFFFE\\uFFFF\","
					"\"lone\":\"\\udc00\","
					"\"ok\":\"\xc3\xa9\xf0\x9f\x98\x80\\u2028\\u00e9\","
					"\"c1\":\"\\u007f\\u0085\","
					"\"list\":[\"\\u0002\",\"\xfe\"]}"),
				   PERIOD_NONE, 0 } },
};

/* ---- helpers ----------------------------------------------------------- */

/* The input of the case of that name. */
static const struct render_input *input(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(cases[i].name, name) == 0)
			return &cases[i].in;
	}
	fprintf(stderr, "no case %s\n", name);
	abort();
}

static int write_file(const char *path, const char *s, size_t len)
{
	FILE *f = fopen(path, "wb");
	int rc;

	if (!f)
		return -1;
	rc = fwrite(s, 1, len, f) == len ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* Compares body with the golden file name, or rewrites it. */
static void check_golden(const char *name, const struct buf *body)
{
	const char *update = getenv("PW_GOLDEN_UPDATE");
	char path[512], *want;

	test_golden_path(name, path, sizeof(path));
	if (update && *update == '1') {
		CHECK_INT(write_file(path, buf_str(body), body->len), 0);
		return;
	}
	want = test_read_file(path, NULL);
	CHECK(want != NULL);
	if (!want)
		fprintf(stderr, "missing golden file %s\n", path);
	CHECK_STR(buf_str(body), want ? want : "(missing golden)");
	free(want);
}

static int parse_errors;

static void on_parse_error(void *ctx, xmlErrorPtr e)
{
	parse_errors++;
	fprintf(stderr, "xml parse error: %s", e && e->message ? e->message : "?\n");
}

/* Parses body as a receiver would: no network, no recovery. Returns the
 * document only when it is well-formed and namespace-well-formed with no
 * error or warning at all. huge lifts libxml2's default limits. */
static xmlDocPtr parse_xml(const struct buf *body, int huge)
{
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
	xmlDocPtr doc;
	int ok;

	CHECK(ctxt != NULL);
	if (!ctxt)
		return NULL;
	parse_errors = 0;
	xmlSetStructuredErrorFunc(NULL, on_parse_error);
	doc = xmlCtxtReadMemory(ctxt, buf_str(body), (int)body->len, "body.xml",
				NULL, XML_PARSE_NONET | (huge ? XML_PARSE_HUGE : 0));
	ok = doc && ctxt->wellFormed && ctxt->nsWellFormed && parse_errors == 0;
	xmlFreeParserCtxt(ctxt);
	xmlSetStructuredErrorFunc(NULL, NULL);
	if (!ok) {
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

static xmlNodePtr first_element(xmlNodePtr n)
{
	while (n && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

static xmlNodePtr next_element(xmlNodePtr n)
{
	return n ? first_element(n->next) : NULL;
}

/* The child element of el with that name. */
static xmlNodePtr child(xmlNodePtr el, const char *name)
{
	xmlNodePtr c;

	for (c = el ? first_element(el->children) : NULL; c; c = next_element(c)) {
		if (strcmp((const char *)c->name, name) == 0)
			return c;
	}
	return NULL;
}

/* Checks that el's text content is want. */
static void check_text(xmlNodePtr el, const char *want, const char *what)
{
	xmlChar *got = el ? xmlNodeGetContent(el) : NULL;

	if (!got || strcmp((const char *)got, want) != 0)
		fprintf(stderr, "element %s:\n", what);
	CHECK_STR((const char *)got, want);
	xmlFree(got);
}

/* The shape every body has: the declaration, <WebhookEvent> with the six
 * children in order. Returns <Data>. */
static xmlNodePtr check_envelope(xmlDocPtr doc, const struct buf *body)
{
	static const char *const order[] = { "Id", "Event", "CompanyId",
					     "WebhookId", "OccurredAt", "Data" };
	xmlNodePtr root = xmlDocGetRootElement(doc), c;
	size_t i;

	CHECK(strncmp(buf_str(body), DECL, strlen(DECL)) == 0);
	CHECK(body->len > 0 && body->data[body->len - 1] == '\n');
	CHECK(root && strcmp((const char *)root->name, "WebhookEvent") == 0);
	CHECK(root && root->ns == NULL && root->nsDef == NULL &&
	      root->properties == NULL);
	c = root ? first_element(root->children) : NULL;
	for (i = 0; i < 6; i++) {
		CHECK(c != NULL);
		if (!c)
			return NULL;
		CHECK_STR((const char *)c->name, order[i]);
		if (i == 5)
			break;
		c = next_element(c);
	}
	CHECK(next_element(c) == NULL);
	return c;
}

/* Compares a JSON value with the element that renders it, for data whose
 * names and text need no mapping. */
static void same_value(yajl_val v, xmlNodePtr el, int depth)
{
	xmlNodePtr c;
	size_t i;

	CHECK(el != NULL && depth < 64);
	if (!el || depth >= 64)
		return;
	if (YAJL_IS_OBJECT(v)) {
		c = first_element(el->children);
		for (i = 0; i < v->u.object.len; i++, c = next_element(c)) {
			CHECK(c != NULL);
			if (!c)
				return;
			CHECK_STR((const char *)c->name, v->u.object.keys[i]);
			same_value(v->u.object.values[i], c, depth + 1);
		}
		CHECK(c == NULL);
	} else if (YAJL_IS_ARRAY(v)) {
		c = first_element(el->children);
		for (i = 0; i < v->u.array.len; i++, c = next_element(c)) {
			CHECK(c != NULL);
			if (!c)
				return;
			CHECK_STR((const char *)c->name, "Item");
			same_value(v->u.array.values[i], c, depth + 1);
		}
		CHECK(c == NULL);
	} else if (YAJL_IS_NULL(v)) {
		CHECK(el->children == NULL);
	} else if (YAJL_IS_TRUE(v)) {
		check_text(el, "true", (const char *)el->name);
	} else if (YAJL_IS_FALSE(v)) {
		check_text(el, "false", (const char *)el->name);
	} else if (YAJL_IS_NUMBER(v)) {
		check_text(el, v->u.number.r, (const char *)el->name);
	} else {
		check_text(el, YAJL_GET_STRING(v), (const char *)el->name);
	}
	if (!YAJL_IS_OBJECT(v) && !YAJL_IS_ARRAY(v))
		CHECK(first_element(el->children) == NULL);
}

/* The XML body says what the JSON body of the same input says. */
static void same_as_json(const struct render_input *in, xmlDocPtr doc,
			 const struct buf *xml)
{
	static const char *const members[] = { "id", "event", "companyId",
					       "webhookId", "occurredAt" };
	struct buf json;
	yajl_val root;
	xmlNodePtr data = check_envelope(doc, xml), c;
	size_t i;

	buf_init(&json, 0);
	CHECK_INT(render_json(in, &json), 0);
	root = yajl_tree_parse(buf_str(&json), NULL, 0);
	CHECK(YAJL_IS_OBJECT(root) && root->u.object.len == 6);
	if (YAJL_IS_OBJECT(root) && root->u.object.len == 6 && data) {
		c = first_element(xmlDocGetRootElement(doc)->children);
		for (i = 0; i < 5; i++, c = next_element(c)) {
			CHECK_STR(root->u.object.keys[i], members[i]);
			same_value(root->u.object.values[i], c, 0);
		}
		same_value(root->u.object.values[5], data, 0);
	}
	yajl_tree_free(root);
	buf_release(&json);
}

/* Renders in as XML (must succeed), parses it back, checks the envelope;
 * the caller frees the document. */
static xmlDocPtr render_parse(const struct render_input *in, struct buf *out)
{
	xmlDocPtr doc;

	buf_reset(out);
	CHECK_INT(render_xml(in, out), 0);
	doc = parse_xml(out, 0);
	CHECK(doc != NULL);
	if (!doc)
		fprintf(stderr, "not well-formed:\n%s\n", buf_str(out));
	else
		check_envelope(doc, out);
	return doc;
}

/* ---- tests ------------------------------------------------------------- */

static void test_golden(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[128];
		struct buf out;
		xmlDocPtr doc;

		buf_init(&out, 0);
		doc = render_parse(&cases[i].in, &out);
		snprintf(name, sizeof(name), "render/%s.xml", cases[i].name);
		check_golden(name, &out);
		if (doc && cases[i].plain)
			same_as_json(&cases[i].in, doc, &out);
		xmlFreeDoc(doc);
		buf_release(&out);
	}
}

/* Every sample payload, both formats, against golden files; the XML one
 * parsed back and compared with the JSON one. */
static void test_samples(void)
{
	int t;

	for (t = 0; t < EVENT_TYPE_COUNT; t++) {
		enum event_type et = (enum event_type)t;
		char name[128];
		struct buf json, xml;
		xmlDocPtr doc;
		yajl_val root;

		buf_init(&json, 0);
		buf_init(&xml, 0);
		CHECK_INT(samples_render(et, SAMPLES_COMPANY_ID, SAMPLES_WEBHOOK_ID,
					 PERIOD_NONE, 0, PAYLOAD_JSON, &json),
			  SAMPLES_OK);
		CHECK_INT(samples_render(et, SAMPLES_COMPANY_ID, SAMPLES_WEBHOOK_ID,
					 PERIOD_NONE, 0, PAYLOAD_XML, &xml),
			  SAMPLES_OK);
		snprintf(name, sizeof(name), "render/sample_%s.json",
			 event_type_name(et));
		check_golden(name, &json);
		snprintf(name, sizeof(name), "render/sample_%s.xml",
			 event_type_name(et));
		check_golden(name, &xml);

		doc = parse_xml(&xml, 0);
		CHECK(doc != NULL);
		root = yajl_tree_parse(buf_str(&json), NULL, 0);
		CHECK(YAJL_IS_OBJECT(root) && root->u.object.len == 6);
		if (doc && YAJL_IS_OBJECT(root) && root->u.object.len == 6) {
			xmlNodePtr data = check_envelope(doc, &xml);
			xmlNodePtr c = first_element(xmlDocGetRootElement(doc)->children);
			size_t i;

			for (i = 0; i < 5; i++, c = next_element(c))
				same_value(root->u.object.values[i], c, 0);
			same_value(root->u.object.values[5], data, 0);
			if (event_type_is_derived(et)) {
				check_text(child(data, "notificationPeriod"), "Hours",
					   "notificationPeriod");
				check_text(child(data, "notificationPeriodValue"), "2",
					   "notificationPeriodValue");
			}
		}
		yajl_tree_free(root);
		xmlFreeDoc(doc);
		buf_release(&json);
		buf_release(&xml);
	}
}

/* A per-webhook sample: the webhook's own period, in XML. */
static void test_sample_for_webhook(void)
{
	struct buf out;
	xmlDocPtr doc;
	xmlNodePtr data;

	buf_init(&out, 0);
	CHECK_INT(samples_render(EVENT_PROMOTION_ENDING_IN_PERIOD, "globex",
				 "0123456789abcdef0123456789abcdef", PERIOD_DAYS, 3,
				 PAYLOAD_XML, &out), SAMPLES_OK);
	check_golden("render/sample_webhook_ending_days.xml", &out);
	doc = parse_xml(&out, 0);
	CHECK(doc != NULL);
	if (doc) {
		data = check_envelope(doc, &out);
		check_text(child(xmlDocGetRootElement(doc), "CompanyId"), "globex",
			   "CompanyId");
		check_text(child(data, "notificationPeriod"), "Days",
			   "notificationPeriod");
		check_text(child(data, "notificationPeriodValue"), "3",
			   "notificationPeriodValue");
		check_text(child(data, "promotionId"), "PROMO-2025-SUMMER-20",
			   "promotionId");
		check_text(child(child(data, "channels"), "Item"), "Web",
			   "channels/Item");
	}
	xmlFreeDoc(doc);
	buf_release(&out);
}

static void test_hostile_names(void)
{
	static const char *const want[] = {
		"_2fa", "_-x", "_.y", "_", "a_b", "a_b",
		"gr\xc3\xb6\xc3\x9f" "e", "\xe6\x97\xa5\xe6\x9c\xac",
		"xmlns", "xmlFoo", "_\xcc\x81x", "a_b", "_", "Item",
		"\xf0\x9f\x98\x80", "a\xc2\xb7" "b", "_\xc2\xb7", "a_b_", "_",
		"_______", "xml_lang", "a_b",
	};
	struct buf out;
	xmlDocPtr doc;
	xmlNodePtr c;
	size_t i;

	buf_init(&out, 0);
	doc = render_parse(input("xml_hostile_names"), &out);
	c = doc ? first_element(check_envelope(doc, &out)->children) : NULL;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++, c = next_element(c)) {
		char value[8];

		CHECK(c != NULL);
		if (!c)
			break;
		CHECK_STR((const char *)c->name, want[i]);
		CHECK(c->ns == NULL);
		snprintf(value, sizeof(value), "%zu", i + 1);
		check_text(c, value, want[i]);
	}
	CHECK(c == NULL);
	xmlFreeDoc(doc);
	buf_release(&out);
}

#define FFFD "\xef\xbf\xbd"

static void test_hostile_text(void)
{
	struct buf out;
	xmlDocPtr doc;
	xmlNodePtr root, data;

	buf_init(&out, 0);
	doc = render_parse(input("xml_hostile_text"), &out);
	if (!doc) {
		buf_release(&out);
		return;
	}
	root = xmlDocGetRootElement(doc);
	data = check_envelope(doc, &out);
	check_text(child(root, "Id"), "msg_<&>\"'", "Id");
	check_text(child(root, "CompanyId"), "ac" FFFD "me" FFFD, "CompanyId");
	check_text(child(root, "WebhookId"), "wh]]>", "WebhookId");
	check_text(child(data, "ctl"), "a" FFFD "b" FFFD "c" FFFD "d", "ctl");
	/* CR survives as &#13; instead of being normalised away. */
	check_text(child(data, "ws"), "\t\n\r \r\n", "ws");
	CHECK(strstr(buf_str(&out), "<ws>\t\n&#13; &#13;\n</ws>") != NULL);
	check_text(child(data, "markup"), "]]><&'\"<![CDATA[x]]>&amp;", "markup");
	check_text(child(data, "bad"),
		   FFFD "|" FFFD FFFD "|" FFFD FFFD FFFD FFFD "|" FFFD FFFD, "bad");
	check_text(child(data, "nonchar"), FFFD FFFD, "nonchar");
	/* yajl turns a lone \udc00 into its 3-byte (invalid) UTF-8 form. */
	check_text(child(data, "lone"), FFFD FFFD FFFD, "lone");
	check_text(child(data, "ok"),
		   "\xc3\xa9\xf0\x9f\x98\x80\xe2\x80\xa8\xc3\xa9", "ok");
	/* DEL and the C1 controls are XML 1.0 characters. */
	check_text(child(data, "c1"), "\x7f\xc2\x85", "c1");
	check_text(child(data, "list"), FFFD FFFD, "list");
	xmlFreeDoc(doc);
	buf_release(&out);
}

/* data nested `depth` containers deep (data itself counted), innermost
 * arrays when arrays, else objects. */
static char *nested(size_t depth, int arrays)
{
	struct buf b;
	size_t i;

	buf_init(&b, (size_t)64 << 20);
	buf_addc(&b, '{');
	for (i = 1; i < depth; i++)
		buf_adds(&b, arrays ? (i == 1 ? "\"a\":[" : "[") : "\"a\":{");
	for (i = 1; i < depth; i++)
		buf_addc(&b, arrays ? ']' : '}');
	buf_addc(&b, '}');
	CHECK(!b.failed);
	return buf_detach(&b, NULL);
}

static void test_depth(void)
{
	struct render_input in = *input("created");
	struct buf out;
	char *data;
	xmlDocPtr doc;
	int arrays;

	buf_init(&out, 0);
	for (arrays = 0; arrays <= 1; arrays++) {
		/* At the limit: renders, and parses within libxml2's
		 * default limits. */
		data = nested(RENDER_MAX_DEPTH, arrays);
		in.data = data;
		in.data_len = strlen(data);
		doc = render_parse(&in, &out);
		CHECK(doc != NULL);
		xmlFreeDoc(doc);
		free(data);

		data = nested(RENDER_MAX_DEPTH + 1, arrays);
		in.data = data;
		in.data_len = strlen(data);
		buf_reset(&out);
		CHECK_INT(render_xml(&in, &out), -1);
		free(data);

		/* Far too deep, closed and unclosed: a clean failure. */
		data = nested(1000000, arrays);
		in.data = data;
		in.data_len = strlen(data);
		buf_reset(&out);
		CHECK_INT(render_xml(&in, &out), -1);
		in.data_len = strlen(data) / 2;
		buf_reset(&out);
		CHECK_INT(render_xml(&in, &out), -1);
		free(data);
	}
	/* A replaced period member is dropped, but its depth still counts. */
	in = *input("ending_days_replaces");
	{
		struct buf b;
		size_t i;

		buf_init(&b, 0);
		buf_adds(&b, "{\"notificationPeriod\":");
		for (i = 0; i < RENDER_MAX_DEPTH; i++)
			buf_addc(&b, '[');
		for (i = 0; i < RENDER_MAX_DEPTH; i++)
			buf_addc(&b, ']');
		buf_addc(&b, '}');
		in.data = buf_str(&b);
		in.data_len = b.len;
		buf_reset(&out);
		CHECK_INT(render_xml(&in, &out), -1);
		buf_release(&b);
	}
	buf_release(&out);
}

/* Decode and render agree on the depth limit: whatever decodes, renders. */
static void test_decode_depth(void)
{
	static const struct event_header headers[] = {
		{ "ce_specversion", "1.0", 3 }, { "ce_id", "e1", 2 },
		{ "ce_source", "s", 1 },
		{ "ce_type", "Product.ImportCompleted", 23 },
		{ "ce_time", "2026-01-01T00:00:00Z", 20 },
		{ "ce_companyid", "acme", 4 },
	};
	int arrays, structured;

	for (structured = 0; structured <= 1; structured++) {
		for (arrays = 0; arrays <= 1; arrays++) {
			char *data = nested(RENDER_MAX_DEPTH, arrays);
			char *deeper = nested(RENDER_MAX_DEPTH + 1, arrays);
			struct render_input in;
			struct buf value, out;
			struct event ev;
			char err[128];
			xmlDocPtr doc;

			buf_init(&value, 0);
			buf_init(&out, 0);
			if (structured)
				buf_addf(&value, "{\"specversion\":\"1.0\",\"id\":\"e1\","
					 "\"source\":\"s\",\"type\":"
					 "\"Product.ImportCompleted\",\"time\":"
					 "\"2026-01-01T00:00:00Z\",\"companyid\":"
					 "\"acme\",\"data\":%s}", data);
			else
				buf_adds(&value, data);
			CHECK_INT(event_decode(value.data, value.len, headers,
					       structured ? 0 : 6, &ev, err,
					       sizeof(err)), 0);
			memset(&in, 0, sizeof(in));
			in.message_id = "m";
			in.event = ev.type;
			in.company_id = ev.company_id ? ev.company_id : "";
			in.webhook_id = "w";
			in.occurred_at = ev.time ? ev.time : "";
			in.data = ev.data;
			in.data_len = ev.data_len;
			doc = render_parse(&in, &out);
			CHECK(doc != NULL);
			xmlFreeDoc(doc);
			event_release(&ev);

			buf_reset(&value);
			if (structured)
				buf_addf(&value, "{\"specversion\":\"1.0\",\"data\":%s}",
					 deeper);
			else
				buf_adds(&value, deeper);
			CHECK_INT(event_decode(value.data, value.len, headers,
					       structured ? 0 : 6, &ev, err,
					       sizeof(err)), -1);
			CHECK_STR(err, "data nested too deeply");
			free(data);
			free(deeper);
			buf_release(&value);
			buf_release(&out);
		}
	}
}

/* Decode and render agree on what is JSON, trailing bytes included: yajl
 * 2.1.0 alone would let an unfinished token after the value pass. */
static void test_trailing_bytes(void)
{
	static const char *const tails[] = {
		"\"", "\"abc", " \"x}", "\"\\", "{}", "[", "1", "tru", "\"a\":1}",
	};
	size_t i;

	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		struct render_input in = *input("starting_hours");
		struct buf value, out;
		struct event ev;
		char err[128];

		buf_init(&value, 0);
		buf_init(&out, 0);
		buf_addf(&value, "{\"specversion\":\"1.0\",\"id\":\"e\","
			 "\"source\":\"s\",\"type\":\"Product.ImportCompleted\","
			 "\"time\":\"2026-01-01T00:00:00Z\",\"companyid\":\"c\","
			 "\"data\":{}}%s", tails[i]);
		CHECK_INT(event_decode(value.data, value.len, NULL, 0, &ev, err,
				       sizeof(err)), -1);
		CHECK_STR(err, "not JSON");

		buf_reset(&value);
		buf_addf(&value, "{\"a\":1}%s", tails[i]);
		in.data = value.data;
		in.data_len = value.len;
		CHECK_INT(render_xml(&in, &out), -1);
		buf_reset(&out);
		CHECK_INT(render_json(&in, &out), -1);
		buf_release(&value);
		buf_release(&out);
	}
}

static void test_invalid(void)
{
	struct render_input in = *input("created");
	struct buf out;

	buf_init(&out, 0);

#define EXPECT_FAIL(mutation)                                                  \
	do {                                                                   \
		in = *input("created");                                       \
		mutation;                                                      \
		buf_reset(&out);                                               \
		CHECK_INT(render_xml(&in, &out), -1);                          \
	} while (0)

	EXPECT_FAIL(in.data = "[1]"; in.data_len = 3);
	EXPECT_FAIL(in.data = "\"x\""; in.data_len = 3);
	EXPECT_FAIL(in.data = ""; in.data_len = 0);
	EXPECT_FAIL(in.data = "   "; in.data_len = 3);
	EXPECT_FAIL(in.data = "{"; in.data_len = 1);
	EXPECT_FAIL(in.data = "{}{}"; in.data_len = 4);
	EXPECT_FAIL(in.data = "{\"a\":}"; in.data_len = 6);
	EXPECT_FAIL(in.data = "{\"a\":1,}"; in.data_len = 8);
	EXPECT_FAIL(in.data = "{\"a\" 1}"; in.data_len = 7);
	EXPECT_FAIL(in.data = "{1:2}"; in.data_len = 5);
	EXPECT_FAIL(in.data = "{\"a\":01}"; in.data_len = 8);
	EXPECT_FAIL(in.data = "{\"a\":\"\\x\"}"; in.data_len = 10);
	EXPECT_FAIL(in.data = "{/*c*/}"; in.data_len = 7);
	/* JSON has no raw control characters in strings: escaped ones are
	 * replaced (xml_hostile_text), raw ones make data not JSON. */
	EXPECT_FAIL(in.data = "{\"a\":\"\x01\"}"; in.data_len = 9);
	EXPECT_FAIL(in.data = NULL; in.data_len = 0);
	EXPECT_FAIL(in.message_id = NULL);
	EXPECT_FAIL(in.company_id = NULL);
	EXPECT_FAIL(in.webhook_id = NULL);
	EXPECT_FAIL(in.occurred_at = NULL);
	EXPECT_FAIL(in.event = EVENT_TYPE_COUNT);
	EXPECT_FAIL(in.event = (enum event_type)-1);
	EXPECT_FAIL(in.period = (enum period_unit)7);
	EXPECT_FAIL(in.period = PERIOD_HOURS; in.data = "{\"a\":}"; in.data_len = 6);
	/* The length counts, not a NUL: "{}" then a NUL byte is not JSON. */
	EXPECT_FAIL(in.data = "{}\0}"; in.data_len = 4);
	buf_release(&out);
}

/* Every cap short of the body's length fails (quietly), the exact length
 * succeeds with the same bytes, and a body appends to what out holds. */
static void test_caps_and_append(void)
{
	struct buf full, small;
	size_t max;

	buf_init(&full, 0);
	CHECK_INT(render_xml(input("xml_values"), &full), 0);
	for (max = 1; max < full.len; max++) {
		buf_init(&small, max);
		CHECK_INT(render_xml(input("xml_values"), &small), -1);
		CHECK(small.failed);
		buf_release(&small);
	}
	buf_init(&small, full.len);
	CHECK_INT(render_xml(input("xml_values"), &small), 0);
	CHECK_STR(buf_str(&small), buf_str(&full));
	buf_release(&small);

	buf_init(&small, 0);
	buf_adds(&small, "prefix:");
	CHECK_INT(render_xml(input("starting_minutes_empty"), &small), 0);
	CHECK(strncmp(buf_str(&small), "prefix:" DECL, 7 + strlen(DECL)) == 0);
	CHECK_STR(buf_str(&small) + 7,
		  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		  "<WebhookEvent><Id>msg_4</Id>"
		  "<Event>Promotion.StartingInPeriod</Event>"
		  "<CompanyId>acme</CompanyId><WebhookId>wh4</WebhookId>"
		  "<OccurredAt>2026-01-01T00:00:00Z</OccurredAt>"
		  "<Data><notificationPeriod>Minutes</notificationPeriod>"
		  "<notificationPeriodValue>15</notificationPeriodValue></Data>"
		  "</WebhookEvent>\n");
	buf_release(&small);
	buf_release(&full);
}

/* render_body picks the renderer and the Content-Type. */
static void test_render_body(void)
{
	const struct render_input *in = input("starting_hours");
	struct buf a, b;
	const char *ct;

	buf_init(&a, 0);
	buf_init(&b, 0);

	ct = NULL;
	CHECK_INT(render_body(PAYLOAD_XML, in, &a, &ct), 0);
	CHECK_STR(ct, "application/xml");
	CHECK_INT(render_xml(in, &b), 0);
	CHECK_STR(buf_str(&a), buf_str(&b));

	buf_reset(&a);
	buf_reset(&b);
	ct = NULL;
	CHECK_INT(render_body(PAYLOAD_JSON, in, &a, &ct), 0);
	CHECK_STR(ct, "application/json");
	CHECK_INT(render_json(in, &b), 0);
	CHECK_STR(buf_str(&a), buf_str(&b));

	buf_reset(&a);
	ct = NULL;
	CHECK_INT(render_body(PAYLOAD_DEFAULT, in, &a, &ct), 0);
	CHECK_STR(ct, "application/json");
	CHECK_STR(buf_str(&a), buf_str(&b));

	buf_reset(&a);
	CHECK_INT(render_body(PAYLOAD_XML, in, &a, NULL), 0);
	CHECK_INT(render_body((enum payload_type)3, in, &a, &ct), -1);
	CHECK_INT(render_body((enum payload_type)-1, in, &a, &ct), -1);
	CHECK_STR(render_content_type(PAYLOAD_XML), "application/xml");
	CHECK_STR(render_content_type(PAYLOAD_JSON), "application/json");
	CHECK_STR(render_content_type(PAYLOAD_DEFAULT), "application/json");
	buf_release(&a);
	buf_release(&b);
}

/* A decoded event renders as XML with its values as they came. */
static void test_from_decode(void)
{
	static const char value[] =
		"{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"s\","
		"\"type\":\"Promotion.Updated\",\"time\":\"2026-01-01T00:00:00+01:00\","
		"\"companyid\":\"acme\",\"data\":{ \"promotionId\" : \"P\", "
		"\"x\": 0.10, \"y\": [1e5], \"s\": \"a\\u0000\\u0007<b>\" }}";
	struct render_input in;
	struct event ev;
	struct buf out;
	char err[128];
	xmlDocPtr doc;

	CHECK_INT(event_decode(value, sizeof(value) - 1, NULL, 0, &ev, err,
			       sizeof(err)), 0);
	memset(&in, 0, sizeof(in));
	in.message_id = "msg_x";
	in.event = ev.type;
	in.company_id = ev.company_id;
	in.webhook_id = "w";
	in.occurred_at = ev.time;
	in.data = ev.data;
	in.data_len = ev.data_len;
	buf_init(&out, 0);
	doc = render_parse(&in, &out);
	xmlFreeDoc(doc);
	CHECK_STR(buf_str(&out),
		  DECL "<WebhookEvent><Id>msg_x</Id><Event>Promotion.Updated</Event>"
		  "<CompanyId>acme</CompanyId><WebhookId>w</WebhookId>"
		  "<OccurredAt>2026-01-01T00:00:00+01:00</OccurredAt>"
		  "<Data><promotionId>P</promotionId><x>0.10</x>"
		  "<y><Item>1e5</Item></y><s>a" FFFD FFFD "&lt;b&gt;</s></Data>"
		  "</WebhookEvent>\n");
	buf_release(&out);
	event_release(&ev);
}

int main(void)
{
	xmlInitParser();
	test_golden();
	test_samples();
	test_sample_for_webhook();
	test_hostile_names();
	test_hostile_text();
	test_depth();
	test_decode_depth();
	test_trailing_bytes();
	test_invalid();
	test_caps_and_append();
	test_render_body();
	test_from_decode();
	xmlCleanupParser();
	return TEST_DONE();
}
