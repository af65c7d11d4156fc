package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/events"
)

// eventsDropped marks, in a followed stream, events the stream lost because
// its reader fell behind (it is not a kind the bus publishes).
const eventsDropped events.Kind = "events.dropped"

// serveEvents answers GET /api/v1/events: the last n events the node keeps
// (n=100 by default; the bus keeps 256), oldest first, as a JSON array. With
// follow=1 they come as JSON lines, then every new event as it is
// published, until the client goes away or the node stops (stop).
func serveEvents(stop <-chan struct{}, bus *events.Bus) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := r.URL.Query().Get("follow")
		follow := f != "" && f != "0" && f != "false"
		n := 100
		if s := r.URL.Query().Get("n"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 || (v == 0 && !follow) {
				admin.WriteError(w, http.StatusBadRequest, fmt.Errorf("n=%q: want a positive number (0 with follow: only new events)", s))
				return
			}
			n = v
		}
		if !follow {
			admin.WriteJSON(w, http.StatusOK, bus.Recent(n))
			return
		}
		fl, ok := w.(http.Flusher)
		if !ok {
			admin.WriteError(w, http.StatusInternalServerError, errors.New("this connection cannot stream"))
			return
		}
		// Subscribed before the history is read: nothing published in
		// between is missed (what both have is sent once, by seq).
		sub := bus.Subscribe("admin events "+r.RemoteAddr, 1024, nil)
		defer sub.Close()
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		var last uint64
		if n > 0 {
			for _, ev := range bus.Recent(n) {
				enc.Encode(ev)
				last = ev.Seq
			}
		}
		fl.Flush()
		var dropped uint64
		for {
			select {
			case ev, ok := <-sub.C:
				if !ok {
					return
				}
				if ev.Seq <= last {
					continue
				}
				if d := sub.Dropped(); d > dropped {
					enc.Encode(events.Event{Kind: eventsDropped, Level: events.Warning, Time: ev.Time, Node: ev.Node, DC: ev.DC,
						Message: fmt.Sprintf("%d event(s) lost: this stream fell behind", d-dropped)})
					dropped = d
				}
				if err := enc.Encode(ev); err != nil {
					return
				}
				fl.Flush()
			case <-r.Context().Done():
				return
			case <-stop:
				return
			}
		}
	}
}
