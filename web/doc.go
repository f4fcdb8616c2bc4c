// Package web holds the bridge's page templates and static files,
// embedded in the binary. It has no logic: httpapi fills the templates.
//
// Usage:
//
//	pages, err := web.Templates()             // parsed once at start-up
//	err = pages.ExecuteTemplate(w, "index.html", data)
//	http.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(web.Static())))
package web
