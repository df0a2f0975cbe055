/*
 * key_scrub.c - the last step before the loader hands the machine back:
 * overwrite every stray copy of the key in memory the OS will get.  The
 * loader wipes its own buffers as it goes; this catches what the firmware's
 * drivers left behind (the file system's and disk driver's buffers that
 * held hv.conf, the variable services' scratch copies), which become the
 * OS's memory at ExitBootServices.  It scans the memory map's loader data,
 * boot-services data and free memory; runtime-services memory is not
 * touched (the firmware's variable store lives there and must stay intact:
 * docs/security.md says what that leaves open).
 */
#include <efi.h>
#include <efilib.h>

#include "boot.h"
#include "log.h"

static bool scrubbed_type(UINT32 t)
{
    return t == EfiLoaderData || t == EfiBootServicesData || t == EfiConventionalMemory;
}

unsigned key_scrub(const char *key, size_t n)
{
    if (n < 4)
        return 0;
    UINTN entries = 0, mkey, dsize;
    UINT32 dver;
    EFI_MEMORY_DESCRIPTOR *map = LibMemoryMap(&entries, &mkey, &dsize, &dver);
    if (!map) {
        log_warn("key: no memory map: stray copies of the key are not scrubbed");
        return 0;
    }
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint64_t pat = ones * (uint8_t)key[0];
    unsigned found = 0;
    for (UINTN i = 0; i < entries; i++) {
        EFI_MEMORY_DESCRIPTOR *d = (EFI_MEMORY_DESCRIPTOR *)((uint8_t *)map + i * dsize);
        if (!scrubbed_type(d->Type))
            continue;
        uint64_t base = d->PhysicalStart, end = base + d->NumberOfPages * EFI_PAGE_SIZE;
        for (uint64_t p = base; p < end; p += 8) {
            /* Words holding the key's first byte, tested eight bytes at once. */
            uint64_t x = *(volatile uint64_t *)(uintptr_t)p ^ pat;
            if (!((x - ones) & ~x & highs))
                continue;
            for (unsigned b = 0; b < 8; b++) {
                volatile char *at = (volatile char *)(uintptr_t)(p + b);
                if (p + b + n > end || at == key)
                    continue;
                size_t k = 0;
                while (k < n && at[k] == key[k])
                    k++;
                if (k < n)
                    continue;
                for (k = 0; k < n; k++)
                    at[k] = 0;
                found++;
            }
        }
    }
    FreePool(map);
    return found;
}
