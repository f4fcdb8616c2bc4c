// Package deps holds only a test: it fails when a core package starts
// importing something its place in the architecture forbids (see
// docs/architecture.md). It has no code of its own.
package deps
