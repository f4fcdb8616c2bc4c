# The two commands a newcomer needs:
#   make demo   — (coming with the browser flow) run the whole flow locally
#   make test   — install what the tests need, then run every test
#
# Tools built with `go install` are cached in .tools/bin; Debian packages
# are installed with apt-get when missing (root needed once).

SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
GO       ?= go
FUZZTIME ?= 8s
PKGS     := ./...

.PHONY: all build test deps vet unit e2e race fuzz-short fuzz bench clean

all: build

build:
	$(GO) build -o bin/bridge ./cmd/bridge

## deps: install redis-server, docker-registry (2.8), skopeo, and the Go-built
## registry v3, crane, regctl, oras into .tools/bin.
deps:
	bash scripts/install-deps.sh

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
	BRIDGE_E2E=1 $(GO) test -count=1 -race -timeout 10m ./store/... ./httpapi/... ./groups/...

## fuzz-short: a few seconds per fuzz target (make fuzz FUZZTIME=5m for longer).
fuzz-short:
	@set -e; for t in $$(scripts/fuzz-targets.sh); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(or $(LONGFUZZ),2m)

## bench: every benchmark; numbers go to docs/benchmarks.md.
bench: deps
	BRIDGE_E2E=1 $(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./groups ./tokens ./store/cache ./httpapi ./bench

clean:
	rm -rf bin
