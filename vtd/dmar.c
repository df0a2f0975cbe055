/*
 * dmar.c - parser for the ACPI DMAR table (Intel VT-d specification 3.x,
 * 8.1 "DMA Remapping Reporting Structure", 8.3 "DMA Remapping Hardware Unit
 * Definition Structure", 8.3.1 "Device Scope Structure", 8.4 "Reserved
 * Memory Region Reporting Structure").
 */
#include "dmar.h"

#include <string.h>

#define DMAR_HDR   48u /* ACPI header, width, flags, 10 reserved */
#define DRHD_FIXED 16u
#define RMRR_FIXED 24u
#define SCOPE_HDR  6u

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Device scopes in p[0..len): returns NULL or what is wrong. */
static const char *parse_scopes(const uint8_t *p, uint32_t len, struct dmar_scope *s, uint32_t *n,
                                uint32_t *dropped)
{
    uint32_t off = 0;
    *n = 0;
    while (off < len) {
        if (len - off < SCOPE_HDR)
            return "device scope truncated";
        uint8_t slen = p[off + 1];
        if (slen < SCOPE_HDR || slen > len - off || (slen - SCOPE_HDR) % 2)
            return "device scope length invalid";
        uint32_t npath = (slen - SCOPE_HDR) / 2u;
        if (*n < DMAR_MAX_SCOPE && npath <= DMAR_MAX_PATH) {
            struct dmar_scope *d = &s[(*n)++];
            d->type = p[off];
            d->enum_id = p[off + 4];
            d->bus = p[off + 5];
            d->npath = (uint8_t)npath;
            for (uint32_t i = 0; i < npath; i++) {
                d->path[i][0] = p[off + SCOPE_HDR + 2 * i];
                d->path[i][1] = p[off + SCOPE_HDR + 2 * i + 1];
            }
        } else if (dropped) {
            (*dropped)++;
        } else {
            return "too many device scopes";
        }
        off += slen;
    }
    return NULL;
}

const char *dmar_parse(const uint8_t *t, uint32_t len, struct dmar_info *out)
{
    memset(out, 0, sizeof(*out));
    if (len < DMAR_HDR)
        return "DMAR shorter than its header";
    if (t[0] != 'D' || t[1] != 'M' || t[2] != 'A' || t[3] != 'R')
        return "not a DMAR";
    uint32_t hlen =
        (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
    if (hlen != len)
        return "DMAR length differs from its header";
    out->haw = t[36];
    out->flags = t[37];
    uint32_t off = DMAR_HDR;
    while (off < len) {
        if (len - off < 4)
            return "remapping structure truncated";
        uint16_t type = rd16(t + off), slen = rd16(t + off + 2);
        if (slen < 4 || slen > len - off)
            return "remapping structure length invalid";
        const uint8_t *s = t + off;
        const char *why;
        if (type == 0) {
            if (slen < DRHD_FIXED)
                return "DRHD too short";
            if (out->ndrhd == DMAR_MAX_DRHD)
                return "too many DRHD units";
            struct dmar_drhd *d = &out->drhd[out->ndrhd];
            d->flags = s[4];
            d->size = s[5];
            d->segment = rd16(s + 6);
            d->reg_base = rd64(s + 8);
            if (!d->reg_base || (d->reg_base & 0xfff))
                return "DRHD register base not page aligned";
            why = parse_scopes(s + DRHD_FIXED, slen - DRHD_FIXED, d->scope, &d->nscope,
                               &d->scopes_dropped);
            if (why)
                return why;
            out->ndrhd++;
        } else if (type == 1) {
            if (slen < RMRR_FIXED)
                return "RMRR too short";
            if (out->nrmrr == DMAR_MAX_RMRR)
                return "too many RMRRs";
            struct dmar_rmrr *r = &out->rmrr[out->nrmrr];
            r->segment = rd16(s + 6);
            r->base = rd64(s + 8);
            r->limit = rd64(s + 16);
            if (r->limit < r->base)
                return "RMRR limit below its base";
            why = parse_scopes(s + RMRR_FIXED, slen - RMRR_FIXED, r->scope, &r->nscope, NULL);
            if (why)
                return why;
            out->nrmrr++;
        } else {
            out->other++;
        }
        off += slen;
    }
    if (!out->ndrhd)
        return "DMAR lists no remapping unit";
    return NULL;
}
