# flashsale's image: one static binary on an empty base, run as a non-root
# user. Nothing else is in it: no shell, no libc, no CA bundle.
#
# The binary is built outside the image, as goreleaser does: its dockers_v2
# section (.goreleaser.yaml) puts each platform's binary at
# <os>/<arch>/flashsale in the build context, and so does scripts/image.sh,
# which builds the image with buildah (no Docker engine needed):
#
#   scripts/image.sh                 # → flashsale:dev (localhost/flashsale:dev)
#
# TARGETPLATFORM (linux/amd64, linux/arm64) is set by BuildKit and buildah.
FROM scratch
ARG TARGETPLATFORM
COPY ${TARGETPLATFORM}/flashsale /flashsale

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
