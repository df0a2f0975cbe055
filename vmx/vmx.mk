# vmx: fragment of the top-level Makefile (see its header).
#
# VT-x: capability check, control computation, EPT and MTRR modules.  The
# pure modules are host-tested and also compiled for the core (listed in
# VMX_PURE_CORE_OBJS, built by `make`, linked by whoever needs them).

# Capability check shared with the EFI loader: boot.mk adds
# $(VMX_CAPS_SRCS:%.c=$(B)/efi/%.o) to BOOT_OBJS.
VMX_CAPS_SRCS := vmx/caps.c vmx/caps_read.c

VMX_PURE_SRCS := vmx/caps.c vmx/caps_read.c vmx/controls.c vmx/mtrr.c vmx/mtrr_read.c \
	vmx/ept.c vmx/ept_view.c
VMX_PURE_CORE_OBJS := $(VMX_PURE_SRCS:%.c=$(B)/core/%.o)
VMX_CAPS_EFI_OBJS := $(VMX_CAPS_SRCS:%.c=$(B)/efi/%.o)

ALL_TARGETS += $(VMX_PURE_CORE_OBJS) $(VMX_CAPS_EFI_OBJS)

# The VMX core: launch on every CPU, exit handlers, INIT/SIPI, kicks.
VMX_CORE_SRCS := vmx/launch.c vmx/hide.c vmx/exit.c vmx/requests.c vmx/apic.c vmx/guest.c vmx/gwalk.c \
	vmx/entry_rules.c vmx/sleep.c vmx/resume.c \
	vmx/insn.c vmx/exit_cpuid.c vmx/exit_msr.c vmx/exit_cr.c vmx/exit_xsetbv.c vmx/exit_io.c \
	vmx/exit_ept.c vmx/exit_vmcall.c vmx/xcr0.c vmx/policy.c vmx/msr_policy.c vmx/hooks.c vmx/power.c vmx/step.c \
	vmx/vmx_entry.S
VMX_CORE_OBJS := $(VMX_PURE_CORE_OBJS) \
	$(addprefix $(B)/core/,$(patsubst %.S,%.o,$(VMX_CORE_SRCS:.c=.o)))
CORE_OBJS += $(VMX_CORE_OBJS)
# core.mk names its prerequisites before this fragment is read.
$(CORE_ELF): $(VMX_CORE_OBJS)

UNIT_TESTS += vmx_caps
vmx_caps_SRCS := test/unit/test_vmx_caps.c vmx/caps.c
UNIT_TESTS += vmx_controls
vmx_controls_SRCS := test/unit/test_vmx_controls.c vmx/controls.c vmx/caps.c
UNIT_TESTS += mtrr
mtrr_SRCS := test/unit/test_mtrr.c vmx/mtrr.c
UNIT_TESTS += ept
ept_SRCS := test/unit/test_ept.c vmx/ept.c vmx/mtrr.c
UNIT_TESTS += ept_view
ept_view_SRCS := test/unit/test_ept_view.c vmx/ept_view.c vmx/ept.c
UNIT_TESTS += vmx_insn vmx_gwalk vmx_xcr0
vmx_insn_SRCS := test/unit/test_insn.c vmx/insn.c
vmx_gwalk_SRCS := test/unit/test_gwalk.c vmx/gwalk.c core/boot_info.c vmx/insn.c
vmx_xcr0_SRCS := test/unit/test_xcr0.c vmx/xcr0.c
UNIT_TESTS += vmx_entry_rules
vmx_entry_rules_SRCS := test/unit/test_entry_rules.c vmx/entry_rules.c
UNIT_TESTS += vmx_policy
vmx_policy_SRCS := test/unit/test_vmx_policy.c vmx/policy.c
UNIT_TESTS += msr_policy
msr_policy_SRCS := test/unit/test_msr_policy.c vmx/msr_policy.c vmx/mtrr.c vmx/policy.c vmx/entry_rules.c

# The EFI objects must need nothing from a libc (no memset/memcpy emitted by
# the compiler, no printf): gnu-efi's libefi is all the loader links.
TEST_TARGETS += test-vmx-nolibc
.PHONY: test-vmx-nolibc
test-vmx-nolibc: $(VMX_CAPS_EFI_OBJS) $(VMX_PURE_CORE_OBJS)
	@undef=$$(nm -u $(VMX_CAPS_EFI_OBJS) | grep -v ':$$' | grep . || true); \
	if [ -n "$$undef" ]; then echo "vmx: undefined symbols in EFI objects:"; echo "$$undef"; exit 1; fi; \
	echo "vmx: EFI/core objects need no libc"

# CPUID round trip with and without hv.efi, from one run (two Bochs boots):
# a test (slower under the hypervisor) and a benchmark (docs/benchmarks.md, "VMX").
.PHONY: test-vmx-cost bench-vmx
test-vmx-cost: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/vmx_cost.py
bench-vmx: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/vmx_cost.py --bench
TEST_TARGETS += test-vmx-cost
BENCH_TARGETS += bench-vmx

# KVMI on bare metal (docs/kvmi-hv.md): the engine (kvmi/*.c) and its binding
# over the VMX core and the transport of net/ (kvmi_hv/*.c) are linked into
# the core; the composition root (init/) starts them.
KVMI_HV_SRCS := $(wildcard kvmi_hv/*.c) $(wildcard kvmi/*.c)
KVMI_HV_OBJS := $(addprefix $(B)/core/,$(KVMI_HV_SRCS:.c=.o))
CORE_OBJS += $(KVMI_HV_OBJS)
$(CORE_ELF): $(KVMI_HV_OBJS)
UNIT_TESTS += kvmi_rules
kvmi_rules_SRCS := test/unit/test_kvmi_rules.c kvmi_hv/rules.c

# The KVMI scenario(s): Bochs + the Python introspector over slirp (one Bochs at a time).
.PHONY: test-emu-kvmi
test-emu-kvmi: $(B)/hv.efi $(B)/agent.efi
	python3 test/emu/kvmi_scenarios.py $(KVMI_EMU_ARGS)
TEST_TARGETS += test-emu-kvmi
