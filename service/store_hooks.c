/*
 * store_hooks: webhooks and company settings in Redis, and the change feed
 * that keeps every replica's cache current. A domain store on the store's
 * Redis link; see include/promo_webhooks/store_hooks.h for the keys.
 * Scripts: service/lua/webhook_*.lua, settings_put.lua, load_all.lua.
 */
#include "promo_webhooks/store_hooks.h"
#include "promo_webhooks/buf.h"
#include "promo_webhooks/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_scripts.h"

#define DOC_MAX ((size_t)4 << 20) /* the link's cap on one command */

void store_snapshot_free(struct store_snapshot *snap)
{
	size_t i;

	if (!snap)
		return;
	for (i = 0; i < snap->n_hooks; i++)
		webhook_release(&snap->hooks[i]);
	free(snap->hooks);
	for (i = 0; i < snap->n_companies; i++) {
		free(snap->companies[i].company_id);
		company_settings_release(&snap->companies[i].settings);
	}
	free(snap->companies);
	free(snap);
}

/* ---- writes ---- */

/* A stored document as an argument; a document over the cap fails the
 * command. */
static void arg_doc(struct rlink_cmd *cmd, struct buf *doc)
{
	if (doc->failed)
		rlink_cmd_fail(cmd);
	else
		rlink_cmd_arg(cmd, buf_str(doc), doc->len);
}

int store_webhook_create(struct store *st, const struct webhook *wh,
			 store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("webhook_create", &lua_webhook_create);
	struct webhook copy = *wh;
	struct buf doc;

	if (!cmd)
		return -1;
	copy.revision = 1;
	buf_init(&doc, DOC_MAX);
	webhook_to_storage(&copy, &doc);
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("company:"), wh->company_id, ":webhooks", NULL);
	rlink_cmd_key(cmd, STORE_KEY("version"), NULL);
	rlink_cmd_args(cmd, wh->id);
	arg_doc(cmd, &doc);
	rlink_cmd_args(cmd, store_channel(st));
	buf_release(&doc);
	return store_start_write(st, cmd, cb, arg);
}

int store_webhook_replace(struct store *st, const struct webhook *wh,
			  int clear_failures, store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("webhook_replace", &lua_webhook_replace);
	struct webhook copy = *wh;
	struct buf doc;

	if (!cmd)
		return -1;
	copy.revision = wh->revision + 1;
	buf_init(&doc, DOC_MAX);
	webhook_to_storage(&copy, &doc);
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("company:"), wh->company_id, ":webhooks", NULL);
	rlink_cmd_key(cmd, STORE_KEY("version"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("failures:"), wh->id, NULL);
	rlink_cmd_args(cmd, wh->id);
	arg_doc(cmd, &doc);
	rlink_cmd_args(cmd, store_channel(st));
	rlink_cmd_argnum(cmd, wh->revision);
	rlink_cmd_args(cmd, clear_failures ? "1" : "0");
	buf_release(&doc);
	return store_start_write(st, cmd, cb, arg);
}

int store_webhook_delete(struct store *st, const char *company_id,
			 const char *id, store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("webhook_delete", &lua_webhook_delete);

	if (!cmd)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("company:"), company_id, ":webhooks", NULL);
	rlink_cmd_key(cmd, STORE_KEY("version"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("failures:"), id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("attempts:"), id, NULL);
	rlink_cmd_args(cmd, id);
	rlink_cmd_args(cmd, store_channel(st));
	return store_start_write(st, cmd, cb, arg);
}

int store_settings_put(struct store *st, const char *company_id,
		       const struct company_settings *s, store_write_cb *cb,
		       void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("settings_put", &lua_settings_put);
	struct buf doc;

	if (!cmd)
		return -1;
	buf_init(&doc, DOC_MAX);
	company_settings_to_json(s, &doc);
	rlink_cmd_key(cmd, STORE_KEY("settings"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("version"), NULL);
	rlink_cmd_args(cmd, company_id);
	arg_doc(cmd, &doc);
	rlink_cmd_args(cmd, store_channel(st));
	buf_release(&doc);
	return store_start_write(st, cmd, cb, arg);
}

/* ---- reading one webhook ---- */

struct get_ctx {
	store_webhook_cb *cb;
	void *arg;
	char *company_id; /* the company it must belong to */
};

static void on_get(void *arg, enum rlink_status rs, const struct rlink_reply *r)
{
	struct get_ctx *g = arg;
	enum store_status status = store_status_from(rs);
	struct webhook wh;
	const char *p;
	size_t len;

	webhook_init(&wh);
	if (rs == RLINK_OK) {
		p = rlink_reply_str(r, &len);
		if (rlink_reply_type(r) == RLINK_NIL) {
			status = STORE_NOT_FOUND;
		} else if (!p || webhook_from_storage(&wh, p, len) < 0) {
			log_warn("stored webhook unreadable", "company=%s",
				 g->company_id);
			status = STORE_ERROR;
		} else if (strcmp(wh.company_id, g->company_id) != 0) {
			/* Another company's webhook is not there for this one. */
			status = STORE_NOT_FOUND;
		}
	}
	if (rs != RLINK_CANCELLED)
		g->cb(g->arg, status, status == STORE_OK ? &wh : NULL);
	webhook_release(&wh);
	free(g->company_id);
	free(g);
}

int store_webhook_get(struct store *st, const char *company_id,
		      const char *id, store_webhook_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("webhook_get", NULL);
	struct get_ctx *g = calloc(1, sizeof(*g));

	if (!cmd || !g || !(g->company_id = strdup(company_id))) {
		rlink_cmd_free(cmd);
		free(g);
		return -1;
	}
	g->cb = cb;
	g->arg = arg;
	rlink_cmd_args(cmd, "HGET");
	rlink_cmd_args(cmd, STORE_KEY("webhooks"));
	rlink_cmd_args(cmd, id);
	if (store_start(st, cmd, on_get, g, arg) < 0) {
		free(g->company_id);
		free(g);
		return -1;
	}
	return 0;
}

/* ---- lists and snapshots ---- */

static int cmp_hooks_created(const void *a, const void *b)
{
	const struct webhook *x = a, *y = b;

	if (x->created_at_ms != y->created_at_ms)
		return x->created_at_ms < y->created_at_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Parses an array of stored webhook documents; unreadable ones are logged
 * and skipped, so one bad document cannot hide every other webhook. */
static int parse_hooks(const struct rlink_reply *r, struct webhook **out,
		       size_t *n)
{
	size_t i, k = 0, count = rlink_reply_count(r);
	struct webhook *hooks;

	*out = NULL;
	*n = 0;
	if (rlink_reply_type(r) != RLINK_ARRAY)
		return -1;
	if (count == 0)
		return 0;
	hooks = calloc(count, sizeof(*hooks));
	if (!hooks)
		return -1;
	for (i = 0; i < count; i++) {
		size_t len;
		const char *p = rlink_reply_str(rlink_reply_at(r, i), &len);

		webhook_init(&hooks[k]);
		if (!p || webhook_from_storage(&hooks[k], p, len) < 0) {
			log_warn("stored webhook unreadable, skipped",
				 "index=%zu", i);
			continue;
		}
		k++;
	}
	*out = hooks;
	*n = k;
	return 0;
}

static void free_hooks(struct webhook *hooks, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		webhook_release(&hooks[i]);
	free(hooks);
}

struct list_ctx {
	store_list_cb *cb;
	void *arg;
};

static void on_list(void *arg, enum rlink_status rs, const struct rlink_reply *r)
{
	struct list_ctx *l = arg;
	struct webhook *hooks = NULL;
	size_t n = 0;

	if (rs == RLINK_CANCELLED) {
		free(l);
		return;
	}
	if (rs != RLINK_OK) {
		l->cb(l->arg, store_status_from(rs), NULL, 0);
	} else if (parse_hooks(r, &hooks, &n) < 0) {
		l->cb(l->arg, STORE_ERROR, NULL, 0);
	} else {
		if (n > 1)
			qsort(hooks, n, sizeof(*hooks), cmp_hooks_created);
		l->cb(l->arg, STORE_OK, hooks, n);
		free_hooks(hooks, n);
	}
	free(l);
}

int store_webhook_list(struct store *st, const char *company_id,
		       store_list_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("webhook_list", &lua_webhook_list);
	struct list_ctx *l = malloc(sizeof(*l));

	if (!cmd || !l) {
		rlink_cmd_free(cmd);
		free(l);
		return -1;
	}
	l->cb = cb;
	l->arg = arg;
	rlink_cmd_key(cmd, STORE_KEY("company:"), company_id, ":webhooks", NULL);
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	if (store_start(st, cmd, on_list, l, arg) < 0) {
		free(l);
		return -1;
	}
	return 0;
}

static struct store_snapshot *parse_snapshot(const struct rlink_reply *r)
{
	const struct rlink_reply *kv = rlink_reply_at(r, 2);
	struct store_snapshot *snap;
	size_t i, nkv;

	if (rlink_reply_count(r) != 3 || rlink_reply_type(kv) != RLINK_ARRAY)
		return NULL;
	nkv = rlink_reply_count(kv);
	snap = calloc(1, sizeof(*snap));
	if (!snap)
		return NULL;
	if (rlink_reply_int64(rlink_reply_at(r, 0), &snap->version) < 0 ||
	    parse_hooks(rlink_reply_at(r, 1), &snap->hooks, &snap->n_hooks) < 0)
		goto fail;
	if (nkv / 2 > 0) {
		snap->companies = calloc(nkv / 2, sizeof(*snap->companies));
		if (!snap->companies)
			goto fail;
	}
	for (i = 0; i + 1 < nkv; i += 2) {
		struct store_company *c = &snap->companies[snap->n_companies];
		size_t klen, vlen;
		const char *k = rlink_reply_str(rlink_reply_at(kv, i), &klen);
		const char *v = rlink_reply_str(rlink_reply_at(kv, i + 1), &vlen);

		if (!k || !v)
			goto fail;
		company_settings_init(&c->settings);
		if (company_settings_from_json(&c->settings, v, vlen) < 0) {
			log_warn("stored settings unreadable, skipped", "index=%zu", i / 2);
			continue;
		}
		c->company_id = strndup(k, klen);
		if (!c->company_id) {
			company_settings_release(&c->settings);
			goto fail;
		}
		snap->n_companies++;
	}
	return snap;
fail:
	store_snapshot_free(snap);
	return NULL;
}

struct snapshot_ctx {
	store_snapshot_cb *cb;
	void *arg;
};

static void on_snapshot(void *arg, enum rlink_status rs,
			const struct rlink_reply *r)
{
	struct snapshot_ctx *s = arg;
	struct store_snapshot *snap = NULL;
	enum store_status status = store_status_from(rs);

	if (rs == RLINK_OK) {
		snap = parse_snapshot(r);
		if (!snap) {
			log_warn("redis snapshot unreadable", "op=load_all");
			status = STORE_ERROR;
		}
	}
	if (rs != RLINK_CANCELLED)
		s->cb(s->arg, status, snap);
	else
		store_snapshot_free(snap);
	free(s);
}

int store_load_all(struct store *st, store_snapshot_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("load_all", &lua_load_all);
	struct snapshot_ctx *s = malloc(sizeof(*s));

	if (!cmd || !s) {
		rlink_cmd_free(cmd);
		free(s);
		return -1;
	}
	s->cb = cb;
	s->arg = arg;
	rlink_cmd_key(cmd, STORE_KEY("version"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("webhooks"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("settings"), NULL);
	if (store_start(st, cmd, on_snapshot, s, arg) < 0) {
		free(s);
		return -1;
	}
	return 0;
}

/* ---- settings and the version ---- */

struct settings_ctx {
	store_settings_cb *cb;
	void *arg;
	char *company_id; /* for logs */
};

static void on_settings(void *arg, enum rlink_status rs,
			const struct rlink_reply *r)
{
	struct settings_ctx *g = arg;
	enum store_status status = store_status_from(rs);
	struct company_settings s;
	const char *p;
	size_t len;

	company_settings_init(&s);
	if (rs == RLINK_OK) {
		p = rlink_reply_str(r, &len);
		if (p) {
			if (company_settings_from_json(&s, p, len) < 0) {
				log_warn("stored settings unreadable",
					 "company=%s", g->company_id);
				status = STORE_ERROR;
			}
		} else if (rlink_reply_type(r) != RLINK_NIL) {
			status = STORE_ERROR;
		}
	}
	if (rs != RLINK_CANCELLED)
		g->cb(g->arg, status, status == STORE_OK ? &s : NULL);
	company_settings_release(&s);
	free(g->company_id);
	free(g);
}

int store_settings_get(struct store *st, const char *company_id,
		       store_settings_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("settings_get", NULL);
	struct settings_ctx *g = calloc(1, sizeof(*g));

	if (!cmd || !g || !(g->company_id = strdup(company_id))) {
		rlink_cmd_free(cmd);
		free(g);
		return -1;
	}
	g->cb = cb;
	g->arg = arg;
	rlink_cmd_args(cmd, "HGET");
	rlink_cmd_args(cmd, STORE_KEY("settings"));
	rlink_cmd_args(cmd, company_id);
	if (store_start(st, cmd, on_settings, g, arg) < 0) {
		free(g->company_id);
		free(g);
		return -1;
	}
	return 0;
}

struct version_ctx {
	store_version_cb *cb;
	void *arg;
};

static void on_version(void *arg, enum rlink_status rs,
		       const struct rlink_reply *r)
{
	struct version_ctx *v = arg;
	enum store_status status = store_status_from(rs);
	int64_t version = 0;

	if (rs == RLINK_OK && rlink_reply_int64(r, &version) < 0) {
		status = STORE_ERROR;
		version = 0;
	}
	if (rs != RLINK_CANCELLED)
		v->cb(v->arg, status, status == STORE_OK ? version : 0);
	free(v);
}

int store_version_get(struct store *st, store_version_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("version_get", NULL);
	struct version_ctx *v = malloc(sizeof(*v));

	if (!cmd || !v) {
		rlink_cmd_free(cmd);
		free(v);
		return -1;
	}
	v->cb = cb;
	v->arg = arg;
	rlink_cmd_args(cmd, "GET");
	rlink_cmd_args(cmd, STORE_KEY("version"));
	if (store_start(st, cmd, on_version, v, arg) < 0) {
		free(v);
		return -1;
	}
	return 0;
}

/* ---- the change feed ---- */

struct feed {
	store_change_cb *cb;
	void *arg;
};

/* "<version> webhook <id> put <document>", "<version> webhook <id> del",
 * "<version> settings <companyId> put <document>" (store_hooks.h); an
 * older replica's "<version> webhook <id>" is passed on as
 * STORE_CHANGE_UNKNOWN. p NULL: the subscription (re)started. */
static void on_change(void *arg, const char *p, size_t len)
{
	const struct feed *f = arg;
	const char *end = p + len, *kind, *id, *rest;
	char num[24], idbuf[256], *numend;
	struct store_change ch;
	size_t n;
	long long v;

	memset(&ch, 0, sizeof(ch));
	if (!p) {
		ch.kind = STORE_CHANGE_RESYNC;
		f->cb(f->arg, &ch);
		return;
	}
	kind = memchr(p, ' ', len);
	if (!kind || (size_t)(kind - p) >= sizeof(num))
		return;
	memcpy(num, p, (size_t)(kind - p));
	num[kind - p] = '\0';
	errno = 0;
	v = strtoll(num, &numend, 10);
	if (errno || *numend || numend == num || v < 0)
		return;
	kind++;
	id = memchr(kind, ' ', (size_t)(end - kind));
	if (!id)
		return;
	if ((size_t)(id - kind) == 7 && memcmp(kind, "webhook", 7) == 0)
		ch.kind = STORE_CHANGE_WEBHOOK;
	else if ((size_t)(id - kind) == 8 && memcmp(kind, "settings", 8) == 0)
		ch.kind = STORE_CHANGE_SETTINGS;
	else
		return;
	id++;
	rest = memchr(id, ' ', (size_t)(end - id));
	n = (size_t)((rest ? rest : end) - id);
	if (n == 0 || n >= sizeof(idbuf))
		return;
	memcpy(idbuf, id, n);
	idbuf[n] = '\0';
	ch.op = STORE_CHANGE_UNKNOWN;
	if (rest && (size_t)(end - rest) >= 5 && memcmp(rest, " put ", 5) == 0) {
		ch.op = STORE_CHANGE_PUT;
		ch.doc = rest + 5;
		ch.doc_len = (size_t)(end - rest - 5);
	} else if (rest && (size_t)(end - rest) == 4 && memcmp(rest, " del", 4) == 0) {
		ch.op = STORE_CHANGE_REMOVE;
	}
	ch.version = v;
	ch.id = idbuf;
	f->cb(f->arg, &ch);
}

void store_subscribe(struct store *st, store_change_cb *cb, void *arg)
{
	struct feed *f = NULL;

	if (cb) {
		f = malloc(sizeof(*f));
		if (!f) {
			log_error("cannot subscribe to changes", "reason=%s", "out of memory");
			return;
		}
		f->cb = cb;
		f->arg = arg;
	}
	/* The store owns f from here and frees it with the next one. */
	store_set_listener(st, f ? on_change : NULL, f);
}
