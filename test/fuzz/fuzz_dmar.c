/*
 * fuzz_dmar.c - libFuzzer target over the loader's ACPI path: the input is
 * physical memory with the RSDP at address 0; acpi_find() walks it to the
 * DMAR and dmar_parse() parses what it finds, the input is also parsed
 * directly as a DMAR, and acpi_hide() rewrites a copy.  Any out-of-bounds read, overflow or hang is
 * a bug.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vtd/acpi_find.h"
#include "vtd/dmar.h"

struct buf {
    const uint8_t *p;
    size_t n;
};

static const uint8_t *map(void *ctx, uint64_t phys, uint64_t len)
{
    const struct buf *b = ctx;
    if (phys > b->n || len > b->n - phys)
        return NULL;
    return b->p + phys;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dmar_info d;
    struct buf b = {data, size};
    struct acpi_found f;
    /* address 0 means "no RSDP": the image's RSDP sits at 16 */
    if (!acpi_find(map, &b, 16, "DMAR", &f)) {
        if (f.phys + f.len > size || f.data != data + f.phys)
            __builtin_trap();
        if (!dmar_parse(f.data, f.len, &d) && (d.ndrhd == 0 || d.ndrhd > DMAR_MAX_DRHD))
            __builtin_trap();
    }
    if (size <= UINT32_MAX)
        dmar_parse(data, (uint32_t)size, &d);
    /* and the loader's rewrite of the roots, on a copy */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy) {
        memcpy(copy, data, size);
        struct buf c = {copy, size};
        acpi_hide(map, &c, 16, "DMAR", "HVDM");
        free(copy);
    }
    return 0;
}
