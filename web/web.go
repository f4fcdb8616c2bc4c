package web

import (
	"embed"
	"html/template"
	"io/fs"
	"strings"
	"time"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

// Templates parses every page template with the helper functions they use.
func Templates() (*template.Template, error) {
	return template.New("").Funcs(template.FuncMap{
		"join": strings.Join,
		"date": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		// shellquote makes a word safe to paste into a POSIX shell.
		"shellquote": func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" },
	}).ParseFS(templates, "templates/*.html")
}

// Static returns the static files (style sheet, copy button script).
func Static() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}
