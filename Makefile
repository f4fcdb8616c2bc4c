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
# What `bridge version` prints (cmd/bridge/version.go); the image gets the same.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   = -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build demo test deps vet unit e2e race fuzz-short fuzz bench clean image

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/bridge ./cmd/bridge
	$(GO) build -trimpath -o bin/docker-credential-bridge ./cmd/docker-credential-bridge
	$(GO) build -trimpath -o bin/bridge-credential-provider ./cmd/bridge-credential-provider

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
	BRIDGE_E2E=1 $(GO) test -count=1 -race -timeout 10m ./store/... ./httpapi/... ./groups/... ./accounts/... ./workload/... ./credhelper/... ./cmd/...

## fuzz-short: a few seconds per fuzz target, as CI runs it (make fuzz for
## the long campaign). FUZZ=REGEX picks targets (scripts/fuzz-targets.sh).
fuzz-short:
	@set -e; for t in $$(scripts/fuzz-targets.sh '$(FUZZ)'); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## fuzz: the long campaign, 10 million executions per target unless
## LONGFUZZ says otherwise (make fuzz LONGFUZZ=200000x FUZZ=httpapi); hours
## on a small machine. Counts and findings go to docs/fuzzing.md.
fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(or $(LONGFUZZ),10000000x)

## bench: every benchmark; numbers go to docs/benchmarks.md.
bench: deps
	BRIDGE_E2E=1 $(GO) test -p 1 -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./groups ./tokens ./store/cache ./httpapi ./workload ./bench && BRIDGE_E2E=1 $(GO) test -count=1 -run '^TestMemoryBudget$$' -v ./store/redis

## image: build the Dockerfile with buildah (no Docker engine; root), check
## the images and write bin/registry-bridge.tar and bin/registry-bridge-keygen.tar
## (`docker load -i`). Base images are local stand-ins; see scripts/image.sh.
## Not part of `make test`: see deploy/README.md.
image: IMAGE ?= registry-bridge:dev
image: KEYGEN_IMAGE ?= registry-bridge-keygen:dev
image: STORE := $(CURDIR)/.tools/containers
image:
	IMAGE='$(IMAGE)' KEYGEN_IMAGE='$(KEYGEN_IMAGE)' STORE='$(STORE)' VERSION='$(VERSION)' COMMIT='$(COMMIT)' GO='$(GO)' \
	  bash scripts/image.sh

clean:
	rm -rf bin
