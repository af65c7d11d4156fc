# e2e: the reference deployment end to end (examples/exchange-2dc): two
# datacenters, a witness, VRRP, raft, DNS and alerts in network namespaces,
# seven disasters with their measurements; then the rolling migration of
# the migration inputs (migration-e2e, mk/import.mk) and the short form of
# the fault-injection soak (mk/soak.mk, docs/soak.md). Root only; installs
# what it needs.
.PHONY: e2e
e2e:
	examples/exchange-2dc/run.sh
	$(MAKE) --no-print-directory migration-e2e
	$(MAKE) --no-print-directory soak-short
