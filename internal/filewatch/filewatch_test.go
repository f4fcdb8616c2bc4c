package filewatch

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// record collects triggers from the loop.
func start(t *testing.T, path, loaded string, hup chan os.Signal) <-chan string {
	t.Helper()
	got := make(chan string, 16)
	run := Start(path, loaded, hup, slog.New(slog.NewTextHandler(io.Discard, nil)), func(trigger string) { got <- trigger })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return got
}

func expect(t *testing.T, got <-chan string, want string) {
	t.Helper()
	select {
	case g := <-got:
		if g != want {
			t.Fatalf("trigger %q, want %q", g, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no %q reload", want)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestChangeAndSignal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	write(t, path, "a")
	hup := make(chan os.Signal, 1)
	got := start(t, path, "a", hup)
	write(t, path, "b")
	expect(t, got, "file changed")
	hup <- os.Interrupt
	expect(t, got, "SIGHUP")
	// Rewriting the same content is not a change.
	write(t, path, "b")
	write(t, path, "c")
	expect(t, got, "file changed")
	select {
	case g := <-got:
		t.Fatalf("extra reload %q", g)
	case <-time.After(2 * Debounce):
	}
}

// TestChangeBeforeStart: the file changed after the caller loaded it but
// before Start; the first check catches it.
func TestChangeBeforeStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	write(t, path, "new")
	expect(t, start(t, path, "old", nil), "file changed")
}

// TestSymlinkSwap mimics a Kubernetes ConfigMap update.
func TestSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "c.yaml"), content)
		if err := os.Symlink(name, filepath.Join(dir, "..tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", "one")
	path := filepath.Join(dir, "c.yaml")
	if err := os.Symlink(filepath.Join("..data", "c.yaml"), path); err != nil {
		t.Fatal(err)
	}
	got := start(t, path, "one", nil)
	version("..v2", "two")
	expect(t, got, "file changed")
}
