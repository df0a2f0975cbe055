/*
 * pci_model.h - a model chipset for the PCI guard's tests and fuzz target:
 * a Q35- or i440FX-like host bridge at 00:00.0, a root port at 00:1c.0
 * (secondary bus 1), the NIC at 01:00.0 and another device at 00:03.0.
 * It does what the hardware does: a dword at 0xCF8 is CONFIG_ADDRESS, any
 * other access is split into bytes (a misaligned access is split by the
 * CPU), a byte of 0xCFC-0xCFF with the enable bit set reaches the addressed
 * function's config space, everything else is plain I/O; each port access
 * is atomic, like one bus transaction.  model_nic_touched counts every byte
 * of the NIC's config space it is asked for.
 */
#ifndef HV_TEST_PCI_MODEL_H
#define HV_TEST_PCI_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "net/pci.h"
#include "net/pci_guard.h"

enum { F_HOST, F_PORT, F_NIC, F_OTHER, NFUNC };
extern const uint16_t model_bdf[NFUNC];
extern uint8_t model_cfg[NFUNC][4096];
extern uint32_t model_cf8;
extern uint8_t model_plain[0x40]; /* ports 0xCE0-0xD1F */
extern unsigned model_nic_touched;
extern const struct pci_port_ops model_ports;  /* the guest's accesses, as the hardware does them */
extern const struct pci_cfg_ops model_cfg_ops; /* the hypervisor's own boot-time accessor */

/* Puts every function in its reset state; q35 = the host bridge has PCIEXBAR at 0xb0000000. */
void model_reset(bool q35);
uint32_t model_get32(int f, unsigned off);
void model_put32(int f, unsigned off, uint32_t v);
/* CONFIG_ADDRESS of function f, register reg */
uint32_t model_cf8_of(int f, unsigned reg);

#endif
