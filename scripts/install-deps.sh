#!/usr/bin/env bash
# install-deps.sh installs every real component the end-to-end suite runs against:
# Debian packages (redis-server, docker-registry 2.8, skopeo) and Go-built tools
# (distribution registry v3, crane, regctl, oras) cached under .tools/bin.
#
# It is idempotent: what is already present is not installed again.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin"
mkdir -p "$bin"

need_apt=()
command -v redis-server    >/dev/null 2>&1 || need_apt+=(redis-server)
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v skopeo          >/dev/null 2>&1 || need_apt+=(skopeo)
if [ "${BRIDGE_BROWSER:-0}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need ${need_apt[*]}; run as root or: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "install-deps: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Debian starts a package's service on install; the tests start their own
  # on free ports. Rather than stop services afterwards (which could stop
  # someone else's redis-server on a shared host), tell invoke-rc.d not to
  # start any while we install: exit code 101 of policy-rc.d means "action
  # forbidden". An existing policy-rc.d is the host's own and is left alone.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy" && made_policy=1
    trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  if [ "$made_policy" = 1 ]; then rm -f "$policy"; made_policy=0; fi
fi

# Go tools, pinned, built once into .tools/bin; a changed pin rebuilds.
gotool() { # name module@version
  local name=$1 pkg=$2 stamp="$bin/.$1.version"
  if [ -x "$bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]; then return 0; fi
  echo "install-deps: go install $pkg" >&2
  GOBIN="$bin" go install "$pkg" && echo "$pkg" > "$stamp"
}
gotool registry github.com/distribution/distribution/v3/cmd/registry@v3.1.2 &
p1=$!
gotool crane github.com/google/go-containerregistry/cmd/crane@v0.22.1 &
p2=$!
gotool regctl github.com/regclient/regclient/cmd/regctl@v0.11.5 &
p3=$!
gotool oras oras.land/oras/cmd/oras@v1.3.6 &
p4=$!
fail=0
for p in $p1 $p2 $p3 $p4; do wait $p || fail=1; done
if [ $fail != 0 ]; then echo "install-deps: a go install failed (see above)" >&2; exit 1; fi
echo "install-deps: ok" >&2
