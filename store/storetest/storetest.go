package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
)

// eventTimeout bounds how long the suite waits for a Watch event.
const eventTimeout = 10 * time.Second

// Clock is a settable clock for tests. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads t until moved.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Options are the liberties store.Store's contract leaves a backend; the
// zero value takes none.
type Options struct {
	// TouchVisibleWithin, when not zero, says that a TouchPassword made
	// through one handle reaches the backend only within this bound, and
	// that another handle's GetPassword may meanwhile show an older
	// LastUsedAt (store/cache writes touches in the background and serves
	// cached copies). The suite then checks touches made through the other
	// handle with ListPasswords, polling up to this bound, instead of
	// GetPassword at once.
	TouchVisibleWithin time.Duration
}

// RunTests runs the conformance suite against the backend that newStore
// opens. See the package documentation for what newStore must do.
func RunTests(t *testing.T, newStore func(t *testing.T, now func() time.Time) store.Store) {
	RunTestsWith(t, newStore, Options{})
}

// RunTestsWith is RunTests for a backend that takes the liberties opts
// names.
func RunTestsWith(t *testing.T, newStore func(t *testing.T, now func() time.Time) store.Store, opts Options) {
	tests := []struct {
		name string
		run  func(t *testing.T, s suite)
	}{
		{"CreateGetRoundTrip", testCreateGetRoundTrip},
		{"CreateGetMinimal", testCreateGetMinimal},
		{"CreateDuplicate", testCreateDuplicate},
		{"CreateInvalid", testCreateInvalid},
		{"CreateConcurrent", testCreateConcurrent},
		{"GetUnknown", testGetUnknown},
		{"Expiry", testExpiry},
		{"List", testList},
		{"Delete", testDelete},
		{"DeleteUserPasswords", testDeleteUserPasswords},
		{"Touch", testTouch},
		{"TouchConcurrent", testTouchConcurrent},
		{"Watch", testWatch},
		{"Ping", testPing},
		{"SessionRoundTrip", testSessionRoundTrip},
		{"SessionDuplicate", testSessionDuplicate},
		{"SessionInvalid", testSessionInvalid},
		{"SessionExpiry", testSessionExpiry},
		{"SessionTouch", testSessionTouch},
		{"SessionTouchConcurrent", testSessionTouchConcurrent},
		{"SessionDelete", testSessionDelete},
		{"UserRoundTrip", testUserRoundTrip},
		{"UserReplace", testUserReplace},
		{"UserInvalid", testUserInvalid},
		{"UserExpiry", testUserExpiry},
		{"UserDelete", testUserDelete},
		{"UserWatch", testUserWatch},
		{"LockExclusive", testLockExclusive},
		{"LockConcurrent", testLockConcurrent},
		{"LockExpiry", testLockExpiry},
		{"LockInvalid", testLockInvalid},
	}
	tests = append(tests, deviceTests...) // device.go
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewClock(time.Now().Truncate(time.Second))
			s := suite{clock: clock, a: newStore(t, clock.Now), b: newStore(t, clock.Now), opts: opts}
			tt.run(t, s)
		})
	}
}

// suite is one subtest's fixture: two handles on one backend and the clock
// both were given.
type suite struct {
	clock *Clock
	a, b  store.Store
	opts  Options
}

// mustSeeTouch checks that want, a password just touched, reads back as
// want through st. By default it reads with GetPassword, at once. With
// Options.TouchVisibleWithin set (and unless every touch went through st:
// sameHandle) it reads with ListPasswords, which shows what the backend
// holds, polling up to that bound: another handle's GetPassword may serve
// an older LastUsedAt from its cache, which the contract allows.
func (s suite) mustSeeTouch(t *testing.T, st store.Store, sameHandle bool, want store.Password) {
	t.Helper()
	if s.opts.TouchVisibleWithin == 0 || sameHandle {
		mustGet(t, st, want)
		return
	}
	deadline := time.Now().Add(s.opts.TouchVisibleWithin)
	for {
		d := "not listed"
		ps, err := st.ListPasswords(t.Context(), want.Username)
		if err != nil {
			t.Fatalf("ListPasswords(%q): %v", want.Username, err)
		}
		for _, got := range ps {
			if got.ID == want.ID {
				d = diffRecords(want, got)
			}
		}
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListPasswords shows %s still differing %v after the touch:\n%s", want.ID, s.opts.TouchVisibleWithin, d)
		}
		time.Sleep(5 * time.Millisecond) // polling a backend that writes touches in the background
	}
}

// password returns a realistic record for user, created a minute ago and
// expiring in a day, with fresh id and digests.
func (s suite) password(t *testing.T, user string) store.Password {
	t.Helper()
	m, err := passwords.Mint()
	if err != nil {
		t.Fatal(err)
	}
	now := s.clock.Now()
	return store.Password{
		ID:            m.ID,
		Subject:       "CgVhbGljZRIEbGRhcA-" + user,
		Username:      user,
		Groups:        []string{"registry-admins", "team-a", "team-b"},
		Name:          "laptop",
		Digest:        m.Digest,
		RefreshDigest: m.RefreshDigest,
		CreatedAt:     now.Add(-time.Minute),
		ExpiresAt:     now.Add(24 * time.Hour),
		CreatedBy:     store.CreatedByBrowser,
	}
}

func (s suite) create(t *testing.T, ps ...store.Password) {
	t.Helper()
	for _, p := range ps {
		if err := s.a.CreatePassword(t.Context(), p); err != nil {
			t.Fatalf("CreatePassword(%s): %v", p.ID, err)
		}
	}
}

// mustGet fetches id through st and fails the test unless it matches want.
func mustGet(t *testing.T, st store.Store, want store.Password) {
	t.Helper()
	got, err := st.GetPassword(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetPassword(%s): %v", want.ID, err)
	}
	if d := diffRecords(want, got); d != "" {
		t.Fatalf("GetPassword(%s) differs from what was stored:\n%s", want.ID, d)
	}
}

func mustNotFind(t *testing.T, st store.Store, id string) {
	t.Helper()
	p, err := st.GetPassword(t.Context(), id)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetPassword(%s) = %+v, %v; want ErrNotFound", id, p, err)
	}
}

func list(t *testing.T, st store.Store, user string) []string {
	t.Helper()
	ps, err := st.ListPasswords(t.Context(), user)
	if err != nil {
		t.Fatalf("ListPasswords(%q): %v", user, err)
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		if user != "" && p.Username != user {
			t.Errorf("ListPasswords(%q) returned %s of user %q", user, p.ID, p.Username)
		}
		ids[i] = p.ID
	}
	return ids
}

// diffRecords lists, one per line, the exported fields in which got
// differs from want, two records of the same struct type. Times compare
// with Equal (so zero matches only zero), nil and empty slices are the
// same, and every other field compares with reflect.DeepEqual. Every field
// is compared, so a field a backend drops fails the suite.
func diffRecords(want, got any) string {
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	if wv.Kind() != reflect.Struct || wv.Type() != gv.Type() {
		return fmt.Sprintf("  got a %T, want a %T (both structs of one type)", got, want)
	}
	var b strings.Builder
	for i := range wv.NumField() {
		f := wv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		w, g := wv.Field(i), gv.Field(i)
		if !fieldEqual(w, g) {
			fmt.Fprintf(&b, "  %s: got %v, want %v\n", f.Name, g, w)
		}
	}
	return b.String()
}

var timeType = reflect.TypeFor[time.Time]()

// fieldEqual compares two values of one field for diffRecords.
func fieldEqual(w, g reflect.Value) bool {
	switch {
	case w.Type() == timeType:
		return w.Interface().(time.Time).Equal(g.Interface().(time.Time))
	case w.Kind() == reflect.Slice && w.Len() == 0 && g.Len() == 0:
		return true
	default:
		return reflect.DeepEqual(w.Interface(), g.Interface())
	}
}

func testCreateGetRoundTrip(t *testing.T, s suite) {
	p := s.password(t, "alice.example-20chars")
	p.Groups = []string{"registry-admins", "team-a", "", "ünïcode-grøup", "g:with spaces"}
	p.Name = "CI runner – ☃ \"quoted\""
	p.LastUsedAt = p.CreatedAt.Add(30 * time.Second)
	p.ReadOnly = true
	p.CreatedBy = store.CreatedByCLI
	s.create(t, p)

	mustGet(t, s.a, p) // LastUsedAt is set: Equal fails if it comes back zero
	mustGet(t, s.b, p)
}

func testCreateGetMinimal(t *testing.T, s suite) {
	now := s.clock.Now()
	p := store.Password{
		ID:        "minimal0000000000",
		Username:  "bob",
		Digest:    bytes.Repeat([]byte{0xff}, 32),
		ExpiresAt: now.Add(time.Hour),
	}
	s.create(t, p)
	// Zero times must come back zero and empty slices empty: diffRecords
	// compares zero times with Equal and nil only with empty.
	mustGet(t, s.b, p)
}

func testCreateDuplicate(t *testing.T, s suite) {
	orig := s.password(t, "alice")
	s.create(t, orig)

	dup := s.password(t, "mallory")
	dup.ID = orig.ID
	dup.Groups = []string{"registry-admins"}
	dup.ExpiresAt = orig.ExpiresAt.Add(time.Hour)
	for _, st := range []store.Store{s.a, s.b} {
		if err := st.CreatePassword(t.Context(), dup); !errors.Is(err, store.ErrAlreadyExists) {
			t.Fatalf("CreatePassword(duplicate id) = %v, want ErrAlreadyExists", err)
		}
	}
	mustGet(t, s.a, orig)
	if ids := list(t, s.a, "mallory"); len(ids) != 0 {
		t.Fatalf("failed create left %v in mallory's index", ids)
	}
	if ids := list(t, s.a, "alice"); !slices.Equal(ids, []string{orig.ID}) {
		t.Fatalf("alice's passwords = %v, want [%s]", ids, orig.ID)
	}
}

func testCreateInvalid(t *testing.T, s suite) {
	now := s.clock.Now()
	tests := []struct {
		name   string
		mutate func(p *store.Password)
	}{
		{"no id", func(p *store.Password) { p.ID = "" }},
		{"no username", func(p *store.Password) { p.Username = "" }},
		{"no expiry", func(p *store.Password) { p.ExpiresAt = time.Time{} }},
		{"expires now", func(p *store.Password) { p.ExpiresAt = now }},
		{"expired", func(p *store.Password) { p.ExpiresAt = now.Add(-time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := s.password(t, "alice")
			tt.mutate(&p)
			err := s.a.CreatePassword(t.Context(), p)
			if err == nil || errors.Is(err, store.ErrAlreadyExists) {
				t.Fatalf("CreatePassword = %v, want a validation error", err)
			}
			if p.ID != "" {
				mustNotFind(t, s.a, p.ID)
			}
			if ids := list(t, s.a, ""); len(ids) != 0 {
				t.Fatalf("rejected create left %v behind", ids)
			}
		})
	}
}

func testCreateConcurrent(t *testing.T, s suite) {
	const n = 8
	base := s.password(t, "alice")
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		others  []error
	)
	for i := range n {
		p := base
		p.Name = fmt.Sprintf("contender-%d", i)
		st := s.a
		if i%2 == 1 {
			st = s.b
		}
		wg.Go(func() {
			err := st.CreatePassword(t.Context(), p)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				winners = append(winners, p.Name)
			} else if !errors.Is(err, store.ErrAlreadyExists) {
				others = append(others, err)
			}
		})
	}
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("unexpected errors: %v", others)
	}
	if len(winners) != 1 {
		t.Fatalf("%d creates of one id succeeded (%v), want exactly 1", len(winners), winners)
	}
	want := base
	want.Name = winners[0]
	mustGet(t, s.a, want)
	mustGet(t, s.b, want)
	if ids := list(t, s.b, "alice"); !slices.Equal(ids, []string{base.ID}) {
		t.Fatalf("alice's passwords = %v, want [%s]", ids, base.ID)
	}
}

func testGetUnknown(t *testing.T, s suite) {
	mustNotFind(t, s.a, "doesnotexist00000")
	mustNotFind(t, s.a, "")
	if err := s.a.DeletePassword(t.Context(), "doesnotexist00000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeletePassword(unknown) = %v, want ErrNotFound", err)
	}
	if ids := list(t, s.a, "nobody"); len(ids) != 0 {
		t.Fatalf("ListPasswords(nobody) = %v", ids)
	}
}

func testExpiry(t *testing.T, s suite) {
	short := s.password(t, "alice")
	short.ExpiresAt = s.clock.Now().Add(time.Hour)
	long := s.password(t, "alice")
	s.create(t, short, long)

	s.clock.Advance(time.Hour - time.Second)
	mustGet(t, s.a, short)
	if ids := list(t, s.b, "alice"); len(ids) != 2 {
		t.Fatalf("before expiry alice has %v, want 2 passwords", ids)
	}

	s.clock.Advance(time.Second) // now == ExpiresAt: expired
	mustNotFind(t, s.a, short.ID)
	mustNotFind(t, s.b, short.ID)
	mustGet(t, s.b, long)
	if ids := list(t, s.a, "alice"); !slices.Equal(ids, []string{long.ID}) {
		t.Fatalf("after expiry ListPasswords(alice) = %v, want [%s]", ids, long.ID)
	}
	if ids := list(t, s.a, ""); !slices.Equal(ids, []string{long.ID}) {
		t.Fatalf("after expiry ListPasswords(\"\") = %v, want [%s]", ids, long.ID)
	}

	// Touching an expired record neither fails nor revives it.
	if err := s.a.TouchPassword(t.Context(), short.ID, s.clock.Now()); err != nil {
		t.Fatalf("TouchPassword(expired) = %v", err)
	}
	mustNotFind(t, s.a, short.ID)
	if err := s.a.DeletePassword(t.Context(), short.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeletePassword(expired) = %v, want ErrNotFound", err)
	}
	// Reusing an expired record's id is allowed but not required:
	// CreatePassword may succeed or fail with ErrAlreadyExists, and any
	// other error fails the test.
	reuse := s.password(t, "bob")
	reuse.ID = short.ID
	if err := s.b.CreatePassword(t.Context(), reuse); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("CreatePassword(id of expired record) = %v", err)
	}
}

func testList(t *testing.T, s suite) {
	now := s.clock.Now()
	var alice []store.Password
	for i := range 3 {
		p := s.password(t, "alice")
		// Created in reverse order of age, so that insertion order is not
		// the answer.
		p.CreatedAt = now.Add(-time.Duration(i+1) * time.Hour)
		p.Name = fmt.Sprintf("p%d", i)
		alice = append(alice, p)
	}
	bob := s.password(t, "bob")
	bob.CreatedAt = now.Add(-90 * time.Minute)
	s.create(t, alice...)
	s.create(t, bob)

	wantAlice := []string{alice[2].ID, alice[1].ID, alice[0].ID}
	if ids := list(t, s.b, "alice"); !slices.Equal(ids, wantAlice) {
		t.Fatalf("ListPasswords(alice) = %v, want oldest first %v", ids, wantAlice)
	}
	if ids := list(t, s.b, "bob"); !slices.Equal(ids, []string{bob.ID}) {
		t.Fatalf("ListPasswords(bob) = %v, want [%s]", ids, bob.ID)
	}
	wantAll := []string{alice[2].ID, alice[1].ID, bob.ID, alice[0].ID}
	if ids := list(t, s.a, ""); !slices.Equal(ids, wantAll) {
		t.Fatalf("ListPasswords(\"\") = %v, want oldest first %v", ids, wantAll)
	}
	if ids := list(t, s.a, "carol"); len(ids) != 0 {
		t.Fatalf("ListPasswords(carol) = %v, want none", ids)
	}

	ps, err := s.b.ListPasswords(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		if d := diffRecords(alice[2-i], p); d != "" {
			t.Errorf("ListPasswords record %d differs from what was stored:\n%s", i, d)
		}
	}
}

func testDelete(t *testing.T, s suite) {
	gone := s.password(t, "alice")
	kept := s.password(t, "alice")
	s.create(t, gone, kept)

	if err := s.b.DeletePassword(t.Context(), gone.ID); err != nil {
		t.Fatalf("DeletePassword: %v", err)
	}
	mustNotFind(t, s.a, gone.ID)
	mustNotFind(t, s.b, gone.ID)
	mustGet(t, s.a, kept)
	if ids := list(t, s.a, "alice"); !slices.Equal(ids, []string{kept.ID}) {
		t.Fatalf("ListPasswords(alice) = %v, want [%s]", ids, kept.ID)
	}
	if err := s.a.DeletePassword(t.Context(), gone.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeletePassword = %v, want ErrNotFound", err)
	}
}

func testDeleteUserPasswords(t *testing.T, s suite) {
	var alice []store.Password
	for range 3 {
		alice = append(alice, s.password(t, "alice"))
	}
	expired := s.password(t, "alice")
	expired.ExpiresAt = s.clock.Now().Add(time.Minute)
	bob := s.password(t, "bob")
	s.create(t, alice...)
	s.create(t, expired, bob)
	s.clock.Advance(time.Minute)

	n, err := s.b.DeleteUserPasswords(t.Context(), "alice")
	if err != nil {
		t.Fatalf("DeleteUserPasswords: %v", err)
	}
	if n != len(alice) {
		t.Fatalf("DeleteUserPasswords = %d, want %d (live passwords only)", n, len(alice))
	}
	for _, p := range append(alice, expired) {
		mustNotFind(t, s.a, p.ID)
	}
	if ids := list(t, s.a, "alice"); len(ids) != 0 {
		t.Fatalf("ListPasswords(alice) = %v after DeleteUserPasswords", ids)
	}
	mustGet(t, s.a, bob)
	if ids := list(t, s.a, ""); !slices.Equal(ids, []string{bob.ID}) {
		t.Fatalf("ListPasswords(\"\") = %v, want [%s]", ids, bob.ID)
	}
	if n, err := s.a.DeleteUserPasswords(t.Context(), "alice"); err != nil || n != 0 {
		t.Fatalf("second DeleteUserPasswords = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.a.DeleteUserPasswords(t.Context(), "nobody"); err != nil || n != 0 {
		t.Fatalf("DeleteUserPasswords(nobody) = %d, %v; want 0, nil", n, err)
	}
}

func testTouch(t *testing.T, s suite) {
	p := s.password(t, "alice")
	p.ExpiresAt = s.clock.Now().Add(time.Hour)
	s.create(t, p)
	ctx := t.Context()

	t1 := s.clock.Now().Add(10 * time.Second)
	steps := []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"first use", t1, t1},
		{"later", t1.Add(time.Minute), t1.Add(time.Minute)},
		{"earlier is ignored", t1, t1.Add(time.Minute)},
		{"equal is a no-op", t1.Add(time.Minute), t1.Add(time.Minute)},
		{"much later", t1.Add(50 * time.Minute), t1.Add(50 * time.Minute)},
	}
	for _, step := range steps {
		st := s.a
		if step.at.Equal(t1) {
			st = s.b
		}
		if err := st.TouchPassword(ctx, p.ID, step.at); err != nil {
			t.Fatalf("%s: TouchPassword: %v", step.name, err)
		}
		want := p
		want.LastUsedAt = step.want
		s.mustSeeTouch(t, s.a, st == s.a, want)
	}

	// Touching never extends the record's life.
	s.clock.Advance(time.Hour)
	mustNotFind(t, s.a, p.ID)

	// Touching a deleted or unknown record is not an error and creates
	// nothing.
	q := s.password(t, "bob")
	s.create(t, q)
	if err := s.a.DeletePassword(ctx, q.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{q.ID, "doesnotexist00000"} {
		if err := s.b.TouchPassword(ctx, id, s.clock.Now()); err != nil {
			t.Fatalf("TouchPassword(%s) = %v, want nil", id, err)
		}
		mustNotFind(t, s.a, id)
	}
	if ids := list(t, s.a, "bob"); len(ids) != 0 {
		t.Fatalf("touch revived %v", ids)
	}
}

func testTouchConcurrent(t *testing.T, s suite) {
	p := s.password(t, "alice")
	s.create(t, p)
	base := s.clock.Now()
	latest := base.Add(500 * time.Second)

	var wg sync.WaitGroup
	for g := range 8 {
		st := s.a
		if g%2 == 1 {
			st = s.b
		}
		wg.Go(func() {
			for i := range 25 {
				// Every goroutine writes a different interleaving of
				// times; one of them writes the latest.
				at := base.Add(time.Duration((i*37+g*11)%500) * time.Second)
				if g == 3 && i == 12 {
					at = latest
				}
				if err := st.TouchPassword(t.Context(), p.ID, at); err != nil {
					t.Errorf("TouchPassword: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := p
	want.LastUsedAt = latest
	s.mustSeeTouch(t, s.b, false, want) // touched through both handles
}

func testWatch(t *testing.T, s suite) {
	events := NewEventLog()
	if err := s.b.Watch(t.Context(), events.Add); err != nil {
		t.Fatalf("Watch: %v", err)
	}

	one := s.password(t, "alice")
	bulk := []store.Password{s.password(t, "bob"), s.password(t, "bob"), s.password(t, "bob")}
	s.create(t, one)
	s.create(t, bulk...)

	if err := s.a.DeletePassword(t.Context(), one.ID); err != nil {
		t.Fatal(err)
	}
	events.WaitFor(t, "PasswordChanged for DeletePassword", Changed(one.ID))

	if n, err := s.a.DeleteUserPasswords(t.Context(), "bob"); err != nil || n != len(bulk) {
		t.Fatalf("DeleteUserPasswords = %d, %v", n, err)
	}
	var ids []string
	for _, p := range bulk {
		ids = append(ids, p.ID)
	}
	events.WaitFor(t, "one PasswordChanged per id for DeleteUserPasswords", Changed(ids...))

	// A second watcher on the same handle sees later events too.
	second := NewEventLog()
	if err := s.b.Watch(t.Context(), second.Add); err != nil {
		t.Fatalf("second Watch: %v", err)
	}
	last := s.password(t, "carol")
	s.create(t, last)
	if err := s.a.DeletePassword(t.Context(), last.ID); err != nil {
		t.Fatal(err)
	}
	second.WaitFor(t, "PasswordChanged on the second watcher", Changed(last.ID))
	events.WaitFor(t, "PasswordChanged on the first watcher", Changed(last.ID))
}

func testPing(t *testing.T, s suite) {
	for _, st := range []store.Store{s.a, s.b} {
		if err := st.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
}

// Changed returns a condition for EventLog.WaitFor: a PasswordChanged
// event has been recorded for every id.
func Changed(ids ...string) func([]store.Event) bool {
	return changed(store.PasswordChanged, ids)
}

// UsersChanged returns a condition for EventLog.WaitFor: a UserChanged
// event has been recorded for every username.
func UsersChanged(usernames ...string) func([]store.Event) bool {
	return changed(store.UserChanged, usernames)
}

// changed returns a condition for EventLog.WaitFor: an event of kind has
// been recorded for every id.
func changed(kind store.EventKind, ids []string) func([]store.Event) bool {
	return func(events []store.Event) bool {
		seen := map[string]bool{}
		for _, e := range events {
			if e.Kind == kind {
				seen[e.ID] = true
			}
		}
		for _, id := range ids {
			if !seen[id] {
				return false
			}
		}
		return true
	}
}

// HasReset is a condition for EventLog.WaitFor: a Reset event has been
// recorded.
func HasReset(events []store.Event) bool {
	return slices.ContainsFunc(events, func(e store.Event) bool { return e.Kind == store.Reset })
}

// EventLog records Watch events and lets a test wait for a condition on
// them without sleeping. It is safe for concurrent use.
type EventLog struct {
	mu     sync.Mutex
	events []store.Event
	signal chan struct{}
}

// NewEventLog returns an empty EventLog; pass its Add to Watch.
func NewEventLog() *EventLog { return &EventLog{signal: make(chan struct{}, 1)} }

// Add records e. It is the fn to pass to Store.Watch.
func (l *EventLog) Add(e store.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

// Events returns a copy of the events recorded so far.
func (l *EventLog) Events() []store.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// WaitFor waits until cond holds for the events recorded so far, and fails
// the test, naming what it waited for, after ten seconds.
func (l *EventLog) WaitFor(t testing.TB, what string, cond func([]store.Event) bool) {
	t.Helper()
	deadline := time.NewTimer(eventTimeout)
	defer deadline.Stop()
	for {
		if cond(l.Events()) {
			return
		}
		select {
		case <-l.signal:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; got events %+v", eventTimeout, what, l.Events())
		}
	}
}
