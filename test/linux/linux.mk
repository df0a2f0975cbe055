# test/linux: the Linux test guest (Debian's kernel + a busybox initramfs,
# test/linux/mkguest.sh), the ACPI table installer it needs under Bochs
# (build/linux/acpitab.efi), and `make test-linux` (test/emu/linux_run.py).
# Included from test/test.mk.  LINUX_ARGS passes options to the runner, e.g.
#   make test-linux LINUX_ARGS="-k bare"   or   LINUX_ARGS="--e1000 hidden"

LINUX_DIR := $(B)/linux

# mkguest.sh downloads the kernel once (build/linux/deb/) and rebuilds the
# initramfs when init.sh or the script changes (a grouped target: either file
# missing reruns it).
$(LINUX_DIR)/initrd.img $(LINUX_DIR)/vmlinuz.efi &: test/linux/mkguest.sh test/linux/init.sh \
		test/linux/diagd.c \
		| $(DEPS_STAMP)
	@echo "  LINUX   $(LINUX_DIR)"
	$(Q)test/linux/mkguest.sh $(LINUX_DIR)

$(LINUX_DIR)/acpitab.so: $(B)/efi/test/linux/acpitab.o
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)ld $(EFI_LDFLAGS) $^ -o $@ $(EFI_LIBS)

# The fast path past the EFI stub's XZ decompression (test/linux/lxboot.c):
# the kernel unpacked once here, and the loader that enters it.
$(LINUX_DIR)/lxboot.so: $(B)/efi/test/linux/lxboot.o
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)ld $(EFI_LDFLAGS) $^ -o $@ $(EFI_LIBS)

$(LINUX_DIR)/vmlinux.lxk: $(LINUX_DIR)/vmlinuz.efi test/linux/mklxk.py
	@echo "  LXK     $@"
	$(Q)python3 test/linux/mklxk.py $< $@ >/dev/null

.PHONY: linux-guest test-linux
linux-guest: $(LINUX_DIR)/initrd.img $(LINUX_DIR)/vmlinuz.efi $(LINUX_DIR)/acpitab.efi \
		$(LINUX_DIR)/lxboot.efi $(LINUX_DIR)/vmlinux.lxk

test-linux: $(B)/hv.efi linux-guest
	python3 test/emu/linux_run.py $(LINUX_ARGS)

# About 12 minutes on 2 host cores (docs/emulators.md, "Measured times"):
# kept out of `make test` (and so out of CI's 30-minute budget) and run by
# `make test-long`.
LONG_TEST_TARGETS += test-linux
