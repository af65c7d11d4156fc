package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
)

// errorPages are complete responses by status (HAProxy errorfile).
type errorPages map[int][]byte

// loadErrorPages reads the configured files over base. A file starting with
// "HTTP/" is sent as is (it must be a complete response); anything else is
// the HTML body of a generated response.
func loadErrorPages(files map[int]string, base errorPages) (errorPages, error) {
	p := errorPages{}
	for k, v := range base {
		p[k] = v
	}
	for st, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("error file for %d: %w", st, err)
		}
		if bytes.HasPrefix(b, []byte("HTTP/")) {
			if !bytes.Contains(b, []byte("\r\n\r\n")) && !bytes.Contains(b, []byte("\n\n")) {
				return nil, fmt.Errorf("error file %s starts with HTTP/ but has no end of head", file)
			}
			p[st] = b
			continue
		}
		p[st] = buildErrorPage(st, b)
	}
	return p, nil
}

func buildErrorPage(status int, body []byte) []byte {
	var b []byte
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nContent-Type: text/html\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// defaultErrorBody mirrors HAProxy's built-in pages.
func defaultErrorBody(status int) []byte {
	msg := map[int]string{
		400: "Your browser sent an invalid request.",
		403: "Request forbidden by administrative rules.",
		405: "Method not allowed.",
		408: "Your browser didn't send a complete request in time.",
		413: "The request entity is too large.",
		414: "The request URI is too long.",
		431: "The request header fields are too large.",
		500: "An internal server error occurred.",
		501: "The request method is not supported.",
		502: "The server returned an invalid or incomplete response.",
		503: "No server is available to handle this request.",
		504: "The server didn't respond in time.",
		505: "The HTTP version is not supported.",
	}[status]
	return fmt.Appendf(nil, "<html><body><h1>%d %s</h1>\n%s\n</body></html>\n", status, http.StatusText(status), msg)
}

func (p errorPages) get(status int) []byte {
	if b, ok := p[status]; ok {
		return b
	}
	return buildErrorPage(status, defaultErrorBody(status))
}
