package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/devidp"
)

// usersFile is a users file with alice and bob; %s are alice's groups,
// her disabled flag and bob's password.
const usersFile = `users:
  - username: alice
    password: alice-password
    groups: %s
    disabled: %s
  - username: bob
    password: %s
    groups: [team-b]
clients:
  - id: registry-bridge
    secret: s
    redirect_uris: [http://localhost:5001/callback]
`

func writeUsers(t *testing.T, path, aliceGroups, aliceDisabled, bobPassword string) {
	t.Helper()
	// Write a copy and rename it over the file, as editors do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, usersFile, aliceGroups, aliceDisabled, bobPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// call is one change a reload made.
type call struct {
	user     string
	groups   []string // for SetGroups
	disabled bool     // for SetDisabled
	what     string   // "groups" or "disabled"
}

// recorder is a userSetter that records its calls and sends each on c.
type recorder struct {
	mu    sync.Mutex
	calls []call
	c     chan call
}

func newRecorder() *recorder { return &recorder{c: make(chan call, 16)} }

func (r *recorder) SetGroups(username string, groups []string) error {
	return r.record(call{user: username, groups: groups, what: "groups"})
}

func (r *recorder) SetDisabled(username string, disabled bool) error {
	return r.record(call{user: username, disabled: disabled, what: "disabled"})
}

func (r *recorder) record(c call) error {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	r.c <- c
	return nil
}

func (r *recorder) taken() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls := r.calls
	r.calls = nil
	return calls
}

// logSink is a slog handler that keeps every record's message and
// attributes as one line, and sends each line on c.
type logSink struct {
	mu    *sync.Mutex
	lines *[]string
	c     chan string
}

func newLogSink() logSink {
	return logSink{mu: &sync.Mutex{}, lines: &[]string{}, c: make(chan string, 64)}
}

func (s logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s logSink) WithGroup(string) slog.Handler            { return s }
func (s logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	s.mu.Lock()
	*s.lines = append(*s.lines, b.String())
	s.mu.Unlock()
	select {
	case s.c <- b.String():
	default:
	}
	return nil
}

func (s logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(*s.lines, "\n")
}

// startWatcher writes the initial users file (alice in team-a, enabled)
// and returns a watcher as run builds it, with a recording provider.
func startWatcher(t *testing.T) (*usersWatcher, *recorder, logSink, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.yaml")
	writeUsers(t, path, "[team-a]", "false", "bob-password")
	cfg, err := devidp.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer = "http://localhost:5556"
	rec, sink := newRecorder(), newLogSink()
	return newUsersWatcher(path, cfg, rec, slog.New(sink)), rec, sink, path
}

func TestReload(t *testing.T) {
	tests := []struct {
		name          string
		aliceGroups   string
		aliceDisabled string
		bobPassword   string
		want          []call
		wantLog       []string
	}{
		{
			name: "unchanged", aliceGroups: "[team-a]", aliceDisabled: "false", bobPassword: "bob-password",
			wantLog: []string{"changed=0"},
		},
		{
			name: "groups changed", aliceGroups: "[team-b, admins]", aliceDisabled: "false", bobPassword: "bob-password",
			want:    []call{{user: "alice", groups: []string{"team-b", "admins"}, what: "groups"}},
			wantLog: []string{"changed=1"},
		},
		{
			name: "out of every group", aliceGroups: "[]", aliceDisabled: "false", bobPassword: "bob-password",
			want: []call{{user: "alice", groups: []string{}, what: "groups"}},
		},
		{
			name: "disabled", aliceGroups: "[team-a]", aliceDisabled: "true", bobPassword: "bob-password",
			want: []call{{user: "alice", disabled: true, what: "disabled"}},
		},
		{
			name: "password needs a restart", aliceGroups: "[team-a]", aliceDisabled: "false", bobPassword: "new",
			wantLog: []string{"changed=0", "only after a restart", `users[1] (password, subject, email or name of "bob")`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, rec, sink, path := startWatcher(t)
			writeUsers(t, path, tt.aliceGroups, tt.aliceDisabled, tt.bobPassword)
			w.Reload("test")
			got := rec.taken()
			if len(got) != len(tt.want) {
				t.Fatalf("calls = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i].user != tt.want[i].user || got[i].what != tt.want[i].what ||
					!slices.Equal(got[i].groups, tt.want[i].groups) || got[i].disabled != tt.want[i].disabled {
					t.Errorf("call %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			for _, want := range tt.wantLog {
				if !strings.Contains(sink.text(), want) {
					t.Errorf("log lacks %q:\n%s", want, sink.text())
				}
			}
			// The same file again changes nothing: the watcher remembers what it applied.
			w.Reload("again")
			if again := rec.taken(); len(again) != 0 {
				t.Errorf("second reload made calls %+v", again)
			}
		})
	}
}

func TestReloadKeepsRunningStateOnBadFile(t *testing.T) {
	for _, tt := range []struct {
		name    string
		content string
		wantLog string
	}{
		{"not YAML", "users: [", "users file reload failed"},
		{"unknown key", strings.Replace(fmt.Sprintf(usersFile, "[]", "false", "b"), "groups: []", "grups: []", 1), "users file reload failed"},
		{"duplicate user", strings.Replace(fmt.Sprintf(usersFile, "[]", "false", "b"), "username: bob", "username: alice", 1), "duplicate"},
		{"no users", "users: []\nclients: []\n", "at least one user"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, rec, sink, path := startWatcher(t)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			w.Reload("test")
			if got := rec.taken(); len(got) != 0 {
				t.Errorf("a bad file made calls %+v", got)
			}
			if !strings.Contains(sink.text(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, sink.text())
			}
			// A good file afterwards applies against the state before the bad one.
			writeUsers(t, path, "[team-a]", "true", "bob-password")
			w.Reload("fixed")
			if got := rec.taken(); len(got) != 1 || got[0].what != "disabled" {
				t.Errorf("after the fix, calls = %+v, want alice disabled only", got)
			}
		})
	}
}

func TestReloadReportsChangesThatNeedARestart(t *testing.T) {
	w, _, sink, path := startWatcher(t)
	content := fmt.Sprintf(usersFile, "[team-a]", "false", "bob-password")
	content = strings.Replace(content, "users:\n", "users:\n  - username: carol\n    password: c\n", 1)
	content = strings.Replace(content, "secret: s", "secret: other", 1)
	content = strings.Replace(content, "  - username: bob\n    password: bob-password\n    groups: [team-b]\n", "", 1)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	w.Reload("test")
	for _, want := range []string{`new user "carol"`, `removed user "bob"`, "clients"} {
		if !strings.Contains(sink.text(), want) {
			t.Errorf("log lacks %s:\n%s", want, sink.text())
		}
	}
}

func TestWatchReloadsOnChangeAndOnSIGHUP(t *testing.T) {
	w, rec, sink, path := startWatcher(t)
	ctx, cancel := context.WithCancel(t.Context())
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	run := w.Start(hup)
	go func() {
		defer close(done)
		run(ctx)
	}()
	defer func() { cancel(); <-done }()

	// The watch is in place once Start returns: one write is enough.
	writeUsers(t, path, "[team-9]", "false", "bob-password")
	var got call
	select {
	case got = <-rec.c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no reload after the file changed; log:\n%s", sink.text())
	}
	if got.user != "alice" || got.what != "groups" || !strings.HasPrefix(got.groups[0], "team-") {
		t.Errorf("change = %+v, want alice's groups", got)
	}

	hup <- os.Interrupt // any value; run sends SIGHUP
	for {
		select {
		case line := <-sink.c:
			if strings.Contains(line, "trigger=SIGHUP") {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no reload on SIGHUP; log:\n%s", sink.text())
		}
	}
}
