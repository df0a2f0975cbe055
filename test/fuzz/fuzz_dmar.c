/*
 * fuzz_dmar.c - libFuzzer target over the loader's ACPI path: the input is
 * physical memory with the RSDP at address 0; acpi_find() walks it to the
 * DMAR and dmar_parse() parses what it finds, the input is also parsed
 * directly as a DMAR, and acpi_hide() rewrites a copy.  The same walk finds
 * the FADT and its DSDT for acpi_power_parse() (the guest's power ports and
 * \_Sx values), which also parses the input directly, and power_classify()
 * judges writes to the ports it found; the input is also read as a FACS
 * (acpi_facs_wake, the OS's waking vector).  Any out-of-bounds read, overflow or
 * hang is a bug.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acpi_power.h"
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
    struct acpi_power pw;
    if (!acpi_find(map, &b, 16, "FACP", &f)) {
        uint64_t at = acpi_fadt_dsdt(f.data, f.len);
        const uint8_t *dsdt = at < size ? data + at : NULL;
        if (!acpi_power_parse(f.data, f.len, dsdt, dsdt ? size - at : 0, &pw)) {
            uint16_t ports[12];
            unsigned n;
            power_ports(&pw, ports, &n);
            if (n > 12)
                __builtin_trap();
            for (unsigned i = 0; i < n; i++)
                for (unsigned s = 1; s <= 4; s *= 2) {
                    unsigned shift;
                    (void)power_action_name(power_classify(&pw, ports[i], s, 0x2000u * i, 0));
                    if (power_wak_shift(&pw, ports[i], s, &shift) && shift > 24)
                        __builtin_trap();
                }
            /* A memory-space reset register: stores of every width around it. */
            for (unsigned s = 1; s <= 8; s *= 2)
                for (uint64_t d = 0; d < 8; d++)
                    (void)power_classify_mem(&pw, pw.reset_mem - d, s, ~0ull);
        }
    }
    acpi_power_parse(data, size, data, size, &pw);
    /* The FACS the guest writes its waking vectors into (vmx/sleep.c). */
    struct acpi_wake wk;
    if (!acpi_facs_wake(data, size, &wk) &&
        (wk.mode == WAKE_REAL ? wk.rip > 0xf : wk.rip >> 32 != 0))
        __builtin_trap();
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
