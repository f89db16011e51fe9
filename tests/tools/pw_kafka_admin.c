/*
 * pw-kafka-admin: a small Kafka admin tool for the promo-webhooks tests,
 * on librdkafka's admin and consumer APIs.
 *
 *   pw-kafka-admin -b BROKERS create NAME:PARTITIONS ...
 *       Creates each topic with replication factor 1. A topic that already
 *       exists counts as created. Retriable errors (a broker that is still
 *       starting) are retried for about 30 s. Exit 0 when every topic exists.
 *
 *   pw-kafka-admin -b BROKERS group-offsets GROUP TOPIC
 *       Prints one line per partition of TOPIC, sorted by partition:
 *           PARTITION COMMITTED_OFFSET HIGH_WATERMARK
 *       COMMITTED_OFFSET is -1 when GROUP has committed nothing for the
 *       partition. Lag as the ops dashboards see it is HIGH_WATERMARK minus
 *       COMMITTED_OFFSET. Reading the committed offsets does not join the
 *       group (a consumer handle with group.id=GROUP that never subscribes).
 *
 * Exit status: 0 success, 1 failure, 2 bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define ADMIN_REQUEST_TIMEOUT_MS 30000
#define ADMIN_OPERATION_TIMEOUT_MS 20000
#define CREATE_MAX_ATTEMPTS 30
#define QUERY_TIMEOUT_MS 15000
#define MAX_PARTITIONS 100000

static void usage(void) {
    fprintf(stderr,
            "usage: pw-kafka-admin -b BROKERS create NAME:PARTITIONS ...\n"
            "       pw-kafka-admin -b BROKERS group-offsets GROUP TOPIC\n");
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "pw-kafka-admin: %s=%s: %s\n", name, value, errstr);
        return -1;
    }
    return 0;
}

/* A client of the given type; group may be NULL. NULL on failure. */
static rd_kafka_t *new_client(rd_kafka_type_t type, const char *brokers, const char *group) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL) {
        fprintf(stderr, "pw-kafka-admin: out of memory\n");
        return NULL;
    }
    if (conf_set(conf, "bootstrap.servers", brokers) != 0 ||
        conf_set(conf, "client.id", "pw-kafka-admin") != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (group != NULL &&
        (conf_set(conf, "group.id", group) != 0 ||
         conf_set(conf, "enable.auto.commit", "false") != 0 ||
         conf_set(conf, "enable.auto.offset.store", "false") != 0)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        /* rd_kafka_new frees conf only on success. */
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "pw-kafka-admin: cannot create client: %s\n", errstr);
        return NULL;
    }
    return rk;
}

/* Parses "NAME:PARTITIONS"; name points into spec, *name_len its length. */
static int parse_topic_spec(const char *spec, size_t *name_len, int *partitions) {
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || colon[1] == '\0') {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || n < 1 || n > MAX_PARTITIONS) {
        return -1;
    }
    *name_len = (size_t)(colon - spec);
    *partitions = (int)n;
    return 0;
}

/* Errors after which trying again cannot help. */
static int is_permanent(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return 1;
    default:
        return 0;
    }
}

/*
 * One CreateTopics round for the topics whose done[i] is 0. Sets done[i] to
 * 1 when created or existing, to -1 on a permanent error. Returns 0 when
 * the round completed (whatever the per-topic results), -1 when the request
 * itself failed.
 */
static int create_round(rd_kafka_t *rk, char **names, const int *parts, int *done, int n) {
    rd_kafka_NewTopic_t **topics = calloc((size_t)n, sizeof *topics);
    if (topics == NULL) {
        fprintf(stderr, "pw-kafka-admin: out of memory\n");
        return -1;
    }
    int count = 0;
    int rc = -1;
    rd_kafka_AdminOptions_t *options = NULL;
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_event_t *event = NULL;
    char errstr[512];

    for (int i = 0; i < n; i++) {
        if (done[i] != 0) {
            continue;
        }
        topics[count] = rd_kafka_NewTopic_new(names[i], parts[i], 1, errstr, sizeof errstr);
        if (topics[count] == NULL) {
            fprintf(stderr, "pw-kafka-admin: topic %s: %s\n", names[i], errstr);
            done[i] = -1;
            continue;
        }
        count++;
    }
    if (count == 0) {
        rc = 0;
        goto out;
    }

    options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (options == NULL) {
        fprintf(stderr, "pw-kafka-admin: cannot create admin options\n");
        goto out;
    }
    if (rd_kafka_AdminOptions_set_request_timeout(options, ADMIN_REQUEST_TIMEOUT_MS, errstr,
                                                  sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_AdminOptions_set_operation_timeout(options, ADMIN_OPERATION_TIMEOUT_MS, errstr,
                                                    sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "pw-kafka-admin: admin options: %s\n", errstr);
        goto out;
    }
    queue = rd_kafka_queue_new(rk);
    if (queue == NULL) {
        fprintf(stderr, "pw-kafka-admin: cannot create queue\n");
        goto out;
    }
    rd_kafka_CreateTopics(rk, topics, (size_t)count, options, queue);
    event = rd_kafka_queue_poll(queue, ADMIN_REQUEST_TIMEOUT_MS + 10000);
    if (event == NULL) {
        fprintf(stderr, "pw-kafka-admin: CreateTopics: no result in time\n");
        goto out;
    }
    if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "pw-kafka-admin: CreateTopics: %s\n", rd_kafka_event_error_string(event));
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *result = rd_kafka_event_CreateTopics_result(event);
    if (result == NULL) {
        fprintf(stderr, "pw-kafka-admin: CreateTopics: unexpected event %s\n",
                rd_kafka_event_name(event));
        goto out;
    }
    size_t result_count = 0;
    const rd_kafka_topic_result_t **results =
        rd_kafka_CreateTopics_result_topics(result, &result_count);
    for (size_t r = 0; r < result_count; r++) {
        const char *name = rd_kafka_topic_result_name(results[r]);
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[r]);
        int index = -1;
        for (int i = 0; i < n; i++) {
            if (done[i] == 0 && strcmp(names[i], name) == 0) {
                index = i;
                break;
            }
        }
        if (index < 0) {
            continue;
        }
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            done[index] = 1;
        } else {
            const char *msg = rd_kafka_topic_result_error_string(results[r]);
            fprintf(stderr, "pw-kafka-admin: topic %s: %s (%s)\n", name, rd_kafka_err2name(err),
                    msg != NULL ? msg : rd_kafka_err2str(err));
            if (is_permanent(err)) {
                done[index] = -1;
            }
        }
    }
    rc = 0;

out:
    if (event != NULL) {
        rd_kafka_event_destroy(event);
    }
    if (queue != NULL) {
        rd_kafka_queue_destroy(queue);
    }
    if (options != NULL) {
        rd_kafka_AdminOptions_destroy(options);
    }
    for (int i = 0; i < count; i++) {
        rd_kafka_NewTopic_destroy(topics[i]);
    }
    free(topics);
    return rc;
}

static int cmd_create(const char *brokers, int argc, char **argv) {
    if (argc < 1) {
        usage();
        return 2;
    }
    int n = argc;
    char **names = calloc((size_t)n, sizeof *names);
    int *parts = calloc((size_t)n, sizeof *parts);
    int *done = calloc((size_t)n, sizeof *done);
    int status = 1;
    rd_kafka_t *rk = NULL;
    if (names == NULL || parts == NULL || done == NULL) {
        fprintf(stderr, "pw-kafka-admin: out of memory\n");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        if (parse_topic_spec(argv[i], &len, &parts[i]) != 0) {
            fprintf(stderr, "pw-kafka-admin: bad topic spec '%s' (want NAME:PARTITIONS)\n",
                    argv[i]);
            status = 2;
            goto out;
        }
        names[i] = malloc(len + 1);
        if (names[i] == NULL) {
            fprintf(stderr, "pw-kafka-admin: out of memory\n");
            goto out;
        }
        memcpy(names[i], argv[i], len);
        names[i][len] = '\0';
    }

    rk = new_client(RD_KAFKA_PRODUCER, brokers, NULL);
    if (rk == NULL) {
        goto out;
    }
    for (int attempt = 1; attempt <= CREATE_MAX_ATTEMPTS; attempt++) {
        (void)create_round(rk, names, parts, done, n);
        int pending = 0;
        for (int i = 0; i < n; i++) {
            if (done[i] == 0) {
                pending++;
            }
        }
        if (pending == 0) {
            break;
        }
        sleep_ms(1000);
    }
    status = 0;
    for (int i = 0; i < n; i++) {
        if (done[i] == 1) {
            printf("%s %d\n", names[i], parts[i]);
        } else {
            fprintf(stderr, "pw-kafka-admin: topic %s was not created\n", names[i]);
            status = 1;
        }
    }
    if (fflush(stdout) != 0) {
        status = 1;
    }

out:
    if (rk != NULL) {
        rd_kafka_destroy(rk);
    }
    if (names != NULL) {
        for (int i = 0; i < n; i++) {
            free(names[i]);
        }
    }
    free(names);
    free(parts);
    free(done);
    return status;
}

static int compare_int32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a;
    int32_t y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int cmd_group_offsets(const char *brokers, int argc, char **argv) {
    if (argc != 2) {
        usage();
        return 2;
    }
    const char *group = argv[0];
    const char *topic = argv[1];
    int status = 1;
    rd_kafka_topic_t *rkt = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    int32_t *ids = NULL;

    rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, brokers, group);
    if (rk == NULL) {
        return 1;
    }
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL) {
        fprintf(stderr, "pw-kafka-admin: topic %s: %s\n", topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, QUERY_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "pw-kafka-admin: metadata: %s\n", rd_kafka_err2str(err));
        md = NULL;
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "pw-kafka-admin: topic %s: %s\n", topic,
                md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not in metadata");
        goto out;
    }
    int count = md->topics[0].partition_cnt;
    if (count <= 0) {
        fprintf(stderr, "pw-kafka-admin: topic %s has no partitions\n", topic);
        goto out;
    }
    ids = calloc((size_t)count, sizeof *ids);
    if (ids == NULL) {
        fprintf(stderr, "pw-kafka-admin: out of memory\n");
        goto out;
    }
    for (int i = 0; i < count; i++) {
        ids[i] = md->topics[0].partitions[i].id;
    }
    qsort(ids, (size_t)count, sizeof *ids, compare_int32);

    list = rd_kafka_topic_partition_list_new(count);
    if (list == NULL) {
        fprintf(stderr, "pw-kafka-admin: out of memory\n");
        goto out;
    }
    for (int i = 0; i < count; i++) {
        (void)rd_kafka_topic_partition_list_add(list, topic, ids[i]);
    }
    err = rd_kafka_committed(rk, list, QUERY_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "pw-kafka-admin: committed offsets of %s: %s\n", group,
                rd_kafka_err2str(err));
        goto out;
    }
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "pw-kafka-admin: committed offset of %s [%" PRId32 "]: %s\n", topic,
                    tp->partition, rd_kafka_err2str(tp->err));
            goto out;
        }
    }
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t low = 0;
        int64_t high = 0;
        err = rd_kafka_query_watermark_offsets(rk, topic, tp->partition, &low, &high,
                                               QUERY_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "pw-kafka-admin: watermarks of %s [%" PRId32 "]: %s\n", topic,
                    tp->partition, rd_kafka_err2str(err));
            goto out;
        }
        int64_t committed = tp->offset >= 0 ? tp->offset : -1;
        printf("%" PRId32 " %" PRId64 " %" PRId64 "\n", tp->partition, committed, high);
    }
    status = fflush(stdout) == 0 ? 0 : 1;

out:
    if (list != NULL) {
        rd_kafka_topic_partition_list_destroy(list);
    }
    free(ids);
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    if (rkt != NULL) {
        rd_kafka_topic_destroy(rkt);
    }
    /* Never subscribed: nothing to leave or commit. */
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return status;
}

int main(int argc, char **argv) {
    const char *brokers = NULL;
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
            brokers = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage();
            return 0;
        } else {
            usage();
            return 2;
        }
    }
    if (brokers == NULL || brokers[0] == '\0' || i >= argc) {
        usage();
        return 2;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "create") == 0) {
        return cmd_create(brokers, argc - i - 1, argv + i + 1);
    }
    if (strcmp(cmd, "group-offsets") == 0) {
        return cmd_group_offsets(brokers, argc - i - 1, argv + i + 1);
    }
    usage();
    return 2;
}
