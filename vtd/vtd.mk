# vtd: fragment of the top-level Makefile (see its header).  DMA protection
# with VT-d: the ACPI DMAR parser and table locator (pure, host-tested and
# fuzzed), the second-level tables and the unit programming (vtd.c), and the
# loader's step (dma_boot.c).

VTD_PURE_SRCS := vtd/acpi_find.c vtd/dmar.c vtd/vtd_pt.c
VTD_HW_SRCS   := vtd/vtd.c

# The core maps the NIC's rings and collects faults; the loader programs.
VTD_CORE_OBJS := $(addprefix $(B)/core/,$(patsubst %.c,%.o,vtd/vtd_pt.c $(VTD_HW_SRCS) \
	vtd/dma_core.c))
VTD_BOOT_OBJS := $(addprefix $(B)/efi/,$(patsubst %.c,%.o,$(VTD_PURE_SRCS) $(VTD_HW_SRCS) \
	vtd/dma_boot.c))
CORE_OBJS += $(VTD_CORE_OBJS)
BOOT_OBJS += $(VTD_BOOT_OBJS)
# (the link rules read their prerequisite lists before this fragment)
$(CORE_ELF): $(VTD_CORE_OBJS)
$(B)/hv.so: $(VTD_BOOT_OBJS)

UNIT_TESTS += vtd_dmar vtd_pt
vtd_dmar_SRCS := test/unit/test_dmar.c vtd/dmar.c vtd/acpi_find.c
vtd_pt_SRCS   := test/unit/test_vtd_pt.c vtd/vtd_pt.c

# ---- libFuzzer target: ACPI walk + DMAR parse over arbitrary bytes ----------
$(B)/fuzz/fuzz_dmar: test/fuzz/fuzz_dmar.c vtd/acpi_find.c vtd/dmar.c core/acpi_power.c $(wildcard vtd/*.h) \
		include/acpi_power.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I. -o $@ test/fuzz/fuzz_dmar.c vtd/acpi_find.c vtd/dmar.c \
		core/acpi_power.c

# Runs before test-fuzz's own run (a prerequisite), so `make test-fuzz`
# covers both; a crash, leak or hang fails.  The corpus is kept between runs
# (build/fuzz/dmar/corpus); seeds are written only when it is absent or empty.
FUZZ_DMAR_TIME ?= 10
.PHONY: test-fuzz-dmar
test-fuzz: test-fuzz-dmar
test-fuzz-dmar: $(B)/fuzz/fuzz_dmar | $(DEPS_STAMP)
	@d=$(B)/fuzz/dmar; mkdir -p $$d/corpus; \
		if [ -z "$$(ls -A $$d/corpus)" ]; then python3 test/fuzz/gen_dmar_seeds.py $$d/corpus; fi
	@$(B)/fuzz/fuzz_dmar -max_total_time=$(FUZZ_DMAR_TIME) -timeout=10 -rss_limit_mb=2048 \
		-max_len=8192 -print_final_stats=1 -artifact_prefix=$(B)/fuzz/dmar/ \
		$(B)/fuzz/dmar/corpus >$(B)/fuzz/dmar/last.log 2>&1; \
		rc=$$?; tail -6 $(B)/fuzz/dmar/last.log; \
		if [ $$rc != 0 ]; then echo "test-fuzz-dmar: FAILED (see $(B)/fuzz/dmar/last.log)"; exit 1; fi
	@echo "test-fuzz-dmar: no crash, leak or hang in $(FUZZ_DMAR_TIME) s"
include test/dma/dma.mk
