package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/accounts"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/memory"
)

const (
	testMaxPending        = 6
	testMaxPendingPerAddr = 3
	testInterval          = 5 * time.Second
	testCodeLifetime      = 10 * time.Minute
)

func testDeviceOptions(st DeviceStore) *DeviceOptions {
	return &DeviceOptions{Store: st, Lifetime: 12 * time.Hour, CodeLifetime: testCodeLifetime, Interval: testInterval,
		MaxPending: testMaxPending, MaxPendingPerAddress: testMaxPendingPerAddr}
}

// oauthAnswer is a decoded JSON answer of the device endpoints.
type oauthAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a oauthAnswer) str(k string) string { v, _ := a.body[k].(string); return v }

// deviceCall posts form to path as a client at remote ("ip:port"), straight
// into the handler, so that tests choose the client address.
func (s *site) deviceCall(path, remote string, form url.Values) oauthAnswer {
	s.t.Helper()
	return s.serve(deviceRequest(path, remote, form))
}

// deviceRequest is a form POST to path from remote.
func deviceRequest(path, remote string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = remote
	return req
}

// serve runs req straight through the handler.
func (s *site) serve(req *http.Request) oauthAnswer {
	w := httptest.NewRecorder()
	s.srv.ServeHTTP(w, req)
	a := oauthAnswer{status: w.Code, header: w.Header(), raw: w.Body.String()}
	_ = json.Unmarshal(w.Body.Bytes(), &a.body)
	return a
}

func deviceForm(host string) url.Values {
	return url.Values{"client_id": {DeviceClientID}, "client_name": {"docker-credential-bridge test"}, "host": {host}}
}

// startDevice asks for a device code from remote and fails unless it gets one.
func (s *site) startDevice(remote string, form url.Values) oauthAnswer {
	s.t.Helper()
	a := s.deviceCall("/device/code", remote, form)
	if a.status != http.StatusOK {
		s.t.Fatalf("POST /device/code: %d %s", a.status, a.raw)
	}
	return a
}

func (s *site) poll(deviceCode string) oauthAnswer {
	s.t.Helper()
	return s.deviceCall("/token", "127.0.0.1:40000", url.Values{
		"grant_type": {grantDeviceCode}, "device_code": {deviceCode}, "client_id": {DeviceClientID},
	})
}

// wantPollError polls and requires the RFC 8628 error code.
func (s *site) wantPollError(deviceCode, code string) {
	s.t.Helper()
	a := s.poll(deviceCode)
	if a.status != http.StatusBadRequest || a.str("error") != code {
		s.t.Fatalf("poll: %d %s, want 400 %s", a.status, a.raw, code)
	}
	if a.str("access_token") != "" || a.str("refresh_token") != "" {
		s.t.Fatalf("refused poll carries credentials: %s", a.raw)
	}
}

var userCodeRE = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// decide opens the verification link, checks what the page shows and
// presses approve or deny.
func (b *browser) decide(a oauthAnswer, decision string) *http.Response {
	b.t.Helper()
	b.get(a.str("verification_uri_complete"))
	if b.last.StatusCode != 200 || !strings.Contains(b.body, `id="device-approve"`) {
		b.t.Fatalf("device page: %d\n%s", b.last.StatusCode, b.body)
	}
	return b.postForm(b.s.base+"/device", url.Values{
		"csrf": {find(b.t, csrfRE, b.body)}, "user_code": {a.str("user_code")}, "decision": {decision},
	})
}

func (s *site) passwordsOf(user string) []store.Password {
	s.t.Helper()
	list, err := s.st.ListPasswords(s.t.Context(), user)
	if err != nil {
		s.t.Fatal(err)
	}
	return list
}

func TestDeviceLoginApproveRedeemRevoke(t *testing.T) {
	s := newSite(t)
	form := deviceForm("laptop.example")
	form.Set("read_only", "true")
	form.Set("lifetime", "2h")
	a := s.startDevice("192.0.2.7:5555", form)
	if !userCodeRE.MatchString(a.str("user_code")) {
		t.Fatalf("user_code %q is not XXXX-XXXX of the alphabet", a.str("user_code"))
	}
	if a.str("verification_uri") != s.base+"/device" ||
		a.str("verification_uri_complete") != s.base+"/device?user_code="+a.str("user_code") ||
		a.body["expires_in"] != float64(600) || a.body["interval"] != float64(5) || len(a.str("device_code")) < 40 {
		t.Fatalf("device authorization response: %s", a.raw)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	dc := a.str("device_code")
	s.wantPollError(dc, "authorization_pending")
	s.wantPollError(dc, "slow_down") // at once again: too fast, and the interval grows to 10s
	s.clock.Advance(10 * time.Second)
	s.wantPollError(dc, "authorization_pending")

	b := s.browser()
	b.get(a.str("verification_uri_complete"))
	if !strings.Contains(b.body, `id="login"`) {
		t.Fatalf("signed out, the device page lacks the login button:\n%s", b.body)
	}
	b.login("alice", "alice-pw")
	b.get(a.str("verification_uri_complete"))
	for _, want := range []string{"Approve only if you started this yourself", "laptop.example", "192.0.2.7",
		"2 hours", "read-only", "docker-credential-bridge test", a.str("user_code")} {
		if !strings.Contains(b.body, want) {
			t.Errorf("approval page lacks %q", want)
		}
	}
	// A typed code works in any case, with or without the dash.
	b.get(s.base + "/device?user_code=" + url.QueryEscape(strings.ToLower(strings.ReplaceAll(a.str("user_code"), "-", " "))))
	if !strings.Contains(b.body, `id="device-approve"`) {
		t.Fatalf("the code typed in lower case with a space was not found:\n%s", b.body)
	}
	// Without the CSRF token nothing is decided.
	resp := b.postForm(s.base+"/device", url.Values{"user_code": {a.str("user_code")}, "decision": {"approve"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("approve without CSRF: %d", resp.StatusCode)
	}
	s.clock.Advance(10 * time.Second)
	s.wantPollError(dc, "authorization_pending")

	if resp := b.decide(a, "approve"); resp.StatusCode != 200 || !strings.Contains(b.body, "Approved") {
		t.Fatalf("approve: %d\n%s", resp.StatusCode, b.body)
	}
	if len(s.passwordsOf("alice")) != 0 {
		t.Fatal("a password exists before the terminal redeemed the code")
	}
	s.clock.Advance(10 * time.Second)
	got := s.poll(dc)
	if got.status != 200 {
		t.Fatalf("poll after approval: %d %s", got.status, got.raw)
	}
	pw, rt := got.str("access_token"), got.str("refresh_token")
	if !strings.HasPrefix(pw, "rbp_") || !strings.HasPrefix(rt, "rbr_") || got.str("username") != "alice" ||
		got.str("name") != "device: laptop.example" || got.body["read_only"] != true || got.body["expires_in"].(float64) < 7190 || got.body["expires_in"].(float64) > 7200 {
		t.Fatalf("device token response: %s", got.raw)
	}
	list := s.passwordsOf("alice")
	if len(list) != 1 || list[0].CreatedBy != store.CreatedByDevice || list[0].Name != "device: laptop.example" || !list[0].ReadOnly {
		t.Fatalf("alice's passwords after the device login: %+v", list)
	}
	if b.get(s.base + "/"); !strings.Contains(b.body, "device: laptop.example") {
		t.Error("the device password is not listed on the page")
	}

	// The code is single use: polling again, or anyone approving it, gets nowhere.
	s.clock.Advance(15 * time.Second)
	s.wantPollError(dc, "invalid_grant")
	bob := s.browser()
	bob.login("bob", "bob-pw")
	bob.get(a.str("verification_uri_complete"))
	if strings.Contains(bob.body, `id="device-approve"`) || bob.last.StatusCode != http.StatusBadRequest {
		t.Fatalf("a consumed code can be approved again: %d\n%s", bob.last.StatusCode, bob.body)
	}
	if len(s.passwordsOf("alice")) != 1 || len(s.passwordsOf("bob")) != 0 {
		t.Fatal("a second password was minted")
	}

	// The password works at the token endpoint, with Basic and with the refresh grant.
	if code, granted, body := s.token("alice", pw, "repository:team-a/app:pull,push"); code != 200 || len(granted) != 1 || granted[0] != "team-a/app:pull" {
		t.Fatalf("token with the device password: %d %v %s", code, granted, body)
	}
	refresh := s.deviceCall("/token", "127.0.0.1:1", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"service": {testService}, "scope": {"repository:team-a/app:pull"}, "client_id": {"docker"}})
	if refresh.status != 200 || refresh.str("access_token") == "" {
		t.Fatalf("refresh grant with the device refresh token: %d %s", refresh.status, refresh.raw)
	}

	// Revocation: a wrong secret changes nothing and gets the RFC's 200.
	wrong := rt[:len(rt)-4] + "AAAA"
	if rt[len(rt)-4:] == "AAAA" {
		wrong = rt[:len(rt)-4] + "BBBB"
	}
	for _, tok := range []string{wrong, "not-a-token"} {
		if r := s.deviceCall("/revoke", "127.0.0.1:1", url.Values{"token": {tok}}); r.status != 200 {
			t.Fatalf("revoke %q: %d %s", tok, r.status, r.raw)
		}
	}
	if len(s.passwordsOf("alice")) != 1 {
		t.Fatal("a wrong token revoked the password")
	}
	if r := s.deviceCall("/revoke", "127.0.0.1:1", url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	if len(s.passwordsOf("alice")) != 0 {
		t.Fatal("revoked password still listed")
	}
	if code, _, body := s.token("alice", pw); code != http.StatusUnauthorized {
		t.Fatalf("token after revocation: %d %s", code, body)
	}
}

func TestDeviceDeniedExpiredAndRefusals(t *testing.T) {
	s := newSite(t)
	alice := s.browser()
	alice.login("alice", "alice-pw")

	// Denied: the poll says access_denied, nothing is minted, and the
	// code cannot be approved afterwards.
	denied := s.startDevice("192.0.2.1:1", deviceForm("denied.example"))
	if resp := alice.decide(denied, "deny"); resp.StatusCode != 200 || !strings.Contains(alice.body, "Denied") {
		t.Fatalf("deny: %d\n%s", resp.StatusCode, alice.body)
	}
	s.wantPollError(denied.str("device_code"), "access_denied")
	resp := alice.postForm(s.base+"/device", url.Values{"csrf": {alice.csrf()}, "user_code": {denied.str("user_code")}, "decision": {"approve"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("approve after deny: %d\n%s", resp.StatusCode, alice.body)
	}

	// Approved by alice, then bob tries to decide it too: refused; the
	// password is alice's, the approver's.
	shared := s.startDevice("192.0.2.2:1", deviceForm("shared.example"))
	bob := s.browser()
	bob.login("bob", "bob-pw")
	bob.get(shared.str("verification_uri_complete")) // bob sees it while pending
	bobCSRF := find(t, csrfRE, bob.body)
	alice.decide(shared, "approve")
	resp = bob.postForm(s.base+"/device", url.Values{"csrf": {bobCSRF}, "user_code": {shared.str("user_code")}, "decision": {"approve"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bob re-approving alice's approved code: %d\n%s", resp.StatusCode, bob.body)
	}
	if got := s.poll(shared.str("device_code")); got.status != 200 || got.str("username") != "alice" {
		t.Fatalf("redeem: %d %s", got.status, got.raw)
	}
	if len(s.passwordsOf("bob")) != 0 {
		t.Fatal("bob got a password")
	}

	// Expired: after code_lifetime the poll says expired_token and the
	// page knows the code no more.
	late := s.startDevice("192.0.2.3:1", deviceForm("late.example"))
	s.clock.Advance(testCodeLifetime)
	s.wantPollError(late.str("device_code"), "expired_token")
	alice.get(late.str("verification_uri_complete"))
	if alice.last.StatusCode != http.StatusBadRequest || !strings.Contains(alice.body, `id="device-error"`) {
		t.Fatalf("expired code on the page: %d\n%s", alice.last.StatusCode, alice.body)
	}
	s.wantPollError("an unknown device code", "expired_token")
	if n := len(s.passwordsOf("alice")); n != 1 {
		t.Fatalf("alice has %d passwords, want the one she approved", n)
	}

	for _, tt := range []struct {
		name, path string
		form       url.Values
		status     int
		code       string
	}{
		{"unknown client", "/device/code", url.Values{"client_id": {"other"}}, 401, "invalid_client"},
		{"no client", "/device/code", url.Values{}, 401, "invalid_client"},
		{"control character in host", "/device/code", url.Values{"client_id": {DeviceClientID}, "host": {"a\nb"}}, 400, "invalid_request"},
		{"host too long", "/device/code", url.Values{"client_id": {DeviceClientID}, "host": {strings.Repeat("h", 254)}}, 400, "invalid_request"},
		{"lifetime over the maximum", "/device/code", url.Values{"client_id": {DeviceClientID}, "lifetime": {"10000h"}}, 400, "invalid_request"},
		{"bad read_only", "/device/code", url.Values{"client_id": {DeviceClientID}, "read_only": {"yes"}}, 400, "invalid_request"},
		{"repeated parameter", "/device/code", url.Values{"client_id": {DeviceClientID, DeviceClientID}}, 400, "invalid_request"},
		{"poll for another client", "/token", url.Values{"grant_type": {grantDeviceCode}, "device_code": {"x"}, "client_id": {"other"}}, 401, "invalid_client"},
		{"poll without device_code", "/token", url.Values{"grant_type": {grantDeviceCode}, "client_id": {DeviceClientID}}, 400, "invalid_request"},
		{"revoke without token", "/revoke", url.Values{}, 400, "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := s.deviceCall(tt.path, "192.0.2.9:1", tt.form)
			if a.status != tt.status || a.str("error") != tt.code {
				t.Fatalf("%d %s, want %d %s", a.status, a.raw, tt.status, tt.code)
			}
		})
	}
	t.Run("body too large", func(t *testing.T) {
		a := s.deviceCall("/device/code", "192.0.2.9:1", url.Values{"client_id": {DeviceClientID}, "pad": {strings.Repeat("x", maxDeviceFormBytes)}})
		if a.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("%d %s", a.status, a.raw)
		}
	})
}

func TestDeviceCaps(t *testing.T) {
	s := newSite(t)
	// Two now, one five minutes later: the address is at its cap.
	s.startDevice("192.0.2.1:1", deviceForm("a"))
	s.startDevice("192.0.2.1:2", deviceForm("a"))
	s.clock.Advance(testCodeLifetime / 2)
	s.startDevice("192.0.2.1:3", deviceForm("a"))
	a := s.deviceCall("/device/code", "192.0.2.1:9", deviceForm("a"))
	if a.status != http.StatusTooManyRequests || a.str("error") != "temporarily_unavailable" || a.str("device_code") != "" || a.header.Get("Retry-After") == "" {
		t.Fatalf("authorization %d from one address: %d %s (Retry-After %q), want 429", testMaxPendingPerAddr+1, a.status, a.raw, a.header.Get("Retry-After"))
	}
	// When the first two expire, two fit again: the refused one took no
	// place.
	s.clock.Advance(testCodeLifetime / 2)
	s.startDevice("192.0.2.1:1", deviceForm("a"))
	s.startDevice("192.0.2.1:2", deviceForm("a"))
	if a := s.deviceCall("/device/code", "192.0.2.1:9", deviceForm("a")); a.status != http.StatusTooManyRequests {
		t.Fatalf("over the cap again: %d %s", a.status, a.raw)
	}

	// The global cap: 3 live from 192.0.2.1, 3 more from elsewhere fill it.
	for i := range testMaxPending - testMaxPendingPerAddr {
		s.startDevice(fmt.Sprintf("192.0.2.%d:1", 10+i), deviceForm("b"))
	}
	a = s.deviceCall("/device/code", "192.0.2.99:1", deviceForm("c"))
	if a.status != http.StatusServiceUnavailable || a.str("device_code") != "" || a.header.Get("Retry-After") == "" ||
		!strings.Contains(a.str("error_description"), "too many device logins") {
		t.Fatalf("authorization %d in all: %d %s, want 503", testMaxPending+1, a.status, a.raw)
	}
	// Once the codes expire they no longer count.
	s.clock.Advance(testCodeLifetime)
	s.startDevice("192.0.2.1:1", deviceForm("a"))
	s.startDevice("192.0.2.99:1", deviceForm("c"))
}

func TestDeviceWrongCodeAttempts(t *testing.T) {
	s := newSite(t)
	a := s.startDevice("192.0.2.1:1", deviceForm("laptop"))
	guesser := s.browser()
	guesser.login("bob", "bob-pw")
	for i := range personAttempts {
		guesser.get(s.base + "/device?user_code=BBBB-BBB" + string(userCodeAlphabet[i]))
		if guesser.last.StatusCode != http.StatusBadRequest {
			t.Fatalf("wrong code %d: %d", i, guesser.last.StatusCode)
		}
	}
	// The session's attempts are spent: even the right code is refused,
	// and approving it by POST too.
	guesser.get(a.str("verification_uri_complete"))
	if guesser.last.StatusCode != http.StatusTooManyRequests || strings.Contains(guesser.body, "laptop") {
		t.Fatalf("right code after %d wrong ones: %d\n%s", personAttempts, guesser.last.StatusCode, guesser.body)
	}
	resp := guesser.postForm(s.base+"/device", url.Values{"csrf": {guesser.csrf()}, "user_code": {a.str("user_code")}, "decision": {"approve"}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("approve after the attempts ran out: %d", resp.StatusCode)
	}
	s.wantPollError(a.str("device_code"), "authorization_pending")
	// Signing in again does not give the same person new attempts.
	again := s.browser()
	again.login("bob", "bob-pw")
	again.get(a.str("verification_uri_complete"))
	if again.last.StatusCode != http.StatusTooManyRequests || strings.Contains(again.body, "laptop") {
		t.Fatalf("the guesser's new session: %d\n%s", again.last.StatusCode, again.body)
	}
	// Another person still has their own attempts.
	alice := s.browser()
	alice.login("alice", "alice-pw")
	if resp := alice.decide(a, "approve"); resp.StatusCode != 200 {
		t.Fatalf("alice: %d", resp.StatusCode)
	}
	// And the guesser's attempts come back with time.
	s.clock.Advance(personAttemptEvery)
	guesser.get(s.base + "/device?user_code=BBBB-BBBB")
	if guesser.last.StatusCode != http.StatusBadRequest {
		t.Fatalf("after waiting: %d", guesser.last.StatusCode)
	}
}

func TestAttemptLimiterGlobal(t *testing.T) {
	c := &clock{t: time.Now()}
	l := newAttemptLimiter(c.Now)
	for i := range globalAttempts {
		person := string(rune('a' + i%26))
		if v := l.allow(person + "x"); v != allowed {
			t.Fatalf("attempt %d refused: %v", i, v)
		}
		l.fail(person + "x")
	}
	// The replica's budget is spent: those who failed lately wait, with
	// a neutral refusal; someone without wrong codes may still try.
	if v := l.allow("ax"); v != refusedGlobal {
		t.Fatalf("a recent guesser after the replica's attempts ran out: %v, want refusedGlobal", v)
	}
	if v := l.allow("fresh-person"); v != allowed {
		t.Fatalf("a person without wrong codes after the replica's attempts ran out: %v, want allowed", v)
	}
	l.fail("fresh-person")
	if v := l.allow("fresh-person"); v != refusedGlobal {
		t.Fatalf("after one wrong code with the replica's budget spent: %v, want refusedGlobal", v)
	}
	c.Advance(globalAttemptEvery)
	if v := l.allow("fresh-person"); v != allowed {
		t.Fatalf("attempts do not come back: %v", v)
	}
}

// When the replica's wrong-code budget is spent, a person with the
// right code still gets to approve it; someone who was guessing gets a
// neutral refusal.
func TestDeviceRightCodeWhenReplicaBudgetSpent(t *testing.T) {
	s := newSite(t)
	a := s.startDevice("192.0.2.1:1", deviceForm("laptop"))
	bob := s.browser()
	bob.login("bob", "bob-pw")
	bob.get(s.base + "/device?user_code=BBBB-BBBB")
	for i := range globalAttempts {
		s.srv.device.attempts.fail(fmt.Sprintf("guesser-%d", i))
	}
	bob.get(s.base + "/device?user_code=BBBB-BBBC")
	if bob.last.StatusCode != http.StatusTooManyRequests || !strings.Contains(bob.body, "on this server recently") {
		t.Fatalf("bob after a wrong code, the replica's budget spent: %d\n%s", bob.last.StatusCode, bob.body)
	}
	alice := s.browser()
	alice.login("alice", "alice-pw")
	if resp := alice.decide(a, "approve"); resp.StatusCode != 200 {
		t.Fatalf("alice with the right code: %d", resp.StatusCode)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{12 * time.Hour: "12 hours", time.Hour: "1 hour", 48 * time.Hour: "2 days",
		24 * time.Hour: "1 day", 90 * time.Minute: "1h30m0s", 36 * time.Hour: "36 hours"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestUserCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		c := newUserCode()
		if !userCodeRE.MatchString(formatUserCode(c)) {
			t.Fatalf("user code %q", c)
		}
		seen[c] = true
	}
	if len(seen) < 999 {
		t.Fatalf("%d distinct codes of 1000", len(seen))
	}
	for in, want := range map[string]string{"bcdf-ghjk": "BCDFGHJK", " BCDF GHJK ": "BCDFGHJK", "BCDFGHJK": "BCDFGHJK",
		"BCDF-GHJ": "", "ABCD-EFGH": "", "BCDF-GHJK-L": "", "BCDF–GHJK": "", strings.Repeat("B", 30): ""} {
		got, ok := normalUserCode(in)
		if got != want || ok != (want != "") {
			t.Errorf("normalUserCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestAuthorizationServerMetadata(t *testing.T) {
	s := newSite(t)
	resp, err := http.Get(s.base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m metadata
	if err := json.Unmarshal(raw, &m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s %v", resp.StatusCode, raw, err)
	}
	if m.Issuer != s.base || m.TokenEndpoint != s.base+"/token" || m.DeviceAuthorizationEndpoint != s.base+"/device/code" ||
		m.RevocationEndpoint != s.base+"/revoke" || !strings.Contains(strings.Join(m.GrantTypesSupported, " "), grantDeviceCode) {
		t.Fatalf("metadata: %s", raw)
	}
}

// The device login mints through the account rules: approving at the
// cap is refused on the page (the code stays pending); reaching the cap
// between approval and redemption denies the poll.
func TestDeviceMintRefusedByAccountRules(t *testing.T) {
	s := newSite(t)
	alice := s.browser()
	alice.login("alice", "alice-pw")
	owner := accounts.PersonPrincipal(s.aliceSubject(t), "alice")
	for i := range maxLive {
		if _, err := s.acc.Mint(t.Context(), accounts.MintRequest{Owner: owner,
			Name: "p" + string(rune('a'+i)), Via: store.CreatedByAPI, IgnoreLimit: true}); err != nil {
			t.Fatal(err)
		}
	}
	a := s.startDevice("192.0.2.1:1", deviceForm("full.example"))
	if resp := alice.decide(a, "approve"); resp.StatusCode != http.StatusConflict || !strings.Contains(alice.body, "Not approved") ||
		strings.Contains(alice.body, "receives an app password") {
		t.Fatalf("approve at the cap: %d\n%s", resp.StatusCode, alice.body)
	}
	s.wantPollError(a.str("device_code"), "authorization_pending")

	// Revoking one makes room; the approval goes through.
	list := s.passwordsOf("alice")
	if _, err := s.acc.Revoke(t.Context(), owner, list[0].ID); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(testInterval)
	if resp := alice.decide(a, "approve"); resp.StatusCode != 200 {
		t.Fatalf("approve after a revoke: %d\n%s", resp.StatusCode, alice.body)
	}
	// The cap is reached again before the terminal polls: denied, with
	// the reason.
	if _, err := s.acc.Mint(t.Context(), accounts.MintRequest{Owner: owner, Name: "late", Via: store.CreatedByAPI, IgnoreLimit: true}); err != nil {
		t.Fatal(err)
	}
	got := s.poll(a.str("device_code"))
	if got.status != http.StatusBadRequest || got.str("error") != "access_denied" || !strings.Contains(got.str("error_description"), "live app passwords") {
		t.Fatalf("poll at the cap: %d %s", got.status, got.raw)
	}
	if n := len(s.passwordsOf("alice")); n != maxLive {
		t.Fatalf("alice has %d passwords, want %d", n, maxLive)
	}
}

// failingPasswords is a memory store whose CreatePassword fails while
// fail is set.
type failingPasswords struct {
	*memory.Store
	fail atomic.Bool
}

func (f *failingPasswords) CreatePassword(ctx context.Context, p store.Password) error {
	if f.fail.Load() {
		return errors.New("injected store failure")
	}
	return f.Store.CreatePassword(ctx, p)
}

// A mint that fails for a passing reason (here the store) at redemption
// does not spend the code: the terminal keeps polling, and the next poll
// gets the password.
func TestDeviceRedeemRetriesAfterStoreFailure(t *testing.T) {
	var st *failingPasswords
	s := newSiteOn(t, func(now func() time.Time) store.Store {
		mem := memory.New(now)
		t.Cleanup(func() { mem.Close() })
		st = &failingPasswords{Store: mem}
		return st
	})
	alice := s.browser()
	alice.login("alice", "alice-pw")
	a := s.startDevice("192.0.2.1:1", deviceForm("laptop"))
	if resp := alice.decide(a, "approve"); resp.StatusCode != 200 {
		t.Fatalf("approve: %d", resp.StatusCode)
	}
	st.fail.Store(true)
	s.wantPollError(a.str("device_code"), "authorization_pending")
	s.clock.Advance(testInterval)
	s.wantPollError(a.str("device_code"), "authorization_pending")
	st.fail.Store(false)
	s.clock.Advance(testInterval)
	got := s.poll(a.str("device_code"))
	if got.status != http.StatusOK || got.str("access_token") == "" || got.str("username") != "alice" {
		t.Fatalf("poll after the store recovered: %d %s", got.status, got.raw)
	}
	s.clock.Advance(testInterval)
	s.wantPollError(a.str("device_code"), "invalid_grant")
}

// aliceSubject returns alice's subject at the provider.
func (s *site) aliceSubject(t *testing.T) string {
	t.Helper()
	u, err := s.st.GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	return u.Subject
}

func FuzzNormalUserCode(f *testing.F) {
	for _, s := range []string{"BCDF-GHJK", "bcdf ghjk", "", "BCDF–GHJK", strings.Repeat("-", 30)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, ok := normalUserCode(s)
		if !ok {
			return
		}
		if len(code) != userCodeLength || strings.Trim(code, userCodeAlphabet) != "" {
			t.Fatalf("normalUserCode(%q) = %q", s, code)
		}
		if again, ok := normalUserCode(formatUserCode(code)); !ok || again != code {
			t.Fatalf("the formatted code %q does not read back", formatUserCode(code))
		}
	})
}

// Without the browser login there is no device login: the grant is
// unsupported, the routes are absent and the metadata does not offer it.
func TestNoDeviceLoginWithoutBrowserLogin(t *testing.T) {
	f := newFixture(t)
	w := f.post(url.Values{"grant_type": {grantDeviceCode}, "device_code": {"x"}, "client_id": {DeviceClientID}})
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "unsupported_grant_type") {
		t.Fatalf("device grant: %d %s", w.Code, w.Body)
	}
	for _, path := range []string{"/device/code", "/revoke"} {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader("client_id="+DeviceClientID))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, r)
		if rec.Code != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", path, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-authorization-server", nil))
	var m metadata
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != 200 {
		t.Fatalf("metadata: %d %s", rec.Code, rec.Body)
	}
	if m.DeviceAuthorizationEndpoint != "" || m.RevocationEndpoint != "" || m.TokenEndpoint != "http://bridge.test/token" ||
		strings.Contains(strings.Join(m.GrantTypesSupported, " "), grantDeviceCode) {
		t.Fatalf("metadata without the device login: %s", rec.Body)
	}
}

// TestDeviceLoginComesBack: a person who opens the terminal's link while
// signed out logs in and lands on the same code's approval; nothing the
// request names can send the login anywhere else.
func TestDeviceLoginComesBack(t *testing.T) {
	s := newSite(t)
	a := s.startDevice("127.0.0.1:40001", deviceForm("laptop"))
	b := s.browser()
	b.get(a.str("verification_uri_complete"))
	link := find(t, regexp.MustCompile(`id="login" href="([^"]+)"`), b.body)
	link = html.UnescapeString(link)
	code, _ := normalUserCode(a.str("user_code"))
	if link != "/login?next=device&user_code="+code {
		t.Fatalf("login link on the device page: %q", link)
	}
	b.startLoginAt(link)
	if resp := b.submitLogin("alice", "alice-pw"); resp.StatusCode != 200 || !strings.Contains(b.body, `id="device-approve"`) ||
		resp.Request.URL.Path != "/device" {
		t.Fatalf("after login: %d %s\n%s", resp.StatusCode, resp.Request.URL, b.body)
	}

	for _, next := range []string{
		"/login?next=https://evil.example/", "/login?next=//evil.example", "/login?next=device&user_code=https://evil.example",
		"/login?next=/device%0d%0aLocation:%20https://evil.example",
	} {
		b := s.browser()
		b.startLoginAt(next)
		if resp := b.submitLogin("alice", "alice-pw"); resp.StatusCode != 200 || resp.Request.URL.Host != mustURL(t, s.base).Host ||
			(resp.Request.URL.Path != "/" && resp.Request.URL.Path != "/device") || resp.Request.URL.Query().Get("user_code") != "" {
			t.Errorf("%s: landed on %s", next, resp.Request.URL)
		}
	}
	// A forged return cookie is checked again at the callback.
	b2 := s.browser()
	b2.startLoginAt("/login")
	base := mustURL(t, s.base)
	b2.c.Jar.SetCookies(base, []*http.Cookie{{Name: nextCookie, Value: "https://evil.example/device", Path: "/"}})
	if resp := b2.submitLogin("alice", "alice-pw"); resp.Request.URL.Host != base.Host || (resp.Request.URL.Path != "/" && resp.Request.URL.Path != "/device") {
		t.Errorf("forged return cookie: landed on %s", resp.Request.URL)
	}
}
