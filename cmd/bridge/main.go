// Command bridge is the OIDC-to-registry-token bridge: it serves the
// registry token endpoint, the browser login and the app-password page, and
// offers the operator commands of the README (config check, keys,
// passwords, policy explain).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Set with -ldflags "-X main.version=… -X main.commit=…" by make build and
// the image. A plain go build or go install leaves them as they are here;
// `bridge version` then reports what the toolchain recorded (version.go).
var (
	version = "dev"
	commit  = ""
)

const usage = `bridge — sign in to a container registry with your company's OpenID Connect login

Usage:
  bridge serve --config FILE
  bridge config check --config FILE [--allow-overlapping-rules]
  bridge keys generate --out DIR [--alg ES256|RS256] [--cn NAME] [--force] [--owner UID[:GID]] [--group GID] [--mode 0600]
  bridge keys jwks --config FILE
  bridge passwords create --config FILE --user U [--groups a,b] [--name N] [--expires 720h] [--read-only]
  bridge passwords list --config FILE [--user U] [--json]
  bridge passwords revoke --config FILE (ID... | --user U --all)
  bridge policy explain --config FILE (--user U [--groups a,b] | --anonymous) [--read-only] --scope SCOPE...
  bridge policy explain --config FILE --claims CLAIMS.json [--issuer NAME] [--scope SCOPE...]
  bridge doctor --config FILE --registry URL [--registry-config FILE] [--insecure-skip-tls-verify] [--json]
  bridge policy test --config FILE TESTS.yaml
  bridge version

Every command that takes --config also reads BRIDGE_CONFIG.
`

// errUsage marks errors that should print the usage; exit status 2.
var errUsage = errors.New("usage")

// errSilent: the command already reported; exit 1 without more output.
var errSilent = errors.New("silent failure")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "bridge: %v\n\n%s", err, usage)
		os.Exit(2)
	case errors.Is(err, errSilent):
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "bridge: %v\n", err)
		os.Exit(1)
	}
}

// run dispatches a command line; stdout gets only a command's result.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, rest := args[0], args[1:]
	sub := func() (string, []string, error) {
		if len(rest) == 0 {
			return "", nil, fmt.Errorf("%w: %s needs a sub-command", errUsage, cmd)
		}
		return rest[0], rest[1:], nil
	}
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stderr)
	case "config":
		s, a, err := sub()
		if err != nil {
			return err
		}
		if s == "check" {
			return cmdConfigCheck(a, stdout, stderr)
		}
	case "keys":
		s, a, err := sub()
		if err != nil {
			return err
		}
		switch s {
		case "generate":
			return cmdKeysGenerate(a, stdout, stderr)
		case "jwks":
			return cmdKeysJWKS(a, stdout)
		}
	case "passwords":
		s, a, err := sub()
		if err != nil {
			return err
		}
		switch s {
		case "create":
			return cmdPasswordsCreate(ctx, a, stdout, stderr)
		case "list":
			return cmdPasswordsList(ctx, a, stdout)
		case "revoke":
			return cmdPasswordsRevoke(ctx, a, stdout, stderr)
		}
	case "policy":
		s, a, err := sub()
		if err != nil {
			return err
		}
		switch s {
		case "explain":
			return cmdPolicyExplain(a, stdout)
		case "test":
			return cmdPolicyTest(a, stdout)
		}
	case "doctor":
		return cmdDoctor(ctx, rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, readBuild(version, commit).String())
		return nil
	case "help", "--help", "-h", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, strings.Join(args[:min(2, len(args))], " "))
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args, allowing flags after positional arguments, and
// returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// configFlag registers --config, defaulting to $BRIDGE_CONFIG.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("BRIDGE_CONFIG"), "configuration file (or BRIDGE_CONFIG)")
}

func cmdConfigCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("config check")
	path := configFlag(fs)
	allowOverlap := fs.Bool(allowOverlapFlag, false, "accept rules a username can squat")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*path, useAll)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n", *path)
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		return errSilent
	}
	// The issuer checks what loading alone does not, e.g. that the
	// certificate is valid now.
	if _, err := newIssuer(c, nil); err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n  %v\n", *path, err)
		return errSilent
	}
	for _, d := range c.deprecations {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, d)
	}
	if reportRules(stderr, *path, c.Access, *allowOverlap) {
		return errSilent
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return nil
}
