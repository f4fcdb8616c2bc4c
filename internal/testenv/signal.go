package testenv

import (
	"context"
	"fmt"
	"os"
)

// Signal sends sig to the process alone, not to its process group: the way
// a script's own trap sees a signal, for example SIGINT for Ctrl-C. It is
// an error if the process has exited.
func (p *Process) Signal(sig os.Signal) error {
	if exited, _ := p.Exited(); exited {
		return fmt.Errorf("testenv: signal %s: %w", p.Name, os.ErrProcessDone)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("testenv: signal %s: %w", p.Name, err)
	}
	return nil
}

// Wait waits until the process exits, and returns its exit error (nil for
// status 0, an *exec.ExitError otherwise), or the context's error if ctx
// ends first.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("testenv: wait for %s: %w", p.Name, ctx.Err())
	}
}
