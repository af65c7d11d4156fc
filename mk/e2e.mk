# e2e: the reference deployment end to end (examples/exchange-2dc): two
# datacenters, a witness, VRRP, raft, DNS and alerts in network namespaces,
# seven disasters with their measurements. Root only; installs what it needs.
.PHONY: e2e
e2e:
	examples/exchange-2dc/run.sh
