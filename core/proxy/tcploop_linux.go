//go:build linux

package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/proxy/evloop"
)

// serveOnLoop hands the listening socket ln to an event loop, which
// accepts and serves its connections for as long as the current frontend
// is one it can serve and has a free maxconn slot. When that ends (a reload
// to a frontend the loop cannot serve, a full frontend, an accept error to
// back off from) the socket comes back: serveOnLoop returns true and the
// goroutine accept loop, which knows how to wait, takes over. It returns
// false when the listener closes or ctx ends.
func (l *listener) serveOnLoop(ctx context.Context, ln net.Listener, shard int) bool {
	tl := l.p.loops.get(ctx, shard, listenShards(), l.p.log)
	if tl == nil {
		l.noLoop.Store(true)
		return true
	}
	sc, ok := ln.(syscall.Conn)
	if !ok {
		l.noLoop.Store(true)
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true // closed: the accept loop sees it
	}
	a := &loopAcceptor{l: l, tl: tl, rc: rc, back: make(chan struct{})}
	tl.lp.Post(a.start)
	select {
	case <-a.back:
		return true
	case <-l.closed:
	case <-ctx.Done():
	}
	tl.lp.Post(a.stop)
	return false
}

// loopAcceptor is a listening socket while an event loop holds it. Its
// registration is level-triggered: each event accepts a bounded batch, and
// the loop calls again while connections wait.
type loopAcceptor struct {
	l    *listener
	tl   *tcpLoop
	rc   syscall.RawConn
	tok  evloop.Token
	on   bool // registered
	gone bool // given back
	back chan struct{}
}

// acceptBatch bounds the connections one event accepts, so that one busy
// listener does not starve the sessions sharing its loop.
const acceptBatch = 32

func (a *loopAcceptor) start() {
	var err error
	// Control holds a reference on the socket: a Close meanwhile cannot
	// free its number for another file.
	cerr := a.rc.Control(func(fd uintptr) { a.tok, err = a.tl.lp.AddLevel(int(fd), a) })
	if cerr != nil || err != nil {
		a.giveBack()
		return
	}
	a.on = true
}

func (a *loopAcceptor) stop() {
	if !a.on {
		return
	}
	a.on = false
	if cerr := a.rc.Control(func(fd uintptr) { _ = a.tl.lp.Del(a.tok, int(fd)) }); cerr != nil {
		a.tl.lp.Forget(a.tok) // closed: the registration went with it
	}
}

func (a *loopAcceptor) giveBack() {
	a.stop()
	if !a.gone {
		a.gone = true
		close(a.back)
	}
}

func (a *loopAcceptor) Event(uint32) {
	if !a.on {
		return
	}
	for range acceptBatch {
		f := a.l.fe.Load()
		if !f.loopable() {
			a.giveBack()
			return
		}
		// maxconn: full, the goroutine loop waits for a slot (l.slot).
		select {
		case f.slots <- struct{}{}:
		default:
			a.giveBack()
			return
		}
		var nfd int
		var peer netip.AddrPort
		var err error
		cerr := a.rc.Control(func(fd uintptr) {
			nfd, peer, err = evloop.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		})
		switch {
		case cerr != nil: // the listener closed
			<-f.slots
			a.tl.lp.Forget(a.tok)
			a.on = false
			return
		case err == nil:
			f.handler.(*tcpHandler).startLoopSession(a.tl, nfd, peer)
		case errors.Is(err, unix.EAGAIN):
			<-f.slots
			return
		case errors.Is(err, unix.ECONNABORTED), errors.Is(err, unix.EINTR):
			<-f.slots
		default:
			// EMFILE and the like: accept.Next logs them and backs off.
			<-f.slots
			a.giveBack()
			return
		}
	}
}

// loopSession is a tcp session served on an event loop: the goroutine
// path's tcpSession (routing, lease, access-log fields) plus the two
// descriptors and the relay's state.
type loopSession struct {
	tcpSession
	h     *tcpHandler
	f     *Frontend
	b     *Backend
	tl    *tcpLoop
	lc    *liveConn
	try   connectTry
	state uint8

	cfd, sfd     int
	ctok, stok   evloop.Token
	cside, sside loopSide
	// cready, chup: the client sent something (or closed) while the
	// server connection was being made: loopDir's ready and hup, kept
	// until the relay starts.
	cready, chup bool

	firstTry, connStart int64 // loop clock
	srvAddr             netip.AddrPort
	trackID             uint64
	relayStart          time.Time
	up, down            loopDir // client → server, server → client
	lastActive          int64
	idle                [2]time.Duration // up, down: timeout client / server (or tunnel)
	finIdle             [2]time.Duration // client_fin, server_fin
	res                 relayResult
	timer               evloop.Timer
}

const (
	loopConnecting uint8 = iota + 1
	loopRelaying
	loopDone
	loopHandedOff
)

// loopSide is the handler of one of the session's two descriptors.
type loopSide struct {
	s      *loopSession
	server bool
}

func (sd *loopSide) Event(ev uint32) { sd.s.event(sd.server, ev) }

// loopDir is one direction of the relay.
type loopDir struct {
	src, dst int
	up       bool
	// ready: src may have bytes (an event came, no short read since).
	// hup: the event said the peer closed or failed, so a short read does
	// not mean drained: the FIN (a 0 read) or the error is still to read.
	ready, hup bool
	eof        bool // src sent its FIN
	shut       bool // ... and it was forwarded (everything before it written)
	blocked    bool // dst's send buffer is full: waiting for EPOLLOUT
	pend       []byte
	buf        *[]byte // pooled; holds pend
	// splice: a read filled the buffer (bulk), so bytes go through a pipe
	// without entering user space, as on the goroutine path.
	splice bool
	pipe   [2]int
	inPipe int
}

// closing: the peer closed its side or the connection failed; readable
// adds plain input.
const (
	closing  = unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
	readable = unix.EPOLLIN | closing
)

// pipeChunk is what one splice call moves into the pipe, and the size the
// pipe is given (as Go's own splice does): a 64 KiB default pipe would
// halve the bytes per system call of a bulk transfer.
const pipeChunk = 1 << 20

// relayBudget bounds the reads one event makes for one direction; a
// direction with more to move is run again on the loop's next turn.
const relayBudget = 16

// startLoopSession serves an accepted connection; the caller holds its
// maxconn slot.
func (h *tcpHandler) startLoopSession(tl *tcpLoop, cfd int, client netip.AddrPort) {
	f := h.f
	s := &loopSession{h: h, f: f, tl: tl, cfd: cfd, sfd: -1}
	s.tcpSession = tcpSession{start: time.Now(), tw: -1, tc: -1, term: "--", logClient: client}
	s.cside, s.sside = loopSide{s, false}, loopSide{s, true}
	s.timer = evloop.NewTimer(s.onTimer)
	defer s.endOnPanic()
	s.lc = f.p.live.add(s)
	f.Counters.SessionStart()
	f.p.conns.Add(1)
	// As Go does for every TCP connection, and keepalive as serveConn.
	_ = evloop.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if config.Flag(f.Cfg.TCPKeepAlive) {
		_ = evloop.SetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	}
	tok, err := tl.lp.Add(cfd, &s.cside)
	if err != nil {
		s.term = "PR"
		s.finish()
		return
	}
	s.ctok = tok

	txn := &s.txn
	*txn = Txn{Frontend: f.Name, Client: client}
	if h.needLocal {
		if local, err := evloop.Getsockname(cfd); err == nil {
			txn.Local = local
		}
	}
	b, try := h.route(&s.tcpSession, Decision{}, nil)
	if b == nil {
		s.finish()
		return
	}
	s.b, s.try = b, try
	s.firstTry = tl.lp.Now()
	s.attempt()
}

// attempt makes the next connection attempt without waiting: a server
// with a free slot, or the goroutine path when the backend would queue.
func (s *loopSession) attempt() {
	b := s.b
	if !b.tryPick(s.try.r, s.try.prefer, &s.lease) {
		if !b.anyUsable(s.try.r.Exclude) && (s.try.prefer == nil || !s.try.prefer.UsableForPersistence()) {
			err := ErrNoServer
			if s.try.lastErr != nil {
				err = s.try.lastErr
			}
			s.noServer(err)
			return
		}
		s.handOff()
		return
	}
	srv := s.lease.Server
	ap, ok := b.serverAddr(srv)
	if !ok {
		s.connectFailed(errors.New("no numeric address"))
		return
	}
	s.srvAddr = ap
	family := unix.AF_INET6
	if ap.Addr().Is4() {
		family = unix.AF_INET
	}
	fd, err := evloop.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		s.connectFailed(os.NewSyscallError("socket", err))
		return
	}
	s.sfd = fd
	_ = evloop.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if config.Flag(b.Cfg.TCPKeepAlive) {
		_ = evloop.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	}
	// EINTR (a signal, such as the runtime's preemption) leaves the
	// connection under way, as EINPROGRESS does.
	if err := evloop.Connect(fd, ap); err != nil && !errors.Is(err, unix.EINPROGRESS) && !errors.Is(err, unix.EINTR) {
		s.connectFailed(os.NewSyscallError("connect", err))
		return
	}
	tok, err := s.tl.lp.Add(fd, &s.sside)
	if err != nil {
		s.connectFailed(os.NewSyscallError("epoll_ctl", err))
		return
	}
	s.stok = tok
	s.state = loopConnecting
	s.connStart = s.tl.lp.Now()
	if d := b.Cfg.Timeouts.Connect.D(); d > 0 {
		s.tl.lp.Schedule(&s.timer, s.connStart+int64(d))
	}
}

func (s *loopSession) closeServer() {
	if s.sfd >= 0 {
		s.tl.lp.Forget(s.stok)
		_ = evloop.Close(s.sfd)
		s.sfd = -1
	}
}

func (s *loopSession) connectFailed(err error) {
	s.closeServer()
	s.tl.lp.Stop(&s.timer)
	s.state = 0
	if !s.b.connectFailed(&s.try, &s.lease, s.dialError(err)) {
		s.noServer(s.try.lastErr)
		return
	}
	s.attempt()
}

// noServer ends a session no server took (SC).
func (s *loopSession) noServer(err error) {
	s.term = "SC"
	s.f.p.log.Debug("no server", "frontend", s.f.Name, "backend", s.b.Name, "client", s.logClient, "err", err)
	s.finish()
}

// dialError words a failed attempt as the net package's dialer would.
func (s *loopSession) dialError(err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(s.srvAddr), Err: err}
}

func (s *loopSession) connected(ev uint32) {
	lp := s.tl.lp
	lp.Stop(&s.timer)
	b := s.b
	srv := s.lease.Server
	now := lp.Now()
	b.connected(&s.try, &s.lease, time.Duration(now-s.connStart))
	srv.ObserveConnect(nil)
	s.tw = 0
	s.tc = time.Duration(now - s.firstTry)
	if b.persist != nil {
		b.persist.StoreRequest(&s.ci, srv)
	}
	// on_marked_down shutdown-sessions and admin kills: on the loop.
	s.trackID = srv.TrackID(func() { lp.Post(s.kill) })
	s.relayStart = time.Now()
	s.state = loopRelaying
	s.lastActive = now
	f := s.f
	s.idle = [2]time.Duration{f.Cfg.Timeouts.Client.D(), b.Cfg.Timeouts.Server.D()}
	if t := b.Cfg.Timeouts.Tunnel.D(); t > 0 {
		s.idle = [2]time.Duration{t, t}
	}
	s.finIdle = [2]time.Duration{f.Cfg.Timeouts.ClientFin.D(), b.Cfg.Timeouts.ServerFin.D()}
	s.up = loopDir{src: s.cfd, dst: s.sfd, up: true, ready: s.cready, hup: s.chup}
	s.down = loopDir{src: s.sfd, dst: s.cfd, ready: ev&readable != 0, hup: ev&closing != 0}
	s.armIdle()
	s.pump(&s.up)
	s.pump(&s.down)
}

func (s *loopSession) event(server bool, ev uint32) {
	switch s.state {
	case loopRelaying:
	case loopConnecting:
		if server {
			switch {
			case ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0:
				err := unix.ECONNREFUSED
				if v, gerr := unix.GetsockoptInt(s.sfd, unix.SOL_SOCKET, unix.SO_ERROR); gerr == nil && v != 0 {
					err = unix.Errno(v)
				}
				s.connectFailed(os.NewSyscallError("connect", err))
			case ev&unix.EPOLLOUT != 0:
				s.connected(ev)
			}
			return
		}
		fallthrough
	default:
		if !server && ev&readable != 0 {
			s.cready = true
			s.chup = s.chup || ev&closing != 0
		}
		return
	}
	if ev == 0 { // run again (a budget ran out)
		s.pump(&s.up)
		s.pump(&s.down)
		return
	}
	rd, wr := &s.up, &s.down
	if server {
		rd, wr = &s.down, &s.up
	}
	if ev&readable != 0 {
		rd.ready = true
		rd.hup = rd.hup || ev&closing != 0
		s.pump(rd)
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && wr.blocked && s.state == loopRelaying {
		wr.blocked = false
		s.pump(wr)
	}
}

// pump moves what it can in direction d: what is pending first, then reads
// until a short read, the budget, or a full peer.
func (s *loopSession) pump(d *loopDir) {
	for budget := relayBudget; s.state == loopRelaying; budget-- {
		switch {
		case d.inPipe > 0 || len(d.pend) > 0:
			if !s.flush(d) {
				return
			}
		case d.eof:
			if !d.shut {
				d.shut = true
				s.dirEnded(d)
			}
			return
		case !d.ready || d.blocked:
			return
		case budget <= 0:
			if d.up {
				s.tl.lp.Again(&s.cside)
			} else {
				s.tl.lp.Again(&s.sside)
			}
			return
		case d.splice:
			s.spliceIn(d)
		default:
			s.readIn(d)
		}
	}
}

func (s *loopSession) readIn(d *loopDir) {
	buf := s.tl.scratch
	n, err := evloop.Recv(d.src, buf)
	switch {
	case err == nil && n > 0:
		if n == len(buf) {
			d.splice = true // bulk: the next reads go through a pipe
		} else if !d.hup {
			d.ready = false // a short read drained the socket; the next edge says when there is more
		}
		w, werr := evloop.Send(d.dst, buf[:n])
		if werr != nil {
			w = 0
			if !errors.Is(werr, unix.EAGAIN) {
				s.abort(d.up, os.NewSyscallError("write", werr))
				return
			}
		}
		if w > 0 {
			s.moved(d, w)
		}
		if w < n {
			if d.buf == nil {
				d.buf = relayBufs.Get().(*[]byte)
			}
			d.pend = append((*d.buf)[:0], buf[w:n]...)
		}
	default:
		s.readNothing(d, err, "read")
	}
}

// readNothing is a read or splice from d.src that moved no byte: the
// peer's FIN (no error), drained (the pipe is empty whenever a splice in
// starts, so EAGAIN is the socket's), interrupted, or failed.
func (s *loopSession) readNothing(d *loopDir, err error, call string) {
	switch {
	case err == nil:
		d.eof = true
	case errors.Is(err, unix.EAGAIN):
		d.ready = false
	case errors.Is(err, unix.EINTR):
	default:
		s.abort(d.up, os.NewSyscallError(call, err))
	}
}

func (s *loopSession) spliceIn(d *loopDir) {
	if d.pipe[0] == 0 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
			d.splice = false // no pipe to spare: user space it is
			s.readIn(d)
			return
		}
		// Refused past /proc/sys/fs/pipe-max-size: the default size works.
		_, _ = unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, pipeChunk)
		d.pipe = p
	}
	n, err := evloop.Splice(d.src, d.pipe[1], pipeChunk, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	if err == nil && n > 0 {
		d.inPipe = n
		return
	}
	s.readNothing(d, err, "splice")
}

// flush writes d's pending bytes; false when it could not finish (the peer
// is full, or the session ended).
func (s *loopSession) flush(d *loopDir) bool {
	var n int
	var err error
	if d.inPipe > 0 {
		n, err = evloop.Splice(d.pipe[0], d.dst, d.inPipe, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	} else {
		n, err = evloop.Send(d.dst, d.pend)
	}
	if err != nil {
		n = 0
	}
	if n > 0 {
		s.moved(d, n)
		if d.inPipe > 0 {
			d.inPipe -= n
		} else {
			d.pend = d.pend[n:]
			if len(d.pend) == 0 {
				relayBufs.Put(d.buf)
				d.buf, d.pend = nil, nil
			}
		}
	}
	switch {
	case err == nil:
		// Room again (the EPOLLOUT that says so may come later, or
		// have come while this direction was not waiting for it).
		d.blocked = false
		return true
	case errors.Is(err, unix.EAGAIN):
		d.blocked = true
		return false
	case errors.Is(err, unix.EINTR):
		return true
	}
	s.abort(d.up, os.NewSyscallError("write", err))
	return false
}

func (s *loopSession) moved(d *loopDir, n int) {
	s.lastActive = s.tl.lp.Now()
	countRelayed(&s.lease.Server.Counters, s.f.Counters, s.b.Counters, int64(n), d.up)
	if d.up {
		s.res.bytesIn += int64(n)
	} else {
		s.res.bytesOut += int64(n)
	}
}

// dirEnded: d's source sent its FIN and everything before it is written.
// The first direction to end forwards the FIN (the other keeps flowing,
// now under its fin timeout); the second ends the session, whose close
// sends that FIN.
func (s *loopSession) dirEnded(d *loopDir) {
	if s.up.shut && s.down.shut {
		s.finish()
		return
	}
	_ = evloop.Shutdown(d.dst, unix.SHUT_WR)
	s.armIdle()
}

// idleFor is how long direction i (0 up, 1 down) may wait: its timeout,
// or its fin timeout once the other direction has ended.
func (s *loopSession) idleFor(i int) time.Duration {
	if (s.up.shut || s.down.shut) && s.finIdle[i] > 0 {
		return s.finIdle[i]
	}
	return s.idle[i]
}

// armIdle schedules the check of the inactivity timeouts at the earliest
// moment one could expire: the session is cut only once idle in both
// directions for a direction's timeout, as relay.go does.
func (s *loopSession) armIdle() {
	at := int64(0)
	for i, d := range [2]*loopDir{&s.up, &s.down} {
		if t := s.idleFor(i); t > 0 && !d.shut {
			if e := s.lastActive + int64(t); at == 0 || e < at {
				at = e
			}
		}
	}
	if at != 0 {
		s.tl.lp.Schedule(&s.timer, at)
	}
}

func (s *loopSession) onTimer() {
	defer s.endOnPanic()
	switch s.state {
	case loopConnecting:
		s.connectFailed(os.ErrDeadlineExceeded)
	case loopRelaying:
		now := s.tl.lp.Now()
		for i, d := range [2]*loopDir{&s.up, &s.down} {
			if t := s.idleFor(i); t > 0 && !d.shut && now-s.lastActive >= int64(t) {
				s.abort(d.up, os.ErrDeadlineExceeded)
				return
			}
		}
		s.armIdle()
	}
}

// abort ends the session on an error or timeout of direction up (true:
// the client's side).
func (s *loopSession) abort(up bool, err error) {
	if s.state != loopRelaying {
		return
	}
	if up {
		s.res.abortedBy, s.res.clientErr = 1, err
	} else {
		s.res.abortedBy, s.res.serverErr = 2, err
	}
	s.finish()
}

// kill ends the session for shutdown-sessions, an admin kill or the end
// of a graceful stop's grace (KD).
func (s *loopSession) kill() {
	defer s.endOnPanic()
	if s.state == loopDone || s.state == loopHandedOff {
		return
	}
	s.killed.Store(true)
	s.finish()
}

// Close is the graceful stop's hard end (CloseConns): carried out on the
// loop. Safe from any goroutine.
func (s *loopSession) Close() error {
	s.tl.lp.Post(s.kill)
	return nil
}

// SetReadDeadline: a drain closes only idle HTTP connections; a tcp
// session is never idle in that sense.
func (s *loopSession) SetReadDeadline(time.Time) error { return nil }

func (s *loopSession) closeDir(d *loopDir) {
	if d.pipe[0] != 0 {
		_ = evloop.Close(d.pipe[0])
		_ = evloop.Close(d.pipe[1])
		d.pipe = [2]int{}
	}
	if d.buf != nil {
		relayBufs.Put(d.buf)
		d.buf, d.pend = nil, nil
	}
}

// finish ends the session: the books in the goroutine path's order
// (session time, tracking, server, lease, log, client, counters, slot).
func (s *loopSession) finish() {
	if s.state == loopDone || s.state == loopHandedOff {
		return
	}
	relayed := s.state == loopRelaying
	s.state = loopDone
	lp := s.tl.lp
	lp.Stop(&s.timer)
	if relayed {
		d := time.Since(s.relayStart)
		srv := s.lease.Server
		srv.Counters.SessionTime.Observe(d)
		s.b.Counters.SessionTime.Observe(d)
		s.f.Counters.SessionTime.Observe(d)
		srv.Untrack(s.trackID)
		s.bytesOut += s.res.bytesOut
		s.term = relayTerm(s.res, s.killed.Load())
	} else if s.killed.Load() {
		s.term = "KD"
	}
	s.closeDir(&s.up)
	s.closeDir(&s.down)
	s.closeServer()
	s.lease.Release()
	if config.Flag(s.f.Cfg.Log) {
		s.h.logSession(&s.tcpSession)
	}
	lp.Forget(s.ctok)
	_ = evloop.Close(s.cfd)
	s.wrapUp(s.lc)
}

// wrapUp is the end of a session's accounting, on either path.
func (s *loopSession) wrapUp(lc *liveConn) {
	f := s.f
	f.p.conns.Add(-1)
	f.Counters.SessionEnd()
	f.p.live.remove(lc)
	<-f.slots
}

// handOff moves the session to the goroutine path, which can wait in the
// backend's queue: the client's descriptor becomes a net.Conn and
// connectAndRelay makes the attempts left in s.try.
func (s *loopSession) handOff() {
	f := s.f
	lp := s.tl.lp
	// The descriptor lives on (dup'd into the net.Conn): its registration
	// must be removed by hand.
	_ = lp.Del(s.ctok, s.cfd)
	file := os.NewFile(uintptr(s.cfd), "client")
	c, err := net.FileConn(file)
	_ = file.Close()
	s.state = loopHandedOff
	if err != nil {
		f.p.log.Warn("cannot hand a tcp session to a goroutine", "frontend", f.Name, "client", s.logClient, "err", err)
		s.term = "PR"
		if config.Flag(f.Cfg.Log) {
			s.h.logSession(&s.tcpSession)
		}
		s.wrapUp(s.lc)
		return
	}
	// The new entry first: a CloseConns in between finds the session
	// under one of its two names, never under none.
	lc := f.p.live.add(c)
	f.p.live.remove(s.lc)
	ctx := withLiveConn(f.p.ctx, lc)
	go func() {
		defer s.wrapUp(lc)
		defer func() {
			if r := recover(); r != nil {
				f.p.log.Error("panic serving connection", "frontend", f.Name, "panic", r)
			}
		}()
		defer c.Close()
		if config.Flag(f.Cfg.Log) {
			defer s.h.logSession(&s.tcpSession)
		}
		s.h.connectAndRelay(ctx, c, &s.tcpSession, s.b, &s.try)
	}()
}

// endOnPanic, deferred where a session's code runs outside its own
// descriptors' events (in the acceptor's, on its timer, posted), ends the
// session when that code panics, as onPanic does for its events and
// serveConn's recover for the goroutine path: the loop's OnPanic, which
// the panic goes on to, cannot tell whose it was.
func (s *loopSession) endOnPanic() {
	if v := recover(); v != nil {
		s.endAfterPanic()
		panic(v)
	}
}

// endAfterPanic ends a session whose code panicked (KD), giving back what
// it holds; a second panic on the way is swallowed, the first is reported.
func (s *loopSession) endAfterPanic() {
	defer func() { _ = recover() }()
	s.killed.Store(true)
	s.finish()
}

// onPanic keeps the loop, and the node, serving when one session's code
// panics: the session is ended, as serveConn does for the goroutine path.
func (tl *tcpLoop) onPanic(h evloop.Handler, v any) {
	tl.log.Error("panic serving connection on the event loop", "panic", v)
	if sd, ok := h.(*loopSide); ok {
		sd.s.endAfterPanic()
	}
}
