# Rookery PDS image. Build: docker build -t rookery .   Run: docker run -p 2583:2583 -v rookery:/data rookery
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin rookery

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/rookery /usr/local/bin/rookery
ENV PDS_DATA_DIRECTORY=/data PDS_PORT=2583
VOLUME /data
EXPOSE 2583
ENTRYPOINT ["/usr/local/bin/rookery"]
CMD ["serve"]
