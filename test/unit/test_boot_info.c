/* Unit tests of core/boot_info.c: validation and memory-map normalisation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "boot_info.h"

static struct boot_info *good(void)
{
    struct boot_info *bi = calloc(1, sizeof(*bi));
    bi->magic = BOOT_INFO_MAGIC;
    bi->version = BOOT_INFO_VERSION;
    bi->size = sizeof(*bi);
    bi->region_base = 0x10000000;
    bi->region_size = 64 << 20;
    bi->image_base = 0x10003000;
    bi->image_size = 0x10000;
    bi->ncpus = 2;
    bi->bsp = 0;
    bi->cpus[0] = (struct bi_cpu){0, BI_CPU_BSP | BI_CPU_ENABLED};
    bi->cpus[1] = (struct bi_cpu){1, BI_CPU_ENABLED};
    bi->nmem = 2;
    bi->mem[0] = (struct bi_mem_range){0, 0xa0000, BI_EFI_CONVENTIONAL, 0, 0xf};
    bi->mem[1] = (struct bi_mem_range){0x100000, 0x1000000, BI_EFI_CONVENTIONAL, 0, 0xf};
    return bi;
}

static void test_check(void **state)
{
    (void)state;
    struct boot_info *bi = good();
    assert_null(boot_info_check(bi));
    assert_non_null(boot_info_check(NULL));

    bi->magic ^= 1;
    assert_string_equal(boot_info_check(bi), "bad magic");
    bi->magic ^= 1;
    bi->size--;
    assert_non_null(boot_info_check(bi));
    bi->size++;
    bi->image_base = bi->region_base + bi->region_size - 0x1000; /* image sticks out */
    assert_string_equal(boot_info_check(bi), "core image outside the reserved region");
    bi->image_base = 0x10003000;
    bi->cpus[0].flags = BI_CPU_ENABLED; /* nobody is the BSP */
    assert_string_equal(boot_info_check(bi), "BSP not in the CPU list");
    bi->cpus[0].flags |= BI_CPU_BSP;
    bi->ncpus = BI_MAX_CPUS + 1;
    assert_string_equal(boot_info_check(bi), "bad CPU count");
    bi->ncpus = 2;
    bi->mem[1].base = 0x50000; /* overlaps mem[0] */
    assert_non_null(boot_info_check(bi));
    free(bi);
}

static void test_normalize_sorts_and_merges(void **state)
{
    (void)state;
    struct bi_mem_range m[] = {
        {0x200000, 0x100000, BI_EFI_CONVENTIONAL, 0, 0xf},
        {0x0, 0x100000, BI_EFI_CONVENTIONAL, 0, 0xf},
        {0x100000, 0x100000, BI_EFI_CONVENTIONAL, 0, 0xf},             /* joins both neighbours */
        {0x300000, 0x1000, BI_EFI_ACPI_NVS, 0, 0xf},                   /* other type: stays */
        {0x400000, 0, BI_EFI_CONVENTIONAL, 0, 0xf},                    /* empty: dropped */
        {0x301000, 0x1000, BI_EFI_ACPI_NVS, 0, 0x8000000000000000ull}, /* other attr */
    };
    uint32_t n = bi_mem_normalize(m, 6);
    assert_int_equal(n, 3);
    assert_int_equal(m[0].base, 0);
    assert_int_equal(m[0].size, 0x300000);
    assert_int_equal(m[1].type, BI_EFI_ACPI_NVS);
    assert_int_equal(m[2].base, 0x301000);
    assert_int_equal(bi_mem_top(m, n), 0x302000);
}

static void test_ram_types(void **state)
{
    (void)state;
    assert_true(bi_mem_is_ram(BI_EFI_CONVENTIONAL));
    assert_true(bi_mem_is_ram(BI_EFI_ACPI_NVS));
    assert_true(bi_mem_is_ram(BI_HV_REGION));
    assert_false(bi_mem_is_ram(BI_EFI_MMIO));
    assert_false(bi_mem_is_ram(BI_EFI_MMIO_PORT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_normalize_sorts_and_merges),
        cmocka_unit_test(test_ram_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
