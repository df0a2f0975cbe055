/*
 * net_io.h - what net/ takes from the core's hardware and memory (pci_io.c).
 */
#ifndef HV_NET_IO_H
#define HV_NET_IO_H

#include <stddef.h>

#include "pci.h"

/* ECAM accessors over segment 0 of m when m has entries (m must stay
 * valid), else 0xCF8/0xCFC. */
void pci_io_ops(struct pci_cfg_ops *ops, struct pci_mcfg *m);

/* From now on the guest's config accesses (net.h, net_pci_*) keep nic
 * hidden and its path protected (pci_guard_for_nic over ops; m, which must
 * stay valid, or NULL without ECAM).  Returns pci_guard_for_nic's count,
 * -1 (nothing guarded) if its table is full. */
int pci_io_guard(const struct pci_cfg_ops *ops, const struct pci_dev *nic,
                 const struct pci_mcfg *m);

/* Zeroed pages from the hypervisor region (physical = virtual), or NULL. */
void *net_alloc_pages(size_t n);

#endif
