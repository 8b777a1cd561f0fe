# A small image for `air serve` on Kubernetes: the `air` binary on Debian slim.
#
#   docker build -t air .
#   docker run -p 8000:8000 -v /models:/models air serve /models/cancer --host 0.0.0.0
#
# Inside a container the server must bind 0.0.0.0 (it binds 127.0.0.1 unless told); the
# Deployment's probes use /-/healthz. Not built on the machines this workspace is developed
# and tested on (no container runtime there): see the README.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p air-cli --bin air

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/air /usr/local/bin/air
# Any non-root user; checkpoints are read from mounted volumes or object stores.
USER 65532:65532
EXPOSE 8000
ENTRYPOINT ["air"]
CMD ["--help"]
