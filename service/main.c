/*
 * main: reads the configuration, builds the modules around one libevent
 * loop, and runs until SIGTERM or SIGINT, then shuts down in order: the
 * pipeline drains and leaves the group, then the API and the store close.
 *
 * Exit status: 0 after an orderly shutdown, 2 on a bad setting, 1 when a
 * component cannot start.
 */
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promo_webhooks/api.h"
#include "promo_webhooks/prom.h"
#include "promo_webhooks/config.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/pipeline.h"
#include "promo_webhooks/registry.h"
#include "promo_webhooks/scheduler.h"
#include "promo_webhooks/store.h"

struct app {
	struct config cfg;
	struct event_base *base;
	struct store *store;
	struct registry *reg;
	struct pipeline *pipeline;
	struct scheduler *scheduler;
	struct api *api;
	struct event *sigterm;
	struct event *sigint;
	int stopping;
};

static int app_ready(void *arg)
{
	struct app *app = arg;

	return !app->stopping && pipeline_ready(app->pipeline) &&
	       registry_is_loaded(app->reg);
}

static size_t app_unwritable(void *arg, struct buf *out)
{
	struct app *app = arg;
	struct kafka_topic_problem probs[2];
	size_t n, i;

	n = pipeline_unwritable(app->pipeline, probs, 2);
	for (i = 0; i < n && i < 2; i++) {
		if (i)
			buf_addc(out, ',');
		buf_adds(out, "{\"topic\":");
		buf_add_json_string(out, probs[i].topic, strlen(probs[i].topic));
		buf_adds(out, ",\"reason\":");
		buf_add_json_string(out, probs[i].reason, strlen(probs[i].reason));
		buf_addc(out, '}');
	}
	return n;
}

static void app_metrics(void *arg, struct buf *out)
{
	struct app *app = arg;
	const struct webhook *const *hooks;
	size_t n, i, enabled = 0;

	pipeline_metrics(app->pipeline, out);
	scheduler_metrics(app->scheduler, out);
	prom_gauge(out, "promo_webhooks_registry_webhooks",
		   "Webhooks in this replica's cache.",
		   (int64_t)registry_count(app->reg));
	prom_counter(out, "promo_webhooks_registry_full_loads_total",
		     "Full loads of every webhook into this replica's cache.",
		     registry_full_loads(app->reg));
	prom_counter(out, "promo_webhooks_registry_changes_applied_total",
		     "Webhook and settings changes applied to this replica's cache one at a time.",
		     registry_changes_applied(app->reg));
	n = registry_webhooks(app->reg, &hooks);
	for (i = 0; i < n; i++)
		enabled += hooks[i]->enabled ? 1 : 0;
	prom_gauge(out, "promo_webhooks_registry_webhooks_enabled",
		   "Enabled webhooks in this replica's cache.",
		   (int64_t)enabled);
}

static void app_stopped(void *arg)
{
	struct app *app = arg;

	event_base_loopexit(app->base, NULL);
}

/* Runs in the loop (libevent's signal events), never in a signal handler. */
static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct app *app = arg;

	(void)what;
	if (app->stopping) {
		log_warn("second signal during shutdown, still draining", "signal=%d", (int)sig);
		return;
	}
	app->stopping = 1;
	log_info("shutting down", "signal=%d", (int)sig);
	pipeline_stop(app->pipeline, app_stopped, app);
}

/* What the health check's request callback reports back to healthcheck(). */
struct healthcheck {
	struct event_base *base; /* loop to stop once the answer is in */
	int status;              /* HTTP status of the answer; 0: none (refused, timed out) */
};

static void healthcheck_done(struct evhttp_request *req, void *arg)
{
	struct healthcheck *hc = arg;

	hc->status = req ? evhttp_request_get_response_code(req) : 0;
	/* The answer is complete: stop here rather than let the loop wait on
	 * the connection until its timeout. */
	event_base_loopbreak(hc->base);
}

/*
 * `promo-webhooks --healthcheck`: asks the running service's /healthz on
 * the configured listen address (the wildcard address means loopback) and
 * exits 0 on 200, else 1. For container health checks, which have no curl.
 * It returns as soon as the answer is complete (a few milliseconds), and
 * gives up after 2 s, below the Dockerfile's HEALTHCHECK timeout, so that a
 * hung service is reported by this process rather than by its killer.
 */
static int healthcheck(const struct config *cfg)
{
	const char *host = cfg->http_host;
	struct evhttp_connection *conn = NULL;
	struct evhttp_request *req;
	struct healthcheck hc = { NULL, 0 };

	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(host, "[::]") == 0)
		host = "127.0.0.1";
	hc.base = event_base_new();
	if (hc.base)
		conn = evhttp_connection_base_new(hc.base, NULL, host, (unsigned short)cfg->http_port);
	if (conn) {
		evhttp_connection_set_timeout(conn, 2);
		req = evhttp_request_new(healthcheck_done, &hc);
		if (req) {
			/* One request: the server closes the connection after it. */
			evhttp_add_header(evhttp_request_get_output_headers(req), "Host", host);
			evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
			if (evhttp_make_request(conn, req, EVHTTP_REQ_GET, "/healthz") == 0)
				event_base_dispatch(hc.base);
		}
		evhttp_connection_free(conn);
	}
	if (hc.base)
		event_base_free(hc.base);
	return hc.status == 200 ? 0 : 1;
}

/* libevent's own messages go through the logger, so that stderr stays
 * one record per line. libevent 2.1 warns "BEV_OPT_CLOSE_ON_FREE set on an
 * bufferevent with too few references" when a filter bufferevent (the
 * admin API's connection guard) is freed after the connection closed; the
 * socket is closed all the same, so that one is debug. */
static void libevent_log(int severity, const char *msg)
{
	enum log_level lv = LOG_LEVEL_DEBUG;

	if (severity == EVENT_LOG_MSG)
		lv = LOG_LEVEL_INFO;
	else if (severity == EVENT_LOG_WARN)
		lv = LOG_LEVEL_WARN;
	else if (severity == EVENT_LOG_ERR)
		lv = LOG_LEVEL_ERROR;
	if (msg && strstr(msg, "with too few references"))
		lv = LOG_LEVEL_DEBUG;
	log_at(lv, "libevent", "text=\"%s\"", msg ? msg : "");
}

int main(int argc, char **argv)
{
	struct api_hooks hooks;
	struct event_config *ecfg;
	struct app app = { 0 };
	char err[512];
	int rc = 1;

	if (config_load_env(&app.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "promo-webhooks: configuration: %s\n", err);
		return 2;
	}
	if (argc > 1) {
		if (strcmp(argv[1], "--healthcheck") == 0) {
			rc = healthcheck(&app.cfg);
		} else {
			fprintf(stderr, "usage: promo-webhooks [--healthcheck]\n");
			rc = 2;
		}
		config_release(&app.cfg);
		return rc;
	}
	log_setup(app.cfg.log_level, app.cfg.log_format);
	event_set_log_callback(libevent_log);
	/* curl is told not to use signals; a peer closing a socket must not
	 * kill the process. */
	signal(SIGPIPE, SIG_IGN);

	ecfg = event_config_new();
	if (ecfg)
		event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	app.base = ecfg ? event_base_new_with_config(ecfg) : NULL;
	if (ecfg)
		event_config_free(ecfg);
	if (!app.base) {
		log_error("cannot create the event loop", "%s", "");
		goto out;
	}

	app.store = store_new(app.base, &app.cfg, err, sizeof(err));
	if (!app.store) {
		log_error("cannot start the store", "error=\"%s\"", err);
		goto out;
	}
	app.reg = registry_new(app.base, &app.cfg, app.store, err, sizeof(err));
	if (!app.reg) {
		log_error("cannot start the registry", "error=\"%s\"", err);
		goto out;
	}
	app.pipeline = pipeline_new(app.base, &app.cfg, app.store, app.reg, err, sizeof(err));
	if (!app.pipeline) {
		log_error("cannot start the pipeline", "error=\"%s\"", err);
		goto out;
	}
	app.scheduler = scheduler_new(app.base, &app.cfg, app.store, app.reg, err, sizeof(err));
	if (!app.scheduler) {
		log_error("cannot start the scheduler", "error=\"%s\"", err);
		goto out;
	}
	hooks.ready = app_ready;
	hooks.unwritable = app_unwritable;
	hooks.metrics = app_metrics;
	hooks.arg = &app;
	app.api = api_new(app.base, &app.cfg, app.store, app.reg, &hooks, err, sizeof(err));
	if (!app.api) {
		log_error("cannot start the admin API", "error=\"%s\"", err);
		goto out;
	}

	app.sigterm = evsignal_new(app.base, SIGTERM, signal_cb, &app);
	app.sigint = evsignal_new(app.base, SIGINT, signal_cb, &app);
	if (!app.sigterm || !app.sigint || evsignal_add(app.sigterm, NULL) < 0 ||
	    evsignal_add(app.sigint, NULL) < 0) {
		log_error("cannot install signal handlers", "%s", "");
		goto out;
	}

	log_info("promo-webhooks started", "version=%s http_port=%d group=%s", PW_VERSION,
		 api_port(app.api), app.cfg.kafka_group);
	pipeline_start(app.pipeline);
	if (event_base_dispatch(app.base) < 0) {
		log_error("event loop failed", "%s", "");
		goto out;
	}
	rc = 0;
	log_info("promo-webhooks stopped", "%s", "");
out:
	if (app.sigterm)
		event_free(app.sigterm);
	if (app.sigint)
		event_free(app.sigint);
	api_free(app.api);
	scheduler_free(app.scheduler);
	pipeline_free(app.pipeline);
	registry_free(app.reg);
	store_free(app.store);
	if (app.base)
		event_base_free(app.base);
	config_release(&app.cfg);
	return rc;
}
