package testenv_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/testenv"
)

func TestRun(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	tests := []struct {
		name     string
		script   string
		stdin    string
		wantOut  string
		wantExit bool
	}{
		{name: "ok", script: "echo out; echo err >&2", wantOut: "out\nerr\n"},
		{name: "stdin", script: "cat", stdin: "secret\n", wantOut: "secret\n"},
		{name: "env is minimal", script: `echo "[$BRIDGE_E2E_PROBE]"`, wantOut: "[]\n"},
		{name: "failure", script: "echo nope; exit 3", wantOut: "nope\n", wantExit: true},
	}
	t.Setenv("BRIDGE_E2E_PROBE", "leaked")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := testenv.Run(t.Context(), testenv.Command{Path: sh, Args: []string{"-c", tt.script}, Stdin: tt.stdin})
			if out != tt.wantOut {
				t.Errorf("output = %q, want %q", out, tt.wantOut)
			}
			if got := errors.Is(err, testenv.ErrExit); got != tt.wantExit {
				t.Errorf("err = %v, want ErrExit %t", err, tt.wantExit)
			}
			if !tt.wantExit && err != nil {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestRunStderr(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	var stderr bytes.Buffer
	out, err := testenv.Run(t.Context(), testenv.Command{Path: sh, Args: []string{"-c", "echo out; echo err >&2"}, Stderr: &stderr})
	if err != nil || out != "out\n" || stderr.String() != "err\n" {
		t.Errorf("Run = %q, %v with stderr %q, want \"out\\n\", nil with stderr \"err\\n\"", out, err, stderr.String())
	}
}

func TestStart(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	// The child forks a grandchild and records its pid; the process is
	// ready once the pid file has content. Stop must kill both (the group).
	pidFile := filepath.Join(t.TempDir(), "child")
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, err := os.ReadFile(pidFile); err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer ready.Close()

	p := testenv.Start(t, testenv.Cmd{
		Name:        "sleeper",
		Path:        sh,
		Args:        []string{"-c", `echo started; sleep 300 & echo $! > "$PID_FILE"; wait`},
		Env:         []string{"PID_FILE=" + pidFile},
		ReadyURL:    ready.URL,
		ReadyStatus: http.StatusUnauthorized,
	})
	if exited, err := p.Exited(); exited {
		t.Fatalf("process exited early: %v", err)
	}
	p.Stop()
	if exited, _ := p.Exited(); !exited {
		t.Fatal("Exited() = false after Stop")
	}
	stdout, _ := p.Output()
	if !strings.Contains(stdout, "started") {
		t.Errorf("stdout = %q, want it to contain %q", stdout, "started")
	}
	p.Stop() // a second Stop is a no-op

	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	// SIGKILL is delivered asynchronously, and a killed grandchild may
	// linger as a zombie until init reaps it: wait (bounded) for it to be
	// gone or a zombie; any other state at the deadline means it survived.
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil || strings.Contains(string(status), "State:\tZ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %s still running after Stop:\n%s", pid, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
