package storetest

import (
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/store"
)

// deviceTests are the suite's device authorization tests.
var deviceTests = []struct {
	name string
	run  func(t *testing.T, s suite)
}{
	{"DeviceRoundTrip", testDeviceRoundTrip},
	{"DeviceInvalid", testDeviceInvalid},
	{"DeviceDuplicate", testDeviceDuplicate},
	{"DeviceCaps", testDeviceCaps},
	{"DeviceCapGroup", testDeviceCapGroup},
	{"DeviceExpiry", testDeviceExpiry},
	{"DeviceDecideOnce", testDeviceDecideOnce},
	{"DevicePoll", testDevicePoll},
	{"DeviceRedeemConcurrent", testDeviceRedeemConcurrent},
	{"DeviceRelease", testDeviceRelease},
}

// device returns a fresh pending authorization from ip, expiring in ten
// minutes, with a 5s interval.
func (s suite) device(ip string) store.DeviceAuth {
	now := s.clock.Now()
	return store.DeviceAuth{
		ID: rand.Text(), UserCode: rand.Text(), ClientID: "docker-credential-bridge", ClientName: "docker-credential-bridge 1.0",
		Host: "laptop.example", ClientIP: ip, Lifetime: 12 * time.Hour, ReadOnly: true,
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Interval: 5 * time.Second, State: store.DevicePending,
	}
}

func (s suite) createDevice(t *testing.T, d store.DeviceAuth) {
	t.Helper()
	if err := s.a.CreateDeviceAuth(t.Context(), d, store.DeviceLimits{}); err != nil {
		t.Fatalf("CreateDeviceAuth: %v", err)
	}
}

func mustGetDevice(t *testing.T, st store.Store, id string) store.DeviceAuth {
	t.Helper()
	got, err := st.GetDeviceAuth(t.Context(), id)
	if err != nil {
		t.Fatalf("GetDeviceAuth: %v", err)
	}
	return got
}

func testDeviceRoundTrip(t *testing.T, s suite) {
	d := s.device("192.0.2.1")
	s.createDevice(t, d)
	if diff := diffRecords(d, mustGetDevice(t, s.b, d.ID)); diff != "" {
		t.Fatalf("GetDeviceAuth through the other handle:\n%s", diff)
	}
	got, err := s.b.GetDeviceAuthByUserCode(t.Context(), d.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	if diff := diffRecords(d, got); diff != "" {
		t.Fatalf("GetDeviceAuthByUserCode:\n%s", diff)
	}
	for _, f := range []func() error{
		func() error { _, err := s.a.GetDeviceAuth(t.Context(), "unknown"); return err },
		func() error { _, err := s.a.GetDeviceAuthByUserCode(t.Context(), "unknown"); return err },
		func() error { return s.a.DecideDeviceAuth(t.Context(), "unknown", true, "sub", "alice") },
		func() error { _, _, err := s.a.PollDeviceAuth(t.Context(), "unknown"); return err },
	} {
		if err := f(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("on an unknown id: %v, want ErrNotFound", err)
		}
	}
}

func testDeviceInvalid(t *testing.T, s suite) {
	for name, change := range map[string]func(*store.DeviceAuth){
		"no id":        func(d *store.DeviceAuth) { d.ID = "" },
		"no user code": func(d *store.DeviceAuth) { d.UserCode = "" },
		"expired":      func(d *store.DeviceAuth) { d.ExpiresAt = s.clock.Now() },
		"not pending":  func(d *store.DeviceAuth) { d.State = store.DeviceApproved },
		"no interval":  func(d *store.DeviceAuth) { d.Interval = 0 },
	} {
		d := s.device("192.0.2.1")
		change(&d)
		if err := s.a.CreateDeviceAuth(t.Context(), d, store.DeviceLimits{}); err == nil {
			t.Errorf("%s: created", name)
		}
		if d.ID != "" {
			if _, err := s.a.GetDeviceAuth(t.Context(), d.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: stored anyway (%v)", name, err)
			}
		}
	}
}

func testDeviceDuplicate(t *testing.T, s suite) {
	d := s.device("192.0.2.1")
	s.createDevice(t, d)
	sameID := s.device("192.0.2.2")
	sameID.ID = d.ID
	sameCode := s.device("192.0.2.3")
	sameCode.UserCode = d.UserCode
	for name, dup := range map[string]store.DeviceAuth{"same id": sameID, "same user code": sameCode} {
		if err := s.b.CreateDeviceAuth(t.Context(), dup, store.DeviceLimits{}); !errors.Is(err, store.ErrAlreadyExists) {
			t.Errorf("%s: %v, want ErrAlreadyExists", name, err)
		}
	}
	if diff := diffRecords(d, mustGetDevice(t, s.a, d.ID)); diff != "" {
		t.Fatalf("the first record changed:\n%s", diff)
	}
	if _, err := s.a.GetDeviceAuth(t.Context(), sameCode.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a duplicate user code was stored under its own id: %v", err)
	}
}

func testDeviceCaps(t *testing.T, s suite) {
	lim := store.DeviceLimits{MaxPending: 4, MaxPerClient: 2}
	create := func(st store.Store, ip string) (store.DeviceAuth, error) {
		d := s.device(ip)
		return d, st.CreateDeviceAuth(t.Context(), d, lim)
	}
	for _, ip := range []string{"192.0.2.1", "192.0.2.1"} {
		if _, err := create(s.a, ip); err != nil {
			t.Fatal(err)
		}
	}
	d, err := create(s.b, "192.0.2.1")
	if !errors.Is(err, store.ErrTooManyFromClient) {
		t.Fatalf("third from one address: %v, want ErrTooManyFromClient", err)
	}
	if _, err := s.a.GetDeviceAuth(t.Context(), d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused authorization stored anyway: %v", err)
	}
	for _, ip := range []string{"192.0.2.2", "192.0.2.3"} {
		if _, err := create(s.a, ip); err != nil {
			t.Fatal(err)
		}
	}
	d, err = create(s.b, "192.0.2.4")
	if !errors.Is(err, store.ErrTooManyPending) {
		t.Fatalf("fifth in all: %v, want ErrTooManyPending", err)
	}
	if _, err := s.a.GetDeviceAuthByUserCode(t.Context(), d.UserCode); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused authorization's user code stored anyway: %v", err)
	}
	// Once they expire, they no longer count.
	s.clock.Advance(10 * time.Minute)
	for _, ip := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.4", "192.0.2.5"} {
		if _, err := create(s.b, ip); err != nil {
			t.Fatalf("after the first ones expired: %v", err)
		}
	}
}

// The per-client cap counts by CapKey: records of different addresses
// with one ClientGroup count together, and keep their own ClientIP.
func testDeviceCapGroup(t *testing.T, s suite) {
	lim := store.DeviceLimits{MaxPerClient: 2}
	const group = "2001:db8:1:2::/64"
	var first store.DeviceAuth
	for i, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3"} {
		d := s.device(ip)
		d.ClientGroup = group
		err := s.a.CreateDeviceAuth(t.Context(), d, lim)
		switch {
		case i < 2 && err != nil:
			t.Fatalf("%s: %v", ip, err)
		case i == 2 && !errors.Is(err, store.ErrTooManyFromClient):
			t.Fatalf("third of one group: %v, want ErrTooManyFromClient", err)
		}
		if i == 0 {
			first = d
		}
	}
	if got := mustGetDevice(t, s.b, first.ID); got.ClientIP != first.ClientIP || got.ClientGroup != group {
		t.Fatalf("read back ip %q group %q", got.ClientIP, got.ClientGroup)
	}
	other := s.device("2001:db8:1:3::1")
	other.ClientGroup = "2001:db8:1:3::/64"
	if err := s.b.CreateDeviceAuth(t.Context(), other, lim); err != nil {
		t.Fatalf("another group: %v", err)
	}
}

func testDeviceExpiry(t *testing.T, s suite) {
	d := s.device("192.0.2.1")
	s.createDevice(t, d)
	s.clock.Advance(10*time.Minute - time.Second)
	mustGetDevice(t, s.b, d.ID)
	s.clock.Advance(time.Second)
	for name, f := range map[string]func() error{
		"get":          func() error { _, err := s.b.GetDeviceAuth(t.Context(), d.ID); return err },
		"by user code": func() error { _, err := s.b.GetDeviceAuthByUserCode(t.Context(), d.UserCode); return err },
		"decide":       func() error { return s.b.DecideDeviceAuth(t.Context(), d.ID, true, "sub", "alice") },
		"poll":         func() error { _, _, err := s.b.PollDeviceAuth(t.Context(), d.ID); return err },
	} {
		if err := f(); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s after expiry: %v, want ErrNotFound", name, err)
		}
	}
}

func testDeviceDecideOnce(t *testing.T, s suite) {
	for _, approve := range []bool{true, false} {
		d := s.device("192.0.2.1")
		s.createDevice(t, d)
		const deciders = 8
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			won    int
			others []error
		)
		for i := range deciders {
			h := []store.Store{s.a, s.b}[i%2]
			wg.Go(func() {
				err := h.DecideDeviceAuth(t.Context(), d.ID, approve, "sub-alice", "alice")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case !errors.Is(err, store.ErrNotPending):
					others = append(others, err)
				}
			})
		}
		wg.Wait()
		if won != 1 || len(others) > 0 {
			t.Fatalf("approve=%v: %d of %d decisions succeeded (want 1), other errors %v", approve, won, deciders, others)
		}
		got := mustGetDevice(t, s.b, d.ID)
		want := store.DeviceDenied
		if approve {
			want = store.DeviceApproved
		}
		if got.State != want || got.Subject != "sub-alice" || got.Username != "alice" {
			t.Fatalf("after deciding: state %s by %s/%s, want %s by sub-alice/alice", got.State, got.Subject, got.Username, want)
		}
		if err := s.a.DecideDeviceAuth(t.Context(), d.ID, !approve, "sub-mallory", "mallory"); !errors.Is(err, store.ErrNotPending) {
			t.Fatalf("second decision: %v, want ErrNotPending", err)
		}
	}
}

func testDevicePoll(t *testing.T, s suite) {
	d := s.device("192.0.2.1")
	s.createDevice(t, d)
	poll := func(st store.Store, want store.PollOutcome, wantState store.DeviceState) store.DeviceAuth {
		t.Helper()
		got, outcome, err := st.PollDeviceAuth(t.Context(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if outcome != want || got.State != wantState {
			t.Fatalf("poll: outcome %d state %s, want %d %s", outcome, got.State, want, wantState)
		}
		if !got.LastPollAt.Equal(s.clock.Now()) {
			t.Fatalf("LastPollAt %v, want %v", got.LastPollAt, s.clock.Now())
		}
		return got
	}
	poll(s.a, store.PollRecorded, store.DevicePending)
	s.clock.Advance(5 * time.Second)
	poll(s.b, store.PollRecorded, store.DevicePending)
	s.clock.Advance(4 * time.Second)
	if got := poll(s.a, store.PollTooFast, store.DevicePending); got.Interval != 10*time.Second {
		t.Fatalf("after a poll too fast the interval is %v, want 10s", got.Interval)
	}
	if err := s.b.DecideDeviceAuth(t.Context(), d.ID, true, "sub-alice", "alice"); err != nil {
		t.Fatal(err)
	}
	// Too fast again (under the new 10s): slowed down, not redeemed.
	s.clock.Advance(9 * time.Second)
	if got := poll(s.b, store.PollTooFast, store.DeviceApproved); got.Interval != 15*time.Second {
		t.Fatalf("interval %v, want 15s", got.Interval)
	}
	s.clock.Advance(15 * time.Second)
	got := poll(s.a, store.PollRedeemed, store.DeviceConsumed)
	if got.Username != "alice" || got.Subject != "sub-alice" || got.Lifetime != d.Lifetime || !got.ReadOnly || got.Host != d.Host {
		t.Fatalf("redeemed record lost its fields: %+v", got)
	}
	s.clock.Advance(15 * time.Second)
	poll(s.b, store.PollRecorded, store.DeviceConsumed)

	// The interval never grows past DeviceMaxInterval.
	d = s.device("192.0.2.1")
	s.createDevice(t, d)
	for range 20 {
		_, _, _ = s.a.PollDeviceAuth(t.Context(), d.ID)
	}
	if got := mustGetDevice(t, s.b, d.ID); got.Interval != store.DeviceMaxInterval {
		t.Fatalf("interval after many fast polls %v, want %v", got.Interval, store.DeviceMaxInterval)
	}
}

func testDeviceRedeemConcurrent(t *testing.T, s suite) {
	d := s.device("192.0.2.1")
	d.Interval = time.Millisecond // every poll is timely: the clock stands still
	s.createDevice(t, d)
	if err := s.a.DecideDeviceAuth(t.Context(), d.ID, true, "sub-alice", "alice"); err != nil {
		t.Fatal(err)
	}
	const pollers = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		redeemed int
		errs     []error
	)
	for i := range pollers {
		h := []store.Store{s.a, s.b}[i%2]
		wg.Go(func() {
			_, outcome, err := h.PollDeviceAuth(t.Context(), d.ID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if outcome == store.PollRedeemed {
				redeemed++
			}
		})
	}
	wg.Wait()
	if redeemed != 1 || len(errs) > 0 {
		t.Fatalf("%d of %d concurrent polls redeemed (want 1); errors %v", redeemed, pollers, errs)
	}
}

// A consumed authorization released goes back to approved, once, and is
// redeemed again by the next timely poll; nothing else can be released.
func testDeviceRelease(t *testing.T, s suite) {
	d := s.device("192.0.2.1")
	s.createDevice(t, d)
	if err := s.a.ReleaseDeviceAuth(t.Context(), d.ID); !errors.Is(err, store.ErrNotConsumed) {
		t.Fatalf("release a pending one: %v, want ErrNotConsumed", err)
	}
	if err := s.a.DecideDeviceAuth(t.Context(), d.ID, true, "sub-alice", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.b.ReleaseDeviceAuth(t.Context(), d.ID); !errors.Is(err, store.ErrNotConsumed) {
		t.Fatalf("release an approved one: %v, want ErrNotConsumed", err)
	}
	if _, outcome, err := s.a.PollDeviceAuth(t.Context(), d.ID); err != nil || outcome != store.PollRedeemed {
		t.Fatalf("poll: %v %v", outcome, err)
	}
	if err := s.b.ReleaseDeviceAuth(t.Context(), d.ID); err != nil {
		t.Fatalf("release the consumed one: %v", err)
	}
	if got := mustGetDevice(t, s.a, d.ID); got.State != store.DeviceApproved || got.Subject != "sub-alice" || got.Username != "alice" {
		t.Fatalf("after release: state %s by %s/%s, want approved by alice", got.State, got.Subject, got.Username)
	}
	if err := s.a.ReleaseDeviceAuth(t.Context(), d.ID); !errors.Is(err, store.ErrNotConsumed) {
		t.Fatalf("release twice: %v, want ErrNotConsumed", err)
	}
	s.clock.Advance(5 * time.Second)
	if got, outcome, err := s.b.PollDeviceAuth(t.Context(), d.ID); err != nil || outcome != store.PollRedeemed || got.State != store.DeviceConsumed {
		t.Fatalf("poll after release: %v %s %v, want redeemed", outcome, got.State, err)
	}
	denied := s.device("192.0.2.2")
	s.createDevice(t, denied)
	if err := s.a.DecideDeviceAuth(t.Context(), denied.ID, false, "sub-alice", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.a.ReleaseDeviceAuth(t.Context(), denied.ID); !errors.Is(err, store.ErrNotConsumed) {
		t.Fatalf("release a denied one: %v, want ErrNotConsumed", err)
	}
	if err := s.a.ReleaseDeviceAuth(t.Context(), "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("release a missing one: %v, want ErrNotFound", err)
	}
	s.clock.Advance(10 * time.Minute)
	if err := s.b.ReleaseDeviceAuth(t.Context(), d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("release an expired one: %v, want ErrNotFound", err)
	}
}
