# vipgate import: haproxy.cfg / keepalived.conf translation (core/config/importer).
.PHONY: bench-import fuzz-import

bench-import:
	$(GO) test -run '^$$' -bench . -benchmem ./core/config/importer/

fuzz-import:
	$(GO) test -run '^$$' -fuzz '^FuzzHAProxy$$' -fuzztime $(FUZZTIME) ./core/config/importer/
	$(GO) test -run '^$$' -fuzz '^FuzzKeepalived$$' -fuzztime $(FUZZTIME) ./core/config/importer/

BENCH_TARGETS += bench-import
FUZZ_TARGETS += fuzz-import

# migration-e2e: the rolling migration of the migration inputs against
# Debian's HAProxy and keepalived in network namespaces (cluster/vrrp
# TestMigrationE2ESeed004, TestMigrationE2ESeed000, TestMigrationE2ESeed001):
# node 2, then node 1 replaced by vipgate from `vipgate import`; prints each
# step's VIP holders, service gap and session persistence (docs/migration.md).
# TestMigrationE2EVirtualServer(DR): imported keepalived virtual_servers (NAT,
# DR) serving nginx real servers, their checks taking one out. About two
# minutes. Root
# only (skipped otherwise); `make e2e` runs it.
.PHONY: migration-e2e
migration-e2e:
	@if [ "$$(id -u)" != 0 ]; then echo "migration-e2e: needs root (network namespaces, VRRP); skipped"; exit 0; fi; \
	set -e; mkdir -p bin; \
	export PATH="$$PATH:/usr/sbin:/sbin"; \
	$(GO) build -o bin/vipgate ./cmd/vipgate; \
	VIPGATE_MIGRATION_E2E=1 VIPGATE_BIN="$$PWD/bin/vipgate" \
	  $(GO) test -count=1 -v -timeout 6m -run '^TestMigrationE2E' ./cluster/vrrp/
