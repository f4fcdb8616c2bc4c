package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

const exampleConfig = "../../internal/devidp/testdata/users.yaml"

func TestRunServesAndWarns(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr bytes.Buffer
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--config", exampleConfig, "--listen", "127.0.0.1:0"}, &stderr, func(a net.Addr) { addrs <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("run ended early: %v\n%s", err, stderr.String())
	}

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr.String()+"/.well-known/openid-configuration", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Issuer string `json:"issuer"`
	}
	err = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantIssuer := fmt.Sprintf("http://localhost:%d", addr.(*net.TCPAddr).Port)
	if meta.Issuer != wantIssuer {
		t.Errorf("issuer = %q, want %q (default from the listen port)", meta.Issuer, wantIssuer)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	out := stderr.String()
	for _, want := range []string{"DEVELOPMENT ONLY", "username=alice", "username=bob", "client_id=registry-bridge"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "alice-password") {
		t.Errorf("log shows a password:\n%s", out)
	}
}

func TestRunRejectsBadCommandLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want error
	}{
		{"no config", nil, errUsage},
		{"extra argument", []string{"--config", exampleConfig, "serve"}, errUsage},
		{"missing file", []string{"--config", "does-not-exist.yaml"}, nil},
		{"issuer not a URL", []string{"--config", exampleConfig, "--listen", "127.0.0.1:0", "--issuer", "localhost"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(t.Context(), tc.args, &stderr, func(net.Addr) { t.Error("server started") })
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
