/*
 * bench_hooks: creates webhooks through the admin API with several clients
 * in parallel (one thread and one keep-alive libcurl handle each) and
 * prints how fast, in tenths of the run (so a rate that falls with the
 * total shows), with the CPU the given processes used meanwhile (from
 * /proc/<pid>/stat). Loopback only; a bounded count of requests.
 *
 *   pw-bench-hooks --api http://127.0.0.1:PORT --token T --count N
 *                  [--clients 4] [--companies 10000] [--prefix c]
 *                  [--event CouponCodes.ImportCompleted]
 *                  [--target http://127.0.0.1:9/h] [--extra ',"k":v']
 *                  [--pid NAME=PID]...
 *
 * Webhook i belongs to company "<prefix><i % companies>". Exits 1 when a
 * create does not answer 201 (after printing what it got).
 */
#include <curl/curl.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIDS 8
#define TENTHS 10

struct opts {
	const char *api, *token, *prefix, *event, *target, *extra;
	long count, clients, companies;
	const char *pid_names[MAX_PIDS];
	long pids[MAX_PIDS];
	int n_pids;
};

static struct opts o = {
	.prefix = "c", .event = "CouponCodes.ImportCompleted",
	.target = "http://127.0.0.1:9/h", .extra = "", .clients = 4, .companies = 10000,
};
static atomic_long next_i;
static atomic_long done_n;
static atomic_int failed;
static double tenth_at[TENTHS + 1];
static pthread_mutex_t tenth_mu = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of pid in seconds, or -1. */
static double cpu_s(long pid)
{
	char path[64], line[1024], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	p = strrchr(line, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static void *client(void *arg)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char auth[512], url[1024], body[1024];
	long i, code;

	(void)arg;
	if (!c) {
		atomic_store(&failed, 1);
		return NULL;
	}
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o.token);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	while (!atomic_load(&failed) && (i = atomic_fetch_add(&next_i, 1)) < o.count) {
		long d;

		snprintf(url, sizeof(url), "%s/v1/companies/%s%ld/webhooks", o.api, o.prefix,
			 i % o.companies);
		snprintf(body, sizeof(body), "{\"event\":\"%s\",\"target\":\"%s\"%s}", o.event,
			 o.target, o.extra);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		code = 0;
		if (curl_easy_perform(c) != CURLE_OK ||
		    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 201) {
			fprintf(stderr, "create %ld: HTTP %ld\n", i, code);
			atomic_store(&failed, 1);
			break;
		}
		d = atomic_fetch_add(&done_n, 1) + 1;
		if (d % (o.count / TENTHS > 0 ? o.count / TENTHS : 1) == 0) {
			long t = d / (o.count / TENTHS > 0 ? o.count / TENTHS : 1);

			pthread_mutex_lock(&tenth_mu);
			if (t <= TENTHS)
				tenth_at[t] = now_s();
			pthread_mutex_unlock(&tenth_mu);
		}
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

static int parse(int argc, char **argv)
{
	int i;

	for (i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];

		if (strcmp(k, "--api") == 0)
			o.api = v;
		else if (strcmp(k, "--token") == 0)
			o.token = v;
		else if (strcmp(k, "--count") == 0)
			o.count = strtol(v, NULL, 10);
		else if (strcmp(k, "--clients") == 0)
			o.clients = strtol(v, NULL, 10);
		else if (strcmp(k, "--companies") == 0)
			o.companies = strtol(v, NULL, 10);
		else if (strcmp(k, "--prefix") == 0)
			o.prefix = v;
		else if (strcmp(k, "--event") == 0)
			o.event = v;
		else if (strcmp(k, "--target") == 0)
			o.target = v;
		else if (strcmp(k, "--extra") == 0)
			o.extra = v;
		else if (strcmp(k, "--pid") == 0 && o.n_pids < MAX_PIDS) {
			const char *eq = strchr(v, '=');

			if (!eq)
				return -1;
			o.pid_names[o.n_pids] = strndup(v, (size_t)(eq - v));
			o.pids[o.n_pids++] = strtol(eq + 1, NULL, 10);
		} else
			return -1;
	}
	if (i != argc || !o.api || !o.token || o.count <= 0 || o.clients <= 0 ||
	    o.clients > 256 || o.companies <= 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t th[256];
	double t0, t1, cpu0[MAX_PIDS], cpu1;
	long i;
	int k;

	if (parse(argc, argv) < 0) {
		fprintf(stderr, "usage: pw-bench-hooks --api URL --token T --count N [--clients C] "
				"[--companies K] [--prefix P] [--event E] [--target URL] [--extra JSON] "
				"[--pid NAME=PID]...\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (k = 0; k < o.n_pids; k++)
		cpu0[k] = cpu_s(o.pids[k]);
	t0 = now_s();
	tenth_at[0] = t0;
	for (i = 0; i < o.clients; i++)
		pthread_create(&th[i], NULL, client, NULL);
	for (i = 0; i < o.clients; i++)
		pthread_join(th[i], NULL);
	t1 = now_s();
	printf("created %ld webhooks with %ld clients in %.2f s: %.0f webhooks/s\n",
	       atomic_load(&done_n), o.clients, t1 - t0,
	       (double)atomic_load(&done_n) / (t1 - t0));
	for (k = 0; k < o.n_pids; k++) {
		cpu1 = cpu_s(o.pids[k]);
		printf("cpu %s: %.2f s (%.0f%% of a core)\n", o.pid_names[k], cpu1 - cpu0[k],
		       100.0 * (cpu1 - cpu0[k]) / (t1 - t0));
	}
	for (i = 1; i <= TENTHS && o.count >= TENTHS; i++) {
		if (tenth_at[i] > 0 && tenth_at[i - 1] > 0)
			printf("tenth %ld (up to %ld): %.0f webhooks/s\n", i, i * (o.count / TENTHS),
			       (double)(o.count / TENTHS) / (tenth_at[i] - tenth_at[i - 1]));
	}
	curl_global_cleanup();
	return atomic_load(&failed) ? 1 : 0;
}
