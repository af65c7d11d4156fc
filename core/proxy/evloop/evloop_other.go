//go:build !linux

package evloop

import "errors"

// Supported reports whether this platform has the event loop.
const Supported = false

var errUnsupported = errors.New("event loop: not supported on this platform")

type epollEvent struct{ Events uint32 }

func tokenOf(*epollEvent) Token { return 0 }

func (l *Loop) open() error { return errUnsupported }
func (l *Loop) close()      {}
func (l *Loop) poll() int   { return 0 }
func (l *Loop) wake()       {}
func (l *Loop) drainWake()  {}

// Add is not available here.
func (l *Loop) Add(fd int, h Handler) (Token, error) { return 0, errUnsupported }

// AddLevel is not available here.
func (l *Loop) AddLevel(fd int, h Handler) (Token, error) { return 0, errUnsupported }

// Del is not available here.
func (l *Loop) Del(t Token, fd int) error { return errUnsupported }
