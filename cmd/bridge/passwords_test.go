package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/passwords"
	"github.com/registry-bridge/bridge/store"
)

func TestPasswordsCLI(t *testing.T) {
	addr := testenv.Redis(t)
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, validConfig(dir)+"store:\n  redis:\n    url: redis://"+addr+"/0\n")

	pw, stderr, err := runCLI(t, "passwords", "create", "--config", path, "--user", "ci-bot", "--groups", "team-a,team-b",
		"--name", "ci", "--expires", "48h", "--read-only")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, stderr)
	}
	if !strings.HasSuffix(pw, "\n") || strings.Count(pw, "\n") != 1 || !passwords.LooksLike(strings.TrimSpace(pw)) {
		t.Fatalf("stdout %q: want only the password and a newline", pw)
	}
	c, _ := passwords.Parse(strings.TrimSpace(pw))
	if !strings.Contains(stderr, c.ID) {
		t.Errorf("stderr lacks the id: %s", stderr)
	}
	if _, _, err := runCLI(t, "passwords", "create", "--config", path, "--user", "other"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "passwords", "create", "--config", path, "--user", "x", "--expires", "10000h"); err == nil {
		t.Fatal("a lifetime over max_lifetime was accepted")
	}

	out, _, err := runCLI(t, "passwords", "list", "--config", path, "--user", "ci-bot", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var list []passwordJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(list) != 1 || list[0].ID != c.ID || !list[0].ReadOnly || list[0].Name != "ci" || list[0].CreatedBy != "cli" ||
		strings.Join(list[0].Groups, ",") != "team-a,team-b" || list[0].LastUsed != nil {
		t.Fatalf("list = %+v", list)
	}
	if strings.Contains(out, strings.TrimSpace(pw)[20:]) {
		t.Fatal("list shows the secret")
	}
	table, _, err := runCLI(t, "passwords", "list", "--config", path)
	if err != nil || !strings.Contains(table, "ci-bot") || !strings.Contains(table, "other") || !strings.HasPrefix(table, "ID") {
		t.Fatalf("table: %v\n%s", err, table)
	}

	// Revoke by whole password (a leaked one), then again: not found.
	if out, _, err := runCLI(t, "passwords", "revoke", "--config", path, strings.TrimSpace(pw)); err != nil || !strings.Contains(out, c.ID) {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if _, stderr, err := runCLI(t, "passwords", "revoke", "--config", path, c.ID); err == nil || !strings.Contains(stderr, "no such password") {
		t.Fatalf("second revoke: %v %s", err, stderr)
	}
	if out, _, err := runCLI(t, "passwords", "revoke", "--config", path, "--user", "other", "--all"); err != nil || !strings.Contains(out, "revoked 1") {
		t.Fatalf("revoke --all: %v %s", err, out)
	}
	out, _, _ = runCLI(t, "passwords", "list", "--config", path, "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("after revoking everything: %s", out)
	}
}

func TestPasswordsCreateRefusesAPersonsUsername(t *testing.T) {
	addr := testenv.Redis(t)
	dir := t.TempDir()
	writeKeys(t, dir)
	path := writeConfig(t, dir, validConfig(dir)+"store:\n  redis:\n    url: redis://"+addr+"/0\n")
	cfg, err := loadConfig(path, useAll)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutUser(t.Context(), store.User{Username: "alice", Subject: "sub-alice", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "passwords", "create", "--config", path, "--user", "alice")
	if err == nil || out != "" || !strings.Contains(err.Error(), "identity provider") {
		t.Fatalf("create over a person's username: out %q, err %v", out, err)
	}
	if list, _ := st.ListPasswords(t.Context(), "alice"); len(list) != 0 {
		t.Fatal("a password was stored")
	}
}

func TestConfigRefusesHTTPIssuer(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir)
	body := validConfig(dir) + "oidc:\n  issuer: http://idp.example.com\n  client_id: c\n"
	path := writeConfig(t, dir, body)
	if _, stderr, err := runCLI(t, "config", "check", "--config", path); err == nil || !strings.Contains(stderr, "oidc.issuer") {
		t.Fatalf("http issuer accepted: %v %s", err, stderr)
	}
	path = writeConfig(t, dir, body+"server:\n  insecure_allow_http_issuer: true\n")
	if _, stderr, err := runCLI(t, "config", "check", "--config", path); err != nil {
		t.Fatalf("with the insecure switch: %v %s", err, stderr)
	}
}
