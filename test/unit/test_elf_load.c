/*
 * Unit tests of boot/elf_load.c on the real core image (build/core.elf,
 * run from the top of the tree) and on corrupted copies of it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "boot/elf_load.h"

static uint8_t *elf;
static size_t elf_len;

static int load_file(void **state)
{
    (void)state;
    FILE *f = fopen("build/core.elf", "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    elf_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    elf = malloc(elf_len);
    size_t got = fread(elf, 1, elf_len, f);
    fclose(f);
    return got == elf_len ? 0 : -1;
}

static int free_file(void **state)
{
    (void)state;
    free(elf);
    return 0;
}

static const Elf64_Shdr *section(const uint8_t *e, const char *name)
{
    const Elf64_Ehdr *h = (const void *)e;
    const Elf64_Shdr *sh = (const void *)(e + h->e_shoff);
    const char *names = (const char *)e + sh[h->e_shstrndx].sh_offset;
    for (int i = 0; i < h->e_shnum; i++)
        if (!strcmp(names + sh[i].sh_name, name))
            return &sh[i];
    return NULL;
}

static void test_loads_and_relocates(void **state)
{
    (void)state;
    const char *why = NULL;
    uint64_t size = elf_image_size(elf, elf_len, &why);
    assert_null(why);
    assert_true(size > 0 && size % 4096 == 0);
    uint8_t *dest = aligned_alloc(4096, size);
    memset(dest, 0xcc, size);
    uint64_t entry = 0;
    assert_null(elf_load(elf, elf_len, dest, size, &entry));
    const Elf64_Ehdr *h = (const void *)elf;
    assert_int_equal(entry, (uint64_t)(uintptr_t)dest + h->e_entry);

    /* every R_X86_64_RELATIVE slot holds base + addend */
    const Elf64_Shdr *rs = section(elf, ".rela.dyn");
    assert_non_null(rs);
    const Elf64_Rela *r = (const void *)(elf + rs->sh_offset);
    size_t n = rs->sh_size / sizeof(*r);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, dest + r[i].r_offset, 8);
        assert_int_equal(v, (uint64_t)(uintptr_t)dest + (uint64_t)r[i].r_addend);
    }
    /* .bss is zero-filled even though dest was dirty */
    const Elf64_Shdr *bss = section(elf, ".bss");
    assert_non_null(bss);
    for (uint64_t i = 0; i < bss->sh_size; i++)
        assert_int_equal(dest[bss->sh_addr + i], 0);
    free(dest);
}

static void test_refuses_corruption(void **state)
{
    (void)state;
    uint8_t *copy = malloc(elf_len);
    uint8_t *dest = aligned_alloc(4096, 1 << 20);
    uint64_t entry;
    const char *why = NULL;

    assert_int_equal(elf_image_size(elf, 10, &why), 0); /* truncated header */
    assert_non_null(why);

    memcpy(copy, elf, elf_len);
    copy[0] = 'X';
    assert_string_equal(elf_load(copy, elf_len, dest, 1 << 20, &entry), "not an ELF file");

    memcpy(copy, elf, elf_len);
    ((Elf64_Ehdr *)copy)->e_machine = EM_AARCH64;
    assert_non_null(elf_load(copy, elf_len, dest, 1 << 20, &entry));

    memcpy(copy, elf, elf_len);
    ((Elf64_Ehdr *)copy)->e_phoff = elf_len - 8; /* table past the end */
    assert_string_equal(elf_load(copy, elf_len, dest, 1 << 20, &entry), "bad program header table");

    uint64_t size = elf_image_size(elf, elf_len, &why);
    assert_string_equal(elf_load(elf, elf_len, dest, size - 4096, &entry),
                        "destination too small for the image");

    /* an absolute (R_X86_64_64) relocation must be refused, not half-applied */
    memcpy(copy, elf, elf_len);
    const Elf64_Shdr *rs = section(copy, ".rela.dyn");
    Elf64_Rela *r = (void *)(copy + rs->sh_offset);
    r[0].r_info = ELF64_R_INFO(0, R_X86_64_64);
    assert_string_equal(elf_load(copy, elf_len, dest, 1 << 20, &entry),
                        "relocation type other than R_X86_64_RELATIVE");
    free(copy);
    free(dest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_and_relocates),
        cmocka_unit_test(test_refuses_corruption),
    };
    return cmocka_run_group_tests(tests, load_file, free_file);
}
