#!/usr/bin/env bash
# Builds the Dockerfile with buildah — no Docker engine; root, vfs storage,
# chroot isolation — then runs the image's binary, checks the images
# (deploy/deploytest TestImage) and writes bin/registry-bridge.tar and
# bin/registry-bridge-keygen.tar (`docker load -i …`). `make image` calls it.
#
# Base images cannot be pulled here, so local stand-ins replace them:
#   golang:1.26                  busybox-static + the host's Go (bind-mounted)
#   distroless static:nonroot    scratch + passwd/group, CA bundle, /tmp, user 65532
#   distroless :debug-nonroot    the same + /busybox
# Modules come from the host's module cache (GOPROXY=file://). First run
# ~2 min, then the build cache makes it quick. Not part of `make test`: see
# deploy/README.md.
#
# Environment (defaults in brackets):
#   IMAGE         the server image's tag [registry-bridge:dev]
#   KEYGEN_IMAGE  the keygen image's tag [registry-bridge-keygen:dev]
#   STORE         buildah's storage [.tools/containers]
#   VERSION       what `bridge version` and the image label say
#                 [git describe --tags --always --dirty, else dev]
#   COMMIT        the commit [git rev-parse HEAD]
#   GO            the Go command [go]
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-registry-bridge:dev}
KEYGEN_IMAGE=${KEYGEN_IMAGE:-registry-bridge-keygen:dev}
STORE=${STORE:-$PWD/.tools/containers}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT-$(git rev-parse HEAD 2>/dev/null || true)}
GO=${GO:-go}

if [ "$(id -u)" != 0 ]; then
  echo "make image: run as root (buildah, vfs storage, chroot isolation)" >&2
  exit 1
fi

need=()
command -v buildah >/dev/null || need+=(buildah)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

export BUILDAH_ISOLATION=chroot
B=(buildah --root "$STORE/storage" --runroot "$STORE/run" --storage-driver vfs)

# standin KIND TAG builds a local replacement for a base image.
standin() {
  local c m
  c=$("${B[@]}" from scratch)
  m=$("${B[@]}" mount "$c")
  mkdir -p "$m/etc/ssl/certs" "$m/tmp" "$m/home/nonroot" "$m/root"
  chmod 1777 "$m/tmp"
  printf '%s\n' root:x:0:0:root:/root:/sbin/nologin nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin \
    nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin > "$m/etc/passwd"
  printf '%s\n' root:x:0: nobody:x:65534: nonroot:x:65532: > "$m/etc/group"
  chown 65532:65532 "$m/home/nonroot"
  cp /etc/ssl/certs/ca-certificates.crt "$m/etc/ssl/certs/"
  case $1 in
    golang)
      mkdir -p "$m/bin" "$m/usr/local/go" "$m/go"
      cp /bin/busybox "$m/bin/"
      for a in $(/bin/busybox --list); do [ -e "$m/bin/$a" ] || ln -s busybox "$m/bin/$a"; done
      "${B[@]}" config --env PATH=/usr/local/go/bin:/go/bin:/bin --env GOPATH=/go --env HOME=/root --workingdir /go "$c" ;;
    debug)
      mkdir -p "$m/busybox"
      cp /bin/busybox "$m/busybox/"
      ln -s busybox "$m/busybox/sh"
      "${B[@]}" config --env PATH=/busybox:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --user 65532:65532 --workingdir /home/nonroot "$c" ;;
    *)
      "${B[@]}" config --env PATH=/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --user 65532:65532 --workingdir /home/nonroot "$c" ;;
  esac
  "${B[@]}" umount "$c" >/dev/null
  "${B[@]}" commit -q --rm "$c" "$2" >/dev/null
}

for s in golang:golang:1.26 static:distroless-static:nonroot debug:distroless-static:debug-nonroot; do
  "${B[@]}" inspect --type image "localhost/standin/${s#*:}" >/dev/null 2>&1 || standin "${s%%:*}" "localhost/standin/${s#*:}"
done

"$GO" mod download
for target in keygen runtime; do
  tag=$IMAGE
  [ "$target" = keygen ] && tag=$KEYGEN_IMAGE
  "${B[@]}" bud --pull=never --layers --target "$target" -t "$tag" -f Dockerfile \
    --build-arg GO_IMAGE=localhost/standin/golang:1.26 \
    --build-arg RUNTIME_IMAGE=localhost/standin/distroless-static:nonroot \
    --build-arg KEYGEN_IMAGE=localhost/standin/distroless-static:debug-nonroot \
    --build-arg GOPROXY=file:///goproxy --build-arg VERSION="$VERSION" --build-arg COMMIT="$COMMIT" \
    -v "$("$GO" env GOROOT):/usr/local/go:ro" -v "$("$GO" env GOMODCACHE)/cache/download:/goproxy:ro" .
done

c=$("${B[@]}" from "$IMAGE")
trap '"${B[@]}" rm "$c" >/dev/null' EXIT
echo "run once as $("${B[@]}" inspect -f '{{.OCIv1.Config.User}}' "$IMAGE"):"
"${B[@]}" run "$c" -- /bridge version
BRIDGE_IMAGE=$IMAGE BRIDGE_KEYGEN_IMAGE=$KEYGEN_IMAGE BRIDGE_CONTAINERS=$STORE \
  "$GO" test -count=1 -run '^TestImage' ./deploy/deploytest

mkdir -p bin
rm -f bin/registry-bridge.tar bin/registry-bridge-keygen.tar
"${B[@]}" push -q "$IMAGE" "docker-archive:bin/registry-bridge.tar:$IMAGE"
"${B[@]}" push -q "$KEYGEN_IMAGE" "docker-archive:bin/registry-bridge-keygen.tar:$KEYGEN_IMAGE"
"${B[@]}" rmi --prune >/dev/null || true
echo "built $IMAGE and $KEYGEN_IMAGE ($VERSION): bin/registry-bridge.tar, bin/registry-bridge-keygen.tar (docker load -i …)"
