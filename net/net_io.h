/*
 * net_io.h - what net/ takes from the core's hardware and memory (pci_io.c).
 */
#ifndef HV_NET_IO_H
#define HV_NET_IO_H

#include <stddef.h>

#include "pci.h"

/* ECAM accessors when ecam->base != 0 (ecam must stay valid), else 0xCF8/0xCFC. */
void pci_io_ops(struct pci_cfg_ops *ops, struct pci_ecam *ecam);

/* Zeroed pages from the hypervisor region (physical = virtual), or NULL. */
void *net_alloc_pages(size_t n);

#endif
