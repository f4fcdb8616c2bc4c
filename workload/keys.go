package workload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Bounds on the issuer's answers and on how often it is asked.
const (
	maxDocumentBytes = 1 << 20
	// minKeyRefetch is the least time between two fetches of an issuer's
	// keys: a token with an unknown kid triggers one at most this often,
	// so random kids cannot turn us into a load generator against the
	// issuer, nor stall us.
	minKeyRefetch = 30 * time.Second
	// keysMaxAge is when known keys are re-read anyway (rotation removes
	// old keys); a failed re-read keeps the old ones.
	keysMaxAge = time.Hour
	// discoveryRetry is how long after a failed discovery the next try
	// waits; until then tokens of that issuer fail at once.
	discoveryRetry = 10 * time.Second
)

// ErrUnavailable: the issuer's discovery document or keys cannot be read.
var ErrUnavailable = errors.New("issuer unavailable")

// errUnknownKey: no key of the issuer has the token's kid (after a
// refetch, or within minKeyRefetch of the last one).
var errUnknownKey = errors.New("no key of the issuer has this kid")

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := readFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// newClient returns the HTTP client of one issuer: its CA if set, and a
// timeout on every request.
func newClient(base *http.Client, caFile string, timeout time.Duration) (*http.Client, error) {
	if base == nil {
		base = http.DefaultClient
	}
	c := *base
	c.Timeout = timeout
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		tr, _ := http.DefaultTransport.(*http.Transport)
		tr = tr.Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		c.Transport = tr
	}
	return &c, nil
}

// getJSON reads a bounded JSON document.
func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	switch {
	case err != nil:
		return fmt.Errorf("read %s: %w", url, err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("get %s: %s", url, resp.Status)
	case len(body) > maxDocumentBytes:
		return fmt.Errorf("get %s: larger than %d bytes", url, maxDocumentBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	return nil
}

// keySet is one issuer's signing keys: an oidc.KeySet whose refetches on
// an unknown kid are rate-limited (go-oidc's RemoteKeySet refetches on
// every miss, coalescing only concurrent ones).
type keySet struct {
	client  *http.Client
	algs    []jose.SignatureAlgorithm
	now     func() time.Time
	timeout time.Duration

	mu       sync.Mutex
	url      string // jwks_uri; "" until discovery
	keys     []jose.JSONWebKey
	fetched  time.Time     // last successful fetch
	tried    time.Time     // last attempt
	inflight chan struct{} // closed when the running fetch ends
	lastErr  error
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, k.algs)
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	h := jws.Signatures[0].Header
	keys, due := k.candidates(h.KeyID, h.Algorithm)
	if due {
		// An unknown kid, or keys due for a re-read (a key the issuer
		// removed must stop counting): fetch, at a bounded rate. A failed
		// re-read keeps the keys we have.
		if err := k.refresh(ctx, len(keys) == 0); err != nil && len(keys) == 0 {
			return nil, err
		}
		keys, _ = k.candidates(h.KeyID, h.Algorithm)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w %q", errUnknownKey, truncate(h.KeyID, 64))
	}
	for _, key := range keys {
		if payload, err := jws.Verify(key); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("the signature does not verify with the issuer's key")
}

// candidates returns the keys that may have signed with kid and alg, and
// whether a refetch is due (none found, or the keys are older than
// keysMaxAge).
func (k *keySet) candidates(kid, alg string) ([]jose.JSONWebKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []jose.JSONWebKey
	for _, key := range k.keys {
		if (kid != "" && key.KeyID != kid) || (key.Use != "" && key.Use != "sig") || (key.Algorithm != "" && key.Algorithm != alg) {
			continue
		}
		out = append(out, key)
	}
	return out, len(out) == 0 || k.now().Sub(k.fetched) > keysMaxAge
}

// refresh fetches the keys unless the last attempt was within
// minKeyRefetch; concurrent callers share one fetch. missing says the
// caller has no key at all (then the rate limit is an error).
func (k *keySet) refresh(ctx context.Context, missing bool) error {
	k.mu.Lock()
	if ch := k.inflight; ch != nil {
		k.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.lastErr
	}
	if !k.tried.IsZero() && k.now().Sub(k.tried) < minKeyRefetch {
		err := k.lastErr
		k.mu.Unlock()
		if err == nil && missing {
			return nil // VerifySignature reports the unknown kid
		}
		return err
	}
	ch := make(chan struct{})
	k.inflight, k.tried = ch, k.now()
	url := k.url
	k.mu.Unlock()

	// The fetch is the issuer's, not this request's: it outlives a
	// client that goes away, within its own timeout.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.timeout)
	var set jose.JSONWebKeySet
	err := getJSON(fctx, k.client, url, &set)
	cancel()
	var keys []jose.JSONWebKey
	for _, key := range set.Keys {
		if key.Valid() && key.IsPublic() {
			keys = append(keys, key)
		}
	}
	if err == nil && len(keys) == 0 {
		err = errors.New("the key set has no public keys")
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	k.inflight = nil
	close(ch)
	if err != nil {
		k.lastErr = fmt.Errorf("%w: keys: %v", ErrUnavailable, err)
		return k.lastErr
	}
	k.keys, k.fetched, k.lastErr = keys, k.now(), nil
	return nil
}

// discovery is the part of the discovery document we use.
type discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

func discoveryURL(is *IssuerConfig) string {
	if is.DiscoveryURL != "" {
		return is.DiscoveryURL
	}
	return strings.TrimSuffix(is.URL, "/") + "/.well-known/openid-configuration"
}
