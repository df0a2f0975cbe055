# test/wake: waketest.efi and `make test-wake`, a real S3 round trip through
# the wake trampoline (core/wake.c, core/wake_blob.S) under QEMU TCG with
# OVMF, judged by test/wake/wake_run.py (docs/wake.md).  Included from
# test/test.mk.

WAKETEST_OBJS := $(B)/efi/test/wake/waketest.o $(B)/efi/core/wake.o $(B)/efi/core/wake_blob.o \
	$(B)/efi/core/acpi_power.o $(B)/efi/vtd/acpi_find.o

$(B)/test/wake/waketest.so: $(WAKETEST_OBJS)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)ld $(EFI_LDFLAGS) $^ -o $@ $(EFI_LIBS)

ALL_TARGETS += $(B)/test/wake/waketest.efi

.PHONY: test-wake
test-wake: $(B)/test/wake/waketest.efi
	python3 test/wake/wake_run.py $(WAKE_ARGS)
TEST_TARGETS += test-wake
