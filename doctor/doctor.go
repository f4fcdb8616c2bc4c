package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/registry-bridge/bridge/oidc"
	"github.com/registry-bridge/bridge/tokens"
)

// Status is a check's outcome.
type Status string

// The outcomes: only StatusFail makes a Report fail.
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// Sides of a Fix: which configuration holds the key.
const (
	SideRegistry = "registry" // the registry's config.yml
	SideBridge   = "bridge"   // the bridge's configuration file
	SideIdP      = "idp"      // the client's settings at the identity provider
)

// Fix is one change that would make a failing check pass. The fixes of a
// Result are alternatives unless its Message says otherwise.
type Fix struct {
	// Side is SideRegistry, SideBridge or SideIdP.
	Side string `json:"side"`
	// Key is the configuration key, e.g. "auth.token.service" or
	// "token.kid_format".
	Key string `json:"key"`
	// Change says what to do, e.g. `set to "registry.example.com"`.
	Change string `json:"change"`
}

// Result is the outcome of one check.
type Result struct {
	// Check names the check, e.g. "registry.challenge".
	Check   string `json:"check"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	Fixes   []Fix  `json:"fixes,omitempty"`
}

// Report is the outcome of every check, in the order they ran.
type Report struct {
	Registry string   `json:"registry"`
	OK       bool     `json:"ok"`
	Results  []Result `json:"checks"`
}

// Failed reports whether any check failed; warnings alone do not count.
func (r *Report) Failed() bool {
	for _, res := range r.Results {
		if res.Status == StatusFail {
			return true
		}
	}
	return false
}

func (r *Report) add(res Result) { r.Results = append(r.Results, res) }

// Options are what Run checks.
type Options struct {
	// Registry is the registry's base URL, e.g. "https://registry.example.com"
	// or "http://localhost:5000"; required.
	Registry string
	// PublicURL is the bridge's public_url; required.
	PublicURL string
	// Token is the bridge's token section, defaulted and validated: its
	// key files are read to mint probe tokens.
	Token tokens.Config
	// OIDC is the bridge's oidc section, nil when it has none.
	OIDC *oidc.Config
	// Store pings the shared store; nil means the embedded store.
	Store func(context.Context) error
	// RegistryConfig, optional, is the path of the registry's config.yml,
	// compared key by key with the bridge's settings.
	RegistryConfig string
	// Client makes every request; its Timeout must be set. It must not
	// follow redirects (Run checks where they point).
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// maxBody bounds every response body read.
const maxBody = 1 << 20

// Run performs every check and returns the report. It never fails as a
// whole: an unreachable component is a failing (or, for the bridge itself,
// a warning) check.
func Run(ctx context.Context, o Options) *Report {
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Registry = strings.TrimSuffix(o.Registry, "/")
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	r := &Report{Registry: o.Registry}
	d := &doctor{o: o}
	ch := d.checkChallenge(ctx, r)
	if o.RegistryConfig != "" {
		d.checkRegistryConfig(r)
	}
	d.checkToken(ctx, r, ch)
	if o.OIDC != nil {
		d.checkIdP(ctx, r)
	}
	d.checkStore(ctx, r)
	d.checkBridge(ctx, r)
	r.OK = !r.Failed()
	return r
}

type doctor struct {
	o Options
}

// get sends a request and returns the response with at most maxBody bytes
// of its body read.
func (d *doctor) do(req *http.Request) (*http.Response, []byte, error) {
	resp, err := d.o.Client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, fmt.Errorf("read response: %w", err)
	}
	return resp, body, nil
}

func (d *doctor) get(ctx context.Context, url string, header http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return d.do(req)
}

// WriteText writes the report for people: one line per check, then its
// fixes indented below it.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "bridge doctor: registry %s\n", r.Registry)
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%-4s %s: %s\n", strings.ToUpper(string(res.Status)), res.Check, res.Message)
		for i, f := range res.Fixes {
			lead := "fix:"
			if i > 0 {
				lead = " or:"
			}
			fmt.Fprintf(&b, "     %s %s %s: %s\n", lead, f.Side, f.Key, f.Change)
		}
	}
	if r.Failed() {
		b.WriteString("result: FAIL\n")
	} else {
		b.WriteString("result: ok\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// excerpt returns the start of a body for a message, on one line.
func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
