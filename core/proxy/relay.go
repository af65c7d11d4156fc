package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipgate/vipgate/core/proxy/inspect"
	"github.com/vipgate/vipgate/core/upstream"
)

// spliceChunk is how much one splice call may move before the relay looks
// at its deadlines again. Large enough that the per-chunk bookkeeping is
// noise next to the copy, small enough that an idle timeout is noticed soon.
const spliceChunk = 1 << 20

// relay copies both ways until both directions are done, handling
// half-close (a FIN in one direction is forwarded with CloseWrite, the other
// direction keeps flowing) and inactivity timeouts. Between *net.TCPConn
// pairs io.CopyN uses splice(2): the bytes never enter user space.
//
// Timeouts follow HAProxy: reads from the client are bounded by `timeout
// client`, reads from the server by `timeout server`, both replaced by
// `timeout tunnel` when it is set; a direction that times out while the
// other one moved data recently is given more time, so only a connection
// idle in both directions is cut. After one side has closed, the remaining
// direction uses client_fin / server_fin.
type relay struct {
	client, server               net.Conn
	clientIdle, serverIdle       time.Duration
	clientFinIdle, serverFinIdle time.Duration
	lastActive                   atomic.Int64
	halfClosed                   atomic.Bool
	// aborted: one direction gave up (error, or idle past its timeout);
	// the other must stop too instead of taking the forced deadline for
	// its own timeout and waiting on.
	aborted atomic.Bool
	// abortedBy says which read ended the session: 1 the client's, 2 the
	// server's (for the log's termination state).
	abortedBy atomic.Int32
	// Counters to add bytes to; "in" is client → server.
	srv, fe, be *upstream.Counters

	// Kept here rather than in run's frame: the second goroutine shares
	// them, and fields of a relay that is already on the heap cost no
	// allocation.
	wg  sync.WaitGroup
	res relayResult
	// crio and srio make the small-message reads and writes of a plain
	// TCP client or server raw (rawio_linux.go); each direction reads one
	// and writes the other, and a rawIO keeps its reads' and writes'
	// state apart, so the two goroutines never share a field.
	crio, srio rawIO
}

// result says how a relay ended, for the log's termination state.
type relayResult struct {
	bytesIn, bytesOut int64
	clientErr         error // error reading the client (timeout, reset)
	serverErr         error
	// abortedBy: 1 the client side ended the session, 2 the server side
	// (the other side's error is then only the consequence), 0 neither.
	abortedBy int32
}

func (r *relay) run() relayResult {
	r.lastActive.Store(time.Now().UnixNano())
	// One direction runs on the caller's goroutine: one goroutine fewer
	// per connection.
	r.crio.attach(r.client)
	r.srio.attach(r.server)
	r.wg.Add(1)
	go r.serverToClient()
	r.res.bytesIn, r.res.clientErr = r.pipe(r.server, r.client, viaRaw(&r.crio, r.client), viaRaw(&r.srio, r.server),
		r.clientIdle, r.clientFinIdle, true)
	r.wg.Wait()
	r.res.abortedBy = r.abortedBy.Load()
	r.crio.detach()
	r.srio.detach()
	return r.res
}

func (r *relay) serverToClient() {
	defer r.wg.Done()
	r.res.bytesOut, r.res.serverErr = r.pipe(r.client, r.server, viaRaw(&r.srio, r.server), viaRaw(&r.crio, r.client),
		r.serverIdle, r.serverFinIdle, false)
}

// viaRaw is what a direction reads or writes c through: its rawIO when
// attached, else c itself.
func viaRaw(rio *rawIO, c net.Conn) io.ReadWriter {
	if rio.attached() {
		return rio
	}
	return c
}

// smallBuf is the size of a direction's first buffer. Small messages
// (requests, responses, interactive traffic) go through it with one read
// and one write, cheaper than splice's two calls through a pipe; a read
// that fills it means a bulk transfer, and the direction switches to
// splice for good (HAProxy's splice-auto).
const smallBuf = 4096

var relayBufs = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}

// pipe moves src → dst. It returns nil on a clean EOF.
//
// Deadlines are re-armed lazily: only when less than half of the timeout
// is left (or the timeout shrank, after a half-close), not per message.
// A read deadline that fires early is checked against the real idle time
// and moved to lastActive + timeout, so the connection is cut exactly when
// it has been idle for the timeout in both directions. Writes get half a
// timeout more (a lazily armed deadline may be up to half a timeout old
// when a write starts): a receiver that takes nothing for that long is
// gone, and a write that timed out ends the session, since the bytes it
// held cannot be delivered any more.
// srcR and dstW read src and write dst for small messages (viaRaw); the
// deadlines and the splice path use the connections themselves.
func (r *relay) pipe(dst, src net.Conn, srcR io.Reader, dstW io.Writer, idle, finIdle time.Duration, up bool) (int64, error) {
	var total int64
	var armed, wArmed time.Time
	arm := func(at time.Time, d time.Duration) {
		armed, wArmed = at, at.Add(d/2)
		_ = src.SetReadDeadline(armed)
		_ = dst.SetWriteDeadline(wArmed)
	}
	var bp *[]byte
	defer func() {
		if bp != nil {
			relayBufs.Put(bp)
		}
	}()
	spliced := false
	for {
		d := idle
		if r.halfClosed.Load() && finIdle > 0 {
			d = finIdle
		}
		if d > 0 {
			now := time.Now()
			if left := armed.Sub(now); left < d/2 || left > d {
				arm(now.Add(d), d)
			}
		}
		// The other direction may have given up before this one armed
		// its deadlines (at once, when the client left while the session
		// was queued), and arm replaced the deadline abort had set: look
		// after arming, so that an abort from now on is not missed.
		if r.aborted.Load() {
			return total, nil
		}
		var n int64
		var err error
		writeFailed := false
		if spliced {
			n, err = io.CopyN(dst, src, spliceChunk)
			// CopyN does not say which side timed out: past the write
			// deadline it was the write (and the pipe's bytes are lost).
			writeFailed = err != nil && isTimeout(err) && !wArmed.IsZero() && !time.Now().Before(wArmed)
		} else {
			if bp == nil {
				bp = relayBufs.Get().(*[]byte)
			}
			m, rerr := srcR.Read(*bp)
			err = rerr
			if m > 0 {
				w, werr := dstW.Write((*bp)[:m])
				n = int64(w)
				if werr != nil {
					err, writeFailed = werr, true
				} else if m == len(*bp) {
					spliced = true
					relayBufs.Put(bp)
					bp = nil
				}
			}
		}
		total += n
		if n > 0 {
			r.lastActive.Store(time.Now().UnixNano())
			r.count(n, up)
		}
		switch {
		case err == nil:
			continue
		case r.aborted.Load():
			return total, err
		case errors.Is(err, io.EOF):
			if r.halfClosed.Swap(true) {
				// The other direction has ended too: the caller closes
				// both sockets next, which sends this FIN. A shutdown
				// first would be one more system call per connection.
				return total, nil
			}
			// Forward the FIN; from now on the other direction uses its
			// fin timeout. It is blocked in a read armed with its long
			// timeout: move its deadline now, or the fin timeout would
			// only apply after that.
			closeWrite(dst)
			r.armOther(dst, src, up)
			return total, nil
		case isTimeout(err) && d > 0 && !writeFailed:
			if r.halfClosed.Load() && finIdle > 0 {
				d = finIdle // the other side closed while this read waited
			}
			last := time.Unix(0, r.lastActive.Load())
			if n > 0 || time.Since(last) < d {
				// The other direction (or this one) was active: a tunnel
				// idle one way is fine. Wait until idle for d since then.
				at := last.Add(d)
				if n > 0 {
					at = time.Now().Add(d)
				}
				arm(at, d)
				continue
			}
			r.abort(up)
			return total, err
		default:
			r.abort(up)
			return total, err
		}
	}
}

// armOther bounds the remaining direction (reading otherSrc, writing
// otherDst) by its fin timeout, counted from the last activity. up is the
// direction that just ended: after the client's FIN the server side is
// waited for (server_fin), after the server's the client side (client_fin).
func (r *relay) armOther(otherSrc, otherDst net.Conn, up bool) {
	d := r.clientFinIdle
	if up {
		d = r.serverFinIdle
	}
	if d <= 0 {
		return
	}
	at := time.Unix(0, r.lastActive.Load()).Add(d)
	_ = otherSrc.SetReadDeadline(at)
	_ = otherDst.SetWriteDeadline(at)
}

func (r *relay) count(n int64, up bool) { countRelayed(r.srv, r.fe, r.be, n, up) }

// countRelayed adds n relayed bytes to a session's server, frontend and
// backend counters; up is client → server ("in").
func countRelayed(srv, fe, be *upstream.Counters, n int64, up bool) {
	if up {
		srv.BytesIn.Add(uint64(n))
		fe.BytesIn.Add(uint64(n))
		be.BytesIn.Add(uint64(n))
	} else {
		srv.BytesOut.Add(uint64(n))
		fe.BytesOut.Add(uint64(n))
		be.BytesOut.Add(uint64(n))
	}
}

// abort ends both directions at once (error or timeout: no half-close).
func (r *relay) abort(up bool) {
	by := int32(2)
	if up {
		by = 1
	}
	r.abortedBy.CompareAndSwap(0, by)
	r.aborted.Store(true)
	_ = r.client.SetDeadline(time.Unix(1, 0))
	_ = r.server.SetDeadline(time.Unix(1, 0))
}

func closeWrite(c net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := c.(closeWriter); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readFirst reads what the server sends first: when it looks like TLS,
// until the ServerHello is complete (it may be split across records and
// reads), bounded by maxFirst bytes and the deadline. The bytes are returned
// for forwarding.
const maxFirst = 1 << 16

func readFirst(ctx context.Context, c net.Conn, d time.Duration) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	_ = c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	tmp := make([]byte, 16384)
	for {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			if isTimeout(err) && len(buf) > 0 {
				return buf, nil
			}
			return buf, err
		}
		if len(buf) > 0 && buf[0] == 0x16 && len(buf) < maxFirst && !inspect.ServerHelloComplete(buf) {
			continue
		}
		return buf, nil
	}
}
