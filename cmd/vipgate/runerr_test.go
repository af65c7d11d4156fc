package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

// TestConfigErrorsReadable: a config that does not validate at start is
// printed one problem a line (not one escaped log string); a refused reload
// logs one line per problem with its position.
func TestConfigErrorsReadable(t *testing.T) {
	_, err := config.Parse("c.yaml", []byte("frontends:\n  - name: f\n    bnid: x\n"))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	wrapped := fmt.Errorf("loading c.yaml:\n%w", err)

	var stderr, logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	reportRunError(&stderr, log, wrapped)
	for _, want := range []string{
		"vipgate run: the cluster config has 3 problem(s); nothing was started:\n",
		"\nc.yaml:3:5: frontends.0.bnid: unknown key \"bnid\" (did you mean \"bind\"?)\n",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(logs.String(), `\n`) {
		t.Errorf("escaped newlines in the log:\n%s", logs.String())
	}

	logs.Reset()
	logConfigError(log, "reload refused; keeping the running config", "c.yaml", wrapped)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "problems=3") ||
		!strings.Contains(logs.String(), `msg="config problem" at=c.yaml:3:5 path=frontends.0.bnid problem="unknown key \"bnid\" (did you mean \"bind\"?)"`) {
		t.Errorf("reload log:\n%s", logs.String())
	}

	// Other errors keep the one log line.
	stderr.Reset()
	logs.Reset()
	reportRunError(&stderr, log, fmt.Errorf("admin api on x: address in use"))
	if stderr.Len() != 0 || !strings.Contains(logs.String(), `msg="node stopped" err="admin api on x: address in use"`) {
		t.Errorf("stderr %q, log %q", stderr.String(), logs.String())
	}
}

// TestWhyStoppedReachesStderr: when the node's log goes only to syslog
// targets (stopped with the node), why it stopped is written to stderr.
func TestWhyStoppedReachesStderr(t *testing.T) {
	for _, tc := range []struct {
		targets []config.LogTarget
		want    bool
	}{
		{nil, true},
		{[]config.LogTarget{{Address: "/dev/log"}, {Address: "stderr"}}, true},
		{[]config.LogTarget{{Address: "/dev/log"}}, false},
		{[]config.LogTarget{{Address: "stdout"}}, false},
	} {
		if got := logsToStderr(config.NodeLog{Targets: tc.targets}); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.targets, got, tc.want)
		}
	}
}
