package accept

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// flaky fails its first accepts with the given errors, then hands out conns.
type flaky struct {
	net.Listener
	errs []error
}

func (f *flaky) Accept() (net.Conn, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return f.Listener.Accept()
}

func TestNext(t *testing.T) {
	cases := []struct {
		name    string
		errs    []error
		closeLn bool
		cancel  bool
		wantErr bool
	}{
		{name: "conn", wantErr: false},
		{name: "survives EMFILE and ECONNABORTED", errs: []error{syscall.EMFILE, syscall.ECONNABORTED, syscall.EMFILE}},
		{name: "closed listener ends", closeLn: true, wantErr: true},
		{name: "ended ctx ends", errs: []error{syscall.EMFILE, syscall.EMFILE, syscall.EMFILE}, cancel: true, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			if tc.closeLn {
				ln.Close()
			} else {
				go func() {
					if c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second); err == nil {
						defer c.Close()
						<-ctx.Done()
					}
				}()
			}
			c, err := Next(ctx, &flaky{Listener: ln, errs: tc.errs}, nil)
			if tc.wantErr {
				if err == nil {
					c.Close()
					t.Fatal("got a connection, want an error")
				}
				if !errors.Is(err, net.ErrClosed) && !errors.Is(err, context.Canceled) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		})
	}
}
