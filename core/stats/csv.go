package stats

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"
)

// CSVColumns are the first columns of HAProxy's `show stat` CSV (its
// stats page's ";csv"), in its order, so that scripts reading that CSV by
// column read this one. Columns vipgate has no value for are empty, as
// HAProxy leaves the ones that do not apply to a row.
var CSVColumns = []string{"pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot", "bin", "bout",
	"dreq", "dresp", "ereq", "econ", "eresp", "wretr", "wredis", "status", "weight", "act", "bck",
	"chkfail", "chkdown", "lastchg", "downtime", "qlimit", "pid", "iid", "sid", "throttle", "lbtot",
	"tracked", "type", "rate", "rate_lim", "rate_max", "check_status", "check_code", "check_duration",
	"hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"}

// WriteCSV writes s as HAProxy's CSV: a "# " header line, then per
// frontend a FRONTEND row and per backend its servers and a BACKEND row.
func WriteCSV(w io.Writer, s Snapshot) error {
	cw := csv.NewWriter(w)
	if _, err := io.WriteString(w, "# "+strings.Join(CSVColumns, ",")+",\n"); err != nil {
		return err
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	row := func(px, sv string, typ int, r *Row) []string {
		f := map[string]string{
			"pxname": px, "svname": sv, "scur": i(r.CurSess), "smax": i(r.MaxSess), "stot": u(r.TotalSess),
			"bin": u(r.BytesIn), "bout": u(r.BytesOut), "dreq": u(r.Denied), "status": r.Status,
			"type": strconv.Itoa(typ), "rate": strconv.FormatFloat(r.Rate, 'f', 0, 64), "rate_max": u(r.RateMax),
			"hrsp_1xx": u(r.HTTP[1]), "hrsp_2xx": u(r.HTTP[2]), "hrsp_3xx": u(r.HTTP[3]), "hrsp_4xx": u(r.HTTP[4]),
			"hrsp_5xx": u(r.HTTP[5]), "hrsp_other": u(r.HTTP[0]),
		}
		if r.Limit > 0 {
			f["slim"] = strconv.Itoa(r.Limit)
		}
		if typ == 0 {
			return fields(f)
		}
		for k, v := range map[string]string{"qcur": i(r.Queued), "qmax": i(r.QueueMax), "econ": u(r.ConnErrors),
			"eresp": u(r.RespErrors), "wretr": u(r.Retries), "wredis": u(r.Redisp), "weight": strconv.Itoa(r.Weight),
			"act": strconv.Itoa(r.Act), "bck": strconv.Itoa(r.Bck)} {
			f[k] = v
		}
		if typ == 2 {
			if !r.LastChange.IsZero() {
				f["lastchg"] = strconv.FormatInt(int64(s.Time.Sub(r.LastChange)/time.Second), 10)
			}
			f["chkdown"], f["downtime"] = u(r.Downs), strconv.FormatInt(int64(r.Downtime), 10)
			if r.Checked {
				f["chkfail"] = u(r.ChkFail)
			}
			if r.CheckCode != "" {
				f["check_status"] = r.CheckCode
				f["check_duration"] = strconv.FormatInt(int64(r.CheckSecs*1000), 10)
				if c, ok := httpCode(r.CheckReason); ok {
					f["check_code"] = c
				}
			}
		}
		return fields(f)
	}
	for _, fe := range s.Frontends {
		if err := cw.Write(row(fe.Name, "FRONTEND", 0, &fe)); err != nil {
			return err
		}
	}
	for _, b := range s.Backends {
		for _, sv := range b.Servers {
			if err := cw.Write(row(b.Name, sv.Name, 2, &sv)); err != nil {
				return err
			}
		}
		if err := cw.Write(row(b.Name, "BACKEND", 1, &b.Row)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// fields orders a row's values by CSVColumns, with HAProxy's trailing
// comma (an empty last field).
func fields(f map[string]string) []string {
	out := make([]string, len(CSVColumns)+1)
	for i, c := range CSVColumns {
		out[i] = f[c]
	}
	return out
}

// httpCode is the status of an HTTP check's reason ("HTTP 503…"), HAProxy's
// check_code.
func httpCode(reason string) (string, bool) {
	rest, ok := strings.CutPrefix(reason, "HTTP ")
	if !ok || len(rest) < 3 {
		return "", false
	}
	if _, err := strconv.Atoi(rest[:3]); err != nil {
		return "", false
	}
	return rest[:3], true
}
