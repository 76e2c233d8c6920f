# Rookery PDS image. Build: docker build -t rookery .
# Run:   docker run -p 2583:2583 -v rookery-data:/data -e PDS_HOSTNAME=pds.example.com … rookery
# Multi-stage: the release binary is built on the Rust image, the runtime is debian-slim with
# CA certificates only (TLS to the PLC directory, S3/R2, SMTP), running as an unprivileged
# user. One volume, /data, holds every database; with ROOKERY_REPLICA_S3_* set it may be
# empty at start (it is restored from the bucket).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin rookery \
    && install -D -m 0755 target/release/rookery /out/rookery

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 rookery \
    && useradd --system --uid 10001 --gid rookery --home-dir /data --shell /usr/sbin/nologin rookery \
    && mkdir -p /data \
    && chown rookery:rookery /data
COPY --from=build /out/rookery /usr/local/bin/rookery
ENV PDS_DATA_DIRECTORY=/data PDS_PORT=2583
VOLUME ["/data"]
EXPOSE 2583
USER 10001:10001
WORKDIR /data
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/rookery", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/rookery"]
CMD ["serve"]
