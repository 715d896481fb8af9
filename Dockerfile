# The cloudflared-routes image: the cloudflared-routes binary, plus the official cloudflared
# binary so that one container can run `cloudflared-routes run --reload supervise --
# cloudflared --no-autoupdate tunnel run` (the Helm chart's default mode).
#
#   docker build -t cloudflared-routes:0.1.0 .
#   docker build --build-arg CLOUDFLARED_VERSION=2025.11.1 -t cloudflared-routes:0.1.0 .
#
# Where no Docker engine runs (CI), tests/dockerfile.rs keeps this file honest: the builder's
# RUN is the very command .ci/run runs, the build context (.dockerignore) holds every file cargo
# needs to load the workspace and its lock file, and the paths below are the ones the build
# produces and the chart uses.

# The Rust toolchain of the builder (at least the workspace's rust-version).
ARG RUST_VERSION=1.95.0
# The official cloudflared image the cloudflared binary is copied from; the chart's
# cloudflared.image.tag (signal mode) is the same version.
ARG CLOUDFLARED_VERSION=2025.11.1

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cloudflared-routes

FROM docker.io/cloudflare/cloudflared:${CLOUDFLARED_VERSION} AS cloudflared

# Debian 12's glibc and libgcc (what a Rust binary links), CA certificates, and the nonroot
# user 65532: cloudflared's uid in its official image, which signal mode needs to signal it.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG CLOUDFLARED_VERSION
LABEL org.opencontainers.image.title="cloudflared-routes" \
      org.opencontainers.image.description="Publish Gateway API routes through a locally-managed Cloudflare Tunnel, with only the tunnel's credentials file; includes cloudflared ${CLOUDFLARED_VERSION}" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /src/target/release/cloudflared-routes /usr/local/bin/cloudflared-routes
COPY --from=cloudflared /usr/local/bin/cloudflared /usr/local/bin/cloudflared
# Nothing is written to the image's filesystem at run time: the config lives in a mounted
# volume (an emptyDir in the chart), so the root filesystem can be read-only.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/cloudflared-routes"]
