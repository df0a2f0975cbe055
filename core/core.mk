# core: the core image (per-CPU data, page allocator, log, config, boot info).

# Pure modules shared by the core, the EFI loader and host tests.
CORE_PURE_SRCS := core/fmt.c core/config.c core/boot_info.c core/log_ring.c core/log_txq.c core/cpu_census.c core/acpi_power.c core/wake.c

CORE_OBJS += $(addprefix $(B)/core/,$(CORE_PURE_SRCS:.c=.o)) \
	$(addprefix $(B)/core/core/, isr.o segs.o globals.o cpu_tables.o fw_state.o paging.o \
	trap.o panic.o log.o serial.o page_alloc.o libc_stubs.o wake_blob.o) \
	$(addprefix $(B)/core/init/, entry.o main.o)

CORE_ELF := $(B)/core.elf

$(CORE_ELF): $(CORE_OBJS) linker.ld
	@echo "  LD      $@"
	$(Q)$(CORE_CC) $(CORE_LDFLAGS) -o $@ $(CORE_OBJS) $(NEWLIB)/lib/libc.a
	@bash scripts/check-no-fpu.sh $@

ALL_TARGETS += $(CORE_ELF)

UNIT_TESTS += core_fmt core_config core_boot_info core_log_ring core_log_txq core_cpu_census core_page_alloc core_acpi_power core_wake core_panic
core_wake_SRCS       := test/unit/test_wake.c core/wake.c core/wake_blob.S
core_panic_SRCS      := test/unit/test_panic.c core/panic.c core/fmt.c
core_acpi_power_SRCS := test/unit/test_acpi_power.c core/acpi_power.c
core_fmt_SRCS        := test/unit/test_fmt.c core/fmt.c
core_config_SRCS     := test/unit/test_config.c core/config.c
core_boot_info_SRCS  := test/unit/test_boot_info.c core/boot_info.c
core_log_ring_SRCS   := test/unit/test_log_ring.c core/log_ring.c
core_log_txq_SRCS    := test/unit/test_log_txq.c core/log_txq.c core/fmt.c
core_cpu_census_SRCS := test/unit/test_cpu_census.c core/cpu_census.c
core_page_alloc_SRCS := test/unit/test_page_alloc.c core/page_alloc.c
