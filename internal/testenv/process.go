package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ReadyTimeout bounds how long Start waits for a process's readiness URL.
const ReadyTimeout = 20 * time.Second

// logTail is how much of each output stream a failing test prints.
const logTail = 32 << 10

// Cmd describes a long-running process for Start.
type Cmd struct {
	// Name labels the process in failure messages, e.g. "bridge".
	Name string
	// Path is the binary to run.
	Path string
	// Args are the arguments after the binary's name.
	Args []string
	// Env is added to a minimal environment that holds only PATH and a
	// HOME in a temporary directory, so that nothing from the developer's
	// environment (REGISTRY_*, BRIDGE_CONFIG, …) reaches the process.
	Env []string
	// ReadyURL, if set, is polled with GET until it answers ReadyStatus.
	ReadyURL string
	// ReadyStatus is the status that means ready; 0 means 200.
	ReadyStatus int
}

// Process is a process started by Start. It is killed, with its whole
// process group, when the test that started it ends.
type Process struct {
	// Name is Cmd.Name.
	Name string
	// StdoutPath and StderrPath are the files the output streams go to.
	StdoutPath, StderrPath string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // the result of Wait; read only after done is closed
}

// Start runs c in its own process group with stdout and stderr in files
// under t.TempDir(), waits until c.ReadyURL answers (at most ReadyTimeout),
// and registers a cleanup that kills the group. If the test fails, the
// cleanup logs the tail of both streams. Start fails the test if the process
// cannot start, exits before it is ready, or is not ready in time.
func Start(t testing.TB, c Cmd) *Process {
	t.Helper()
	dir := t.TempDir()
	p := &Process{
		Name:       c.Name,
		StdoutPath: filepath.Join(dir, "stdout"),
		StderrPath: filepath.Join(dir, "stderr"),
		done:       make(chan struct{}),
	}
	stdout, err := os.Create(p.StdoutPath)
	if err != nil {
		t.Fatalf("testenv: start %s: %v", c.Name, err)
	}
	stderr, err := os.Create(p.StderrPath)
	if err != nil {
		t.Fatalf("testenv: start %s: %v", c.Name, err)
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatalf("testenv: start %s: %v", c.Name, err)
	}
	p.cmd = exec.Command(c.Path, c.Args...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}, c.Env...)
	p.cmd.Stdout = stdout
	p.cmd.Stderr = stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		stdout.Close()
		stderr.Close()
		t.Fatalf("testenv: start %s: %v", c.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			p.logOutput(t)
		}
	})
	if c.ReadyURL != "" {
		want := c.ReadyStatus
		if want == 0 {
			want = http.StatusOK
		}
		if err := p.waitReady(t.Context(), c.ReadyURL, want); err != nil {
			t.Fatalf("testenv: start %s: %v", c.Name, err)
		}
	}
	return p
}

// Stop kills the process group and waits for the process to exit. It is
// safe to call more than once.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	// A negative pid addresses the group; ESRCH means it is already gone.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// PID returns the process id, e.g. to read its CPU time from /proc. The
// process leads its own process group.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited, and its Wait error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Output returns what the process has written to stdout and stderr so far.
func (p *Process) Output() (stdout, stderr string) {
	return readTail(p.StdoutPath), readTail(p.StderrPath)
}

func (p *Process) waitReady(ctx context.Context, url string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("readiness request: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before %s answered %d: %v", url, want, p.err)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer %d within %s (last: %s)", url, want, ReadyTimeout, last)
		case <-tick.C:
		}
	}
}

func (p *Process) logOutput(t testing.TB) {
	stdout, stderr := p.Output()
	exited, err := p.Exited()
	t.Logf("testenv: %s (pid %d, exited %t: %v)\n--- stdout (tail) ---\n%s\n--- stderr (tail) ---\n%s",
		p.Name, p.cmd.Process.Pid, exited, err, stdout, stderr)
}

// readTail returns the last logTail bytes of the file at path, or a note
// saying why it could not be read.
func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err)
	}
	if len(b) > logTail {
		b = b[len(b)-logTail:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		return "…\n" + string(b)
	}
	return strings.TrimRight(string(b), "\n")
}
