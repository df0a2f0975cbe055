# boot: hv.efi, the GNU-EFI loader that carries the core image.

BOOT_OBJS += $(addprefix $(B)/efi/boot/, main.o conf_file.o elf_load.o core_blob.o power_find.o \
	cpus.o key_scrub.o) \
	$(addprefix $(B)/efi/core/, fmt.o config.o boot_info.o log.o log_ring.o log_txq.o cpu_census.o serial.o \
	acpi_power.o) \
	$(VMX_CAPS_SRCS:%.c=$(B)/efi/%.o)

# The blob must be rebuilt whenever the core changes.
$(B)/efi/boot/core_blob.o: boot/core_blob.S $(CORE_ELF)
	@mkdir -p $(dir $@)
	@echo "  AS      $@"
	$(Q)gcc $(EFI_CFLAGS) -DCORE_ELF_PATH='"$(CORE_ELF)"' -c $< -o $@

$(B)/hv.so: $(BOOT_OBJS)
	@echo "  LD      $@"
	$(Q)ld $(EFI_LDFLAGS) -o $@ $(BOOT_OBJS) $(EFI_LIBS)

ALL_TARGETS += $(B)/hv.efi

UNIT_TESTS += boot_elf_load
boot_elf_load_SRCS := test/unit/test_elf_load.c boot/elf_load.c

# The ELF loader test reads the real core image.
$(B)/test/unit/boot_elf_load: | $(CORE_ELF)
