# soak: the fault-injection soak with a checker (docs/soak.md): the
# two-datacenter lab of examples/exchange-2dc under client load while a
# seeded scheduler kills, pauses, cuts, drops, fills the disk and stops the
# MTA, with applies and failovers in between; internal/soakcheck judges the
# recorded history. Root only. SEED=<n> replays a run's schedule.
# `make soak` runs for SOAK_DURATION; `make e2e` runs the short form.
SOAK_DURATION ?= 10m
SOAK_TIMEOUT  ?= 3h
SOAK_SHORT    ?= 75s
.PHONY: soak soak-short
soak:
	E2E_TEST=TestSoak SOAK_DURATION=$(SOAK_DURATION) E2E_TIMEOUT=$(SOAK_TIMEOUT) examples/exchange-2dc/run.sh

soak-short:
	E2E_TEST=TestSoak SOAK_DURATION=$(SOAK_SHORT) E2E_TIMEOUT=12m examples/exchange-2dc/run.sh
