# Every build, test and run target of the project.
#
# Each part keeps its own fragment (<dir>/<dir>.mk) that appends to the lists
# below; this file only holds the toolchains, the pattern rules and the
# top-level targets.  Three kinds of objects are built from the same tree:
#
#   build/core/  freestanding code that runs in VMX root (newlib, no SSE)
#   build/efi/   the GNU-EFI loader (boot/) and the guest test agent
#   build/host/  host tools and unit tests (ASan + UBSan)

B        := build
TP       := $(B)/third_party
NEWLIB   := $(TP)/newlib/install/x86_64-elf
LWIP_DIR := $(TP)/lwip
GCCINC   := $(shell gcc -print-file-name=include)

# `make V=1` shows full command lines.
Q := $(if $(V),,@)
.DEFAULT_GOAL := all
.SUFFIXES:
.DELETE_ON_ERROR:

# ---- dependency bootstrap -------------------------------------------------
DEPS_STAMP := $(B)/.deps-ok
$(DEPS_STAMP): scripts/deps.sh
	@bash scripts/deps.sh
	@touch $@
.PHONY: deps
deps:
	@bash scripts/deps.sh
	@mkdir -p $(B) && touch $(DEPS_STAMP)

# Third-party source lists exist only once the dependency step has unpacked
# the sources, so they cannot be globbed while make reads this file on a fresh
# clone.  They live in a generated makefile that depends on the stamp: make
# runs the dependency step to remake it and then reads every makefile again
# (GNU make manual, "How Makefiles Are Remade"), so the first `make` of a
# fresh clone sees the whole list.  Goals that build nothing skip it.
TP_SRCS_MK := $(B)/third_party-srcs.mk
$(TP_SRCS_MK): $(DEPS_STAMP) scripts/tp-srcs.sh
	@bash scripts/tp-srcs.sh $(LWIP_DIR) >$@.tmp && mv $@.tmp $@
NO_BUILD_GOALS := clean format format-check help
ifneq ($(filter-out $(NO_BUILD_GOALS),$(or $(MAKECMDGOALS),all)),)
include $(TP_SRCS_MK)
endif

# ---- toolchains -----------------------------------------------------------
WARN := -std=c11 -Wall -Wextra -Werror

# VMX-root code: no red zone (an NMI or exit may land on the stack at any
# time), no SSE/x87 (guest FPU state is never saved by us), PIE so the
# loader can place the image anywhere in the reserved region.
CORE_CC     := gcc
CORE_CFLAGS := $(WARN) -O2 -g -ffreestanding -mno-red-zone -mgeneral-regs-only \
	-fno-stack-protector -fpie -ffunction-sections -fdata-sections \
	-fno-asynchronous-unwind-tables -fno-omit-frame-pointer -Wa,--noexecstack \
	-nostdinc -isystem $(NEWLIB)/include -isystem $(GCCINC) -Iinclude -I. -DHV_CORE
CORE_LDFLAGS := -nostdlib -static-pie -Wl,--gc-sections -Wl,-z,noexecstack \
	-Wl,-T,linker.ld -Wl,--no-dynamic-linker

# GNU-EFI applications (boot/ and test/guest/).  MS ABI so that firmware
# calls need no wrapper.
EFI_INC    := /usr/include/efi
EFI_LIB    := /usr/lib
EFI_CFLAGS := $(WARN) -O2 -g -ffreestanding -fpic -fshort-wchar -mno-red-zone \
	-mgeneral-regs-only -fno-stack-protector -fno-strict-aliasing \
	-maccumulate-outgoing-args -DGNU_EFI_USE_MS_ABI -DHV_EFI \
	-I$(EFI_INC) -I$(EFI_INC)/x86_64 -I$(EFI_INC)/protocol -Iinclude -I.
EFI_LDFLAGS := -nostdlib -znocombreloc -shared -Bsymbolic \
	-T $(EFI_LIB)/elf_x86_64_efi.lds $(EFI_LIB)/crt0-efi-x86_64.o
EFI_LIBS    := -L$(EFI_LIB) -lefi -lgnuefi

# Host code: unit tests and tools, always under the sanitizers.
HOST_CC     := gcc
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=all
HOST_CFLAGS := $(WARN) -O1 -g -fno-omit-frame-pointer $(SAN) -Iinclude -I. -Itest/unit -DHV_HOST
HOST_LDLIBS := -lcmocka -lpthread

# ---- lists the fragments append to ---------------------------------------
CORE_OBJS    :=   # objects of the core image (build/core/...)
BOOT_OBJS    :=   # objects of hv.efi (build/efi/...)
ALL_TARGETS  :=   # what `make` builds
UNIT_TESTS   :=   # names; NAME_SRCS lists the host sources of each
TEST_TARGETS :=   # phony targets `make test` runs, in order
BENCH_TARGETS :=  # phony targets `make bench` runs
LONG_TEST_TARGETS := # slow scenarios (Linux guests): `make test-long`

include core/core.mk
include vmx/vmx.mk
include boot/boot.mk
include kvmi/kvmi.mk
include net/net.mk
include vtd/vtd.mk
include client/client.mk
include test/test.mk

# Style is part of the suite: every tracked C file as .clang-format says.
TEST_TARGETS += format-check

# The dependency rule of docs/architecture.md ("Layers"): no folder of the
# core image includes a header of, or uses a symbol of, a folder above it.
TEST_TARGETS += layer-check
.PHONY: layer-check
layer-check: $(CORE_ELF)
	@python3 scripts/check-layers.py $(CORE_OBJS)

# ---- pattern rules --------------------------------------------------------
$(B)/core/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CORE_CC) $(CORE_CFLAGS) -MMD -MP -c $< -o $@
$(B)/core/%.o: %.S | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  AS      $@"
	$(Q)$(CORE_CC) $(CORE_CFLAGS) -MMD -MP -c $< -o $@
$(B)/efi/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)gcc $(EFI_CFLAGS) -MMD -MP -c $< -o $@
$(B)/efi/%.o: %.S | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  AS      $@"
	$(Q)gcc $(EFI_CFLAGS) -MMD -MP -c $< -o $@
$(B)/host/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(HOST_CC) $(HOST_CFLAGS) -MMD -MP -c $< -o $@
$(B)/host/%.o: %.S | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  HOSTAS  $@"
	$(Q)$(HOST_CC) $(HOST_CFLAGS) -MMD -MP -c $< -o $@

# An EFI application from an ELF shared object (GNU-EFI's recipe).
$(B)/%.efi: $(B)/%.so
	@echo "  EFI     $@"
	$(Q)objcopy -j .text -j .sdata -j .data -j .rodata -j .dynamic -j .dynsym -j .rel \
		-j .rela -j .rel.* -j .rela.* -j .reloc --target=efi-app-x86_64 \
		--subsystem=10 $< $@

# NAME_VARIANT := host-test compiles a test's sources for the test build
# (test/hooks/hooks.mk).
define unit_test_rule
$(B)/test/unit/$(1): $(addprefix $(B)/$(or $($(1)_VARIANT),host)/,$(patsubst %.S,%.o,$($(1)_SRCS:.c=.o)))
	@mkdir -p $$(dir $$@)
	@echo "  LD      $$@"
	$(Q)$(HOST_CC) $(HOST_CFLAGS) -o $$@ $$^ $(HOST_LDLIBS)
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_test_rule,$(t))))
UNIT_BINS := $(addprefix $(B)/test/unit/,$(UNIT_TESTS))

# ---- top-level targets ----------------------------------------------------
.PHONY: all test test-long bench unit format format-check clean run
all: $(DEPS_STAMP) $(ALL_TARGETS)

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do \
		echo "== $$t"; $$t || fail=1; done; \
	if [ $$fail = 0 ]; then echo "unit: all passed"; else echo "unit: FAILED"; exit 1; fi

# Runs every test layer, as many at once as the machine has cores
# (TEST_JOBS=1 for one after the other), and keeps going after a failure so
# the summary names every layer that failed (scripts/run_layers.py).
test: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory all
	@python3 scripts/run_layers.py unit $(TEST_TARGETS)

# The slow scenarios, outside `make test` and CI (see each target's fragment).
test-long: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory all
	@fail=""; for t in $(LONG_TEST_TARGETS); do \
		echo "==== $$t"; \
		$(MAKE) --no-print-directory $$t || fail="$$fail $$t"; done; \
	echo; if [ -z "$$fail" ]; then echo "make test-long: every layer passed"; \
	else echo "make test-long: FAILED:$$fail"; exit 1; fi

bench: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory all
	@for t in $(BENCH_TARGETS); do $(MAKE) --no-print-directory $$t || exit 1; done

# The main job: boot the hypervisor with a guest and attach an introspector.
# GUEST=linux (default): Debian's Linux, introspected (scripts/demo_linux.py);
# GUEST=agent: the UEFI test agent, faster (scripts/demo.sh).
GUEST ?= linux
ifeq ($(filter linux agent,$(GUEST)),)
$(error GUEST=$(GUEST): use GUEST=linux (the default) or GUEST=agent)
endif
run: all $(if $(filter linux,$(GUEST)),linux-guest)
	$(if $(filter linux,$(GUEST)),$(PYTHON) scripts/demo_linux.py,bash scripts/demo.sh)

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h')
format:
	clang-format -i $(FORMAT_SRCS)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRCS) && echo "format: clean"

clean:
	rm -rf $(B)/core $(B)/efi $(B)/host $(B)/test $(B)/*.efi $(B)/*.so $(B)/*.elf

-include $(shell find $(B) -name '*.d' 2>/dev/null)
