/*
 * fuzz_pci_guard.c - libFuzzer target over the PCI guard (net/pci_guard.c)
 * against the model chipset of test/unit/pci_model.h.
 *
 * Input: byte 0 chooses the chipset (Q35 with PCIEXBAR or i440FX) and the
 * MCFG entries' layout; then 7-byte guest accesses: kind (bit 0 write,
 * bit 1 first point CONFIG_ADDRESS somewhere, bit 2 also judge an ECAM
 * access), a port from 0xCF4 to 0xD00, a size, and four value bytes.  After
 * every access the properties the guard promises are checked and a breach
 * aborts: the NIC's config space was never touched, the protected bits of
 * the root port and of PCIEXBAR are unchanged, and every ECAM alias of the
 * NIC's page is judged PCI_HIDE.
 */
#include <stdlib.h>
#include <string.h>

#include "pci_model.h"

static struct pci_guard g;

struct kept {
    int f;
    unsigned off;
    uint32_t keep;
};
static const struct kept kept[] = {
    {F_PORT, 0x04, 0x7},        {F_PORT, 0x18, 0xffffff}, {F_PORT, 0x1c, 0xffff},
    {F_PORT, 0x20, 0xffffffff}, {F_PORT, 0x24, ~0u},      {F_PORT, 0x3c, 1u << 22},
    {F_PORT, 0x50, 0x10},       {F_PORT, 0x84, 0x3},
};

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 1)
        return 0;
    bool q35 = d[0] & 1;
    model_reset(q35);
    struct pci_mcfg m = {1, {{.base = 0xb0000000, .start_bus = 0, .end_bus = 255}}};
    if (d[0] & 2) /* a second segment-0 entry for bus 1, counted from its start bus */
        m.e[m.n++] = (struct pci_ecam){.base = 0xc0000000, .start_bus = 1, .end_bus = (d[0] >> 4)};
    if (d[0] & 4) /* another segment */
        m.e[m.n++] = (struct pci_ecam){.base = 0xd0000000, .segment = 1, .end_bus = 255};
    struct pci_dev nic = {.bus = 1};
    pci_guard_init(&g);
    if (pci_guard_for_nic(&g, &model_cfg_ops, &nic, &m) < 1)
        abort(); /* the root port is always on the path */
    uint32_t before[sizeof(kept) / sizeof(kept[0])];
    for (unsigned i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        before[i] = model_get32(kept[i].f, kept[i].off);
    uint32_t pciexbar = model_get32(F_HOST, 0x60);
    uint64_t pages[8];
    unsigned np = pci_mcfg_pages(&m, 1, 0, 0, pages, 8);
    model_nic_touched = 0;
    for (size_t i = 1; i + 7 <= n; i += 7) {
        const uint8_t *op = d + i;
        uint32_t val =
            (uint32_t)op[3] | (uint32_t)op[4] << 8 | (uint32_t)op[5] << 16 | (uint32_t)op[6] << 24;
        if (op[0] & 2)
            pci_guard_port_access(&g, &model_ports, 0xcf8, 4, true,
                                  model_cf8_of(op[1] % NFUNC, op[2] & 0xfc) | (val & 0x7f000003));
        uint16_t port = (uint16_t)(0xcf4 + op[1] % 13);
        unsigned size = 1u << (op[2] % 3);
        pci_guard_port_access(&g, &model_ports, port, size, op[0] & 1, val);
        if (model_nic_touched)
            abort();
        for (unsigned k = 0; k < sizeof(kept) / sizeof(kept[0]); k++)
            if ((model_get32(kept[k].f, kept[k].off) ^ before[k]) & kept[k].keep)
                abort();
        if (q35 && model_get32(F_HOST, 0x60) != pciexbar)
            abort();
        if ((op[0] & 4) && np) {
            uint64_t keep;
            uint64_t a = pages[op[1] % (np < 8 ? np : 8)] + (val & 0xfff);
            if (pci_guard_ecam_verdict(&g, &m, a, 1u << (op[2] % 4), op[0] & 1, &keep) != PCI_HIDE)
                abort();
        }
    }
    return 0;
}
