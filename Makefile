# The two commands a newcomer needs:
#   make demo   — run the whole flow locally: provider, bridge, registry
#   make test   — install what the tests need, then run every test
#
# Tools built with `go install` are cached in .tools/bin; Debian packages
# are installed with apt-get when missing (root needed once).

SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
GO       ?= go
# Fuzz budgets are execution counts, not durations: go1.26's fuzz coordinator
# can fail a duration-bounded run with a spurious "context deadline exceeded"
# at the deadline (golang/go#75804, fixed in go1.27).
FUZZTIME ?= 50000x
PKGS     := ./...

.PHONY: all build demo test deps vet unit e2e race fuzz-short fuzz bench clean image

all: build

build:
	$(GO) build -o bin/bridge ./cmd/bridge
	$(GO) build -o bin/docker-credential-bridge ./cmd/docker-credential-bridge

## demo: the whole flow on loopback, no Docker engine: a development OpenID
## provider with demo users, the bridge, and registry v3. Prints what to open
## and type; Ctrl-C stops everything. See scripts/demo.sh for the settings.
demo:
	bash scripts/demo.sh

## deps: install redis-server, docker-registry (2.8), skopeo, chromium (for
## the browser tests), and the Go-built registry v3, crane, regctl, oras
## into .tools/bin.
deps:
	BRIDGE_BROWSER=1 bash scripts/install-deps.sh

## test: everything CI runs — vet, formatting, unit and end-to-end tests
## against real Redis, registries and clients, race tests, short fuzzing.
test: deps vet
	BRIDGE_E2E=1 $(GO) test -count=1 -timeout 20m $(PKGS)
	$(MAKE) race fuzz-short

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -run TestImportBoundaries ./internal/deps

race:
	BRIDGE_E2E=1 $(GO) test -count=1 -race -timeout 10m ./store/... ./httpapi/... ./groups/... ./accounts/... ./cmd/bridge/...

## fuzz-short: a few seconds per fuzz target (make fuzz for longer).
fuzz-short:
	@set -e; for t in $$(scripts/fuzz-targets.sh); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(or $(LONGFUZZ),2000000x)

## bench: every benchmark; numbers go to docs/benchmarks.md.
bench: deps
	BRIDGE_E2E=1 $(GO) test -p 1 -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./groups ./tokens ./store/cache ./httpapi ./bench && BRIDGE_E2E=1 $(GO) test -count=1 -run '^TestMemoryBudget$$' -v ./store/redis

## image: build the Dockerfile with buildah — no Docker engine; root, vfs
## storage in .tools/containers — then run the image's binary, check the
## images (deploy/deploytest TestImage) and write bin/registry-bridge.tar and
## bin/registry-bridge-keygen.tar (`docker load -i`). Base images cannot be
## pulled here, so local stand-ins replace them: golang = busybox-static + the host's Go
## (bind-mounted); distroless static:nonroot = scratch + the same passwd/group,
## CA bundle, /tmp and user 65532 (:debug-nonroot adds /busybox). Modules come
## from the host's module cache (GOPROXY=file://). First run ~2 min, then the
## build cache makes it quick. Not part of `make test`: see deploy/README.md.
image: IMAGE ?= registry-bridge:dev
image: KEYGEN_IMAGE ?= registry-bridge-keygen:dev
image: STORE := $(CURDIR)/.tools/containers
image:
	@set -euo pipefail; \
	[ "$$(id -u)" = 0 ] || { echo "make image: run as root (buildah, vfs storage, chroot isolation)" >&2; exit 1; }; \
	need=(); command -v buildah >/dev/null || need+=(buildah); [ -x /bin/busybox ] || need+=(busybox-static); \
	if [ $${#need[@]} -gt 0 ]; then export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; \
	  apt-get install -y -qq --no-install-recommends "$${need[@]}" >/dev/null; fi; \
	export BUILDAH_ISOLATION=chroot; \
	B="buildah --root $(STORE)/storage --runroot $(STORE)/run --storage-driver vfs"; \
	standin() { \
	  local c m; c=$$($$B from scratch); m=$$($$B mount $$c); \
	  mkdir -p $$m/etc/ssl/certs $$m/tmp $$m/home/nonroot $$m/root; chmod 1777 $$m/tmp; \
	  printf '%s\n' root:x:0:0:root:/root:/sbin/nologin nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin \
	    nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin > $$m/etc/passwd; \
	  printf '%s\n' root:x:0: nobody:x:65534: nonroot:x:65532: > $$m/etc/group; \
	  chown 65532:65532 $$m/home/nonroot; cp /etc/ssl/certs/ca-certificates.crt $$m/etc/ssl/certs/; \
	  case $$1 in \
	    golang) mkdir -p $$m/bin $$m/usr/local/go $$m/go; cp /bin/busybox $$m/bin/; \
	      for a in $$(/bin/busybox --list); do [ -e $$m/bin/$$a ] || ln -s busybox $$m/bin/$$a; done; \
	      $$B config --env PATH=/usr/local/go/bin:/go/bin:/bin --env GOPATH=/go --env HOME=/root --workingdir /go $$c ;; \
	    debug) mkdir -p $$m/busybox; cp /bin/busybox $$m/busybox/; ln -s busybox $$m/busybox/sh; \
	      $$B config --env PATH=/busybox:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --user 65532:65532 --workingdir /home/nonroot $$c ;; \
	    *) $$B config --env PATH=/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --user 65532:65532 --workingdir /home/nonroot $$c ;; \
	  esac; \
	  $$B umount $$c >/dev/null; $$B commit -q --rm $$c $$2 >/dev/null; \
	}; \
	for s in golang:golang:1.26 static:distroless-static:nonroot debug:distroless-static:debug-nonroot; do \
	  $$B inspect --type image localhost/standin/$${s#*:} >/dev/null 2>&1 || standin $${s%%:*} localhost/standin/$${s#*:}; \
	done; \
	$(GO) mod download; \
	version=$$(git describe --tags --always --dirty 2>/dev/null || echo dev); commit=$$(git rev-parse HEAD 2>/dev/null || true); \
	for target in keygen runtime; do \
	  tag=$(IMAGE); [ $$target = keygen ] && tag=$(KEYGEN_IMAGE); \
	  $$B bud --pull=never --layers --target $$target -t $$tag -f Dockerfile \
	    --build-arg GO_IMAGE=localhost/standin/golang:1.26 \
	    --build-arg RUNTIME_IMAGE=localhost/standin/distroless-static:nonroot \
	    --build-arg KEYGEN_IMAGE=localhost/standin/distroless-static:debug-nonroot \
	    --build-arg GOPROXY=file:///goproxy --build-arg VERSION=$$version --build-arg COMMIT=$$commit \
	    -v "$$($(GO) env GOROOT):/usr/local/go:ro" -v "$$($(GO) env GOMODCACHE)/cache/download:/goproxy:ro" . ; \
	done; \
	c=$$($$B from $(IMAGE)); trap '$$B rm $$c >/dev/null' EXIT; \
	echo "run once as $$($$B inspect -f '{{.OCIv1.Config.User}}' $(IMAGE)):"; $$B run $$c -- /bridge version; \
	BRIDGE_IMAGE=$(IMAGE) BRIDGE_KEYGEN_IMAGE=$(KEYGEN_IMAGE) BRIDGE_CONTAINERS=$(STORE) \
	  $(GO) test -count=1 -run '^TestImage' ./deploy/deploytest; \
	mkdir -p bin; rm -f bin/registry-bridge.tar bin/registry-bridge-keygen.tar; \
	$$B push -q $(IMAGE) docker-archive:bin/registry-bridge.tar:$(IMAGE); \
	$$B push -q $(KEYGEN_IMAGE) docker-archive:bin/registry-bridge-keygen.tar:$(KEYGEN_IMAGE); \
	$$B rmi --prune >/dev/null || true; \
	echo "built $(IMAGE) and $(KEYGEN_IMAGE) ($$version): bin/registry-bridge.tar, bin/registry-bridge-keygen.tar (docker load -i …)"

clean:
	rm -rf bin
