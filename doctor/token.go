package doctor

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/registry-bridge/bridge/scope"
	"github.com/registry-bridge/bridge/tokens"
)

// The probe's harmless scope: a repository nobody pushes, read only.
const (
	probeRepo = "doctor-probe/never"
	probeTag  = "doctor"
)

// presentation is how a token names its key: with or without the
// certificate chain (x5c), and the kid form.
type presentation struct {
	x5c       bool
	kidFormat string
}

func (p presentation) String() string {
	if p.x5c {
		return fmt.Sprintf("x5c + kid %s", p.kidFormat)
	}
	return "kid " + p.kidFormat + " without x5c"
}

// variant is one probe token's settings.
type variant struct {
	presentation
	audience string
}

// registryKind is what an unparseable Authorization tells about the
// registry: distribution v3 answers error="invalid_token", 2.8 (which
// splits the header on spaces) no error at all.
type registryKind int

const (
	kindUnknown registryKind = iota
	kindV3
	kind28
)

func otherKidFormat(f string) string {
	if f == tokens.KeyIDLibtrust {
		return tokens.KeyIDThumbprint
	}
	return tokens.KeyIDLibtrust
}

// mint signs a probe token for v granting pull on the probe repository.
func (d *doctor) mint(v variant) (string, error) {
	cert := ""
	if v.x5c {
		cert = d.o.Token.CertificateFile
	}
	key, err := tokens.LoadSigningKey(d.o.Token.SigningKeyFile, cert, v.kidFormat)
	if err != nil {
		return "", err
	}
	iss, err := tokens.NewIssuer(tokens.Options{Issuer: d.o.Token.Issuer, Service: v.audience, Lifetime: tokens.MinLifetime, Key: key, Now: d.o.Now})
	if err != nil {
		return "", err
	}
	tok, err := iss.Issue("doctor", []scope.Scope{{Type: scope.TypeRepository, Name: probeRepo, Actions: []string{scope.ActionPull}}})
	if err != nil {
		return "", err
	}
	return tok.Raw, nil
}

// probeResult is how the registry answered a token on /v2/.
type probeResult struct {
	status int
	err    string // the challenge's error parameter
}

func (d *doctor) probe(ctx context.Context, method, path, authorization string) (probeResult, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.o.Registry+path, nil)
	if err != nil {
		return probeResult{}, err
	}
	req.Header.Set("Authorization", authorization)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, _, err := d.do(req)
	if err != nil {
		return probeResult{}, err
	}
	c, _ := bearerChallenge(resp)
	return probeResult{status: resp.StatusCode, err: c.Error}, nil
}

// tamper flips a bit of a compact JWS's signature.
func tamper(raw string) string {
	i := strings.LastIndexByte(raw, '.')
	sig, err := base64.RawURLEncoding.DecodeString(raw[i+1:])
	if err != nil || len(sig) == 0 {
		return raw + "x"
	}
	sig[len(sig)/2] ^= 0x01
	return raw[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// kind tells distribution v3 from 2.8 by an Authorization header of three
// words.
func (d *doctor) kind(ctx context.Context) registryKind {
	res, err := d.probe(ctx, http.MethodGet, "/v2/", "Bearer doctor probe")
	switch {
	case err != nil || res.status != http.StatusUnauthorized:
		return kindUnknown
	case res.err == "invalid_token":
		return kindV3
	case res.err == "":
		return kind28
	}
	return kindUnknown
}

// checkToken is check 2: a token minted with the configured key must open
// /v2/ and a manifest HEAD on the probe repository. When it does not,
// variants tell why.
func (d *doctor) checkToken(ctx context.Context, r *Report, ch *challenge) {
	const name = "registry.token"
	if ch == nil {
		r.add(Result{Check: name, Status: StatusWarn, Message: "skipped: the registry sent no Bearer challenge (see registry.challenge)"})
		return
	}
	configured := variant{presentation{d.o.Token.CertificateFile != "", d.o.Token.KeyIDFormat}, d.o.Token.Service}
	raw, err := d.mint(configured)
	if err != nil {
		r.add(Result{Check: name, Status: StatusFail, Message: fmt.Sprintf("cannot mint a token: %v", err),
			Fixes: []Fix{{SideBridge, "token.signing_key_file", "point at a readable PEM key (`bridge keys generate` writes one)"}}})
		return
	}
	res, err := d.probe(ctx, http.MethodGet, "/v2/", "Bearer "+raw)
	if err != nil {
		r.add(Result{Check: name, Status: StatusFail, Message: fmt.Sprintf("registry unreachable: %v", err)})
		return
	}
	if res.status == http.StatusOK {
		d.checkRepository(ctx, r, raw, configured)
		return
	}
	if res.status != http.StatusUnauthorized {
		r.add(Result{Check: name, Status: StatusFail, Message: fmt.Sprintf("GET /v2/ with a token answered %d, want 200", res.status)})
		return
	}

	// Rejected: which variant does the registry accept?
	audiences := []string{d.o.Token.Service}
	if ch.Service != "" && ch.Service != d.o.Token.Service {
		audiences = append(audiences, ch.Service)
	}
	var pres []presentation
	for _, x5c := range []bool{configured.x5c, !configured.x5c} {
		if x5c && d.o.Token.CertificateFile == "" {
			continue
		}
		for _, f := range []string{configured.kidFormat, otherKidFormat(configured.kidFormat)} {
			pres = append(pres, presentation{x5c, f})
		}
	}
	for _, aud := range audiences {
		for _, p := range pres {
			v := variant{p, aud}
			if v == configured {
				continue
			}
			raw, err := d.mint(v)
			if err != nil {
				continue
			}
			if res, err := d.probe(ctx, http.MethodGet, "/v2/", "Bearer "+raw); err == nil && res.status == http.StatusOK {
				r.add(d.explainVariant(name, configured, v))
				return
			}
		}
	}

	// No variant works: the key is not trusted, or the issuer differs.
	aud := audiences[len(audiences)-1]
	kind := d.kind(ctx)
	keyFixes := []Fix{
		{SideRegistry, "auth.token.rootcertbundle", d.bundleChange()},
		{SideRegistry, "auth.token.jwks", "(distribution v3) list the output of `bridge keys jwks --config FILE`"},
		{SideBridge, "token.signing_key_file", "point at the key whose certificate the registry trusts"},
	}
	issuerFixes := []Fix{
		{SideRegistry, "auth.token.issuer", fmt.Sprintf("set to %q", d.o.Token.Issuer)},
		{SideBridge, "token.issuer", "set to the registry's auth.token.issuer"},
	}
	if kind != kindV3 {
		what := "a registry that is not distribution v3 (distribution 2.8 answers every rejection alike)"
		if kind == kind28 {
			what = "distribution 2.8, which answers every rejection alike"
		}
		r.add(Result{Check: name, Status: StatusFail,
			Message: fmt.Sprintf("the registry rejects tokens signed with token.signing_key_file in every form (x5c or not, kid thumbprint or libtrust): either its auth.token.issuer is not %q, or it trusts another key. This is %s; its log says which (\"token from untrusted issuer\" or a key error), or pass --registry-config", d.o.Token.Issuer, what),
			Fixes:   append(issuerFixes, keyFixes...)})
		return
	}
	// distribution v3 looks the key up before it checks the signature and
	// the claims: a token whose signature is broken fails without
	// error="invalid_token" only when its key is trusted.
	for _, p := range pres {
		raw, err := d.mint(variant{p, aud})
		if err != nil {
			continue
		}
		res, err := d.probe(ctx, http.MethodGet, "/v2/", "Bearer "+tamper(raw))
		if err != nil || res.status != http.StatusUnauthorized || res.err != "" {
			continue
		}
		msg := fmt.Sprintf("the registry trusts the signing key (as %s) but rejects the token's claims: its auth.token.issuer is not %q", p, d.o.Token.Issuer)
		if p != configured.presentation {
			msg += fmt.Sprintf("; it also finds the key only as %s, not as the configured %s (see docs/registries.md)", p, configured.presentation)
			issuerFixes = append(issuerFixes, d.presentationFixes(configured.presentation, p)...)
		}
		r.add(Result{Check: name, Status: StatusFail, Message: msg, Fixes: issuerFixes})
		return
	}
	r.add(Result{Check: name, Status: StatusFail,
		Message: "the registry (distribution v3) does not trust the signing key in any form (x5c or not, kid thumbprint or libtrust): its auth.token.rootcertbundle and auth.token.jwks hold other keys",
		Fixes:   keyFixes})
}

func (d *doctor) bundleChange() string {
	if d.o.Token.CertificateFile != "" {
		return fmt.Sprintf("include the certificate %s (token.certificate_file)", d.o.Token.CertificateFile)
	}
	return "include the certificate of token.signing_key_file (`bridge keys generate` writes it as signing.crt)"
}

// explainVariant turns the variant the registry accepted into a Result.
func (d *doctor) explainVariant(name string, configured, v variant) Result {
	var msgs []string
	var fixes []Fix
	if v.audience != configured.audience {
		msgs = append(msgs, fmt.Sprintf("the registry accepts tokens only for audience %q, not token.service %q", v.audience, configured.audience))
		fixes = append(fixes,
			Fix{SideBridge, "token.service", fmt.Sprintf("set to %q", v.audience)},
			Fix{SideRegistry, "auth.token.service", fmt.Sprintf("set to %q", configured.audience)})
	}
	if v.presentation != configured.presentation {
		msgs = append(msgs, fmt.Sprintf("the registry rejects the key as the bridge presents it (%s) but accepts it as %s", configured.presentation, v.presentation))
		fixes = append(fixes, d.presentationFixes(configured.presentation, v.presentation)...)
	}
	return Result{Check: name, Status: StatusFail, Message: strings.Join(msgs, "; "), Fixes: fixes}
}

// presentationFixes names the keys that turn presentation from into to.
func (d *doctor) presentationFixes(from, to presentation) []Fix {
	var fixes []Fix
	if from.x5c && !to.x5c {
		fixes = append(fixes,
			Fix{SideBridge, "token.certificate_file", "remove it: the registry does not verify the certificate chain (distribution v3 with auth.token.jwks rejects every token carrying x5c unless the chain's root is in auth.token.rootcertbundle)"},
			Fix{SideRegistry, "auth.token.rootcertbundle", fmt.Sprintf("include the certificate %s", d.o.Token.CertificateFile)})
	}
	if !from.x5c && to.x5c {
		fixes = append(fixes, Fix{SideBridge, "token.certificate_file", fmt.Sprintf("keep it set: tokens must carry x5c (%s)", d.o.Token.CertificateFile)})
	}
	if from.kidFormat != to.kidFormat && !(from.x5c && to.x5c) {
		why := "distribution 2.8 looks up rootcertbundle keys by their libtrust kid"
		if to.kidFormat == tokens.KeyIDThumbprint {
			why = "distribution v3 looks up rootcertbundle keys by their JWK thumbprint"
		}
		fixes = append(fixes, Fix{SideBridge, "token.kid_format", fmt.Sprintf("set to %s (%s)", to.kidFormat, why)})
	}
	if from.x5c && to.x5c && from.kidFormat != to.kidFormat {
		fixes = append(fixes, Fix{SideBridge, "token.kid_format", "set to " + to.kidFormat})
	}
	return fixes
}

// checkRepository follows an accepted /v2/ with a manifest HEAD on the
// probe repository: the registry must honour the token's access claim.
func (d *doctor) checkRepository(ctx context.Context, r *Report, raw string, v variant) {
	const name = "registry.token"
	res, err := d.probe(ctx, http.MethodHead, "/v2/"+probeRepo+"/manifests/"+probeTag, "Bearer "+raw)
	switch {
	case err != nil:
		r.add(Result{Check: name, Status: StatusFail, Message: fmt.Sprintf("registry unreachable: %v", err)})
	case res.status == http.StatusNotFound || res.status == http.StatusOK:
		r.add(Result{Check: name, Status: StatusOK,
			Message: fmt.Sprintf("the registry accepts the bridge's tokens (%s, iss %q, aud %q) on /v2/ and on %s", v.presentation, d.o.Token.Issuer, v.audience, probeRepo)})
	case res.status == http.StatusUnauthorized:
		r.add(Result{Check: name, Status: StatusFail,
			Message: fmt.Sprintf("the registry accepts the token on /v2/ but refuses pull on %s (error=%q): it does not read the token's access claim", probeRepo, res.err)})
	default:
		r.add(Result{Check: name, Status: StatusWarn,
			Message: fmt.Sprintf("the registry accepts the token on /v2/; HEAD of a manifest in %s answered %d", probeRepo, res.status)})
	}
}
