// Command bridge-credential-provider is a kubelet image credential
// provider plugin (credentialprovider.kubelet.k8s.io/v1): it lets pods
// pull from a registry behind the bridge with their own service-account
// token, with no pull secret. The kubelet (1.33+, service-account token
// mode) runs it for every image matching its matchImages, with the pod's
// token for the configured audience on stdin; it answers that token as the
// password, which the bridge verifies as a workload token of the cluster
// issuer (docs/workloads.md). With --registry it answers only for images
// of that registry, and never for an image without a registry (Docker
// Hub's), so that a broad matchImages cannot send the token elsewhere.
//
// Usage (by the kubelet, see docs/workloads.md for the
// CredentialProviderConfig):
//
//	bridge-credential-provider [--username k8s] [--registry HOST[:PORT]] < request.json > response.json
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
)

// apiVersion is the one version of the protocol this plugin speaks.
var apiVersion = credentialproviderv1.SchemeGroupVersion.String()

// Bounds.
const (
	maxRequestBytes = 1 << 20
	// expiryMargin is how long before the token's exp the kubelet stops
	// using a cached answer, so that a pull never starts with a token
	// about to expire. It is more than the bridge's 30s leeway.
	expiryMargin = 2 * time.Minute
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, time.Now); err != nil {
		fmt.Fprintln(os.Stderr, "bridge-credential-provider:", err)
		os.Exit(1)
	}
}

func run(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("bridge-credential-provider", flag.ContinueOnError)
	fs.SetOutput(stderr)
	username := fs.String("username", "k8s", "the username sent with the token (the bridge accepts any, unless the issuer sets basic_username)")
	registry := fs.String("registry", "", "the auth key of the answer (HOST[:PORT][/PATH]); default: the requested image's registry")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(stdin, maxRequestBytes+1))
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	if len(data) > maxRequestBytes {
		return fmt.Errorf("request larger than %d bytes", maxRequestBytes)
	}
	var req credentialproviderv1.CredentialProviderRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	if req.APIVersion != apiVersion || req.Kind != "CredentialProviderRequest" {
		return fmt.Errorf("want a %s CredentialProviderRequest, got apiVersion %q kind %q", apiVersion, req.APIVersion, req.Kind)
	}
	resp := credentialproviderv1.CredentialProviderResponse{
		TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: "CredentialProviderResponse"},
		// The token is the same for every image of the registry; the
		// kubelet keys its cache by service account as well when it sends
		// tokens (tokenAttributes), so one pod's token never serves another's.
		CacheKeyType: credentialproviderv1.RegistryPluginCacheKeyType,
	}
	if req.ServiceAccountToken == "" {
		// No token (tokenAttributes not set, or requireServiceAccount
		// false and a pod without one).
		return noCredentials(stdout, stderr, &resp, "no serviceAccountToken in the request: set tokenAttributes.serviceAccountTokenAudience in the kubelet's CredentialProviderConfig")
	}
	key := *registry
	switch {
	case registryOf(req.Image) == "":
		// No registry in the reference: Docker Hub, never the bridge.
		return noCredentials(stdout, stderr, &resp, "image "+quote(req.Image)+" names no registry (Docker Hub): the token is not sent there")
	case key == "":
		key = registryOf(req.Image)
	case !matches(key, req.Image):
		// A matchImages broader than the bridge's registry: the token
		// would reach another registry, which could replay it.
		return noCredentials(stdout, stderr, &resp, "image "+quote(req.Image)+" is not in --registry "+quote(key)+": the token is not sent there")
	}
	// Cache the answer until shortly before the token expires: the
	// bridge refuses it after that.
	cache := time.Duration(0)
	if exp, err := expiry(req.ServiceAccountToken); err == nil {
		cache = max(exp.Sub(now())-expiryMargin, 0).Truncate(time.Second)
	}
	resp.CacheDuration = &metav1.Duration{Duration: cache}
	resp.Auth = map[string]credentialproviderv1.AuthConfig{key: {Username: *username, Password: req.ServiceAccountToken}}
	return json.NewEncoder(stdout).Encode(resp)
}

// noCredentials answers no credentials, cached for no time, and says why
// on stderr (the kubelet's log); the kubelet goes on with pull secrets or
// anonymously.
func noCredentials(stdout, stderr io.Writer, resp *credentialproviderv1.CredentialProviderResponse, why string) error {
	fmt.Fprintln(stderr, "bridge-credential-provider: no credentials:", why)
	resp.CacheDuration = &metav1.Duration{}
	return json.NewEncoder(stdout).Encode(resp)
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// registryOf returns the registry host[:port] of image, as container
// runtimes read references: the first path component if it has a '.' or
// ':' or is localhost; else "" (the image is Docker Hub's).
func registryOf(image string) string {
	first, _, found := strings.Cut(image, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return ""
}

// matches reports whether image is inside key (HOST[:PORT][/PATH]) as the
// kubelet matches matchImages: the same port (or none on both), as many
// host labels, each matching its glob (path.Match, "*.example.com"), and
// the image's path under key's path, at a '/' boundary.
func matches(key, image string) bool {
	host := registryOf(image)
	if host == "" {
		return false
	}
	imagePath := strings.TrimPrefix(image, host)
	keyHost, keyPath, _ := strings.Cut(key, "/")
	kh, kp := splitPort(keyHost)
	ih, ip := splitPort(host)
	if kp != ip {
		return false
	}
	kl, il := strings.Split(kh, "."), strings.Split(ih, ".")
	if len(kl) != len(il) {
		return false
	}
	for i := range kl {
		if ok, err := path.Match(strings.ToLower(kl[i]), strings.ToLower(il[i])); err != nil || !ok {
			return false
		}
	}
	if keyPath = strings.Trim(keyPath, "/"); keyPath == "" {
		return true
	}
	rest, ok := strings.CutPrefix(imagePath, "/"+keyPath)
	return ok && (rest == "" || rest[0] == '/' || rest[0] == ':' || rest[0] == '@')
}

// splitPort splits host[:port]; an IPv6 literal keeps its brackets.
func splitPort(hostport string) (host, port string) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.Contains(hostport[i:], "]") {
		return hostport, ""
	}
	return hostport[:i], hostport[i+1:]
}

// expiry reads the exp of a JWT without verifying it (the bridge does
// that); it only bounds how long the kubelet caches the answer.
func expiry(token string) (time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, err
	}
	var c struct {
		Exp *float64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return time.Time{}, err
	}
	if c.Exp == nil {
		return time.Time{}, errors.New("no exp")
	}
	return time.Unix(int64(*c.Exp), 0), nil
}
