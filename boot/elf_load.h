/*
 * elf_load.h - places the core image (a static PIE linked at 0, see
 * linker.ld) at an address chosen at run time: copies its PT_LOAD segments,
 * zero-fills .bss and applies its R_X86_64_RELATIVE relocations.  Any other
 * relocation type or a malformed file is refused with a reason.  Pure code:
 * used by the EFI loader and host-tested on the real core.elf.
 */
#ifndef HV_ELF_LOAD_H
#define HV_ELF_LOAD_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of memory the image occupies once loaded (page rounded), or 0 with *why set. */
uint64_t elf_image_size(const void *elf, size_t len, const char **why);

/*
 * Loads into dest (dest_size bytes, page aligned, its address is the load
 * base).  Returns NULL on success and sets *entry to the entry point's
 * address; otherwise returns why it refused.
 */
const char *elf_load(const void *elf, size_t len, void *dest, uint64_t dest_size, uint64_t *entry);

#endif
