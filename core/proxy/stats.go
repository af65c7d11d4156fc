package proxy

import "github.com/vipgate/vipgate/core/stats"

// FrontendRows implements stats.Source.
func (p *Proxy) FrontendRows() []stats.Row {
	fs := p.Frontends()
	out := make([]stats.Row, 0, len(fs))
	for _, f := range fs {
		r := stats.CounterRow(f.Name, f.Counters)
		r.Mode = f.Cfg.Mode
		r.Limit = f.Cfg.MaxConn
		r.Status = "OPEN"
		if !p.FrontendEnabled(f.Name) {
			r.Status = "STOP"
		}
		out = append(out, r)
	}
	return out
}

// BackendRows implements stats.Source.
func (p *Proxy) BackendRows() []stats.BackendRow {
	bs := p.Backends()
	out := make([]stats.BackendRow, 0, len(bs))
	for _, b := range bs {
		br := stats.BackendRow{Row: stats.CounterRow(b.Name, b.Counters)}
		br.Mode = b.Cfg.Mode
		br.Limit = b.Cfg.MaxConn
		br.Status = "DOWN"
		if b.HasUsableServer() {
			br.Status = "UP"
		}
		w := 0
		for _, s := range b.Servers {
			sr := stats.ServerRow(s)
			if s.Usable() && !s.Settings().Backup {
				w += sr.Weight
			}
			if sr.Status == "UP" {
				br.Act += sr.Act
				br.Bck += sr.Bck
			}
			br.Servers = append(br.Servers, sr)
		}
		br.Weight = w
		out = append(out, br)
	}
	return out
}

var _ stats.Source = (*Proxy)(nil)
