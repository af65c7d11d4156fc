package exchange2dc

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the table the run prints: one row per assertion, with what was
// measured.
type report struct {
	rows []row
}

type row struct {
	step, check, measured string
	ok                    bool
}

// step is one disaster (or the set-up) being run.
type step struct {
	name string
	rep  *report
	lab  *lab
}

// stepAborted unwinds a step whose precondition failed; the step's row says why.
type stepAborted struct{}

// check records an assertion.
func (s *step) check(what string, ok bool, format string, args ...any) bool {
	for i, a := range args {
		if e, isErr := a.(error); isErr || a == nil {
			args[i] = errText(e)
		}
	}
	s.rep.rows = append(s.rep.rows, row{step: s.name, check: what, measured: fmt.Sprintf(format, args...), ok: ok})
	if !ok {
		s.lab.t.Errorf("%s: %s: FAILED (%s)", s.name, what, fmt.Sprintf(format, args...))
	}
	return ok
}

// require is check that ends the step when it fails.
func (s *step) require(what string, ok bool, format string, args ...any) {
	if !s.check(what, ok, format, args...) {
		panic(stepAborted{})
	}
}

// note records a measurement that is not a pass/fail assertion.
func (s *step) note(what string, format string, args ...any) {
	s.rep.rows = append(s.rep.rows, row{step: s.name, check: what, measured: fmt.Sprintf(format, args...), ok: true})
}

// wait polls cond every 20ms until it holds or d passes; it returns how
// long it took. The run's context (Ctrl-C) ends the whole test.
func (l *lab) wait(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if l.ctx.Err() != nil {
			l.t.Fatal("interrupted")
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// must is wait for preconditions of the set-up: failing ends the test.
func (l *lab) must(d time.Duration, what string, cond func() bool) {
	l.t.Helper()
	if _, ok := l.wait(d, cond); !ok {
		l.t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

func (r *report) print(w io.Writer, wall time.Duration) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tASSERTION\tRESULT\tMEASURED")
	last := ""
	failed := 0
	for _, r := range r.rows {
		name := r.step
		if name == last {
			name = ""
		}
		last = r.step
		res := "ok"
		if !r.ok {
			res = "FAIL"
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, r.check, res, r.measured)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d assertions, %d failed, wall time %s\n", len(r.rows), failed, wall.Round(time.Second))
	// The failed rows again, last: a CI log shows only its tail, and the
	// table is longer than that tail.
	for _, r := range r.rows {
		if !r.ok {
			fmt.Fprintf(w, "FAILED  %s: %s: %s\n", r.step, r.check, r.measured)
		}
	}
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

func servers(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// errText is an error for the table: nothing when there is none.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
