# test/hooks: build/hv-test.efi, the test build (include/test_hooks.h).  The
# product, build/hv.efi, has no test hook; the few objects that hold one
# are compiled again with HV_TEST_HOOKS, and hv-test.efi is hv.efi with
# those objects swapped in (its own core image, core-test.elf).  Scenarios
# whose hv.conf asks for a hook (debug_hypercalls, s3_simulate) boot it
# (test/emu/run.py); every other one boots the product.
# Included from test/test.mk, after the core's and the loader's fragments.

TEST_HOOK_CORE_SRCS := core/config.c vmx/exit_vmcall.c vmx/exit_io.c vmx/launch.c vmx/sleep.c
TEST_HOOK_EFI_SRCS  := core/config.c

$(B)/core-test/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CORE_CC) $(CORE_CFLAGS) -DHV_TEST_HOOKS -MMD -MP -c $< -o $@
$(B)/efi-test/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)gcc $(EFI_CFLAGS) -DHV_TEST_HOOKS -MMD -MP -c $< -o $@
$(B)/host-test/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(HOST_CC) $(HOST_CFLAGS) -DHV_TEST_HOOKS -MMD -MP -c $< -o $@

CORE_TEST_ELF := $(B)/core-test.elf
CORE_TEST_OBJS := $(filter-out $(TEST_HOOK_CORE_SRCS:%.c=$(B)/core/%.o),$(CORE_OBJS)) \
	$(TEST_HOOK_CORE_SRCS:%.c=$(B)/core-test/%.o)
$(CORE_TEST_ELF): $(CORE_TEST_OBJS) linker.ld
	@echo "  LD      $@"
	$(Q)$(CORE_CC) $(CORE_LDFLAGS) -o $@ $(CORE_TEST_OBJS) $(NEWLIB)/lib/libc.a
	@bash scripts/check-no-fpu.sh $@

$(B)/efi-test/boot/core_blob.o: boot/core_blob.S $(CORE_TEST_ELF)
	@mkdir -p $(dir $@)
	@echo "  AS      $@"
	$(Q)gcc $(EFI_CFLAGS) -DCORE_ELF_PATH='"$(CORE_TEST_ELF)"' -c $< -o $@

BOOT_TEST_OBJS := $(filter-out $(B)/efi/boot/core_blob.o $(TEST_HOOK_EFI_SRCS:%.c=$(B)/efi/%.o), \
	$(BOOT_OBJS)) $(B)/efi-test/boot/core_blob.o $(TEST_HOOK_EFI_SRCS:%.c=$(B)/efi-test/%.o)
$(B)/hv-test.so: $(BOOT_TEST_OBJS)
	@echo "  LD      $@"
	$(Q)ld $(EFI_LDFLAGS) -o $@ $(BOOT_TEST_OBJS) $(EFI_LIBS)
ALL_TARGETS += $(B)/hv-test.efi

# The product carries none of the hooks, the test build all of them.
.PHONY: product-check
product-check: $(CORE_ELF) $(CORE_TEST_ELF) $(B)/hv.efi
	@bash scripts/check-product.sh $(CORE_ELF) $(CORE_TEST_ELF) $(B)/hv.efi
TEST_TARGETS += product-check

# The configuration parser in both builds (test/unit/test_config.c says what
# each accepts).
UNIT_TESTS += core_config_hooks
core_config_hooks_SRCS := test/unit/test_config.c core/config.c
core_config_hooks_VARIANT := host-test

# Every emulator target boots the test build for its scenarios with a hook.
test-linux test-linux-stub test-linux-power test-linux-power-long test-emu-net bench-net \
test-emu test-emu-hostile test-emu-power test-emu-views bench-events test-emu-secret test-dma \
test-vmx-cost bench-vmx test-emu-kvmi: $(B)/hv-test.efi
