// Package deploytest holds the tests that keep the deployment files honest:
// the container image (Dockerfile, `make image`), the compose stack in
// deploy/compose and the Kustomize manifests in deploy/kubernetes. It has no
// code of its own, only tests.
//
// The tests read the files the way their consumers do: the compose file with
// compose-go (the loader of `docker compose`, with .env interpolation), the
// registry's config with distribution's own parser and REGISTRY_* overrides,
// Dex's config through the same template functions its image renders it
// with, and the Kubernetes manifests by rendering them with the Kustomize
// API. Each bridge config is then checked by the real binary — `bridge
// config check`, the validator `serve` uses — with the environment the
// service would get and its mounted paths mapped onto a temporary directory
// holding freshly generated keys. Finally the values every service must
// agree on (realm, service, issuer, certificate, redirect URI, client id and
// secret, Redis address, published ports, probe paths) are compared.
//
// Usage:
//
//	go test ./deploy/deploytest                  # compose, Kubernetes, Dockerfile
//	make image                                   # also runs TestImage on the built image
//	BRIDGE_IMAGE=registry-bridge:dev BRIDGE_KEYGEN_IMAGE=registry-bridge-keygen:dev \
//	  BRIDGE_CONTAINERS=$PWD/.tools/containers go test -run TestImage ./deploy/deploytest
package deploytest
