package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
)

// openSharedStore opens the configured store for a one-shot command. The
// embedded store lives inside `bridge serve`, so these commands need Redis.
// It validates only what these commands use: store and passwords (not
// the access rules: a bad rule must not stop an operator revoking).
func openSharedStore(path string) (*loadedConfig, store.Store, error) {
	cfg, err := loadConfig(path, useStore|usePasswords)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: invalid configuration:\n%w", path, err)
	}
	if cfg.Store.Redis == nil {
		return nil, nil, errors.New("this command needs store.redis in the configuration: the embedded in-memory store exists only inside the running `bridge serve`")
	}
	st, err := openStore(cfg, discardLogger())
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

func cmdPasswordsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("passwords create")
	path := configFlag(f)
	user := f.String("user", "", "username the password logs in as (required)")
	groupList := f.String("groups", "", "comma-separated groups the account belongs to")
	name := f.String("name", "cli", "a label for the password")
	expires := f.Duration("expires", 0, "lifetime, e.g. 720h (default passwords.default_lifetime)")
	readOnly := f.Bool("read-only", false, "never grant push or delete")
	ignoreLimits := f.Bool("ignore-limits", false, "mint even past passwords.max_per_user")
	if _, err := parseFlags(f, args); err != nil {
		return err
	}
	if err := accounts.ValidUsername(*user); err != nil {
		return fmt.Errorf("%w: --user: %v", errUsage, err)
	}
	cfg, st, err := openSharedStore(*path)
	if err != nil {
		return err
	}
	defer st.Close()
	acc := accounts.New(accounts.Options{Store: st, Limits: cfg.Passwords.Limits(), WorkloadPrefixes: cfg.Workloads.Prefixes()})
	defer acc.Close()
	m, err := acc.Mint(ctx, accounts.MintRequest{
		Owner: accounts.RobotPrincipal(*user), Groups: splitList(*groupList), Name: *name,
		Lifetime: *expires, ReadOnly: *readOnly, Via: store.CreatedByCLI, IgnoreLimit: *ignoreLimits,
	})
	switch {
	case errors.Is(err, accounts.ErrInvalid):
		return fmt.Errorf("%w: %s", errUsage, accounts.Public(err))
	case errors.Is(err, accounts.ErrUsernameTaken):
		// A person who logs in with the browser owns their username; a
		// robot must not act under it.
		return fmt.Errorf("--user: %q belongs to a person who logs in at the identity provider, or to another account; choose another robot name (%v)", *user, err)
	case errors.Is(err, accounts.ErrLimit):
		return fmt.Errorf("%v; pass --ignore-limits to mint anyway", err)
	case err != nil:
		return fmt.Errorf("store password: %w", err)
	}
	rec := m.Record
	fmt.Fprintln(stdout, m.Password)
	fmt.Fprintf(stderr, "created app password %s for user %q (groups %v, read-only %v), expires %s\n",
		rec.ID, rec.Username, rec.Groups, rec.ReadOnly, rec.ExpiresAt.Format(time.RFC3339))
	return nil
}

// passwordJSON is the --json form of a listed password: never a secret or
// a digest.
type passwordJSON struct {
	ID        string     `json:"id"`
	User      string     `json:"user"`
	Name      string     `json:"name"`
	Groups    []string   `json:"groups"`
	Created   time.Time  `json:"created"`
	Expires   time.Time  `json:"expires"`
	LastUsed  *time.Time `json:"last_used"`
	ReadOnly  bool       `json:"read_only"`
	CreatedBy string     `json:"created_by"`
}

func cmdPasswordsList(ctx context.Context, args []string, stdout io.Writer) error {
	f := newFlags("passwords list")
	path := configFlag(f)
	user := f.String("user", "", "only this user's passwords")
	asJSON := f.Bool("json", false, "print JSON")
	if _, err := parseFlags(f, args); err != nil {
		return err
	}
	_, st, err := openSharedStore(*path)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.ListPasswords(ctx, *user)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]passwordJSON, 0, len(list))
		for _, p := range list {
			j := passwordJSON{ID: p.ID, User: p.Username, Name: p.Name, Groups: p.Groups, Created: p.CreatedAt,
				Expires: p.ExpiresAt, ReadOnly: p.ReadOnly, CreatedBy: p.CreatedBy}
			if j.Groups == nil {
				j.Groups = []string{}
			}
			if !p.LastUsedAt.IsZero() {
				t := p.LastUsedAt
				j.LastUsed = &t
			}
			out = append(out, j)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tNAME\tCREATED\tEXPIRES\tLAST USED\tREAD-ONLY\tBY")
	for _, p := range list {
		last := "never"
		if !p.LastUsedAt.IsZero() {
			last = p.LastUsedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\t%s\n", p.ID, p.Username, p.Name,
			p.CreatedAt.UTC().Format(time.RFC3339), p.ExpiresAt.UTC().Format(time.RFC3339), last, p.ReadOnly, p.CreatedBy)
	}
	return tw.Flush()
}

func cmdPasswordsRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("passwords revoke")
	path := configFlag(f)
	user := f.String("user", "", "with --all: revoke every password of this user")
	all := f.Bool("all", false, "with --user: revoke all of the user's passwords")
	ids, err := parseFlags(f, args)
	if err != nil {
		return err
	}
	switch {
	case len(ids) > 0 && (*user != "" || *all):
		return fmt.Errorf("%w: passwords revoke takes an ID or --user U --all, not both", errUsage)
	case len(ids) == 0 && (*user == "" || !*all):
		return fmt.Errorf("%w: passwords revoke needs an ID, or --user U --all", errUsage)
	}
	_, st, err := openSharedStore(*path)
	if err != nil {
		return err
	}
	defer st.Close()
	if *all {
		n, err := st.DeleteUserPasswords(ctx, *user)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %d password(s) of %s\n", n, *user)
		return nil
	}
	var failed bool
	for _, id := range ids {
		// Accept a whole password too, so an operator can revoke a leaked
		// one without looking its id up.
		if c, err := passwords.Parse(id); err == nil {
			id = c.ID
		}
		if err := st.DeletePassword(ctx, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				fmt.Fprintf(stderr, "%s: no such password (already revoked or expired?)\n", id)
			} else {
				fmt.Fprintf(stderr, "%s: %v\n", id, err)
			}
			failed = true
			continue
		}
		fmt.Fprintf(stdout, "revoked %s\n", id)
	}
	if failed {
		return errSilent
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
