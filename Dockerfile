# syntax=docker/dockerfile:1
#
# registry-bridge container image: one static binary on distroless, running as
# the unprivileged user 65532, with no shell and no package manager.
#
#   docker build -t registry-bridge .                              # the server (last stage)
#   docker build --target keygen -t registry-bridge-keygen .       # compose's one-shot key step
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) .
#
# Without a Docker engine, `make image` builds this same file with buildah,
# substituting local stand-ins for the three base images (see scripts/image.sh).
#
# Run it with the config at /etc/bridge/bridge.yaml (BRIDGE_CONFIG points
# there) and the key files wherever the config says, e.g. /keys. The image
# runs as 65532:65532, so keys generated on the host must be readable by that
# user: hand them over (as root), or keep them yours and let group 65532 read:
#
#   sudo bridge keys generate --out keys --owner 65532:65532
#   sudo bridge keys generate --out keys --group 65532 --mode 0640     # or this
#   docker run -v $PWD/bridge.yaml:/etc/bridge/bridge.yaml:ro -v $PWD/keys:/keys:ro \
#     -p 5001:5001 registry-bridge
#
# bridge.yaml (and an oidc.client_secret_file, if any) must be readable by
# 65532 too, e.g. mode 0644 or the same --group treatment.
#
# Probes: GET /healthz (liveness), GET /readyz (store reachable), over HTTP on
# the `listen` port. There is no HEALTHCHECK instruction: the image has no
# shell or HTTP client to run one; orchestrators probe over HTTP instead.

ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot
ARG KEYGEN_IMAGE=gcr.io/distroless/static-debian12:debug-nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
# GOPROXY passes through from --build-arg (a mirror, or file:// in `make image`).
ARG GOPROXY
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/bridge ./cmd/bridge \
 && mkdir -p /out/keys

# keygen writes signing.key, signing.crt and encryption.key into /keys once
# and keeps them on every later run (`bridge keys generate` alone refuses to
# overwrite, which would fail a compose one-shot on the second `up`). It is
# the only image with a shell: distroless's busybox debug variant.
FROM ${KEYGEN_IMAGE} AS keygen
COPY --from=build /out/bridge /bridge
COPY --from=build --chown=65532:65532 /out/keys /keys
USER 65532:65532
ENTRYPOINT ["/busybox/sh", "-c", "if [ -e /keys/signing.key ]; then echo \"keygen: /keys/signing.key exists; keeping the keys\"; else exec /bridge keys generate --out /keys; fi"]

FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=dev
ARG COMMIT=
LABEL org.opencontainers.image.title="registry-bridge" \
      org.opencontainers.image.description="OIDC login and app passwords for container registries (Docker registry token server)" \
      org.opencontainers.image.source="https://github.com/registry-bridge/bridge" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/bridge /bridge
# An empty /keys owned by the runtime user: a fresh named volume mounted
# there inherits that ownership (Docker and Podman copy it up).
COPY --from=build --chown=65532:65532 /out/keys /keys
ENV BRIDGE_CONFIG=/etc/bridge/bridge.yaml
USER 65532:65532
EXPOSE 5001
ENTRYPOINT ["/bridge"]
CMD ["serve"]
