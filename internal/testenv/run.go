package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// CommandTimeout bounds one run of a short-lived command by Run.
const CommandTimeout = 2 * time.Minute

// ErrExit is wrapped by Run's error when the command ran and exited with a
// non-zero status, as opposed to not starting or being killed at its
// deadline.
var ErrExit = errors.New("non-zero exit")

// Command is a short-lived command for Run.
type Command struct {
	// Path is the binary to run.
	Path string
	// Args are the arguments after the binary's name.
	Args []string
	// Env is added to a minimal environment that holds only PATH; callers
	// set HOME and tool configuration here.
	Env []string
	// Stdin, if not empty, is the command's standard input.
	Stdin string
	// Stderr, if set, receives the command's standard error, which is then
	// not part of Run's output.
	Stderr io.Writer
}

// Run runs c in its own process group, killing the group when ctx ends or
// CommandTimeout passes, and returns its combined stdout and stderr (only
// stdout when c.Stderr is set). The error wraps ErrExit for a non-zero exit
// status.
func Run(ctx context.Context, c Command) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, c.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if c.Stdin != "" {
		cmd.Stdin = strings.NewReader(c.Stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if c.Stderr != nil {
		cmd.Stderr = c.Stderr
	}
	err := cmd.Run()
	if err == nil {
		return out.String(), nil
	}
	if ctx.Err() != nil {
		return out.String(), fmt.Errorf("testenv: run %s: %w", c.Path, ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), fmt.Errorf("testenv: run %s: %w (%s)", c.Path, ErrExit, exit.ProcessState)
	}
	return out.String(), fmt.Errorf("testenv: run %s: %w", c.Path, err)
}
