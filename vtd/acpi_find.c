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

/* Removes the root's entries pointing to a `sig` table; renames those tables. */
static int strip_root(acpi_map_fn map, void *ctx, uint64_t root, bool xsdt, const char *sig,
                      const char *newsig)
{
    uint32_t len;
    uint8_t *t = (uint8_t *)(uintptr_t)map_table(map, ctx, root, &len);
    if (!t || !sig_is(t, xsdt ? "XSDT" : "RSDT"))
        return -1;
    uint32_t esz = xsdt ? 8 : 4, n = (len - ACPI_HDR_LEN) / esz, kept = 0;
    int removed = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *e = t + ACPI_HDR_LEN + (uint64_t)i * esz;
        uint64_t phys = xsdt ? rd64(e) : rd32(e);
        const uint8_t *h = phys ? map(ctx, phys, ACPI_HDR_LEN) : NULL;
        if (h && (sig_is(h, sig) || sig_is(h, newsig))) {
            uint32_t tlen;
            uint8_t *tbl = (uint8_t *)(uintptr_t)map_table(map, ctx, phys, &tlen);
            if (tbl && sig_is(tbl, sig)) {
                for (int k = 0; k < 4; k++)
                    tbl[k] = (uint8_t)newsig[k];
                tbl[9] = 0;
                tbl[9] = (uint8_t)(0x100 - acpi_sum(tbl, tlen));
            }
            removed++;
            continue;
        }
        uint8_t *dst = t + ACPI_HDR_LEN + (uint64_t)kept++ * esz;
        for (uint32_t k = 0; k < esz; k++)
            dst[k] = e[k];
    }
    len = ACPI_HDR_LEN + kept * esz + (len - ACPI_HDR_LEN) % esz;
    t[4] = (uint8_t)len;
    t[5] = (uint8_t)(len >> 8);
    t[6] = (uint8_t)(len >> 16);
    t[7] = (uint8_t)(len >> 24);
    t[9] = 0;
    t[9] = (uint8_t)(0x100 - acpi_sum(t, len));
    return removed;
}

int acpi_hide(acpi_map_fn map, void *ctx, uint64_t rsdp, const char sig[4], const char newsig[4])
{
    const uint8_t *r = rsdp ? map(ctx, rsdp, 36) : NULL;
    if (!r || !sig_is(r, "RSD ") || !sig_is(r + 4, "PTR ") || acpi_sum(r, 20) != 0)
        return -1;
    int total = 0, n;
    uint64_t xsdt = r[15] >= 2 ? rd64(r + 24) : 0, rsdt = rd32(r + 16);
    if (xsdt) {
        if ((n = strip_root(map, ctx, xsdt, true, sig, newsig)) < 0)
            return -1;
        total += n;
    }
    if (rsdt) {
        if ((n = strip_root(map, ctx, rsdt, false, sig, newsig)) < 0)
            return xsdt ? total : -1; /* a broken RSDT beside a good XSDT is not used */
        total += n;
    }
    return total;
}
