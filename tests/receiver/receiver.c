/*
 * pw-receiver: the HTTP receiver the promo-webhooks tests deliver to.
 *
 * Single-threaded and non-blocking (libevent 2.1 evhttp). HTTP/1.1
 * keep-alive works, so clients that reuse connections (curl, the service)
 * are served as they would be by a real target.
 *
 * Usage:
 *   pw-receiver --listen HOST:PORT [--record FILE | --no-record]
 *               [--port-file FILE] [--rule PATH=STATUS[,delay_ms=N][,drop]
 *               [,location=URL]]...
 *
 *   --listen HOST:PORT  address to listen on (e.g. 127.0.0.1:0; port 0
 *                       picks a free one).
 *   --port-file FILE    once listening, the actual port is written to FILE
 *                       (atomically: written to FILE.tmp, then renamed).
 *   --record FILE       every request other than the control paths is
 *                       appended to FILE as ONE JSON line, written with a
 *                       single write(2) as soon as the request has been read
 *                       (before any delay), so a reader never sees half a
 *                       line:
 *     {"at_ms": 1700000000123,            wall clock, ms, at arrival
 *      "method": "POST", "path": "/a",    path without the query
 *      "query": "x=1",                    only when the URI has one
 *      "headers": {"content-type": "application/json", ...},
 *                                         names lowercased; repeated
 *                                         headers joined with ", "
 *      "body": "...",                     the body as a JSON string
 *      "status": 200,                     the status answered; null when
 *      "dropped": true,                   dropped (only then)
 *      "delay_ms": 500}                   only when the answer was delayed
 *     A body that is not valid UTF-8 is given in "body" with each invalid
 *     byte replaced by U+FFFD, plus "body_base64" holding the exact bytes
 *     and "body_invalid_utf8": true.
 *   --no-record         fast mode for benchmarks: requests are only
 *                       counted (rules still apply).
 *   --rule ...          answer requests to PATH with STATUS, after delay_ms
 *                       (an event timer, never blocking), or drop the
 *                       connection without any response (after the delay,
 *                       if any); location=URL adds a Location header (for
 *                       redirect tests). Repeatable. PATH "*" applies to
 *                       every path without a rule of its own.
 *
 * Default answer: 200 with an empty body.
 *
 * Control paths (never recorded):
 *   PUT /_control?path=/a&status=500&delay_ms=0&drop=0[&location=URL]
 *       sets the rule of a path (status defaults to 200); answers 204.
 *   DELETE /_control          removes all rules; answers 204.
 *   DELETE /_control?path=/a  removes the rule of one path; answers 204.
 *   GET /_control             the rules, as JSON.
 *   GET /_stats               {"requests": N}: requests recorded (or
 *                             counted with --no-record) so far.
 *
 * SIGTERM or SIGINT: exits cleanly with status 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <yajl/yajl_gen.h>

#define MAX_DELAY_MS 600000L
#define MAX_BODY_BYTES (64L * 1024 * 1024)
#define MAX_HEADER_BYTES (1L * 1024 * 1024)
#define CONNECTION_TIMEOUT_S 900
#define LISTEN_BACKLOG 1024

struct rule {
    char *path;
    int status;
    long delay_ms;
    int drop;
    char *location;
};

struct pending;

struct receiver {
    struct event_base *base;
    struct evhttp *http;
    int record_fd; /* -1 when not recording */
    int recording;
    uint64_t requests;
    struct rule *rules;
    size_t rule_count;
    size_t rule_cap;
    struct pending *pending; /* delayed answers and drops */
    yajl_gen gen;
    char *scratch; /* UTF-8 sanitizing buffer */
    size_t scratch_cap;
    char *line; /* one record line */
    size_t line_cap;
};

struct pending {
    struct receiver *rx;
    struct evhttp_request *req;
    struct event *timer;
    int status;
    int drop;
    char *location;
    struct pending *prev;
    struct pending *next;
};

/* ------------------------------------------------------------ utilities */

static void usage(void) {
    fprintf(stderr,
            "usage: pw-receiver --listen HOST:PORT [--record FILE | --no-record]\n"
            "                   [--port-file FILE]\n"
            "                   [--rule PATH=STATUS[,delay_ms=N][,drop][,location=URL]]...\n");
}

static char *dup_string(const char *s) {
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, s, len + 1);
    }
    return copy;
}

static int parse_long(const char *s, long min, long max, long *out) {
    if (s == NULL || *s == '\0') {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int64_t now_ms(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return 0;
    }
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ensure_cap(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) {
        return 0;
    }
    size_t n = *cap ? *cap : 4096;
    while (n < need) {
        if (n > SIZE_MAX / 2) {
            return -1;
        }
        n *= 2;
    }
    char *p = realloc(*buf, n);
    if (p == NULL) {
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t len;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) {
            lo = 0xA0; /* no overlong */
        } else if (c == 0xED) {
            hi = 0x9F; /* no surrogates */
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F; /* <= U+10FFFF */
        }
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    if (s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
    }
    return len;
}

/*
 * Makes s (n bytes) valid UTF-8 in rx->scratch, each invalid byte becoming
 * U+FFFD. *out points to the result (s itself when already valid).
 * Returns 1 when s was valid, 0 when bytes were replaced, -1 on no memory.
 */
static int sanitize_utf8(struct receiver *rx, const char *s, size_t n, const char **out,
                         size_t *out_len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t len = utf8_sequence(u + i, n - i);
        if (len == 0) {
            break;
        }
        i += len;
    }
    if (i == n) {
        *out = s;
        *out_len = n;
        return 1;
    }
    if (n > (SIZE_MAX - 16) / 3 || ensure_cap(&rx->scratch, &rx->scratch_cap, n * 3 + 16) != 0) {
        return -1;
    }
    memcpy(rx->scratch, s, i);
    size_t o = i;
    while (i < n) {
        size_t len = utf8_sequence(u + i, n - i);
        if (len == 0) {
            rx->scratch[o++] = (char)0xEF;
            rx->scratch[o++] = (char)0xBF;
            rx->scratch[o++] = (char)0xBD;
            i++;
        } else {
            memcpy(rx->scratch + o, s + i, len);
            o += len;
            i += len;
        }
    }
    *out = rx->scratch;
    *out_len = o;
    return 0;
}

static int gen_str(yajl_gen g, const char *s) {
    return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) == yajl_gen_status_ok ? 0 : -1;
}

/* A JSON string of arbitrary bytes (invalid UTF-8 replaced). */
static int gen_bytes(struct receiver *rx, const char *s, size_t n) {
    const char *clean = NULL;
    size_t clean_len = 0;
    if (sanitize_utf8(rx, s, n, &clean, &clean_len) < 0) {
        return -1;
    }
    return yajl_gen_string(rx->gen, (const unsigned char *)clean, clean_len) ==
                   yajl_gen_status_ok
               ? 0
               : -1;
}

static int gen_base64(yajl_gen g, const unsigned char *s, size_t n) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n > (SIZE_MAX / 4) * 3 - 3) {
        return -1;
    }
    size_t out_len = (n + 2) / 3 * 4;
    char *out = malloc(out_len + 1);
    if (out == NULL) {
        return -1;
    }
    size_t o = 0;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8) | s[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)s[i + 1] << 8;
        }
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    int rc = yajl_gen_string(g, (const unsigned char *)out, o) == yajl_gen_status_ok ? 0 : -1;
    free(out);
    return rc;
}

static const char *method_name(enum evhttp_cmd_type type) {
    switch (type) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "UNKNOWN";
    }
}

static const char *reason_phrase(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* ----------------------------------------------------------------- rules */

static void rule_free(struct rule *r) {
    free(r->path);
    free(r->location);
    r->path = NULL;
    r->location = NULL;
}

static const struct rule *rule_find(const struct receiver *rx, const char *path) {
    const struct rule *any = NULL;
    for (size_t i = 0; i < rx->rule_count; i++) {
        if (strcmp(rx->rules[i].path, path) == 0) {
            return &rx->rules[i];
        }
        if (strcmp(rx->rules[i].path, "*") == 0) {
            any = &rx->rules[i];
        }
    }
    return any;
}

/* Takes ownership of r's strings, also on failure. */
static int rule_set(struct receiver *rx, struct rule *r) {
    for (size_t i = 0; i < rx->rule_count; i++) {
        if (strcmp(rx->rules[i].path, r->path) == 0) {
            rule_free(&rx->rules[i]);
            rx->rules[i] = *r;
            return 0;
        }
    }
    if (rx->rule_count == rx->rule_cap) {
        size_t cap = rx->rule_cap ? rx->rule_cap * 2 : 8;
        struct rule *p = realloc(rx->rules, cap * sizeof *p);
        if (p == NULL) {
            rule_free(r);
            return -1;
        }
        rx->rules = p;
        rx->rule_cap = cap;
    }
    rx->rules[rx->rule_count++] = *r;
    return 0;
}

static void rule_remove(struct receiver *rx, const char *path) {
    for (size_t i = 0; i < rx->rule_count; i++) {
        if (strcmp(rx->rules[i].path, path) == 0) {
            rule_free(&rx->rules[i]);
            rx->rules[i] = rx->rules[rx->rule_count - 1];
            rx->rule_count--;
            return;
        }
    }
}

static void rules_clear(struct receiver *rx) {
    for (size_t i = 0; i < rx->rule_count; i++) {
        rule_free(&rx->rules[i]);
    }
    rx->rule_count = 0;
}

static int valid_rule_path(const char *path) {
    return path != NULL && (path[0] == '/' || strcmp(path, "*") == 0);
}

/* "PATH=STATUS[,delay_ms=N][,drop][,location=URL]" */
static int rule_parse_arg(const char *arg, struct rule *out) {
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg) {
        return -1;
    }
    struct rule r = {0};
    int rc = -1;
    char *spec = dup_string(eq + 1);
    r.path = malloc((size_t)(eq - arg) + 1);
    if (spec == NULL || r.path == NULL) {
        goto out;
    }
    memcpy(r.path, arg, (size_t)(eq - arg));
    r.path[eq - arg] = '\0';
    if (!valid_rule_path(r.path)) {
        goto out;
    }
    char *save = NULL;
    char *tok = strtok_r(spec, ",", &save);
    long v = 0;
    if (tok == NULL || parse_long(tok, 200, 599, &v) != 0) {
        goto out;
    }
    r.status = (int)v;
    while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
        if (strncmp(tok, "delay_ms=", 9) == 0) {
            if (parse_long(tok + 9, 0, MAX_DELAY_MS, &r.delay_ms) != 0) {
                goto out;
            }
        } else if (strcmp(tok, "drop") == 0 || strcmp(tok, "drop=1") == 0) {
            r.drop = 1;
        } else if (strcmp(tok, "drop=0") == 0) {
            r.drop = 0;
        } else if (strncmp(tok, "location=", 9) == 0 && tok[9] != '\0') {
            free(r.location);
            r.location = dup_string(tok + 9);
            if (r.location == NULL) {
                goto out;
            }
        } else {
            goto out;
        }
    }
    *out = r;
    rc = 0;
out:
    free(spec);
    if (rc != 0) {
        rule_free(&r);
    }
    return rc;
}

/* --------------------------------------------------------------- answers */

static void pending_unlink(struct receiver *rx, struct pending *p) {
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        rx->pending = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
}

static void pending_free(struct pending *p) {
    if (p->timer != NULL) {
        event_free(p->timer);
    }
    free(p->location);
    free(p);
}

static void send_status(struct evhttp_request *req, int status, const char *location) {
    if (location != NULL) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);
        if (out != NULL && evhttp_add_header(out, "Location", location) != 0) {
            fprintf(stderr, "pw-receiver: cannot add Location header\n");
        }
    }
    /* Error answers carry a small body, as real receivers' do, so the
     * service's attempt log can be seen keeping it. */
    struct evbuffer *body = status >= 400 ? evbuffer_new() : NULL;
    if (body != NULL && evbuffer_add_printf(body, "{\"error\":\"pw-receiver answered %d\"}", status) < 0) {
        evbuffer_free(body);
        body = NULL;
    }
    evhttp_send_reply(req, status, reason_phrase(status), body);
    if (body != NULL) {
        evbuffer_free(body);
    }
}

/* Closes the connection of req without answering. */
static void drop_request(struct evhttp_request *req) {
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == NULL) {
        /* The client is gone already: this only frees the request. */
        evhttp_send_reply(req, 500, "Dropped", NULL);
        return;
    }
    /* Frees the connection and the requests on it, req included. */
    evhttp_connection_free(evcon);
}

static void pending_fire(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct pending *p = arg;
    struct receiver *rx = p->rx;
    pending_unlink(rx, p);
    if (p->drop) {
        drop_request(p->req);
    } else {
        send_status(p->req, p->status, p->location);
    }
    pending_free(p);
}

/*
 * Answers now, or later from a timer. Drops always go through a timer so
 * that the connection is never freed from inside evhttp's own callback.
 */
static void answer(struct receiver *rx, struct evhttp_request *req, const struct rule *r) {
    int status = r != NULL ? r->status : 200;
    long delay_ms = r != NULL ? r->delay_ms : 0;
    int drop = r != NULL ? r->drop : 0;
    const char *location = r != NULL ? r->location : NULL;
    if (delay_ms == 0 && !drop) {
        send_status(req, status, location);
        return;
    }
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL) {
        fprintf(stderr, "pw-receiver: out of memory\n");
        evhttp_send_reply(req, 500, "Receiver Out Of Memory", NULL);
        return;
    }
    p->rx = rx;
    p->req = req;
    p->status = status;
    p->drop = drop;
    if (location != NULL && (p->location = dup_string(location)) == NULL) {
        free(p);
        evhttp_send_reply(req, 500, "Receiver Out Of Memory", NULL);
        return;
    }
    p->timer = evtimer_new(rx->base, pending_fire, p);
    struct timeval tv;
    tv.tv_sec = delay_ms / 1000;
    tv.tv_usec = (delay_ms % 1000) * 1000;
    if (p->timer == NULL || evtimer_add(p->timer, &tv) != 0) {
        fprintf(stderr, "pw-receiver: cannot arm timer\n");
        pending_free(p);
        evhttp_send_reply(req, 500, "Receiver Timer Error", NULL);
        return;
    }
    p->next = rx->pending;
    if (rx->pending != NULL) {
        rx->pending->prev = p;
    }
    rx->pending = p;
}

static void reply_json(struct evhttp_request *req, int status, const char *json, size_t len) {
    struct evbuffer *body = evbuffer_new();
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (body == NULL || out == NULL || evbuffer_add(body, json, len) != 0 ||
        evhttp_add_header(out, "Content-Type", "application/json") != 0) {
        if (body != NULL) {
            evbuffer_free(body);
        }
        evhttp_send_reply(req, 500, "Receiver Error", NULL);
        return;
    }
    evhttp_send_reply(req, status, reason_phrase(status), body);
    evbuffer_free(body);
}

static void reply_error(struct evhttp_request *req, int status, const char *message) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "{\"error\":\"%s\"}", message);
    if (n < 0 || (size_t)n >= sizeof buf) {
        evhttp_send_reply(req, status, reason_phrase(status), NULL);
        return;
    }
    reply_json(req, status, buf, (size_t)n);
}

/* ------------------------------------------------------------- recording */

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

struct header_item {
    char *name; /* lowercased copy */
    const char *value;
};

static int gen_headers(struct receiver *rx, struct evkeyvalq *headers) {
    yajl_gen g = rx->gen;
    size_t count = 0;
    for (struct evkeyval *kv = headers->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
        count++;
    }
    struct header_item *items = calloc(count ? count : 1, sizeof *items);
    int rc = -1;
    char *joined = NULL;
    size_t joined_cap = 0;
    if (items == NULL) {
        return -1;
    }
    size_t n = 0;
    for (struct evkeyval *kv = headers->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
        items[n].name = dup_string(kv->key);
        if (items[n].name == NULL) {
            goto out;
        }
        for (char *c = items[n].name; *c != '\0'; c++) {
            if (*c >= 'A' && *c <= 'Z') {
                *c = (char)(*c - 'A' + 'a');
            }
        }
        items[n].value = kv->value;
        n++;
    }
    if (yajl_gen_map_open(g) != yajl_gen_status_ok) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(items[j].name, items[i].name) == 0) {
                seen = 1;
                break;
            }
        }
        if (seen) {
            continue;
        }
        size_t len = 0;
        for (size_t j = i; j < n; j++) {
            if (strcmp(items[j].name, items[i].name) == 0) {
                len += strlen(items[j].value) + 2;
            }
        }
        if (ensure_cap(&joined, &joined_cap, len + 1) != 0) {
            goto out;
        }
        size_t o = 0;
        for (size_t j = i; j < n; j++) {
            if (strcmp(items[j].name, items[i].name) == 0) {
                size_t vlen = strlen(items[j].value);
                if (o > 0) {
                    joined[o++] = ',';
                    joined[o++] = ' ';
                }
                memcpy(joined + o, items[j].value, vlen);
                o += vlen;
            }
        }
        if (gen_bytes(rx, items[i].name, strlen(items[i].name)) != 0 ||
            gen_bytes(rx, joined, o) != 0) {
            goto out;
        }
    }
    if (yajl_gen_map_close(g) != yajl_gen_status_ok) {
        goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) {
        free(items[i].name);
    }
    free(items);
    free(joined);
    return rc;
}

static int record_request(struct receiver *rx, struct evhttp_request *req, const char *path,
                          const char *query, const struct rule *r) {
    yajl_gen g = rx->gen;
    yajl_gen_reset(g, NULL);
    yajl_gen_clear(g);

    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t body_len = in != NULL ? evbuffer_get_length(in) : 0;
    const char *body = "";
    if (body_len > 0) {
        body = (const char *)evbuffer_pullup(in, -1);
        if (body == NULL) {
            return -1;
        }
    }
    const char *clean = NULL;
    size_t clean_len = 0;
    struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    int drop = r != NULL && r->drop;
    long delay_ms = r != NULL ? r->delay_ms : 0;
    int status = r != NULL ? r->status : 200;

    if (yajl_gen_map_open(g) != yajl_gen_status_ok || gen_str(g, "at_ms") != 0 ||
        yajl_gen_integer(g, (long long)now_ms()) != yajl_gen_status_ok ||
        gen_str(g, "method") != 0 || gen_str(g, method_name(evhttp_request_get_command(req))) != 0 ||
        gen_str(g, "path") != 0 || gen_bytes(rx, path, strlen(path)) != 0) {
        return -1;
    }
    if (query != NULL && (gen_str(g, "query") != 0 || gen_bytes(rx, query, strlen(query)) != 0)) {
        return -1;
    }
    if (gen_str(g, "headers") != 0 || headers == NULL || gen_headers(rx, headers) != 0) {
        return -1;
    }
    /* After the headers: they use the same scratch buffer. */
    int valid = sanitize_utf8(rx, body, body_len, &clean, &clean_len);
    if (valid < 0 || gen_str(g, "body") != 0 ||
        yajl_gen_string(g, (const unsigned char *)clean, clean_len) != yajl_gen_status_ok) {
        return -1;
    }
    if (!valid && (gen_str(g, "body_invalid_utf8") != 0 || yajl_gen_bool(g, 1) != yajl_gen_status_ok ||
                   gen_str(g, "body_base64") != 0 ||
                   gen_base64(g, (const unsigned char *)body, body_len) != 0)) {
        return -1;
    }
    if (gen_str(g, "status") != 0 ||
        (drop ? yajl_gen_null(g) : yajl_gen_integer(g, status)) != yajl_gen_status_ok) {
        return -1;
    }
    if (drop && (gen_str(g, "dropped") != 0 || yajl_gen_bool(g, 1) != yajl_gen_status_ok)) {
        return -1;
    }
    if (delay_ms > 0 &&
        (gen_str(g, "delay_ms") != 0 || yajl_gen_integer(g, delay_ms) != yajl_gen_status_ok)) {
        return -1;
    }
    if (yajl_gen_map_close(g) != yajl_gen_status_ok) {
        return -1;
    }
    const unsigned char *json = NULL;
    size_t json_len = 0;
    if (yajl_gen_get_buf(g, &json, &json_len) != yajl_gen_status_ok) {
        return -1;
    }
    if (ensure_cap(&rx->line, &rx->line_cap, json_len + 1) != 0) {
        return -1;
    }
    memcpy(rx->line, json, json_len);
    rx->line[json_len] = '\n';
    int rc = write_all(rx->record_fd, rx->line, json_len + 1);
    yajl_gen_clear(g);
    return rc;
}

/* --------------------------------------------------------------- control */

static void handle_control(struct receiver *rx, struct evhttp_request *req, const char *query) {
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    struct evkeyvalq params;
    params.tqh_first = NULL;
    params.tqh_last = &params.tqh_first;
    if (query != NULL && evhttp_parse_query_str(query, &params) != 0) {
        evhttp_clear_headers(&params);
        reply_error(req, 400, "bad query string");
        return;
    }
    const char *path = evhttp_find_header(&params, "path");

    if (method == EVHTTP_REQ_PUT) {
        struct rule r = {0};
        long v = 200;
        const char *s = evhttp_find_header(&params, "status");
        if (!valid_rule_path(path)) {
            reply_error(req, 400, "path must start with / or be *");
            goto out;
        }
        if (s != NULL && parse_long(s, 200, 599, &v) != 0) {
            reply_error(req, 400, "status must be 200..599");
            goto out;
        }
        r.status = (int)v;
        s = evhttp_find_header(&params, "delay_ms");
        if (s != NULL && parse_long(s, 0, MAX_DELAY_MS, &r.delay_ms) != 0) {
            reply_error(req, 400, "delay_ms must be 0..600000");
            goto out;
        }
        s = evhttp_find_header(&params, "drop");
        v = 0;
        if (s != NULL && parse_long(s, 0, 1, &v) != 0) {
            reply_error(req, 400, "drop must be 0 or 1");
            goto out;
        }
        r.drop = (int)v;
        s = evhttp_find_header(&params, "location");
        r.path = dup_string(path);
        if (r.path == NULL || (s != NULL && s[0] != '\0' && (r.location = dup_string(s)) == NULL) ||
            rule_set(rx, &r) != 0) {
            rule_free(&r);
            reply_error(req, 500, "out of memory");
            goto out;
        }
        evhttp_send_reply(req, 204, "No Content", NULL);
    } else if (method == EVHTTP_REQ_DELETE) {
        if (path != NULL) {
            rule_remove(rx, path);
        } else {
            rules_clear(rx);
        }
        evhttp_send_reply(req, 204, "No Content", NULL);
    } else if (method == EVHTTP_REQ_GET) {
        yajl_gen g = rx->gen;
        yajl_gen_reset(g, NULL);
        yajl_gen_clear(g);
        int bad = yajl_gen_map_open(g) != yajl_gen_status_ok || gen_str(g, "rules") != 0 ||
                  yajl_gen_array_open(g) != yajl_gen_status_ok;
        for (size_t i = 0; !bad && i < rx->rule_count; i++) {
            const struct rule *r = &rx->rules[i];
            bad = yajl_gen_map_open(g) != yajl_gen_status_ok || gen_str(g, "path") != 0 ||
                  gen_bytes(rx, r->path, strlen(r->path)) != 0 || gen_str(g, "status") != 0 ||
                  yajl_gen_integer(g, r->status) != yajl_gen_status_ok ||
                  gen_str(g, "delay_ms") != 0 ||
                  yajl_gen_integer(g, r->delay_ms) != yajl_gen_status_ok ||
                  gen_str(g, "drop") != 0 || yajl_gen_bool(g, r->drop) != yajl_gen_status_ok ||
                  gen_str(g, "location") != 0 ||
                  (r->location != NULL ? gen_bytes(rx, r->location, strlen(r->location))
                                       : (yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1)) != 0 ||
                  yajl_gen_map_close(g) != yajl_gen_status_ok;
        }
        const unsigned char *json = NULL;
        size_t len = 0;
        if (bad || yajl_gen_array_close(g) != yajl_gen_status_ok ||
            yajl_gen_map_close(g) != yajl_gen_status_ok ||
            yajl_gen_get_buf(g, &json, &len) != yajl_gen_status_ok) {
            reply_error(req, 500, "cannot render rules");
        } else {
            reply_json(req, 200, (const char *)json, len);
        }
        yajl_gen_clear(g);
    } else {
        reply_error(req, 405, "use PUT, DELETE or GET");
    }
out:
    evhttp_clear_headers(&params);
}

static void handle_stats(struct receiver *rx, struct evhttp_request *req) {
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        reply_error(req, 405, "use GET");
        return;
    }
    char buf[64];
    int n = snprintf(buf, sizeof buf, "{\"requests\":%" PRIu64 "}", rx->requests);
    if (n < 0 || (size_t)n >= sizeof buf) {
        reply_error(req, 500, "cannot render stats");
        return;
    }
    reply_json(req, 200, buf, (size_t)n);
}

static void on_request(struct evhttp_request *req, void *arg) {
    struct receiver *rx = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    if (path == NULL || path[0] == '\0') {
        path = "/";
    }
    if (strcmp(path, "/_control") == 0) {
        handle_control(rx, req, query);
        return;
    }
    if (strcmp(path, "/_stats") == 0) {
        handle_stats(rx, req);
        return;
    }
    const struct rule *r = rule_find(rx, path);
    rx->requests++;
    if (rx->recording && record_request(rx, req, path, query, r) != 0) {
        fprintf(stderr, "pw-receiver: cannot record request to %s: %s\n", path, strerror(errno));
    }
    answer(rx, req, r);
}

/* ------------------------------------------------------------------ main */

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    struct receiver *rx = arg;
    if (event_base_loopbreak(rx->base) != 0) {
        fprintf(stderr, "pw-receiver: loopbreak failed\n");
    }
}

static int split_host_port(const char *listen, char *host, size_t host_size, long *port) {
    const char *colon = strrchr(listen, ':');
    if (colon == NULL) {
        return -1;
    }
    const char *h = listen;
    size_t hlen = (size_t)(colon - listen);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_size) {
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return parse_long(colon + 1, 0, 65535, port);
}

static int write_port_file(const char *file, int port) {
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", file);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }
    int bad = fprintf(f, "%d\n", port) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, file) != 0) {
        (void)unlink(tmp);
        return -1;
    }
    return 0;
}

static int bound_port(evutil_socket_t fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return -1;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return -1;
}

int main(int argc, char **argv) {
    const char *listen_addr = NULL;
    const char *record_file = NULL;
    const char *port_file = NULL;
    int no_record = 0;
    struct receiver rx;
    memset(&rx, 0, sizeof rx);
    rx.record_fd = -1;
    int status = 1;
    struct evconnlistener *listener = NULL;
    struct event *sigterm = NULL;
    struct event *sigint = NULL;
    struct addrinfo *ai = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--listen") == 0 && has_value) {
            listen_addr = argv[++i];
        } else if (strcmp(a, "--record") == 0 && has_value) {
            record_file = argv[++i];
        } else if (strcmp(a, "--port-file") == 0 && has_value) {
            port_file = argv[++i];
        } else if (strcmp(a, "--no-record") == 0) {
            no_record = 1;
        } else if (strcmp(a, "--rule") == 0 && has_value) {
            struct rule r;
            if (rule_parse_arg(argv[++i], &r) != 0) {
                fprintf(stderr, "pw-receiver: bad --rule '%s'\n", argv[i]);
                usage();
                status = 2;
                goto out;
            }
            if (rule_set(&rx, &r) != 0) {
                fprintf(stderr, "pw-receiver: out of memory\n");
                goto out;
            }
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            status = 0;
            goto out;
        } else {
            fprintf(stderr, "pw-receiver: unknown or incomplete argument '%s'\n", a);
            usage();
            status = 2;
            goto out;
        }
    }
    if (listen_addr == NULL) {
        usage();
        status = 2;
        goto out;
    }
    char host[256];
    long port = 0;
    if (split_host_port(listen_addr, host, sizeof host, &port) != 0) {
        fprintf(stderr, "pw-receiver: bad --listen '%s' (want HOST:PORT)\n", listen_addr);
        status = 2;
        goto out;
    }
    rx.recording = record_file != NULL && !no_record;
    if (rx.recording) {
        rx.record_fd = open(record_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (rx.record_fd < 0) {
            fprintf(stderr, "pw-receiver: cannot open %s: %s\n", record_file, strerror(errno));
            goto out;
        }
    }
    rx.gen = yajl_gen_alloc(NULL);
    if (rx.gen == NULL) {
        fprintf(stderr, "pw-receiver: out of memory\n");
        goto out;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    if (sigemptyset(&sa.sa_mask) != 0 || sigaction(SIGPIPE, &sa, NULL) != 0) {
        fprintf(stderr, "pw-receiver: cannot ignore SIGPIPE\n");
        goto out;
    }

    rx.base = event_base_new();
    if (rx.base == NULL) {
        fprintf(stderr, "pw-receiver: event_base_new failed\n");
        goto out;
    }
    rx.http = evhttp_new(rx.base);
    if (rx.http == NULL) {
        fprintf(stderr, "pw-receiver: evhttp_new failed\n");
        goto out;
    }
    evhttp_set_allowed_methods(rx.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(rx.http, MAX_BODY_BYTES);
    evhttp_set_max_headers_size(rx.http, MAX_HEADER_BYTES);
    evhttp_set_timeout(rx.http, CONNECTION_TIMEOUT_S);
    /* Empty answers carry no Content-Type (evhttp's default is text/html). */
    evhttp_set_default_content_type(rx.http, NULL);
    evhttp_set_gencb(rx.http, on_request, &rx);

    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port_str[16];
    int n = snprintf(port_str, sizeof port_str, "%ld", port);
    if (n < 0 || (size_t)n >= sizeof port_str) {
        goto out;
    }
    int gai = getaddrinfo(host, port_str, &hints, &ai);
    if (gai != 0 || ai == NULL) {
        fprintf(stderr, "pw-receiver: cannot resolve %s: %s\n", host, gai_strerror(gai));
        goto out;
    }
    listener = evconnlistener_new_bind(
        rx.base, NULL, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
    if (listener == NULL) {
        fprintf(stderr, "pw-receiver: cannot listen on %s: %s\n", listen_addr, strerror(errno));
        goto out;
    }
    if (evhttp_bind_listener(rx.http, listener) == NULL) {
        fprintf(stderr, "pw-receiver: evhttp_bind_listener failed\n");
        evconnlistener_free(listener);
        listener = NULL;
        goto out;
    }
    /* Owned by evhttp from here on. */
    evutil_socket_t lfd = evconnlistener_get_fd(listener);
    listener = NULL;
    int actual_port = bound_port(lfd);
    if (actual_port <= 0) {
        fprintf(stderr, "pw-receiver: getsockname failed: %s\n", strerror(errno));
        goto out;
    }

    sigterm = evsignal_new(rx.base, SIGTERM, on_signal, &rx);
    sigint = evsignal_new(rx.base, SIGINT, on_signal, &rx);
    if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0) {
        fprintf(stderr, "pw-receiver: cannot install signal handlers\n");
        goto out;
    }

    if (port_file != NULL && write_port_file(port_file, actual_port) != 0) {
        fprintf(stderr, "pw-receiver: cannot write %s: %s\n", port_file, strerror(errno));
        goto out;
    }
    fprintf(stderr, "pw-receiver: listening on %s port %d%s\n", host, actual_port,
            rx.recording ? "" : " (not recording)");

    if (event_base_dispatch(rx.base) < 0) {
        fprintf(stderr, "pw-receiver: event loop failed\n");
        goto out;
    }
    status = 0;

out:
    /* Requests whose client is gone are ours to free; the others go with
     * their connections in evhttp_free. */
    while (rx.pending != NULL) {
        struct pending *p = rx.pending;
        pending_unlink(&rx, p);
        if (evhttp_request_get_connection(p->req) == NULL) {
            evhttp_send_reply(p->req, 503, "Shutting Down", NULL);
        }
        pending_free(p);
    }
    if (sigterm != NULL) {
        event_free(sigterm);
    }
    if (sigint != NULL) {
        event_free(sigint);
    }
    if (rx.http != NULL) {
        evhttp_free(rx.http);
    }
    if (listener != NULL) {
        evconnlistener_free(listener);
    }
    if (rx.base != NULL) {
        event_base_free(rx.base);
    }
    if (ai != NULL) {
        freeaddrinfo(ai);
    }
    rules_clear(&rx);
    free(rx.rules);
    if (rx.gen != NULL) {
        yajl_gen_free(rx.gen);
    }
    free(rx.scratch);
    free(rx.line);
    if (rx.record_fd >= 0 && close(rx.record_fd) != 0) {
        fprintf(stderr, "pw-receiver: closing the record file: %s\n", strerror(errno));
        status = 1;
    }
    return status;
}
