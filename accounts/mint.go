package accounts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
)

// MaxNameLength is the longest password name, in characters.
const MaxNameLength = 100

// MintRequest is what a mint may ask for, from any channel: the CLI, the
// page, the JSON API.
type MintRequest struct {
	Owner Principal
	// Groups are a robot's groups; a person's come from their standing.
	Groups []string
	// Name labels the password ("laptop", "ci"); surrounding white space
	// is trimmed.
	Name string
	// Lifetime is how long the password lives; 0 asks for the default.
	Lifetime time.Duration
	ReadOnly bool
	// Via is the channel, a store.CreatedBy value.
	Via string
	// IgnoreLimit mints past Limits.MaxLive and the rate limit: for an
	// operator's `bridge passwords create --ignore-limits`, never for a
	// request from the network.
	IgnoreLimit bool
}

// Minted is a new password: show Password once; Record is what the store
// keeps.
type Minted struct {
	Record   store.Password
	Password string
}

// RateLimitError says how long to wait before the next mint.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: try again in %v", ErrRateLimited, e.RetryAfter.Round(time.Second))
}

func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// invalid returns an ErrInvalid whose message is fit for the person.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Public returns the part of an ErrInvalid meant for the person, without
// the sentinel's prefix.
func Public(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
}

// Lifetime returns the lifetime a mint gets for requested: the default
// for 0, else requested when within [1m, MaxLifetime].
func (l Limits) Lifetime(requested time.Duration) (time.Duration, error) {
	switch {
	case requested == 0:
		return l.DefaultLifetime, nil
	case requested < time.Minute:
		return 0, invalid("a lifetime of %v is shorter than 1m", requested)
	case requested > l.MaxLifetime:
		return 0, invalid("a lifetime of %v is longer than the maximum %v", requested, l.MaxLifetime)
	}
	return requested, nil
}

// checkName returns the trimmed name, or why it cannot be one.
func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalid("give the password a name, such as \"laptop\" or \"ci\"")
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLength:
		return "", invalid("the name must be at most %d characters of UTF-8 text", MaxNameLength)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", invalid("the name must not contain control characters")
	}
	return name, nil
}

// Mint checks req against every minting rule — name, lifetime, the
// owner's standing or username, the live-password cap and the mint rate —
// and stores a new password. Errors: ErrInvalid, ErrBadUsername,
// ErrUsernameTaken, ErrSuspended, ErrUnavailable, ErrLimit,
// *RateLimitError, or a store failure.
func (a *Accounts) Mint(ctx context.Context, req MintRequest) (Minted, error) {
	name, err := checkName(req.Name)
	if err != nil {
		return Minted{}, err
	}
	lifetime, err := a.o.Limits.Lifetime(req.Lifetime)
	if err != nil {
		return Minted{}, err
	}
	var groups []string
	switch req.Owner.Kind {
	case Robot:
		if err := ValidUsername(req.Owner.Username); err != nil {
			return Minted{}, err
		}
		if req.Owner.Subject != robotSubjectPrefix+req.Owner.Username {
			return Minted{}, invalid("a robot's subject must be %s%s", robotSubjectPrefix, req.Owner.Username)
		}
		if err := a.claim(ctx, req.Owner.Username, req.Owner.Subject); err != nil {
			return Minted{}, err
		}
		groups = req.Groups
	case Person:
		if req.Via == store.CreatedByCLI {
			return Minted{}, invalid("people mint their passwords in the browser")
		}
		st, err := a.Standing(ctx, req.Owner)
		if err != nil {
			return Minted{}, err
		}
		groups = st.Groups // for the record; the token path reads the standing
	default:
		return Minted{}, invalid("unknown kind of account %q", req.Owner.Kind)
	}
	if !req.IgnoreLimit {
		if err := a.checkLimits(ctx, req.Owner, true); err != nil {
			return Minted{}, err
		}
	}
	m, err := passwords.Mint()
	if err != nil {
		return Minted{}, err
	}
	now := a.o.Now().UTC().Truncate(time.Second)
	rec := store.Password{
		ID: m.ID, Subject: req.Owner.Subject, Username: req.Owner.Username, Groups: groups, Name: name,
		Digest: m.Digest, RefreshDigest: m.RefreshDigest, CreatedAt: now, ExpiresAt: now.Add(lifetime),
		ReadOnly: req.ReadOnly, CreatedBy: req.Via,
	}
	if err := a.o.Store.CreatePassword(ctx, rec); err != nil {
		return Minted{}, fmt.Errorf("accounts: create password: %w", err)
	}
	return Minted{Record: rec, Password: m.Password}, nil
}

// checkLimits applies the live-password cap, then the mint rate; spend
// takes one mint from the owner's budget (Mint), else it only looks
// (CanMint).
func (a *Accounts) checkLimits(ctx context.Context, owner Principal, spend bool) error {
	if limit := a.o.Limits.MaxLive; limit > 0 {
		own, err := a.Passwords(ctx, owner)
		if err != nil {
			return err
		}
		if len(own) >= limit {
			return fmt.Errorf("%w: %s has %d live passwords, the most allowed (passwords.max_per_user); revoke one first", ErrLimit, owner.Username, len(own))
		}
	}
	if wait := a.mints.take(owner.Subject, spend); wait > 0 {
		return &RateLimitError{RetryAfter: wait}
	}
	return nil
}

// Passwords lists owner's live passwords, oldest first. A robot minted
// under a person's username (from before usernames had one owner) is not
// the person's, and the other way round.
func (a *Accounts) Passwords(ctx context.Context, owner Principal) ([]store.Password, error) {
	all, err := a.o.Store.ListPasswords(ctx, owner.Username)
	if err != nil {
		return nil, fmt.Errorf("accounts: list passwords of %s: %w", owner.Username, err)
	}
	return slices.DeleteFunc(all, func(p store.Password) bool { return p.Subject != owner.Subject }), nil
}

// Revoke deletes owner's password id and returns it. Another owner's
// password gets ErrNotFound, as an unknown one does.
func (a *Accounts) Revoke(ctx context.Context, owner Principal, id string) (store.Password, error) {
	if len(id) > 64 {
		return store.Password{}, fmt.Errorf("%w: id too long", ErrNotFound)
	}
	p, err := a.o.Store.GetPassword(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Password{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	case err != nil:
		return store.Password{}, fmt.Errorf("accounts: get password %s: %w", id, err)
	case p.Subject != owner.Subject:
		return store.Password{}, fmt.Errorf("%w: %s belongs to %s", ErrNotFound, id, p.Username)
	}
	if err := a.o.Store.DeletePassword(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Password{}, fmt.Errorf("accounts: delete password %s: %w", id, err)
	}
	return p, nil
}

// mintLimiter is a token bucket per owner subject: perHour mints an hour,
// in bursts of up to min(10, perHour). It keeps at most maxBuckets owners;
// a full bucket carries no information, so it is the first to go.
type mintLimiter struct {
	perHour int
	now     func() time.Time
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the limiter's memory: owners are authenticated, but a
// replica should not grow without bound all the same.
const maxBuckets = 100_000

func newMintLimiter(perHour int, now func() time.Time) *mintLimiter {
	return &mintLimiter{perHour: perHour, now: now, buckets: map[string]*bucket{}}
}

func (l *mintLimiter) burst() float64 { return float64(min(10, l.perHour)) }

// take returns 0 when subject may mint now, spending one mint if spend,
// or how long until one is available (spending nothing). Looking
// (spend false) creates no bucket.
func (l *mintLimiter) take(subject string, spend bool) time.Duration {
	if l.perHour <= 0 {
		return 0
	}
	rate := float64(l.perHour) / float64(time.Hour) // tokens per nanosecond
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[subject]
	switch {
	case !ok && !spend:
		return 0 // a full bucket
	case !ok:
		if len(l.buckets) >= maxBuckets {
			l.evict(now, rate)
		}
		b = &bucket{tokens: l.burst(), at: now}
		l.buckets[subject] = b
	}
	tokens := min(l.burst(), b.tokens+float64(now.Sub(b.at))*rate)
	if tokens < 1 {
		return time.Duration((1 - tokens) / rate)
	}
	if spend {
		b.tokens, b.at = tokens-1, now
	}
	return 0
}

// evict drops the buckets that have refilled; if none has, an arbitrary
// half, which only forgives some owners a few mints.
func (l *mintLimiter) evict(now time.Time, rate float64) {
	for k, b := range l.buckets {
		if b.tokens+float64(now.Sub(b.at))*rate >= l.burst() {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxBuckets/2 {
			break
		}
		delete(l.buckets, k)
	}
}
