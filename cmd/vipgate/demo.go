package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// startDemoBackends serves tiny HTTP backends for `make run`: each answers
// with its own name, so balancing is visible with curl, and /health for the
// checks. They stop with ctx.
func startDemoBackends(ctx context.Context, addrs []string) error {
	for i, a := range addrs {
		a = strings.TrimSpace(a)
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("demo backend %s: %w", a, err)
		}
		name := fmt.Sprintf("demo-backend-%d", i+1)
		mux := http.NewServeMux()
		mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s (%s), you asked for %s\n", name, a, r.URL.Path)
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintf(os.Stderr, "demo backend %s: %v\n", a, err)
			}
		}()
		go func() {
			<-ctx.Done()
			_ = srv.Close()
		}()
	}
	return nil
}
