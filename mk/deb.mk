# make deb: the Debian package (packaging/, docs/operations.md).
# make deb-check: lintian (no errors) and systemd-analyze verify on it; make
# test runs it.
NFPM       ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
DEB_DIR    := bin/deb
DEB_STAGE  := $(DEB_DIR)/stage
DEB_ARCH   := $(shell $(GO) env GOARCH)
# 0.0~gitDATE.HASH until vipgate has releases: orders by commit date.
DEB_VERSION ?= 0.0~git$(shell git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || echo 0).$(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
DEB        := $(DEB_DIR)/vipgate_$(DEB_VERSION)-1_$(DEB_ARCH).deb

.PHONY: deb deb-check
test: deb-check

deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_STAGE)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(DEB_STAGE)/vipgate ./cmd/vipgate
	# The man pages and completions come from the binary's command tree.
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) \
		$(DEB_STAGE)/vipgate gendocs --man $(DEB_STAGE)/man --completions $(DEB_STAGE)/completions
	gzip -9n $(DEB_STAGE)/man/*.1
	sed -e 's/@VERSION@/$(DEB_VERSION)-1/' -e "s/@COMMIT@/$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)/" \
		-e "s/@DATE@/$$(date -R -d @$$(git log -1 --format=%ct 2>/dev/null || date +%s))/" \
		packaging/changelog | gzip -9n > $(DEB_STAGE)/changelog.Debian.gz
	DEB_ARCH=$(DEB_ARCH) DEB_VERSION=$(DEB_VERSION) \
		$(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(DEB)

# lintian fails on errors (E:) only; its warnings are printed. The unit is
# verified from the package's own tree: systemd-analyze wants the binaries
# it names to exist, so the copy points at the unpacked /usr/bin/vipgate
# (its man pages are lintian's to check: they are not installed here).
deb-check: deb
	@set -o pipefail; lintian --fail-on error --tag-display-limit 0 $(DEB) | tee $(DEB_DIR)/lintian.txt \
		&& ! grep -q '^E:' $(DEB_DIR)/lintian.txt || { echo "lintian: errors in $(DEB) (or lintian failed)"; exit 1; }
	rm -rf $(DEB_DIR)/root && dpkg-deb -x $(DEB) $(DEB_DIR)/root
	sed 's|/usr/bin/vipgate|$(CURDIR)/$(DEB_DIR)/root/usr/bin/vipgate|g' \
		$(DEB_DIR)/root/usr/lib/systemd/system/vipgate.service > $(DEB_DIR)/vipgate.service
	@out=$$(systemd-analyze verify --man=no $(DEB_DIR)/vipgate.service 2>&1); rc=$$?; echo "$$out"; \
		if [ $$rc -ne 0 ] || echo "$$out" | grep -q 'vipgate.service'; then echo "systemd-analyze verify: problems in packaging/vipgate.service"; exit 1; fi
	$(DEB_DIR)/root/usr/bin/vipgate check $(DEB_DIR)/root/etc/vipgate/cluster.yaml
	$(DEB_DIR)/root/usr/bin/vipgate check --node $(DEB_DIR)/root/etc/vipgate/node.yaml
