package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// saToken is a token of the shape the kubelet passes (not signed: the
// plugin does not verify it; the bridge does).
func saToken(exp time.Time) string {
	b64 := base64.RawURLEncoding.EncodeToString
	payload, _ := json.Marshal(map[string]any{"iss": "https://kubernetes.default.svc", "aud": []string{"registry.example.com"},
		"sub": "system:serviceaccount:builds:puller", "exp": exp.Unix(), "iat": now.Unix()})
	return b64([]byte(`{"alg":"RS256","kid":"k"}`)) + "." + b64(payload) + ".c2ln"
}

func request(t *testing.T, r credentialproviderv1.CredentialProviderRequest) []byte {
	t.Helper()
	r.TypeMeta = metav1.TypeMeta{APIVersion: credentialproviderv1.SchemeGroupVersion.String(), Kind: "CredentialProviderRequest"}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func call(t *testing.T, in []byte, args ...string) (credentialproviderv1.CredentialProviderResponse, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(t.Context(), args, bytes.NewReader(in), &out, io.Discard, func() time.Time { return now })
	var resp credentialproviderv1.CredentialProviderResponse
	if err == nil {
		dec := json.NewDecoder(&out)
		dec.DisallowUnknownFields()
		if derr := dec.Decode(&resp); derr != nil {
			t.Fatalf("response %q: %v", out.String(), derr)
		}
	}
	return resp, err
}

func TestAnswer(t *testing.T) {
	tok := saToken(now.Add(time.Hour))
	for _, tc := range []struct {
		name, image string
		args        []string
		key         string
	}{
		{"registry with a port", "registry.example.com:5000/team-a/app:v1", nil, "registry.example.com:5000"},
		{"registry without a port", "registry.example.com/app@sha256:abc", nil, "registry.example.com"},
		{"localhost", "localhost/x", nil, "localhost"},
		{"flag", "registry.example.com/app", []string{"--registry", "*.example.com", "--username", "pod"}, "*.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := call(t, request(t, credentialproviderv1.CredentialProviderRequest{Image: tc.image, ServiceAccountToken: tok,
				ServiceAccountAnnotations: map[string]string{"example.com/team": "a"}}), tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if resp.APIVersion != "credentialprovider.kubelet.k8s.io/v1" || resp.Kind != "CredentialProviderResponse" {
				t.Fatalf("type %+v", resp.TypeMeta)
			}
			if resp.CacheKeyType != credentialproviderv1.RegistryPluginCacheKeyType {
				t.Errorf("cacheKeyType %q", resp.CacheKeyType)
			}
			if resp.CacheDuration == nil || resp.CacheDuration.Duration != time.Hour-expiryMargin {
				t.Errorf("cacheDuration %v, want %v (the token's life less the margin)", resp.CacheDuration, time.Hour-expiryMargin)
			}
			auth, ok := resp.Auth[tc.key]
			if !ok || len(resp.Auth) != 1 || auth.Password != tok {
				t.Fatalf("auth %v, want one entry %s with the token", resp.Auth, tc.key)
			}
			if want := map[bool]string{true: "pod", false: "k8s"}[tc.args != nil]; auth.Username != want {
				t.Errorf("username %q, want %q", auth.Username, want)
			}
		})
	}
}

// TestOtherRegistriesGetNoToken: with --registry, an image of another
// registry (a broad matchImages) gets no credentials, nor does one that
// names no registry (Docker Hub), with or without the flag.
func TestOtherRegistriesGetNoToken(t *testing.T) {
	tok := saToken(now.Add(time.Hour))
	for _, tc := range []struct {
		registry, image string
		answered        bool
	}{
		{"registry.example.com", "registry.example.com/team-a/app:v1", true},
		{"registry.example.com", "Registry.Example.com/app", true},
		{"registry.example.com", "evil.example.net/app:v1", false},
		{"registry.example.com", "registry.example.com.evil.net/app", false},
		{"registry.example.com", "registry.example.com:5000/app", false},
		{"registry.example.com:5000", "registry.example.com:5000/app", true},
		{"registry.example.com:5000", "registry.example.com/app", false},
		{"*.example.com", "registry.example.com/app", true},
		{"*.example.com", "example.com/app", false},
		{"*.example.com", "a.b.example.com/app", false},
		{"registry.example.com/team-a", "registry.example.com/team-a/app:v1", true},
		{"registry.example.com/team-a", "registry.example.com/team-ab/app", false},
		{"registry.example.com", "library/nginx", false},
		{"registry.example.com", "nginx", false},
		{"docker.io", "nginx", false},
		{"", "library/nginx", false},
		{"", "nginx:latest", false},
	} {
		t.Run(tc.registry+" "+tc.image, func(t *testing.T) {
			var args []string
			if tc.registry != "" {
				args = []string{"--registry", tc.registry}
			}
			resp, err := call(t, request(t, credentialproviderv1.CredentialProviderRequest{Image: tc.image, ServiceAccountToken: tok}), args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(resp.Auth) == 1; got != tc.answered {
				t.Fatalf("auth %v, want answered %v", resp.Auth, tc.answered)
			}
			if !tc.answered && (resp.CacheDuration == nil || resp.CacheDuration.Duration != 0) {
				t.Fatalf("a refusal is cached: %v", resp.CacheDuration)
			}
			for _, a := range resp.Auth {
				if !tc.answered || a.Password != tok {
					t.Fatalf("auth %v", resp.Auth)
				}
			}
		})
	}
}

func TestNearExpiryIsNotCached(t *testing.T) {
	resp, err := call(t, request(t, credentialproviderv1.CredentialProviderRequest{Image: "r.example.com/a", ServiceAccountToken: saToken(now.Add(time.Minute))}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.CacheDuration == nil || resp.CacheDuration.Duration != 0 || resp.Auth["r.example.com"].Password == "" {
		t.Fatalf("%+v", resp)
	}
}

func TestNoTokenGivesNoCredentials(t *testing.T) {
	resp, err := call(t, request(t, credentialproviderv1.CredentialProviderRequest{Image: "r.example.com/a"}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Auth != nil || resp.CacheDuration == nil || resp.CacheDuration.Duration != 0 {
		t.Fatalf("%+v", resp)
	}
}

func TestBadRequests(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":      "{",
		"wrong version": `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1","kind":"CredentialProviderRequest","image":"a"}`,
		"wrong kind":    `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"Pod","image":"a"}`,
		"too large":     `{"image":"` + strings.Repeat("a", maxRequestBytes) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := call(t, []byte(in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// FuzzRequest feeds arbitrary stdin to the plugin: it answers valid JSON
// or an error, never a panic.
func FuzzRequest(f *testing.F) {
	f.Add(`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"r.example.com/a","serviceAccountToken":"a.eyJleHAiOjF9.c"}`)
	f.Add(`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"","serviceAccountToken":"x"}`)
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		if err := run(t.Context(), nil, strings.NewReader(in), &out, io.Discard, func() time.Time { return now }); err == nil && !json.Valid(out.Bytes()) {
			t.Fatalf("invalid JSON answer %q", out.String())
		}
	})
}
