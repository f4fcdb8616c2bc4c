package web

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
	"time"
)

func TestTemplatesParseAndRender(t *testing.T) {
	pages, err := Templates()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"login.html", "index.html", "minted.html", "error.html", "device.html"} {
		if pages.Lookup(name) == nil {
			t.Errorf("template %s missing", name)
		}
	}
	var b bytes.Buffer
	data := map[string]any{
		"Title": "Registry", "Session": map[string]any{"Username": "alice"}, "CSRF": "tok",
		"Username": "alice", "Password": "rbp_x<script>", "Name": "laptop", "ExpiresAt": time.Unix(0, 0),
		"Registry": "registry.test", "ReadOnly": false,
	}
	if err := pages.ExecuteTemplate(&b, "minted.html", data); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, `id="new-password"`) || !strings.Contains(out, `id="username"`) {
		t.Error("minted page lacks the #new-password / #username hooks")
	}
	if strings.Contains(out, "<script>\"") || strings.Contains(out, "rbp_x<script>") {
		t.Error("password not HTML-escaped")
	}
	b.Reset()
	data["Username"] = "bob'; rm -rf ~; echo '"
	if err := pages.ExecuteTemplate(&b, "minted.html", data); err != nil {
		t.Fatal(err)
	}
	if want := `-u &#39;bob&#39;\&#39;&#39;; rm -rf ~; echo &#39;\&#39;&#39;&#39;`; !strings.Contains(b.String(), want) {
		t.Errorf("username not shell-quoted in the login command:\n%s", b.String())
	}
}

func TestStatic(t *testing.T) {
	for _, f := range []string{"style.css", "copy.js"} {
		if _, err := fs.Stat(Static(), f); err != nil {
			t.Error(err)
		}
	}
}
