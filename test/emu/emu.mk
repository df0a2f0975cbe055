# test/emu: emulator scenarios (test/emu/run.py).  Included from test/test.mk.
# EMU_ARGS passes options to the runner, e.g. make test-emu EMU_ARGS="-k qemu".

.PHONY: test-emu
test-emu: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/run.py $(EMU_ARGS)

TEST_TARGETS += test-emu

# The hostile-guest suite (docs/security.md): attacks from inside the guest
# on the product's configuration, the hypervisor's integrity checked from the
# introspector's side (one Bochs at a time).
.PHONY: test-emu-hostile
test-emu-hostile: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/hostile_scenarios.py $(HOSTILE_EMU_ARGS)

TEST_TARGETS += test-emu-hostile

# The guest's power transitions (docs/kvmi-hv.md, "Power transitions"):
# ACPI S5, resets and a refused sleep under the product's configuration, with
# acpitab.efi giving Bochs's firmware its ACPI tables (one Bochs at a time).
.PHONY: test-emu-power
test-emu-power: $(B)/hv.efi $(B)/agent.efi $(B)/linux/acpitab.efi
	python3 test/emu/power_scenarios.py $(POWER_EMU_ARGS)

TEST_TARGETS += test-emu-power

# Every vCPU at once on restricted pages (docs/kvmi-hv.md, "Page steps"): each
# access raises exactly one PF event, on 2 and 4 vCPUs (one Bochs at a time).
.PHONY: test-emu-views
test-emu-views: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/views_scenarios.py $(VIEWS_EMU_ARGS)

TEST_TARGETS += test-emu-views

# KVMI event round trips, pause-all on 1/2/4 vCPUs and the page step, in
# guest TSC ticks with the hypervisor's split (docs/benchmarks.md).
.PHONY: bench-events
bench-events: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/events_bench.py $(EVENTS_BENCH_ARGS)

BENCH_TARGETS += bench-events

# The key out of the guest's reach, the guest-owned log port, and a refusal
# that leaves the firmware booting on (docs/security.md; one Bochs at a time).
.PHONY: test-emu-secret
test-emu-secret: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/secret_scenarios.py $(SECRET_EMU_ARGS)

TEST_TARGETS += test-emu-secret
