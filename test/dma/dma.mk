# test/dma: hv-dmatest.efi, the loader built with HV_DMATEST (no VT-x check,
# returns to the firmware after the DMA-protection step, test/dma/dmatest.c)
# and the QEMU scenario where the agent aims emulated DMA at the region.
# Included from vtd/vtd.mk.

# A test build: its configuration parser is the test build's (test/hooks/hooks.mk), which
# takes the scenarios' debug_hypercalls = yes.
DMATEST_OBJS := $(filter-out $(B)/efi/boot/main.o $(B)/efi/core/config.o,$(BOOT_OBJS)) \
	$(B)/efi-dmatest/boot/main.o $(B)/efi-dmatest/test/dma/dmatest.o $(B)/efi-test/core/config.o
$(B)/efi-dmatest/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)gcc $(EFI_CFLAGS) -DHV_DMATEST -Itest/dma -MMD -MP -c $< -o $@
$(B)/hv-dmatest.so: $(DMATEST_OBJS)
	@echo "  LD      $@"
	$(Q)ld $(EFI_LDFLAGS) -o $@ $(DMATEST_OBJS) $(EFI_LIBS)
ALL_TARGETS += $(B)/hv-dmatest.efi

# The agent reads the DMAR with the loader's own parser and the faults with
# the collector the core runs (probe_dma.c).
AGENT_VTD_OBJS := $(addprefix $(B)/efi/vtd/,acpi_find.o dmar.o vtd.o vtd_pt.o)
$(B)/agent.so: $(AGENT_VTD_OBJS)
$(B)/efi/test/guest/probe_dma.o: EFI_CFLAGS += -Itest/dma

# The QEMU DMA scenarios and the Bochs dma_protection ones (test/emu/dma_scenarios.py).
.PHONY: test-dma
test-dma: $(B)/hv.efi $(B)/hv-dmatest.efi $(B)/agent.efi linux-guest
	python3 test/emu/dma_scenarios.py $(DMA_EMU_ARGS)
TEST_TARGETS += test-dma
