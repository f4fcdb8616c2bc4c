//go:build !unix

package credhelper

// lockFile does nothing where flock(2) is missing: concurrent runs may
// then both log in; the last write wins.
func lockFile(string) (func(), error) { return func() {}, nil }
