package email

import (
	"testing"

	"github.com/vipgate/vipgate/internal/testsmtp"
)

// The fast unit tests use an in-process SMTP server; the end-to-end tests
// use exim.

type received = testsmtp.Message

type fakeMTA struct {
	*testsmtp.Server
	addr string
}

func newFakeMTA(t *testing.T) *fakeMTA {
	t.Helper()
	s := testsmtp.Start(t)
	return &fakeMTA{Server: s, addr: s.Addr}
}

var decodeHeader = testsmtp.DecodeHeader
