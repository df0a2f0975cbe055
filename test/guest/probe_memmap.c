/*
 * probe_memmap: prints the UEFI memory map entries of type
 * EfiReservedMemoryType.  The hypervisor's region is one of them (the loader
 * reserves it so that the OS never reuses it), so a scenario can find it here
 * and, in later issues, check that the guest cannot see into it.
 */
#include "agent.h"

enum verdict probe_memmap(struct agent *a, char *reason, size_t size)
{
    EFI_BOOT_SERVICES *bs = a->st->BootServices;
    UINTN map_size = 0, key = 0, desc_size = 0;
    UINT32 desc_version = 0;
    EFI_MEMORY_DESCRIPTOR *map = NULL;
    EFI_STATUS st = bs->GetMemoryMap(&map_size, NULL, &key, &desc_size, &desc_version);
    if (st != EFI_BUFFER_TOO_SMALL) {
        str_printf(reason, size, "GetMemoryMap(size query): status 0x%lx", (UINT64)st);
        return PROBE_FAIL;
    }
    /* Allocating the buffer may itself add an entry or two: leave room. */
    for (int tries = 0; tries < 4; tries++) {
        map_size += 8 * desc_size;
        st = bs->AllocatePool(EfiLoaderData, map_size, (VOID **)&map);
        if (st != EFI_SUCCESS) {
            str_printf(reason, size, "AllocatePool(%lu): status 0x%lx", (UINT64)map_size,
                       (UINT64)st);
            return PROBE_FAIL;
        }
        st = bs->GetMemoryMap(&map_size, map, &key, &desc_size, &desc_version);
        if (st != EFI_BUFFER_TOO_SMALL)
            break;
        bs->FreePool(map);
        map = NULL;
    }
    if (st != EFI_SUCCESS) {
        str_printf(reason, size, "GetMemoryMap: status 0x%lx", (UINT64)st);
        if (map)
            bs->FreePool(map);
        return PROBE_FAIL;
    }

    UINTN entries = map_size / desc_size, reserved = 0;
    for (UINTN i = 0; i < entries; i++) {
        EFI_MEMORY_DESCRIPTOR *d = (EFI_MEMORY_DESCRIPTOR *)((UINT8 *)map + i * desc_size);
        if (d->Type != EfiReservedMemoryType)
            continue;
        reserved++;
        AGENT_LOG("reserved 0x%016lx-0x%016lx pages 0x%lx attr 0x%lx", d->PhysicalStart,
                  d->PhysicalStart + d->NumberOfPages * 4096 - 1, d->NumberOfPages, d->Attribute);
    }
    AGENT_LOG("memory map: %lu entries, %lu reserved", (UINT64)entries, (UINT64)reserved);
    bs->FreePool(map);
    return PROBE_PASS;
}
