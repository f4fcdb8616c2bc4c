// Package filewatch calls back when a configuration file's content
// changes, or when a signal such as SIGHUP asks for a reload.
//
// It watches the file's directory, not the file: editors that write a copy
// and rename it over the original, and Kubernetes, which updates a mounted
// ConfigMap by swapping a "..data" symlink, would escape a watch on the
// file itself. Events are debounced, and the callback runs only when the
// content really differs from what was last seen (editors fire several
// events per save).
//
// Usage:
//
//	data, _ := os.ReadFile(path) // what the program loaded
//	run := filewatch.Start(path, string(data), hup, log, func(trigger string) { reload(trigger) })
//	go run(ctx) // the watch is already in place: no change after Start is missed
package filewatch

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Debounce is how long the watch waits after the last event before it
// reads the file.
const Debounce = 250 * time.Millisecond

// maxSize bounds how much of the file is read to compare contents.
const maxSize = 8 << 20

// Start sets up the watch of path before it returns and gives back the
// loop that delivers changes; the loop runs until ctx ends. loaded is the
// content the caller is running with: the loop compares the file with it
// at once, so a change made between the caller's load and Start is not
// missed. Every value on hup calls onChange("SIGHUP"); a changed file
// calls onChange("file changed"). onChange runs on the loop's goroutine.
// Without a working file watch (logged), only hup triggers reloads.
func Start(path, loaded string, hup <-chan os.Signal, log *slog.Logger, onChange func(trigger string)) func(ctx context.Context) {
	var events <-chan fsnotify.Event
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(filepath.Dir(path)); err != nil {
			w.Close()
			w = nil
		} else {
			events = w.Events
		}
	}
	if err != nil {
		log.Warn("file watch unavailable; reload with SIGHUP", "path", path, "err", err)
	}
	return func(ctx context.Context) {
		if w != nil {
			defer w.Close()
		}
		lastSeen := loaded
		debounce := time.After(0)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				// Read before the callback: a change made while it runs
				// then still differs from lastSeen and reloads again.
				lastSeen = Content(path)
				onChange("SIGHUP")
			case ev := <-events:
				if filepath.Clean(ev.Name) == filepath.Clean(path) || filepath.Base(ev.Name) == "..data" {
					debounce = time.After(Debounce)
				}
			case <-debounce:
				debounce = nil
				if c := Content(path); c != lastSeen {
					lastSeen = c
					onChange("file changed")
				}
			}
		}
	}
}

// Content returns the file's content (at most 8 MiB), or "" if it cannot
// be read.
func Content(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxSize))
	return string(b)
}
