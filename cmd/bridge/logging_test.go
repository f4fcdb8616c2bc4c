package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestServerLoggerBuffers(t *testing.T) {
	var out lockedBuffer
	log, closeLog := newServerLogger(logConfig{Level: "info", Format: "json", FlushInterval: time.Hour}, &out)
	log.Info("token", "user", "alice")
	if out.String() != "" {
		t.Fatal("an info line was written through at once")
	}
	log.Warn("store slow")
	if s := out.String(); !strings.Contains(s, `"user":"alice"`) || !strings.Contains(s, "store slow") {
		t.Fatalf("a warning did not flush the buffer: %q", s)
	}
	log.With("k", "v").Info("later")
	closeLog()
	if !strings.Contains(out.String(), `"later"`) {
		t.Fatal("Close lost buffered lines")
	}
}

func TestServerLoggerFlushesOnTimer(t *testing.T) {
	var out lockedBuffer
	log, closeLog := newServerLogger(logConfig{Level: "info", Format: "text", FlushInterval: 10 * time.Millisecond}, &out)
	defer closeLog()
	log.Info("tick")
	waitFor(t, 5*time.Second, "the periodic flush", func() bool { return strings.Contains(out.String(), "tick") })
}

func TestServerLoggerUnbuffered(t *testing.T) {
	var out lockedBuffer
	log, closeLog := newServerLogger(logConfig{Level: "info", Format: "json", FlushInterval: -1}, &out)
	defer closeLog()
	log.Info("now")
	if !strings.Contains(out.String(), "now") {
		t.Fatal("flush_interval < 0 must write through")
	}
	_ = slog.LevelInfo
}
