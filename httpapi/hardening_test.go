package httpapi

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/accounts"
)

// repeat is an io.Reader of n bytes of c, produced as they are read.
func repeat(c byte, n int64) io.Reader { return io.LimitReader(byteReader(c), n) }

type byteReader byte

func (b byteReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// TestBodiesAreBoundedBeforeReading: whatever carries the CSRF token, a
// page or API body is bounded before it is parsed, multipart is refused
// (nothing spooled to disk), a too-large body gets 413, and nothing is
// minted.
func TestBodiesAreBoundedBeforeReading(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where net/http would spool multipart files
	s := newSite(t)
	b := s.browser()
	b.login("alice", "alice-pw")
	csrf := b.csrf()

	send := func(contentType string, body io.Reader) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.base+"/passwords", body)
		req.Header.Set("Content-Type", contentType)
		req.Header.Set(csrfHeader, csrf)
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp, string(out)
	}

	// A multipart upload with a 20 MB file part.
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	_ = w.WriteField("name", "big")
	fw, _ := w.CreateFormFile("file", "big.bin")
	_, _ = io.Copy(fw, repeat('x', 20<<20))
	_ = w.Close()
	if resp, body := send(w.FormDataContentType(), &mp); resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(body, "x-www-form-urlencoded") {
		t.Errorf("multipart: %d %s", resp.StatusCode, body)
	}
	// A 40 MB urlencoded form.
	big := io.MultiReader(strings.NewReader("name=big&lifetime=24h&pad="), repeat('a', 40<<20))
	if resp, body := send("application/x-www-form-urlencoded", big); resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "larger than") {
		t.Errorf("40 MB form: %d %.200s", resp.StatusCode, body)
	}
	// A JSON body past the API's bound.
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/passwords",
		io.MultiReader(strings.NewReader(`{"name":"`), repeat('a', 1<<20), strings.NewReader(`"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(csrfHeader, csrf)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("1 MB JSON: %d", resp.StatusCode)
	}

	if list, _ := s.st.ListPasswords(t.Context(), "alice"); len(list) != 0 {
		t.Errorf("%d passwords minted by refused requests", len(list))
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("files left in the temp directory: %v", entries)
	}
	// An ordinary form still works.
	if pw := b.mint("small", false); !strings.HasPrefix(pw, "rbp_") {
		t.Fatalf("ordinary mint: %q", pw)
	}
}

// TestLiveCapOnThePageAndAPI: past passwords.max_per_user the page and
// the API refuse with 409 and say why; nothing is minted.
func TestLiveCapOnThePageAndAPI(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.login("alice", "alice-pw")
	for range maxLive {
		b.mint("p", false)
	}
	resp := b.postForm(s.base+"/passwords", url.Values{"csrf": {b.csrf()}, "name": {"one too many"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(b.body, "Revoke one") {
		t.Fatalf("page past the cap: %d\n%s", resp.StatusCode, b.body)
	}
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/passwords", strings.NewReader(`{"name":"api"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(csrfHeader, b.csrf())
	if resp := b.do(req); resp.StatusCode != http.StatusConflict || !strings.Contains(b.body, "too_many_passwords") {
		t.Fatalf("API past the cap: %d %s", resp.StatusCode, b.body)
	}
	if list, _ := s.st.ListPasswords(t.Context(), "alice"); len(list) != maxLive {
		t.Fatalf("%d passwords, want %d", len(list), maxLive)
	}
}

func TestRateLimitAnswer(t *testing.T) {
	e := accountError(fmt.Errorf("wrapped: %w", &accounts.RateLimitError{RetryAfter: 90 * time.Second}))
	if e.status != http.StatusTooManyRequests || e.header.Get("Retry-After") != "90" || !strings.Contains(e.public, "1m30s") {
		t.Fatalf("answer: %+v", e)
	}
	if !errors.Is(e, accounts.ErrRateLimited) {
		t.Fatal("cause lost")
	}
}

// TestAuditEventIsBounded: client-chosen values are cut in the audit
// event, however long the request made them.
func TestAuditEventIsBounded(t *testing.T) {
	f := newFixture(t)
	pw, _ := f.mint("bot", []string{"team-a"}, false)
	q := url.Values{"service": {testService}, "client_id": {strings.Repeat("c", 3000)}}
	for i := range 30 {
		q.Add("scope", fmt.Sprintf("repository:team-a/%s%d:pull", strings.Repeat("r", 100), i))
	}
	r, _ := http.NewRequest(http.MethodGet, "/token?"+q.Encode(), nil)
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("bot:"+pw)))
	r.Header.Set("User-Agent", strings.Repeat("u", 7000))
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	ev := f.lastLog()
	for key, limit := range map[string]int{"client_id": maxLoggedValue, "user_agent": maxLoggedValue, "requested": maxLoggedScopes} {
		v, _ := ev[key].(string)
		if v == "" || len(v) > limit+len("…") {
			t.Errorf("%s: %d bytes, want 1..%d", key, len(v), limit)
		}
	}
}

// TestRefusalsAreExplained: a push the policy refuses is logged as
// refused with the reason, not as granted; a read-only password's push
// says read-only; partial grants are "partial"; metrics count by reason.
func TestRefusalsAreExplained(t *testing.T) {
	f := newFixture(t)
	pw, _ := f.mint("bot", []string{"team-a"}, false)
	ro, _ := f.mint("reader", []string{"team-a"}, true)
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }

	f.get("service="+testService+"&scope=repository:team-b/app:push,pull", basic("bot", pw))
	ev := f.lastLog()
	if ev["outcome"] != "refused" || ev["reason"] != "policy" || !strings.Contains(fmt.Sprint(ev["denied"]), "no rule matches repository team-b/app") {
		t.Errorf("refused push: %v", ev)
	}
	f.get("service="+testService+"&scope=repository:team-a/app:push,pull", basic("reader", ro))
	ev = f.lastLog()
	if ev["outcome"] != "partial" || ev["reason"] != "read_only" || !strings.Contains(fmt.Sprint(ev["denied"]), "read-only") {
		t.Errorf("read-only push: %v", ev)
	}
	f.get("service="+testService+"&scope=repository:team-a/app:push,pull", basic("bot", pw))
	if ev = f.lastLog(); ev["outcome"] != "granted" || ev["denied"] != nil || ev["reason"] != nil {
		t.Errorf("granted push: %v", ev)
	}
	// Errors carry the explanation the client saw.
	f.get("service=other&scope=repository:team-a/app:pull", basic("bot", pw))
	if ev = f.lastLog(); ev["reason"] != "wrong_service" || !strings.Contains(fmt.Sprint(ev["error"]), "auth.token.service") {
		t.Errorf("wrong service: %v", ev)
	}
	// Refusals whose handler names no reason of its own get one from
	// their status.
	f.get("service="+testService, basic("bot", "wrong"))
	f.get("service="+testService+"&scope=nonsense", basic("bot", pw))
	if ev = f.lastLog(); ev["reason"] != "bad_request" {
		t.Errorf("malformed scope: %v", ev)
	}
	r, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
	mw := httptest.NewRecorder()
	f.srv.ServeHTTP(mw, r)
	for _, want := range []string{`bridge_token_denials_total{reason="policy"} 1`, `bridge_token_denials_total{reason="read_only"} 1`, `bridge_token_denials_total{reason="wrong_service"} 1`,
		`bridge_token_denials_total{reason="credentials"} 1`, `bridge_token_denials_total{reason="bad_request"} 1`} {
		if !strings.Contains(mw.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestPastedPasswords: white space around a pasted password is forgiven;
// an identity provider password gets a hint.
func TestPastedPasswords(t *testing.T) {
	f := newFixture(t)
	pw, _ := f.mint("bot", []string{"team-a"}, false)
	for _, p := range []string{pw + "\n", pw + "\r\n", " " + pw + " "} {
		if w := f.get("service="+testService, "Basic "+base64.StdEncoding.EncodeToString([]byte("bot:"+p))); w.Code != 200 {
			t.Errorf("%q: %d %s", p, w.Code, w.Body)
		}
	}
	w := f.get("service="+testService, "Basic "+base64.StdEncoding.EncodeToString([]byte("bot:hunter2")))
	if w.Code != 401 || !strings.Contains(w.Body.String(), "not your single sign-on password") {
		t.Errorf("IdP password: %d %s", w.Code, w.Body)
	}
	// A wrong app password gets the one plain answer.
	last := byte('a')
	if pw[len(pw)-1] == 'a' {
		last = 'b'
	}
	w = f.get("service="+testService, "Basic "+base64.StdEncoding.EncodeToString([]byte("bot:"+pw[:len(pw)-1]+string(last))))
	if w.Code != 401 || strings.Contains(w.Body.String(), "single sign-on") {
		t.Errorf("wrong secret: %d %s", w.Code, w.Body)
	}
}
