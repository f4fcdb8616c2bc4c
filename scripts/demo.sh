#!/usr/bin/env bash
# demo.sh (`make demo`) runs the whole flow on this machine, on loopback,
# with no Docker engine and no root:
#
#   devidp    a DEVELOPMENT-ONLY OpenID provider (cmd/devidp) with demo users
#   bridge    bin/bridge with the embedded store, logging in at devidp
#   registry  distribution v3 in token-auth mode, trusting the bridge's key
#
# It builds bin/bridge and bin/devidp, builds the registry into .tools/bin
# the first time (go install, a few minutes), writes keys and configs into
# the work directory, starts the three, and prints what to open and type.
# Ctrl-C (or SIGTERM) stops everything. Every start writes fresh configs,
# keys and users; pushed images stay in the work directory.
#
# Environment (all optional):
#   DEMO_DIR               work directory (default .demo in the repository)
#   DEMO_BIN_DIR           where bridge and devidp are built (default bin)
#   DEMO_IDP_PORT          devidp port (default 5556)
#   DEMO_BRIDGE_PORT       bridge port (default 5001)
#   DEMO_REGISTRY_PORT     registry port (default 5000)
#   DEMO_REVALIDATE_EVERY  how often the bridge re-reads groups (default 30s)
#
# Once everything answers, the last line printed is "demo: ready"; tests
# (e2e/demo_test.go, e2e/browser_test.go) wait for it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${DEMO_DIR:-$root/.demo}
bindir=${DEMO_BIN_DIR:-$root/bin}
idp_port=${DEMO_IDP_PORT:-5556}
bridge_port=${DEMO_BRIDGE_PORT:-5001}
registry_port=${DEMO_REGISTRY_PORT:-5000}
revalidate=${DEMO_REVALIDATE_EVERY:-30s}

# The registry pin; e2e/demo_test.go checks it matches scripts/install-deps.sh.
registry_pkg=github.com/distribution/distribution/v3/cmd/registry@v3.1.2
registry_bin=$root/.tools/bin/registry

# How long each component may take to answer after it starts.
ready_timeout=60

die() { echo "demo: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "needs Go 1.26 or later in PATH (https://go.dev/dl/)"
for p in "$idp_port" "$bridge_port" "$registry_port"; do
  case $p in '' | *[!0-9]*) die "port '$p' is not a number" ;; esac
done

mkdir -p "$dir" "$bindir"
dir=$(cd "$dir" && pwd)
bindir=$(cd "$bindir" && pwd)

# show prints a path relative to the current directory when it is below it,
# so that the printed commands stay short.
show() {
  case $1 in
    "$PWD"/*) echo "${1#"$PWD"/}" ;;
    *) echo "$1" ;;
  esac
}

# port_busy succeeds when something already listens on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_status prints the HTTP status code of GET http://127.0.0.1:$1$2, or
# nothing when the port does not answer. bash only: no curl needed.
http_status() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
    printf 'GET %s HTTP/1.0\r\nHost: localhost:%s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
    read -r -t 5 _ code _ <&3 || true
    echo "${code:-}"
  ) 2>/dev/null
}

for p in "$idp_port:DEMO_IDP_PORT" "$bridge_port:DEMO_BRIDGE_PORT" "$registry_port:DEMO_REGISTRY_PORT"; do
  if port_busy "${p%%:*}"; then
    die "port ${p%%:*} is in use (another demo still running?); stop it or set ${p#*:}"
  fi
done

echo "demo: building $(show "$bindir")/bridge and $(show "$bindir")/devidp" >&2
(cd "$root" && go build -o "$bindir/bridge" ./cmd/bridge && go build -o "$bindir/devidp" ./cmd/devidp) ||
  die "go build failed (see above)"
if [ ! -x "$registry_bin" ]; then
  echo "demo: building the distribution registry v3 into $(show "$registry_bin") (first run only; a few minutes)" >&2
  mkdir -p "$(dirname "$registry_bin")"
  GOBIN=$(dirname "$registry_bin") go install "$registry_pkg" || die "go install $registry_pkg failed (see above)"
fi

logs=$dir/logs
mkdir -p "$logs" "$dir/registry"
"$bindir/bridge" keys generate --out "$dir/keys" --force >"$logs/keys.log" 2>&1 ||
  die "bridge keys generate failed: $(cat "$logs/keys.log")"

# The demo users. Plain-text passwords: devidp is for development only.
cat >"$dir/users.yaml" <<YAML
# DEVELOPMENT ONLY: the demo's users at devidp (written by scripts/demo.sh
# at every start). Edit a user's groups or set "disabled: true" and save:
# devidp applies it at once, and the bridge sees it at its next group
# revalidation (revalidation.every in bridge.yaml: $revalidate).
groups_in_id_token: true

users:
  - username: alice
    password: alice-password
    email: alice@example.com
    name: Alice Example
    groups: [team-a]
    disabled: false
  - username: bob
    password: bob-password
    email: bob@example.com
    name: Bob Example
    groups: [team-b, registry-admins]
    disabled: false
  - username: carol
    password: carol-password
    email: carol@example.com
    name: Carol Example
    groups: []
    disabled: false

clients:
  - id: registry-bridge
    secret: registry-bridge-demo-secret
    redirect_uris:
      - http://localhost:$bridge_port/callback
YAML

cat >"$dir/bridge.yaml" <<YAML
# The demo's bridge (written by scripts/demo.sh at every start). No store
# section: the embedded store, so passwords are lost when the demo stops.
listen: 127.0.0.1:$bridge_port
public_url: http://localhost:$bridge_port

oidc:
  issuer: http://localhost:$idp_port
  client_id: registry-bridge
  client_secret: registry-bridge-demo-secret
  display_name: devidp (development only)

token:
  issuer: registry-bridge-demo
  service: localhost:$registry_port
  signing_key_file: $dir/keys/signing.key
  certificate_file: $dir/keys/signing.crt

revalidation:
  every: $revalidate

ui:
  title: Container registry (demo)
  registry_host: localhost:$registry_port

log:
  format: text

YAML
# The access rules are those of the example configuration, which README.md
# shows and the tests check: the demo runs them as they are.
sed -n '/^access:/,/^[^ #]/{/^access:/p;/^[ #]/p}' "$root/deploy/examples/bridge.yaml" >>"$dir/bridge.yaml"
grep -q '^access:' "$dir/bridge.yaml" || die "no access: section in deploy/examples/bridge.yaml"

cat >"$dir/registry.yml" <<YAML
# The demo's registry (distribution v3), written by scripts/demo.sh.
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$registry_port
  secret: registry-bridge-demo-not-secret
auth:
  token:
    realm: http://localhost:$bridge_port/token
    service: localhost:$registry_port
    issuer: registry-bridge-demo
    rootcertbundle: $dir/keys/signing.crt
YAML

# A tiny OCI image layout (one file in one layer, tagged v1), so that skopeo
# has something to push without a network: the test suite's own writer.
rm -rf "$dir/image"
(cd "$root" && go run ./internal/testenv/cmd/ocilayout --text $'hello from the registry-bridge demo\n' "$dir/image") >"$logs/image.log" 2>&1 ||
  die "writing the demo image failed: $(cat "$logs/image.log")"

pids=()
names=()

cleanup() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] || return 0
  echo >&2
  echo "demo: stopping ${names[*]}" >&2
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local i p alive
  for i in $(seq 50); do
    alive=0
    for p in "${pids[@]}"; do
      if kill -0 "$p" 2>/dev/null; then alive=1; fi
    done
    [ $alive = 1 ] || break
    sleep 0.2
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "demo: stopped" >&2
}
trap cleanup EXIT
# Ctrl-C or a TERM is how the demo is meant to stop: exit 0, so that make
# reports no error.
trap 'exit 0' INT TERM

# start NAME CMD… runs CMD in the background with its output in logs/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

# wait_ready NAME PORT PATH STATUS waits until GET PATH answers STATUS,
# and fails with the log's tail when the process dies or time runs out.
wait_ready() {
  local name=$1 port=$2 path=$3 want=$4 pid=${pids[-1]} i got=
  for i in $(seq $((ready_timeout * 10))); do
    got=$(http_status "$port" "$path")
    [ "$got" != "$want" ] || return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: $name exited at start; the end of $(show "$logs/$name.log"):" >&2
      tail -n 20 "$logs/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "demo: $name did not answer $want on port $port within ${ready_timeout}s (last: ${got:-no answer}); the end of $(show "$logs/$name.log"):" >&2
  tail -n 20 "$logs/$name.log" >&2
  exit 1
}

echo "demo: starting devidp, bridge and registry (logs in $(show "$logs"))" >&2
start devidp "$bindir/devidp" --config "$dir/users.yaml" --listen "127.0.0.1:$idp_port" --issuer "http://localhost:$idp_port"
wait_ready devidp "$idp_port" /.well-known/openid-configuration 200
start bridge "$bindir/bridge" serve --config "$dir/bridge.yaml"
wait_ready bridge "$bridge_port" /readyz 200
start registry env OTEL_TRACES_EXPORTER=none OTEL_SDK_DISABLED=true "$registry_bin" serve "$dir/registry.yml"
wait_ready registry "$registry_port" /v2/ 401

reg=localhost:$registry_port
img=$(show "$dir/image")
cat <<TEXT

  registry-bridge demo: everything runs on this machine; nothing is kept.

  1. Open  http://localhost:$bridge_port  and log in at devidp (a DEVELOPMENT-ONLY
     identity provider) as one of:

       alice / alice-password    groups: team-a
       bob   / bob-password      groups: team-b, registry-admins
       carol / carol-password    groups: (none)

     Create an app password. The page shows it once, with your username.

  2. Log in to the registry with it and push. A tiny image is ready in $img:

       skopeo login --tls-verify=false -u alice $reg
       skopeo copy --dest-tls-verify=false oci:$img:v1 docker://$reg/team-a/app:v1

     skopeo login asks for the password: paste the app password.
     With Docker (it speaks plain HTTP to localhost registries):

       docker login $reg -u alice
       docker pull busybox && docker tag busybox $reg/team-a/app:v1
       docker push $reg/team-a/app:v1

     Who may do what ($(show "$dir/bridge.yaml")): team-a pushes team-a/**, team-b pushes
     team-b/** (every team-* group its own namespace), registry-admins everything,
     everyone their own users/<username>/**, and anyone may pull public/**.
     So alice's push to team-b/app is denied.

  3. Change access while it runs: edit $(show "$dir/users.yaml") (a user's groups, or
     disabled: true) and save. Within $revalidate the bridge sees it and pushes
     are allowed or denied accordingly. Revoking a password on the page
     takes effect at once.

  Logs: $(show "$logs")/{devidp,bridge,registry}.log
  Ctrl-C stops everything.

TEXT
echo "demo: ready"

# Run until a signal (the traps) or until a component dies.
while :; do
  wait -n || true
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "demo: ${names[$i]} stopped unexpectedly; the end of $(show "$logs/${names[$i]}.log"):" >&2
      tail -n 20 "$logs/${names[$i]}.log" >&2
      exit 1
    fi
  done
done
