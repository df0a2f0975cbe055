/* pci_model.c - the model chipset of pci_model.h. */
#include <pthread.h>
#include <string.h>

#include "pci_model.h"

const uint16_t model_bdf[NFUNC] = {PCI_BDF(0, 0, 0), PCI_BDF(0, 0x1c, 0), PCI_BDF(1, 0, 0),
                                   PCI_BDF(0, 3, 0)};
uint8_t model_cfg[NFUNC][4096];
uint32_t model_cf8;
uint8_t model_plain[0x40];
unsigned model_nic_touched;
static pthread_mutex_t hw_mu = PTHREAD_MUTEX_INITIALIZER;

static int func_of(uint16_t bdf)
{
    for (int i = 0; i < NFUNC; i++)
        if (model_bdf[i] == bdf)
            return i;
    return -1;
}

void model_put32(int f, unsigned off, uint32_t v)
{
    memcpy(&model_cfg[f][off], &v, 4);
}

uint32_t model_get32(int f, unsigned off)
{
    uint32_t v;
    memcpy(&v, &model_cfg[f][off], 4);
    return v;
}

void model_reset(bool q35)
{
    memset(model_cfg, 0, sizeof(model_cfg));
    memset(model_plain, 0, sizeof(model_plain));
    model_cf8 = 0;
    model_put32(F_HOST, 0x00, q35 ? 0x29c08086 : 0x12378086);
    model_put32(F_HOST, 0x08, 0x06000002);
    if (q35)
        model_put32(F_HOST, 0x60, 0xb0000001); /* PCIEXBAR: 256 MiB at 0xb0000000, enabled */
    else
        model_put32(F_HOST, 0x60, 0x02020202); /* i440FX: DRAM row boundaries */
    model_put32(F_PORT, 0x00, 0x29408086);
    model_put32(F_PORT, 0x04, 0x00100007); /* capabilities; I/O, memory, bus master */
    model_put32(F_PORT, 0x08, 0x06040000);
    model_put32(F_PORT, 0x0c, 0x00810000); /* type 1, multi-function */
    model_put32(F_PORT, 0x18, 0x00010100); /* primary 0, secondary 1, subordinate 1 */
    model_put32(F_PORT, 0x1c, 0x0000f0f0);
    model_put32(F_PORT, 0x20, 0xfeb0fe80); /* memory window 0xfe800000-0xfebfffff */
    model_put32(F_PORT, 0x34, 0x40);
    model_put32(F_PORT, 0x40, 0x00428010); /* PCI Express, next 0x80 */
    model_put32(F_PORT, 0x80, 0x00000001); /* power management, last */
    for (unsigned i = 0; i < 256; i++)
        model_cfg[F_NIC][i] = (uint8_t)(0xa0 + (i & 0xf));
    model_put32(F_NIC, 0x00, 0x10d38086);
    model_put32(F_NIC, 0x10, 0xfeb80000);
    model_put32(F_OTHER, 0x00, 0x10001af4);
    model_put32(F_OTHER, 0x08, 0x02000000);
    model_nic_touched = 0;
}

/* one byte of the bus, the mutex held */
static uint8_t byte_io(uint16_t p, bool write, uint8_t v)
{
    if (p >= 0xcfc && p <= 0xcff && (model_cf8 & PCI_CF8_ENABLE)) {
        int f = func_of(PCI_CF8_BDF(model_cf8));
        unsigned off = PCI_CF8_REG(model_cf8) + (p & 3u);
        if (f == F_NIC)
            model_nic_touched++;
        if (f < 0)
            return 0xff;
        if (write)
            model_cfg[f][off] = v;
        return model_cfg[f][off];
    }
    if (p < 0xce0 || p >= 0xce0 + sizeof(model_plain))
        return 0xff;
    if (write)
        model_plain[p - 0xce0] = v;
    return model_plain[p - 0xce0];
}

static uint32_t hw_in(void *ctx, uint16_t port, unsigned size)
{
    (void)ctx;
    uint32_t r = 0;
    pthread_mutex_lock(&hw_mu);
    if (port == 0xcf8 && size == 4)
        r = model_cf8;
    else
        for (unsigned i = 0; i < size; i++)
            r |= (uint32_t)byte_io((uint16_t)(port + i), false, 0) << (8 * i);
    pthread_mutex_unlock(&hw_mu);
    return r;
}

static void hw_out(void *ctx, uint16_t port, unsigned size, uint32_t v)
{
    (void)ctx;
    pthread_mutex_lock(&hw_mu);
    if (port == 0xcf8 && size == 4)
        model_cf8 = v;
    else
        for (unsigned i = 0; i < size; i++)
            byte_io((uint16_t)(port + i), true, (uint8_t)(v >> (8 * i)));
    pthread_mutex_unlock(&hw_mu);
}

const struct pci_port_ops model_ports = {hw_in, hw_out, NULL};

/* the hypervisor's own boot-time accessor (pci_cfg_ops): straight to the model */
static uint32_t f_read(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
    (void)ctx;
    int f = func_of(PCI_BDF(bus, dev, fn));
    return f < 0 ? 0xffffffffu : model_get32(f, off & 0xffc);
}

static void f_write(void *ctx, uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
    (void)ctx;
    int f = func_of(PCI_BDF(bus, dev, fn));
    if (f >= 0)
        model_put32(f, off & 0xffc, v);
}

const struct pci_cfg_ops model_cfg_ops = {f_read, f_write, NULL};

uint32_t model_cf8_of(int f, unsigned reg)
{
    return PCI_CF8_ENABLE | (uint32_t)model_bdf[f] << 8 | reg;
}