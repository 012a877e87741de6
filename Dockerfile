# flashsale's image, built from source: one static binary and the CA
# bundle on an empty base, run as a non-root user. No shell, no libc.
#
#   docker build -t flashsale:dev .          # or: buildah bud -t flashsale:dev .
#   docker compose up                        # builds this file (compose.yaml)
#   scripts/image.sh                         # builds it with buildah and checks it
#
# Build arguments: VERSION, the version the binary reports (default: what
# the Go build info says, "dev" here as .git is not in the context);
# GOPROXY, passed to go mod download; GO_VERSION, the golang image's tag.
# Releases do not use this file: goreleaser copies its own prebuilt
# binaries into Dockerfile.release.
ARG GO_VERSION=1.26

# Fully qualified: buildah and podman refuse a short name when no
# unqualified-search registry is configured.
FROM docker.io/library/golang:${GO_VERSION} AS build
WORKDIR /src
ARG GOPROXY=https://proxy.golang.org,direct
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0: a static binary, nothing to load on scratch. The CA
# bundle is for clients' --tls, which verifies against the system roots.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" -o /rootfs/flashsale . \
 && mkdir -p /rootfs/etc/ssl/certs \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/

FROM scratch
# One layer: the binary and the bundle.
COPY --from=build /rootfs/ /

# 65532 is distroless's "nonroot"; the binary needs no privileges (the
# default port 8080 is unprivileged).
USER 65532:65532

# The defaults the binary reads (see README "Configuration"). REDIS_ADDR
# names the host "redis", as compose.yaml's service is called: localhost
# would be the container itself, which runs no Redis.
ENV LISTEN_ADDR=:8080 \
    REDIS_ADDR=redis:6379
EXPOSE 8080

# The one-shot client: exit 0 only on PONG with Redis up. If you change
# LISTEN_ADDR's port or serve TLS, override the health check to match.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/flashsale", "ping", "--addr", "127.0.0.1:8080"]

ENTRYPOINT ["/flashsale"]
CMD ["serve"]

LABEL org.opencontainers.image.title="flashsale" \
      org.opencontainers.image.description="Sells limited stock over TLV, one atomic Redis script per purchase" \
      org.opencontainers.image.licenses="MIT"
