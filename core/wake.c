/*
 * wake.c - installs the wake trampoline (core/wake_blob.S) in a page below 1 MiB
 * (see wake.h).  Pure: it only copies bytes and adds the page's address to
 * the blob's three absolute fields, so the loader, the core and the host
 * tests share it.
 */
#include "wake.h"

#include <stddef.h>

/* The blob (core/wake_blob.S); hidden so that every build reaches it PC-relative. */
#define WAKE_HIDDEN __attribute__((visibility("hidden")))
extern const uint8_t wake_blob[] WAKE_HIDDEN, wake_blob_end[] WAKE_HIDDEN;
extern const uint8_t wake_blob_params[] WAKE_HIDDEN;
extern const uint32_t wake_blob_patch[3] WAKE_HIDDEN;

/* wake_blob.S reads the parameters at these offsets. */
_Static_assert(offsetof(struct wake_params, cr0) == 0, "wake_blob.S P_CR0");
_Static_assert(offsetof(struct wake_params, cr3) == 8, "wake_blob.S P_CR3");
_Static_assert(offsetof(struct wake_params, cr4) == 16, "wake_blob.S P_CR4");
_Static_assert(offsetof(struct wake_params, efer) == 24, "wake_blob.S P_EFER");
_Static_assert(offsetof(struct wake_params, entry) == 32, "wake_blob.S P_ENTRY");
_Static_assert(offsetof(struct wake_params, next_slot) == 40, "wake_blob.S P_NEXT_SLOT");
_Static_assert(offsetof(struct wake_params, ncpus) == 44, "wake_blob.S P_NCPUS");
_Static_assert(offsetof(struct wake_params, stack_top) == 48, "wake_blob.S P_STACK");
_Static_assert(sizeof(struct wake_params) == 560, "wake_blob.S P_SIZE");

#define ONE_MIB 0x100000ull

static size_t params_off(void)
{
    return (size_t)(wake_blob_params - wake_blob);
}

struct wake_params *wake_params_of(void *page)
{
    return (struct wake_params *)((uint8_t *)page + params_off());
}

const char *wake_install(void *page, uint64_t phys, const struct wake_params *p)
{
    size_t size = (size_t)(wake_blob_end - wake_blob);
    if (!page || !p)
        return "no page or parameters";
    if (phys & (WAKE_PAGE_SIZE - 1))
        return "the page is not 4 KiB aligned";
    if (phys >= ONE_MIB)
        return "the page is not below 1 MiB (real mode reaches no further)";
    if (p->cr3 >= (1ull << 32))
        return "CR3 is not below 4 GiB (it is loaded in 32-bit mode)";
    if (p->ncpus == 0 || p->ncpus > WAKE_MAX_CPUS)
        return "the CPU count is out of range";
    if (!p->entry)
        return "no entry";
    for (uint32_t i = 0; i < p->ncpus; i++)
        if (!p->stack_top[i])
            return "a CPU has no stack";
    if (size > WAKE_PAGE_SIZE || params_off() % 8)
        return "the blob does not fit its page";

    volatile uint8_t *dst = page;
    for (size_t i = 0; i < size; i++)
        dst[i] = wake_blob[i];
    /* Byte by byte: the far jumps' fields are not aligned. */
    for (unsigned i = 0; i < 3; i++) {
        volatile uint8_t *f = dst + wake_blob_patch[i];
        uint32_t v =
            (uint32_t)f[0] | (uint32_t)f[1] << 8 | (uint32_t)f[2] << 16 | (uint32_t)f[3] << 24;
        v += (uint32_t)phys;
        for (unsigned b = 0; b < 4; b++)
            f[b] = (uint8_t)(v >> (8 * b));
    }
    const uint8_t *src = (const uint8_t *)p;
    volatile uint8_t *w = (volatile uint8_t *)wake_params_of(page);
    for (size_t i = 0; i < sizeof *p; i++)
        w[i] = src[i];
    return NULL;
}
