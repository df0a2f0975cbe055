/*
 * probe_pci: lists every PCI function through configuration mechanism #1
 * (ports 0xCF8/0xCFC) and checks the e1000 expectation (e1000=0|1).  Once
 * the hypervisor hides its dedicated NIC, this is the guest's view that must
 * no longer contain it.  With nicbar=ADDR it also reads the NIC's registers
 * where BAR0 was (CTRL, STATUS, ...): hidden, they must read as all ones.
 */
#include "agent.h"
#include "cpu.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc

#define E1000_ID 0x100e8086u /* device:vendor as read from offset 0 */

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static uint32_t pci_read32(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
    outl(PCI_ADDR, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xfc));
    return inl(PCI_DATA);
}

enum verdict probe_pci(struct agent *a, char *reason, size_t size)
{
    unsigned functions = 0, e1000 = 0;
    for (unsigned bus = 0; bus < 256; bus++) {
        for (unsigned dev = 0; dev < 32; dev++) {
            for (unsigned fn = 0; fn < 8; fn++) {
                uint32_t id = pci_read32(bus, dev, fn, 0);
                if ((id & 0xffff) == 0xffff) {
                    if (fn == 0)
                        break; /* no device: skip its other functions */
                    continue;
                }
                uint32_t class = pci_read32(bus, dev, fn, 8) >> 8;
                uint32_t hdr = pci_read32(bus, dev, fn, 0xc) >> 16 & 0xff;
                functions++;
                if (id == E1000_ID)
                    e1000++;
                AGENT_LOG("pci %02x:%02x.%x %04x:%04x class %06x", bus, dev, fn, id & 0xffff,
                          id >> 16, class);
                if (fn == 0 && !(hdr & 0x80))
                    break; /* single-function device */
            }
        }
    }
    AGENT_LOG("pci: %u functions, %u e1000 (8086:100e)", functions, e1000);
    if (!functions) {
        str_printf(reason, size, "no PCI function answered on 0xcf8/0xcfc");
        return PROBE_FAIL;
    }
    if (a->opt.nic_bar) {
        volatile uint32_t *regs = (volatile uint32_t *)(uintptr_t)a->opt.nic_bar;
        unsigned device_words = 0;
        for (unsigned i = 0; i < 64; i++)
            if (regs[i] != 0xffffffffu)
                device_words++;
        AGENT_LOG("pci: %u of 64 words at the NIC's old BAR 0x%llx differ from all ones",
                  device_words, (unsigned long long)a->opt.nic_bar);
        if (device_words) {
            str_printf(reason, size, "the NIC's registers at 0x%llx are visible",
                       (unsigned long long)a->opt.nic_bar);
            return PROBE_FAIL;
        }
    }
    if (a->opt.expect_e1000 >= 0 && (e1000 > 0) != a->opt.expect_e1000) {
        str_printf(reason, size, "%u e1000 found, expected %s", e1000,
                   a->opt.expect_e1000 ? "one or more" : "none");
        return PROBE_FAIL;
    }
    return PROBE_PASS;
}
