// Command devidp serves a DEVELOPMENT-ONLY OpenID Connect provider for
// tests and `make demo` (package internal/devidp). Users, passwords and
// clients come from a YAML file; passwords are plain text and all state is
// in memory. Never run it for real accounts.
//
//	devidp --config users.yaml [--listen 127.0.0.1:5556] [--issuer http://localhost:5556]
//
// When the file changes, or on SIGHUP, devidp re-reads it and applies each
// user's groups and disabled flag to the running provider: edit a user's
// groups and the bridge sees them at its next revalidation. Other changes
// (new users, passwords, clients) need a restart; the log says which.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/registry-bridge/bridge/internal/devidp"
)

// errUsage marks command-line mistakes; exit status 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "devidp: %v\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "devidp: %v\n", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. ready, if set, is called with the listening
// address once the server accepts connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) error {
	fs := flag.NewFlagSet("devidp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML file of users and clients (required)")
	listen := fs.String("listen", "127.0.0.1:5556", "address:port to serve on")
	issuer := fs.String("issuer", "", "issuer URL (default: the file's issuer, else http://localhost:<listen port>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configPath == "" {
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg, err := devidp.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	switch {
	case *issuer != "":
		cfg.Issuer = *issuer
	case cfg.Issuer == "":
		cfg.Issuer = fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Log = log
	idp, err := devidp.New(cfg)
	if err != nil {
		return err
	}

	log.Warn("DEVELOPMENT ONLY: devidp is a test OpenID provider with plain-text passwords and in-memory state; never use it for real accounts")
	log.Info("devidp: serving", "issuer", idp.Issuer(), "listen", ln.Addr().String(),
		"discovery", idp.Issuer()+"/.well-known/openid-configuration")
	for _, u := range cfg.Users {
		log.Info("devidp: user", "username", u.Username, "groups", u.Groups, "disabled", u.Disabled)
	}
	for _, c := range cfg.Clients {
		log.Info("devidp: client", "client_id", c.ID, "redirect_uris", c.RedirectURIs)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	watch := newUsersWatcher(*configPath, cfg, idp, log).Start(hup) // in place before serving
	go func() {
		defer close(watched)
		watch(watchCtx)
	}()
	defer func() { stopWatch(); <-watched }()

	srv := &http.Server{
		Handler:           idp.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("devidp: stopped")
	return nil
}
