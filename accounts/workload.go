package accounts

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
)

// Workload is a CI job or a Kubernetes pod that logs in with its own OIDC
// token from a trusted issuer (package workload). Its username is the
// issuer's prefix plus what the issuer's mapping made of the token; its
// groups are the mapping's. It has no secret of its own: the only record
// it may have is the short-lived refresh token the bridge hands out with
// offline_token=true.
const Workload Kind = "workload"

// workloadSubjectPrefix makes a workload's subject: "workload:" + the
// issuer's name. Every token of one issuer mapping to one username acts
// as the same principal, whatever its sub; no person's IdP subject or
// robot's "cli:" subject can equal it.
const workloadSubjectPrefix = "workload:"

// WorkloadPrincipal returns the principal of a workload of issuer (its
// configured name) mapped to username.
func WorkloadPrincipal(issuer, username string) Principal {
	return Principal{Kind: Workload, Subject: workloadSubjectPrefix + issuer, Username: username}
}

// WorkloadIssuer returns the issuer's name of a workload's subject (from
// WorkloadPrincipal), and whether subject is a workload's.
func WorkloadIssuer(subject string) (string, bool) {
	return strings.CutPrefix(subject, workloadSubjectPrefix)
}

// reservedFor returns the name of the issuer whose username prefix
// username starts with, or "": people and robots cannot take such names.
func (a *Accounts) reservedFor(username string) string {
	for issuer, prefix := range a.o.WorkloadPrefixes {
		if prefix != "" && strings.HasPrefix(username, prefix) {
			return issuer
		}
	}
	return ""
}

// checkReserved refuses a person's or robot's username inside a
// workload issuer's namespace.
func (a *Accounts) checkReserved(username, subject string) error {
	if strings.HasPrefix(subject, workloadSubjectPrefix) {
		return nil
	}
	if issuer := a.reservedFor(username); issuer != "" {
		return fmt.Errorf("%w: %s is in the namespace of workload issuer %s (workloads.issuers[].claim_mappings.username.prefix)", ErrUsernameTaken, username, issuer)
	}
	return nil
}

// AdmitWorkload checks that p (from WorkloadPrincipal) may act under its
// username: a valid username inside its issuer's namespace, that no
// person or robot holds (the ownership rule, claim). An admission is
// remembered for the life of the process, so only a workload's first
// token reads the store: once a workload holds a username inside its
// namespace nobody else can take it (checkReserved), and the namespaces
// change only with the configuration, at a restart.
func (a *Accounts) AdmitWorkload(ctx context.Context, p Principal) error {
	if p.Kind != Workload || !strings.HasPrefix(p.Subject, workloadSubjectPrefix) {
		return invalid("not a workload principal")
	}
	if err := ValidUsername(p.Username); err != nil {
		return err
	}
	issuer := strings.TrimPrefix(p.Subject, workloadSubjectPrefix)
	prefix, ok := a.o.WorkloadPrefixes[issuer]
	if ok && !strings.HasPrefix(p.Username, prefix) {
		return fmt.Errorf("%w: %s is outside issuer %s's namespace %q", ErrBadUsername, p.Username, issuer, prefix)
	}
	key := p.Subject + "\x00" + p.Username
	if a.admitted.has(key) {
		return nil
	}
	if err := a.claim(ctx, p.Username, p.Subject); err != nil {
		return err
	}
	if ok && prefix != "" {
		a.admitted.add(key)
	}
	return nil
}

// DefaultMaxWorkloadRefresh is the default cap on one workload's live
// refresh tokens (workloads.max_refresh_tokens_per_workload).
const DefaultMaxWorkloadRefresh = 50

// MintWorkloadRefresh stores a refresh token for the workload p with the
// groups its token mapped to, living lifetime, and returns it. The record
// holds digests only (store.CreatedByWorkload); the app password it is
// derived from is never shown, so only the refresh token works. Revoke
// it like any password (`bridge passwords revoke`).
//
// A workload has at most maxLive (0: DefaultMaxWorkloadRefresh) live
// refresh tokens: past that, ErrLimit, and nothing is stored. Refresh
// tokens already handed out keep working; concurrent mints on several
// replicas can overshoot the cap by the number in flight, as Mint's can.
func (a *Accounts) MintWorkloadRefresh(ctx context.Context, p Principal, groups []string, lifetime time.Duration, name string, maxLive int) (string, error) {
	if err := a.AdmitWorkload(ctx, p); err != nil {
		return "", err
	}
	if lifetime < time.Minute {
		return "", invalid("a workload refresh token lives at least 1m")
	}
	if maxLive <= 0 {
		maxLive = DefaultMaxWorkloadRefresh
	}
	own, err := a.Passwords(ctx, p)
	if err != nil {
		return "", err
	}
	if len(own) >= maxLive {
		return "", fmt.Errorf("%w: workload %s has %d live refresh tokens, the most allowed (workloads.max_refresh_tokens_per_workload)", ErrLimit, p.Username, len(own))
	}
	m, err := passwords.Mint()
	if err != nil {
		return "", err
	}
	now := a.o.Now().UTC().Truncate(time.Second)
	rec := store.Password{
		ID: m.ID, Subject: p.Subject, Username: p.Username, Groups: groups, Name: name,
		Digest: passwords.DummyDigest, RefreshDigest: m.RefreshDigest, CreatedAt: now, ExpiresAt: now.Add(lifetime),
		CreatedBy: store.CreatedByWorkload,
	}
	if err := a.o.Store.CreatePassword(ctx, rec); err != nil {
		return "", fmt.Errorf("accounts: create workload refresh token: %w", err)
	}
	rt, err := passwords.RefreshToken(m.Password)
	if err != nil {
		return "", err
	}
	return rt, nil
}

// admissions remembers the workloads admitted to their usernames, at
// most maxAdmissions of them; when full, an arbitrary half is forgotten
// (and read from the store again on their next token).
type admissions struct {
	mu sync.RWMutex
	m  map[string]struct{}
}

const maxAdmissions = 100_000

func (s *admissions) has(key string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.m[key]
	return ok
}

func (s *admissions) add(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]struct{}{}
	}
	if len(s.m) >= maxAdmissions {
		for k := range s.m {
			if len(s.m) < maxAdmissions/2 {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[key] = struct{}{}
}
