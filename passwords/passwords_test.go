package passwords

import (
	"bytes"
	"strings"
	"testing"
)

func TestMintParseMatch(t *testing.T) {
	m, err := Mint()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.Password, PasswordPrefix) || len(m.Password) != Length {
		t.Fatalf("password %q: want prefix %q and length %d", m.Password, PasswordPrefix, Length)
	}
	if strings.Contains(m.Password, string(m.Digest)) || bytes.Contains([]byte(m.Password), m.Digest) {
		t.Fatal("digest appears in password")
	}
	c, err := Parse(m.Password)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != KindPassword || c.ID != m.ID {
		t.Fatalf("Parse = %+v, want password with id %s", c, m.ID)
	}
	if !c.Matches(m.Digest, m.RefreshDigest) {
		t.Fatal("password does not match its own digest")
	}
	other, _ := Mint()
	if c.Matches(other.Digest, other.RefreshDigest) {
		t.Fatal("password matches another password's digest")
	}
	if c.Matches(DummyDigest, DummyDigest) {
		t.Fatal("password matches the dummy digest")
	}
}

func TestRefreshToken(t *testing.T) {
	m, _ := Mint()
	rt, err := RefreshToken(m.Password)
	if err != nil {
		t.Fatal(err)
	}
	if rt2, _ := RefreshToken(m.Password); rt2 != rt {
		t.Fatal("refresh token is not stable")
	}
	if rc, _ := Parse(rt); rc.RefreshToken() != rt {
		t.Fatal("a refresh token's RefreshToken is not itself")
	}
	if !strings.HasPrefix(rt, RefreshPrefix) || len(rt) != Length {
		t.Fatalf("refresh token %q has the wrong form", rt)
	}
	c, err := Parse(rt)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != KindRefresh || c.ID != m.ID {
		t.Fatalf("Parse = %+v, want refresh for %s", c, m.ID)
	}
	if !c.Matches(m.Digest, m.RefreshDigest) {
		t.Fatal("refresh token does not match its refresh digest")
	}
	// A refresh token is not the password: it must not pass as one.
	asPassword := PasswordPrefix + rt[len(RefreshPrefix):]
	pc, err := Parse(asPassword)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Matches(m.Digest, m.RefreshDigest) {
		t.Fatal("refresh secret accepted as password secret")
	}
	if _, err := RefreshToken(rt); err == nil {
		t.Fatal("RefreshToken accepted a refresh token")
	}
}

func TestParseMalformed(t *testing.T) {
	m, _ := Mint()
	for name, s := range map[string]string{
		"empty":        "",
		"short":        m.Password[:len(m.Password)-1],
		"long":         m.Password + "a",
		"prefix":       "xyz_" + m.Password[4:],
		"upper":        strings.ToUpper(m.Password),
		"no sep":       strings.Replace(m.Password, "_", "a", 2),
		"bad char":     m.Password[:len(m.Password)-1] + "1",
		"htpasswd-ish": "hunter2",
	} {
		if _, err := Parse(s); err == nil {
			t.Errorf("%s: Parse(%q) succeeded", name, s)
		}
	}
}

func TestRedact(t *testing.T) {
	m, _ := Mint()
	r := Redact(m.Password)
	if strings.Contains(r, m.Password[len(PasswordPrefix)+idLen+1:]) || !strings.Contains(r, m.ID) {
		t.Fatalf("Redact = %q", r)
	}
}

func FuzzParse(f *testing.F) {
	m, _ := Mint()
	rt, _ := RefreshToken(m.Password)
	f.Add(m.Password)
	f.Add(rt)
	f.Add("rbp_")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if len(s) != Length || c.ID == "" || c.Secret() == "" {
			t.Fatalf("Parse(%q) accepted %+v", s, c)
		}
	})
}
