// Package deps holds only a test, the one import-boundary test of the
// module: a table that names every package with what it may reach
// (docs/architecture.md explains why), checked with go list. It fails when
// a package starts importing something its place in the architecture
// forbids, when a product package reaches a development-only one
// (internal/devidp, internal/testenv, bench, …), and when a package is
// missing from the table. It has no code of its own.
package deps
