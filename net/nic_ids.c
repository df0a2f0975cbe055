/*
 * nic_ids.c - the PCI IDs our drivers accept (see nic.h).  Shared by the
 * EFI loader (to disconnect the firmware's driver) and the core.
 */
#include <stddef.h>

#include "nic.h"

/*
 * 8254x parts (8086:100E is what Bochs and QEMU emulate) share the legacy
 * descriptor and register programming the driver uses; the 82574L (e1000e)
 * accepts it too, with its own EERD layout (82574 datasheet 10.2.2.4).
 */
static const struct nic_model models[] = {
    {0x8086, 0x100e, "82540EM", 8, 4}, {0x8086, 0x1015, "82540EM-LOM", 8, 4},
    {0x8086, 0x100f, "82545EM", 8, 4}, {0x8086, 0x1011, "82545EM-fiber", 8, 4},
    {0x8086, 0x10d3, "82574L", 2, 1},
};

const struct nic_model *nic_model_find(uint16_t vendor, uint16_t device)
{
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
        if (models[i].vendor == vendor && models[i].device == device)
            return &models[i];
    return NULL;
}

bool nic_supported(uint16_t vendor, uint16_t device)
{
    return nic_model_find(vendor, device) != NULL;
}
