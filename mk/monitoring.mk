# Monitoring: the statistics page's screenshots for docs/ (headless
# Chromium drives raft gateways and a witness through a datacenter
# failover).
.PHONY: screenshots

screenshots:
	mkdir -p docs/img
	VIPGATE_ARTIFACTS=$(CURDIR)/docs/img $(GO) test -count=1 -run '^TestClusterViewInBrowser$$' ./cmd/vipgate/
