package stats

import (
	_ "embed"
	"net/http"
)

// pageHTML is the statistics page: one self-contained file (no external
// assets, works offline) that renders the admin API's status document.
//
//go:embed page.html
var pageHTML []byte

// PageHandler serves the statistics page. authorized decides whether the
// request may see it; anonymous browsers get the same page with status 401,
// which shows its token form instead of data (all data comes from the
// authenticated API).
func PageHandler(authorized func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		if !authorized(r) {
			w.WriteHeader(http.StatusUnauthorized)
		}
		_, _ = w.Write(pageHTML)
	})
}
