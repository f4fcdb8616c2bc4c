package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// build is what `bridge version` reports.
type build struct {
	Version  string // git describe --tags, a module version, or "dev"
	Commit   string // full commit hash, or "" when unknown
	Modified bool   // built from a work tree with uncommitted changes (VCS fallback only)
	Go       string // toolchain, e.g. go1.26.8
	Platform string // GOOS/GOARCH
}

// readBuild reports the version and commit given with -ldflags; a binary
// built without them (go build, go install) reports what the toolchain
// recorded instead: the module version for `go install …@vX`, and the VCS
// revision and modified flag for a build inside a git checkout.
func readBuild(ldVersion, ldCommit string) build {
	bi, _ := debug.ReadBuildInfo()
	return buildFrom(ldVersion, ldCommit, bi)
}

// buildFrom is readBuild with the build information given; bi may be nil.
func buildFrom(ldVersion, ldCommit string, bi *debug.BuildInfo) build {
	b := build{Version: ldVersion, Commit: ldCommit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		if b.Version == "" {
			b.Version = "dev"
		}
		return b
	}
	if bi.GoVersion != "" {
		b.Go = bi.GoVersion
	}
	// "dev" is the default of both the variable and the Dockerfile's ARG:
	// it means nobody said, so the toolchain's record is better.
	if b.Version == "" || b.Version == "dev" {
		b.Version = "dev"
		// (devel) is a build of the main module without a version; go
		// install …@v1.2.3 records v1.2.3, and go1.24+ records a pseudo
		// version from the checkout's tags.
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			b.Version = v
		}
	}
	if b.Commit == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

// String is the one line `bridge version` prints; it starts with
// "bridge VERSION ", which the image test reads.
func (b build) String() string {
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	}
	if b.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("bridge %s commit %s %s %s", b.Version, commit, b.Go, b.Platform)
}
