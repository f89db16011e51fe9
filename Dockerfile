# syntax=docker/dockerfile:1
#
# promo-webhooks container images.
#
#   docker build -t promo-webhooks .                       # the service (default target)
#   docker build --target receiver -t pw-receiver .        # the sample receiver
#
# The build stage installs its packages with the same tests/scripts/deps.sh
# that CI runs (only the build part of it), so a broken install step fails CI
# as well as this build. The runtime images carry only the shared libraries
# the binaries link against, run as uid 10001 and need no writable root
# filesystem.

ARG DEBIAN_RELEASE=12

############################################################################
# build: compiles promo-webhooks and pw-receiver (Release)
FROM debian:${DEBIAN_RELEASE} AS build
WORKDIR /src
# deps.sh first, alone, so the package layer is cached until it changes.
COPY tests/scripts/deps.sh tests/scripts/deps.sh
RUN sh tests/scripts/deps.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt ./
COPY cmake cmake
COPY include include
COPY service service
COPY tests tests
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" --target promo-webhooks pw-receiver \
 && strip /build/promo-webhooks /build/tests/pw-receiver

############################################################################
# receiver: pw-receiver, the recording HTTP receiver of the tests, for the
# Compose setup (docker/compose.yaml). Records every request as one JSON line.
FROM debian:${DEBIAN_RELEASE}-slim AS receiver
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libevent-2.1-7 libyajl2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 promo \
 && useradd --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin promo \
 && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /build/tests/pw-receiver /usr/local/bin/pw-receiver
USER 10001:10001
VOLUME ["/data"]
EXPOSE 9000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/pw-receiver"]
CMD ["--listen", "0.0.0.0:9000", "--record", "/data/deliveries.jsonl"]

############################################################################
# runtime: the service. Listed last so that a plain `docker build .` builds it.
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# Runtime libraries of the binary (ldd promo-webhooks), and the CA bundle
# libcurl verifies https webhook targets with.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates librdkafka1 libcurl4 libhiredis0.14 libyajl2 \
      libevent-2.1-7 libssl3 libxml2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 promo \
 && useradd --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin promo
COPY --from=build /build/promo-webhooks /usr/local/bin/promo-webhooks
USER 10001:10001
ENV PROMO_WEBHOOKS_HTTP_LISTEN=0.0.0.0:8080 \
    PROMO_WEBHOOKS_LOG_FORMAT=json
EXPOSE 8080
# SIGTERM drains (PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS, default 20 s): give the
# container more than that before it is killed (docker stop -t 30,
# stop_grace_period in Compose, terminationGracePeriodSeconds in Kubernetes).
STOPSIGNAL SIGTERM
# `--healthcheck` GETs /healthz on PROMO_WEBHOOKS_HTTP_LISTEN and exits 0 on
# a 200: no curl in the image. It answers within milliseconds and gives up
# after 2 s, inside --timeout (tests/e2e/test_healthcheck.sh times it).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["/usr/local/bin/promo-webhooks", "--healthcheck"]
ENTRYPOINT ["/usr/local/bin/promo-webhooks"]
