# test/linux: the Linux test guest (Debian's kernel + a busybox initramfs,
# test/linux/mkguest.sh), the ACPI table installer it needs under Bochs
# (build/linux/acpitab.efi), the fast loader (build/linux/lxboot.efi with the
# kernel unpacked by test/linux/mklxk.py), and `make test-linux`
# (test/emu/linux_run.py).
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

.PHONY: linux-guest test-linux test-linux-stub
linux-guest: $(LINUX_DIR)/initrd.img $(LINUX_DIR)/vmlinuz.efi $(LINUX_DIR)/acpitab.efi \
		$(LINUX_DIR)/lxboot.efi $(LINUX_DIR)/vmlinux.lxk

# The four Linux runs, one of them (under the hypervisor, 2 CPUs) through the
# kernel's EFI stub and the others through lxboot.efi: about 8 minutes on 2
# host cores (docs/emulators.md, "Measured times"), so CI runs them.
test-linux: $(B)/hv.efi linux-guest
	python3 test/emu/linux_run.py $(LINUX_ARGS)

# The same four runs, every kernel started by its own EFI stub (each boot
# spends 100-150 s decompressing XZ): `make test-long`.
test-linux-stub: $(B)/hv.efi linux-guest
	python3 test/emu/linux_run.py --boot stub $(LINUX_ARGS)

# The packer's refusals and its layout, and Debian's kernel round-tripped
# through it (host only, seconds).
.PHONY: test-lxk
test-lxk: $(LINUX_DIR)/vmlinuz.efi
	LXK_KERNEL=$(LINUX_DIR)/vmlinuz.efi $(PYTEST) test/linux/test_mklxk.py

# The client's BTF, kallsyms and ps tests read this kernel too (client.mk).
test-client: $(LINUX_DIR)/vmlinuz.efi

TEST_TARGETS += test-lxk test-linux

# Linux's own power-off, reboot and suspend under the hypervisor, introspected
# (test/emu/linux_power.py; one Linux boot per ending): make test runs the
# refused S3 followed by the ACPI power-off with a tool that closes, and the
# triple-fault reboot; make test-long the other paths.
.PHONY: test-linux-power test-linux-power-long
test-linux-power: $(B)/hv.efi linux-guest
	python3 test/emu/linux_power.py --set short $(LINUX_POWER_ARGS)
test-linux-power-long: $(B)/hv.efi linux-guest
	python3 test/emu/linux_power.py --set long $(LINUX_POWER_ARGS)
TEST_TARGETS += test-linux-power
LONG_TEST_TARGETS += test-linux-power-long
LONG_TEST_TARGETS += test-linux-stub
