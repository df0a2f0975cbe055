/*
 * nic_claim.c - the loader's part of taking the dedicated NIC: choose it
 * among the firmware's PCI I/O handles with the same rule as the core
 * (pci_select_nic), disconnect whatever UEFI driver manages it (so the
 * firmware stops touching its rings and registers; UEFI 2.x 7.3
 * DisconnectController), and tell the core which device it is through the
 * boot info.  A NIC the configuration names (by PCI address or MAC) that is
 * not found is a refusal: the hypervisor would run with nothing to serve
 * the introspection on.  Other failures here only cost the firmware's own
 * use of the NIC: the core still chooses by itself.
 */
#include <efi.h>
#include <efilib.h>

#include "boot.h"
#include "boot_info.h"
#include "log.h"
#include "net/nic.h"
#include "net/pci.h"

#define MAX_HANDLES 64
#define REG_RAL0    0x5400

struct claim_ctx {
    EFI_PCI_IO_PROTOCOL *io[MAX_HANDLES];
};

/* For nic = MAC: RAL0/RAH0 through BAR0, with memory decode on for the read. */
static bool efi_mac_of(void *vctx, const struct pci_dev *d, uint8_t mac[6])
{
    struct claim_ctx *ctx = vctx;
    EFI_PCI_IO_PROTOCOL *io = ctx->io[d->bar[5]]; /* bar[5] carries the handle index */
    UINT64 orig = 0;
    if (io->Attributes(io, EfiPciIoAttributeOperationGet, 0, &orig) != EFI_SUCCESS)
        return false;
    io->Attributes(io, EfiPciIoAttributeOperationEnable, EFI_PCI_IO_ATTRIBUTE_MEMORY, NULL);
    UINT32 ra[2] = {0, 0};
    EFI_STATUS s = io->Mem.Read(io, EfiPciIoWidthUint32, 0, REG_RAL0, 2, ra);
    io->Attributes(io, EfiPciIoAttributeOperationSet, orig, NULL);
    if (s != EFI_SUCCESS)
        return false;
    for (int i = 0; i < 4; i++)
        mac[i] = (uint8_t)(ra[0] >> (8 * i));
    mac[4] = (uint8_t)ra[1];
    mac[5] = (uint8_t)(ra[1] >> 8);
    return true;
}

int nic_claim(struct boot_info *bi)
{
    const struct hv_config *c = &bi->config;
    if (c->nic_select == NIC_NONE)
        return 0;
    bool named = c->nic_select == NIC_BY_PCI || c->nic_select == NIC_BY_MAC;
    UINTN n = 0;
    EFI_HANDLE *handles = NULL;
    if (BS->LocateHandleBuffer(ByProtocol, &PciIoProtocol, NULL, &n, &handles) != EFI_SUCCESS)
        n = 0, handles = NULL;
    static struct pci_dev devs[MAX_HANDLES];
    static EFI_HANDLE owner[MAX_HANDLES];
    static struct claim_ctx ctx;
    int count = 0;
    for (UINTN i = 0; i < n && count < MAX_HANDLES; i++) {
        EFI_PCI_IO_PROTOCOL *io;
        if (BS->HandleProtocol(handles[i], &PciIoProtocol, (void **)&io) != EFI_SUCCESS)
            continue;
        UINTN seg, bus, dev, fn;
        UINT32 id = 0;
        if (io->GetLocation(io, &seg, &bus, &dev, &fn) != EFI_SUCCESS || seg != 0 ||
            io->Pci.Read(io, EfiPciIoWidthUint32, 0, 1, &id) != EFI_SUCCESS)
            continue;
        struct pci_dev *d = &devs[count];
        SetMem(d, sizeof(*d), 0);
        d->bus = (uint8_t)bus;
        d->dev = (uint8_t)dev;
        d->fn = (uint8_t)fn;
        d->vendor = (uint16_t)id;
        d->device = (uint16_t)(id >> 16);
        d->bar[5] = (uint64_t)count; /* lets efi_mac_of find the protocol */
        ctx.io[count] = io;
        owner[count] = handles[i];
        count++;
    }
    const char *why = NULL;
    int k = pci_select_nic(c, devs, count, nic_supported, efi_mac_of, &ctx, &why);
    if (k >= 0) {
        struct pci_dev *d = &devs[k];
        /* Every driver, every child (SNP, MNP, ... stacks built on it). */
        EFI_STATUS s = BS->DisconnectController(owner[k], NULL, NULL);
        /* EFI_SUCCESS also when no driver was managing it: either way none is left. */
        if (s == EFI_SUCCESS)
            log_info("NIC %02x:%02x.%x %04x:%04x claimed for the hypervisor (no firmware "
                     "driver left on it)",
                     d->bus, d->dev, d->fn, d->vendor, d->device);
        else
            log_warn("NIC %02x:%02x.%x %04x:%04x: DisconnectController failed (0x%llx); the "
                     "firmware may still use it",
                     d->bus, d->dev, d->fn, d->vendor, d->device, (unsigned long long)s);
        bi->nic_claimed = 1;
        bi->nic_bus = d->bus;
        bi->nic_dev = d->dev;
        bi->nic_fn = d->fn;
        bi->nic_vendor = d->vendor;
        bi->nic_device = d->device;
    }
    if (handles)
        FreePool(handles);
    if (k < 0 && named) {
        log_error("refusing to start: the NIC hv.conf names is not there (%s)",
                  why ? why : "no match");
        return -1;
    }
    return 0;
}
