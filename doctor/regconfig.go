package doctor

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/registry-bridge/bridge/tokens"
	"go.yaml.in/yaml/v3"
)

// registryConfig is the part of a distribution config.yml doctor compares.
type registryConfig struct {
	Auth struct {
		Token *struct {
			Realm          string `yaml:"realm"`
			Service        string `yaml:"service"`
			Issuer         string `yaml:"issuer"`
			RootCertBundle string `yaml:"rootcertbundle"`
			JWKS           string `yaml:"jwks"`
		} `yaml:"token"`
	} `yaml:"auth"`
}

// checkRegistryConfig compares the registry's config.yml with the bridge's
// settings key by key. It sees the file only, not REGISTRY_AUTH_TOKEN_*
// environment overrides.
func (d *doctor) checkRegistryConfig(r *Report) {
	const name = "registry.config"
	path := d.o.RegistryConfig
	data, err := os.ReadFile(path)
	if err != nil {
		r.add(Result{Check: name, Status: StatusFail, Message: fmt.Sprintf("read --registry-config: %v", err)})
		return
	}
	var rc registryConfig
	if err := yaml.Unmarshal(data, &rc); err != nil {
		r.add(Result{Check: name, Status: StatusFail, Message: fmt.Sprintf("%s: %v", path, err)})
		return
	}
	t := rc.Auth.Token
	if t == nil {
		r.add(Result{Check: name, Status: StatusFail, Message: path + " has no auth.token section",
			Fixes: []Fix{{SideRegistry, "auth.token", "add it (docs/registries.md has a complete config.yml)"}}})
		return
	}
	var msgs []string
	var fixes []Fix
	differ := func(key, theirs, bridgeKey, ours string) {
		if theirs == ours {
			return
		}
		msgs = append(msgs, fmt.Sprintf("%s is %q, the bridge's %s gives %q", key, theirs, bridgeKey, ours))
		fixes = append(fixes, Fix{SideRegistry, key, fmt.Sprintf("set to %q", ours)})
	}
	differ("auth.token.realm", t.Realm, "public_url", d.o.PublicURL+"/token")
	differ("auth.token.service", t.Service, "token.service", d.o.Token.Service)
	differ("auth.token.issuer", t.Issuer, "token.issuer", d.o.Token.Issuer)
	if t.Issuer != d.o.Token.Issuer {
		fixes = append(fixes, Fix{SideBridge, "token.issuer", fmt.Sprintf("set to %q", t.Issuer)})
	}

	if m, f := d.compareKeys(filepath.Dir(path), t.RootCertBundle, t.JWKS); m != "" {
		msgs = append(msgs, m)
		fixes = append(fixes, f...)
	}
	if len(msgs) == 0 {
		r.add(Result{Check: name, Status: StatusOK, Message: fmt.Sprintf("%s: realm, service, issuer and keys agree with the bridge", path)})
		return
	}
	r.add(Result{Check: name, Status: StatusFail, Message: path + ": " + strings.Join(msgs, "; "), Fixes: fixes})
}

// compareKeys checks that the registry's rootcertbundle or jwks trusts the
// bridge's signing key as the bridge presents it. Relative paths are read
// against dir.
func (d *doctor) compareKeys(dir, bundle, jwks string) (string, []Fix) {
	resolve := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	key, err := tokens.LoadSigningKey(d.o.Token.SigningKeyFile, d.o.Token.CertificateFile, d.o.Token.KeyIDFormat)
	if err != nil {
		return fmt.Sprintf("cannot read the bridge's key: %v", err), nil
	}
	ours, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Sprintf("cannot encode the bridge's key: %v", err), nil
	}
	var certs []*x509.Certificate
	if bundle != "" {
		data, err := os.ReadFile(resolve(bundle))
		if err != nil {
			return fmt.Sprintf("cannot read auth.token.rootcertbundle: %v", err), nil
		}
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			if c, err := x509.ParseCertificate(block.Bytes); err == nil && block.Type == "CERTIFICATE" {
				certs = append(certs, c)
			}
		}
	}
	inBundle := false
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
		if der, err := x509.MarshalPKIXPublicKey(c.PublicKey); err == nil && bytes.Equal(der, ours) {
			inBundle = true
		}
	}
	chainOK := false
	if chain := key.Certificates(); len(chain) > 0 && len(certs) > 0 {
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		_, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		chainOK = err == nil
	}
	inJWKS := false
	if jwks != "" {
		data, err := os.ReadFile(resolve(jwks))
		if err != nil {
			return fmt.Sprintf("cannot read auth.token.jwks: %v", err), nil
		}
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		if err := json.Unmarshal(data, &set); err != nil {
			return fmt.Sprintf("auth.token.jwks: %v", err), nil
		}
		for _, k := range set.Keys {
			inJWKS = inJWKS || k.Kid == key.KeyID()
		}
	}
	x5c := len(key.Certificates()) > 0
	switch {
	case x5c && chainOK, !x5c && (inBundle || inJWKS):
		return "", nil
	case x5c && (inBundle || inJWKS) && jwks != "" && !chainOK:
		return "tokens carry x5c (token.certificate_file), whose chain auth.token.rootcertbundle does not verify, and distribution never falls back to the kid", []Fix{
			{SideBridge, "token.certificate_file", "remove it, so that tokens name their key by kid (found in auth.token.jwks)"},
			{SideRegistry, "auth.token.rootcertbundle", fmt.Sprintf("include the certificate %s", d.o.Token.CertificateFile)},
		}
	}
	return "neither auth.token.rootcertbundle nor auth.token.jwks trusts token.signing_key_file's key", []Fix{
		{SideRegistry, "auth.token.rootcertbundle", d.bundleChange()},
		{SideBridge, "token.signing_key_file", "point at the key whose certificate the registry trusts"},
	}
}
