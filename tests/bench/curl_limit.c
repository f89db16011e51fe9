/*
 * pw-bench-curl-limit: THE LIMIT of the benchmark (tests/bench/run.sh).
 *
 * A minimal libcurl multi client that POSTs one body to the receiver(s) as
 * fast as it can with a fixed number of transfers in flight, with the
 * settings the service uses (keep-alive, NOSIGNAL, no Expect, the same
 * header set). No Kafka, no JSON, no bookkeeping: what the machine can do
 * at that concurrency, against which the service's rate is a ratio.
 *
 * Usage:
 *   pw-bench-curl-limit --url URL [--url URL]... --body-file FILE
 *       --concurrency N [--seconds S] [--warmup S] [--mode poll|socket]
 *
 *   Transfer i goes to URL i mod (number of URLs), and when it finishes the
 *   same handle is added again (curl reuses its connection).
 *   --mode poll    curl_multi_perform + curl_multi_poll (the fastest loop at
 *                  low concurrency; O(connections) per pass)
 *   --mode socket  curl_multi_socket_action on epoll (the design the service
 *                  uses; scales with thousands of connections)
 *   Completions are counted from the end of the warmup for S seconds.
 *
 * Prints one JSON line: mode, concurrency, requests, seconds, rate (per s),
 * errors, cpu_s (this process, measured window), cpu_per_1000.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define MAX_URLS 64
#define MAX_FD 1048576

static const char *urls[MAX_URLS];
static int n_urls;
static char *body;
static size_t body_len;
static long concurrency = 256;
static double seconds = 5, warmup = 1;
static int mode_socket;

static CURLM *multi;
static CURL **handles;
static struct curl_slist *headers;

static double t_start, t_end, m_start, m_end;
static uint64_t done_total, counted, errors;
static int measuring, finished;
static double cpu_start;

/* socket mode */
static int ep = -1;
static unsigned char *watched; /* per fd: 0 not in epoll, else events+1 */
static long timer_ms = -1;
static double timer_at;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
	(void)p;
	(void)u;
	return s * n;
}

static void setup_handle(CURL *e, const char *url)
{
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
}

static void on_done(void)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(multi, &left)) != NULL) {
		CURL *e;
		long status = 0;

		if (m->msg != CURLMSG_DONE)
			continue;
		e = m->easy_handle;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		done_total++;
		if (m->data.result != CURLE_OK || status < 200 || status > 299)
			errors++;
		else if (measuring)
			counted++;
		curl_multi_remove_handle(multi, e);
		if (!finished)
			curl_multi_add_handle(multi, e);
	}
}

static void check_clock(void)
{
	double t = now_s();

	if (!measuring && !finished && t >= t_start) {
		measuring = 1;
		counted = 0;
		cpu_start = cpu_s();
		m_start = t;
	}
	if (measuring && t >= t_end) {
		measuring = 0;
		finished = 1;
		m_end = t;
	}
}

/* ---- socket mode ---------------------------------------------------------- */

static int sock_cb(CURL *e, curl_socket_t s, int what, void *u, void *sp)
{
	struct epoll_event ev;

	(void)e;
	(void)u;
	(void)sp;
	if (s < 0 || s >= MAX_FD)
		return -1;
	if (what == CURL_POLL_REMOVE) {
		if (watched[s]) {
			epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL);
			watched[s] = 0;
		}
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	ev.data.fd = s;
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (watched[s] == ev.events + 1)
		return 0;
	if (epoll_ctl(ep, watched[s] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) < 0)
		return -1;
	watched[s] = (unsigned char)(ev.events + 1);
	return 0;
}

static int timer_cb(CURLM *m, long ms, void *u)
{
	(void)m;
	(void)u;
	timer_ms = ms;
	if (ms >= 0)
		timer_at = now_s() + (double)ms / 1000.0;
	return 0;
}

static void run_socket(void)
{
	struct epoll_event evs[1024];
	int running;

	ep = epoll_create1(EPOLL_CLOEXEC);
	watched = calloc(MAX_FD, 1);
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	for (long i = 0; i < concurrency; i++)
		curl_multi_add_handle(multi, handles[i]);
	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	while (!finished) {
		int timeout = 100, n;

		if (timer_ms >= 0) {
			double d = timer_at - now_s();

			timeout = d <= 0 ? 0 : (int)(d * 1000.0) + 1;
			if (timeout > 100)
				timeout = 100;
		}
		n = epoll_wait(ep, evs, 1024, timeout);
		for (int k = 0; k < n; k++) {
			int a = 0;

			if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				a |= CURL_CSELECT_IN;
			if (evs[k].events & EPOLLOUT)
				a |= CURL_CSELECT_OUT;
			curl_multi_socket_action(multi, evs[k].data.fd, a, &running);
		}
		if (timer_ms >= 0 && now_s() >= timer_at) {
			timer_ms = -1;
			curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		/* Completions once per pass: re-added handles start from the
		 * 0 ms timer curl sets, on the next pass. */
		on_done();
		check_clock();
	}
}

/* ---- poll mode ---------------------------------------------------------------- */

static void run_poll(void)
{
	int running;

	for (long i = 0; i < concurrency; i++)
		curl_multi_add_handle(multi, handles[i]);
	while (!finished) {
		curl_multi_perform(multi, &running);
		on_done();
		check_clock();
		curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
}

static int read_body(const char *file)
{
	FILE *f = fopen(file, "rb");
	long n;

	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	body = malloc((size_t)n + 1);
	if (!body || fread(body, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		return -1;
	}
	body_len = (size_t)n;
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	const char *body_file = NULL;
	struct rlimit rl;
	char ts[64];
	double cpu;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc)
			goto usage;
		if (strcmp(a, "--url") == 0 && n_urls < MAX_URLS)
			urls[n_urls++] = argv[++i];
		else if (strcmp(a, "--body-file") == 0)
			body_file = argv[++i];
		else if (strcmp(a, "--concurrency") == 0)
			concurrency = strtol(argv[++i], NULL, 10);
		else if (strcmp(a, "--seconds") == 0)
			seconds = strtod(argv[++i], NULL);
		else if (strcmp(a, "--warmup") == 0)
			warmup = strtod(argv[++i], NULL);
		else if (strcmp(a, "--mode") == 0)
			mode_socket = strcmp(argv[++i], "socket") == 0;
		else
			goto usage;
	}
	if (!n_urls || !body_file || concurrency < 1)
		goto usage;
	if (read_body(body_file) < 0) {
		perror(body_file);
		return 1;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, concurrency);
	/* The service's header set (its signature header is absent when the
	 * webhook has no secret, as in the benchmark). */
	snprintf(ts, sizeof(ts), "webhook-timestamp: %ld", (long)time(NULL));
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "User-Agent: promo-webhooks/bench");
	headers = curl_slist_append(headers, "webhook-id: msg_0123456789abcdef0123456789abcdef");
	headers = curl_slist_append(headers, ts);
	headers = curl_slist_append(headers, "Expect:");
	handles = calloc((size_t)concurrency, sizeof(*handles));
	for (long i = 0; i < concurrency; i++) {
		handles[i] = curl_easy_init();
		setup_handle(handles[i], urls[i % n_urls]);
	}
	t_start = now_s() + warmup;
	t_end = t_start + seconds;
	if (mode_socket)
		run_socket();
	else
		run_poll();
	cpu = cpu_s() - cpu_start;
	seconds = m_end - m_start;
	printf("{\"mode\":\"%s\",\"concurrency\":%ld,\"urls\":%d,\"body_bytes\":%zu,"
	       "\"requests\":%" PRIu64 ",\"seconds\":%.3f,\"rate\":%.0f,\"errors\":%" PRIu64
	       ",\"cpu_s\":%.3f,\"cpu_per_1000\":%.4f}\n",
	       mode_socket ? "socket" : "poll", concurrency, n_urls, body_len, counted, seconds,
	       (double)counted / seconds, errors, cpu,
	       counted ? cpu / ((double)counted / 1000.0) : 0.0);
	for (long i = 0; i < concurrency; i++) {
		curl_multi_remove_handle(multi, handles[i]);
		curl_easy_cleanup(handles[i]);
	}
	curl_multi_cleanup(multi);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	return 0;
usage:
	fprintf(stderr, "usage: pw-bench-curl-limit --url URL... --body-file FILE --concurrency N "
			"[--seconds S] [--warmup S] [--mode poll|socket]\n");
	return 2;
}
