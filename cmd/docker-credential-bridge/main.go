// Command docker-credential-bridge is a Docker credential helper for
// registries behind registry-bridge: `get` hands out a stored credential,
// or logs in with the bridge's device login (approve in the browser, no
// password typed or pasted) and stores what it gets in
// $XDG_CONFIG_HOME/registry-bridge/credentials.json (0600), never in the
// clients' config.json. See docs/device-login.md.
//
// Configure it with one line in ~/.docker/config.json:
//
//	{"credHelpers": {"registry.example.com": "bridge"}}
//
// Usage:
//
//	docker-credential-bridge get|store|erase|list      (the helper protocol, on stdin/stdout)
//	docker-credential-bridge login [--read-only] [--lifetime 12h] REGISTRY
//	docker-credential-bridge logout REGISTRY           (revokes on the bridge)
//	docker-credential-bridge version
//
// Environment: DOCKER_CREDENTIAL_BRIDGE_MODE (token, the default, hands
// out the identity token; password hands out username and app password),
// DOCKER_CREDENTIAL_BRIDGE_LIFETIME, DOCKER_CREDENTIAL_BRIDGE_READ_ONLY=1,
// DOCKER_CREDENTIAL_BRIDGE_NO_BROWSER=1, DOCKER_CREDENTIAL_BRIDGE_NONINTERACTIVE=1
// (`get` never starts a login), DOCKER_CREDENTIAL_BRIDGE_INSECURE (comma-separated
// host:port reachable over plain http; loopback always is),
// DOCKER_CREDENTIAL_BRIDGE_DIR (the credential directory).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/registry-bridge/bridge/credhelper"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: docker-credential-bridge get|store|erase|list|version\n"+
		"       docker-credential-bridge login [--read-only] [--lifetime 12h] REGISTRY\n"+
		"       docker-credential-bridge logout REGISTRY")
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	opts, err := options(getenv, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "docker-credential-bridge:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch cmd := args[0]; cmd {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "docker-credential-bridge", version)
		return 0
	case "help", "--help", "-h":
		usage(stdout)
		return 0
	case "login", "logout":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		fs.SetOutput(stderr)
		readOnly := fs.Bool("read-only", opts.ReadOnly, "ask for a read-only password (login)")
		lifetime := fs.Duration("lifetime", opts.Lifetime, "password lifetime to ask for; 0 takes the server's default (login)")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 1 {
			usage(stderr)
			return 2
		}
		opts.ReadOnly, opts.Lifetime, opts.Interactive = *readOnly, *lifetime, true
		h, err := credhelper.New(opts)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		if cmd == "logout" {
			if err := h.Logout(ctx, fs.Arg(0)); err != nil {
				fmt.Fprintln(stderr, "logout:", err)
				return 1
			}
			fmt.Fprintln(stderr, "Logged out of", fs.Arg(0), "and revoked the credential on the server.")
			return 0
		}
		if _, err := h.Login(ctx, fs.Arg(0)); err != nil {
			fmt.Fprintln(stderr, "login:", err)
			return 1
		}
		return 0
	default:
		h, err := credhelper.New(opts)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		// The protocol's errors go to stdout, where clients read them.
		if err := credentials.HandleCommand(h, cmd, stdin, stdout); err != nil {
			fmt.Fprintln(stdout, err)
			return 1
		}
		return 0
	}
}

// options reads the environment.
func options(getenv func(string) string, stderr io.Writer) (credhelper.Options, error) {
	dir := getenv("DOCKER_CREDENTIAL_BRIDGE_DIR")
	if dir == "" {
		d, err := credhelper.DefaultDir()
		if err != nil {
			return credhelper.Options{}, err
		}
		dir = d
	}
	host, _ := os.Hostname()
	o := credhelper.Options{
		Dir:         dir,
		Mode:        getenv("DOCKER_CREDENTIAL_BRIDGE_MODE"),
		ReadOnly:    truthy(getenv("DOCKER_CREDENTIAL_BRIDGE_READ_ONLY")),
		Interactive: !truthy(getenv("DOCKER_CREDENTIAL_BRIDGE_NONINTERACTIVE")),
		Insecure:    map[string]bool{},
		HTTPClient:  &http.Client{Timeout: 15 * time.Second},
		Stderr:      prompt(stderr),
		Hostname:    host,
		ClientName:  "docker-credential-bridge " + version,
	}
	if v := getenv("DOCKER_CREDENTIAL_BRIDGE_LIFETIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return o, fmt.Errorf("DOCKER_CREDENTIAL_BRIDGE_LIFETIME %q: want a duration such as 12h", v)
		}
		o.Lifetime = d
	}
	for _, r := range strings.Split(getenv("DOCKER_CREDENTIAL_BRIDGE_INSECURE"), ",") {
		if r = strings.TrimSpace(strings.ToLower(r)); r != "" {
			o.Insecure[r] = true
		}
	}
	if !truthy(getenv("DOCKER_CREDENTIAL_BRIDGE_NO_BROWSER")) {
		o.OpenBrowser = credhelper.XDGOpen
	}
	return o, nil
}

func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "1", "true", "yes":
		return true
	}
	return false
}

// prompt returns where the login prompt goes: stderr, and the terminal
// too when there is one — clients such as docker run the helper with its
// stderr captured, where nobody would see the code.
func prompt(stderr io.Writer) io.Writer {
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		return stderr
	}
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty.Close() // stderr is the terminal already
			return stderr
		}
	}
	return io.MultiWriter(stderr, tty)
}
