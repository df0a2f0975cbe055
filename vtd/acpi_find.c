/*
 * acpi_find.c - RSDP -> XSDT/RSDT -> table by signature (ACPI 6.5 5.2.5
 * Root System Description Pointer, 5.2.7 RSDT, 5.2.8 XSDT), validating as
 * described in acpi_find.h.
 */
#include "acpi_find.h"

uint8_t acpi_sum(const uint8_t *p, uint64_t n)
{
    uint8_t s = 0;
    for (uint64_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static bool sig_is(const uint8_t *p, const char *sig)
{
    return p[0] == (uint8_t)sig[0] && p[1] == (uint8_t)sig[1] && p[2] == (uint8_t)sig[2] &&
           p[3] == (uint8_t)sig[3];
}

/* Maps a whole table at phys after checking its header: NULL if bad. */
static const uint8_t *map_table(acpi_map_fn map, void *ctx, uint64_t phys, uint32_t *len)
{
    const uint8_t *h = map(ctx, phys, ACPI_HDR_LEN);
    if (!h)
        return NULL;
    uint32_t n = rd32(h + 4);
    if (n < ACPI_HDR_LEN || n > ACPI_MAX_TABLE)
        return NULL;
    const uint8_t *t = map(ctx, phys, n);
    if (!t || acpi_sum(t, n) != 0)
        return NULL;
    *len = n;
    return t;
}

const char *acpi_find(acpi_map_fn map, void *ctx, uint64_t rsdp, const char sig[4],
                      struct acpi_found *out)
{
    if (!rsdp)
        return "no RSDP";
    const uint8_t *r = map(ctx, rsdp, 20);
    if (!r || !sig_is(r, "RSD ") || !sig_is(r + 4, "PTR "))
        return "no RSDP signature";
    if (acpi_sum(r, 20) != 0)
        return "RSDP checksum";
    uint64_t root = 0;
    bool xsdt = false;
    if (r[15] >= 2) {
        const uint8_t *r2 = map(ctx, rsdp, 36);
        if (!r2)
            return "RSDP truncated";
        uint32_t rlen = rd32(r2 + 20);
        if (rlen < 36 || rlen > 4096 || !(r2 = map(ctx, rsdp, rlen)) || acpi_sum(r2, rlen) != 0)
            return "RSDP extended checksum";
        root = rd64(r2 + 24);
        xsdt = root != 0;
    }
    if (!root)
        root = rd32(r + 16);
    if (!root)
        return "no XSDT or RSDT";
    uint32_t rootlen;
    const uint8_t *t = map_table(map, ctx, root, &rootlen);
    if (!t || !sig_is(t, xsdt ? "XSDT" : "RSDT"))
        return xsdt ? "XSDT invalid" : "RSDT invalid";
    uint32_t esz = xsdt ? 8 : 4, n = (rootlen - ACPI_HDR_LEN) / esz;
    bool bad_match = false;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = t + ACPI_HDR_LEN + (uint64_t)i * esz;
        uint64_t phys = xsdt ? rd64(e) : rd32(e);
        if (!phys)
            continue;
        const uint8_t *h = map(ctx, phys, ACPI_HDR_LEN);
        if (!h || !sig_is(h, sig))
            continue;
        uint32_t len;
        const uint8_t *d = map_table(map, ctx, phys, &len);
        if (!d) {
            bad_match = true;
            continue;
        }
        out->phys = phys;
        out->len = len;
        out->data = d;
        out->root = root;
        out->index = i;
        out->xsdt = xsdt;
        return 0;
    }
    return bad_match ? "table length or checksum invalid" : "not found";
}
